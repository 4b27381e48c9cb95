package elastic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// twoSessions is a derived key's two events three days apart: each in a
// session of its own under the default policy.
func twoSessions() []event.Event {
	b := storetest.B{Contact: "5511900000007"}
	return []event.Event{
		b.Msg("s1", 0, event.RoleCustomer, "oi"),
		b.Msg("s2", 3*24*time.Hour, event.RoleCustomer, "de novo"),
	}
}

// keyRequest is the request the assembler makes for e's key from since on.
func keyRequest(e *event.Event, since time.Time) session.KeyRequest {
	return session.KeyRequest{Tenant: e.Tenant, Key: session.KeyOf(e), Since: since,
		Policy: session.PolicyTag(pipeline.MustDefault().PolicyFor(e.Channel))}
}

// keyEventIDs is the ids of the events r.KeyEvents returns; a panic of
// KeyEvents is its error, so that the update ends and lets its keys go.
func keyEventIDs(ctx context.Context, r session.Reader, e *event.Event, since time.Time) (ids []string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("KeyEvents panicked: %v", p)
		}
	}()
	evs, err := r.KeyEvents(ctx, e.Tenant, session.KeyOf(e), since)
	return storedIDs(evs), err
}

// storedIDs is the event ids of evs, in their order.
func storedIDs(evs []session.Stored) []string {
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.EventID)
	}
	return ids
}

// TestKeyEventsSinceOtherThanPrefetched: KeyEvents with an earlier since
// than the one its key was prefetched at (not the request the assembler
// repeats) reads the key from there: the earlier session's events too,
// whether the key is in memory or read back.
func TestKeyEventsSinceOtherThanPrefetched(t *testing.T) {
	f := esfake.New(t)
	evs := twoSessions()
	s := fakeStore(t, f)
	if err := assembler(s).Ingest(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	early, late := evs[0].OccurredAt, evs[1].OccurredAt
	for _, c := range []struct {
		name string
		s    *Store
	}{{"from memory", s}, {"read back", fakeStore(t, f)}} {
		t.Run(c.name, func(t *testing.T) {
			err := c.s.Update(t.Context(), func(ctx context.Context, r session.Reader) (session.Changes, error) {
				if err := r.(session.Prefetcher).Prefetch(ctx, []session.KeyRequest{keyRequest(&evs[0], late)}); err != nil {
					return session.Changes{}, err
				}
				for _, q := range []struct {
					since time.Time
					want  []string
				}{{late, []string{"s2"}}, {early, []string{"s1", "s2"}}} {
					got, err := keyEventIDs(ctx, r, &evs[0], q.since)
					if err != nil {
						return session.Changes{}, err
					}
					if !slices.Equal(got, q.want) {
						t.Errorf("KeyEvents since %s after a Prefetch since %s: %v, want %v", q.since, late, got, q.want)
					}
				}
				return session.Changes{}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// refuseOnce answers the first request to a path ending in suffix whose
// body contains part 503 without sending it (after letting pass such
// requests through); the others go through.
type refuseOnce struct {
	suffix, part string
	pass         int32
	refused      atomic.Bool
	seen         atomic.Int32
}

func (o *refuseOnce) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(req.URL.Path, o.suffix) || req.Body == nil || o.refused.Load() {
		return http.DefaultTransport.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	if bytes.Contains(body, []byte(o.part)) && o.seen.Add(1) > o.pass && o.refused.CompareAndSwap(false, true) {
		return unavailable(req), nil
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestKeyEventsAfterFailedPrefetch: a Prefetch that failed midway — its
// key document, or (the key document read back) its session or event
// documents answered 503 — holds nothing of the key's sessions, so
// KeyEvents with the same since reads the key again and returns all its
// events.
func TestKeyEventsAfterFailedPrefetch(t *testing.T) {
	for _, c := range []struct{ name, index string }{
		{"key documents", `"_index":"test-keys-`},
		{"session documents", `"_index":"test-sessions-`},
		{"event documents", `"_index":"test-events-`},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := esfake.New(t)
			evs := twoSessions()
			if err := assembler(fakeStore(t, f)).Ingest(t.Context(), evs); err != nil {
				t.Fatal(err)
			}
			refuse := &refuseOnce{suffix: "/_mget", part: c.index}
			s := fakeStore(t, f, func(c *Config) { c.Transport = refuse }) // a restart: read back
			since := evs[0].OccurredAt
			err := s.Update(t.Context(), func(ctx context.Context, r session.Reader) (session.Changes, error) {
				err := r.(session.Prefetcher).Prefetch(ctx, []session.KeyRequest{keyRequest(&evs[0], since)})
				if !errors.Is(err, ErrUnavailable) || !refuse.refused.Load() {
					t.Errorf("Prefetch with the %s answered 503: %v, want ErrUnavailable", c.name, err)
				}
				got, err := keyEventIDs(ctx, r, &evs[0], since)
				if err != nil {
					return session.Changes{}, err
				}
				if want := []string{"s1", "s2"}; !slices.Equal(got, want) {
					t.Errorf("KeyEvents after the failed Prefetch: %v, want %v", got, want)
				}
				return session.Changes{}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestKeyEventsAfterAFailedEarlierRequest: a key read in full from a late
// since, then asked again from an earlier one by a Prefetch that fails
// while it reads the earlier session, is not taken as read from the
// earlier since: KeyEvents from there reads it again.
func TestKeyEventsAfterAFailedEarlierRequest(t *testing.T) {
	f := esfake.New(t)
	evs := twoSessions()
	if err := assembler(fakeStore(t, f)).Ingest(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	// The late request's session documents go through, the early one's
	// are answered 503.
	refuse := &refuseOnce{suffix: "/_mget", part: `"_index":"test-sessions-`, pass: 1}
	s := fakeStore(t, f, func(c *Config) { c.Transport = refuse }) // a restart: read back
	early, late := evs[0].OccurredAt, evs[1].OccurredAt
	err := s.Update(t.Context(), func(ctx context.Context, r session.Reader) (session.Changes, error) {
		p := r.(session.Prefetcher)
		if err := p.Prefetch(ctx, []session.KeyRequest{keyRequest(&evs[0], late)}); err != nil {
			return session.Changes{}, err
		}
		if err := p.Prefetch(ctx, []session.KeyRequest{keyRequest(&evs[0], early)}); !errors.Is(err, ErrUnavailable) || !refuse.refused.Load() {
			t.Errorf("Prefetch from the earlier since with its session document answered 503: %v, want ErrUnavailable", err)
		}
		got, err := keyEventIDs(ctx, r, &evs[0], early)
		if err != nil {
			return session.Changes{}, err
		}
		if want := []string{"s1", "s2"}; !slices.Equal(got, want) {
			t.Errorf("KeyEvents from the earlier since after its failed Prefetch: %v, want %v", got, want)
		}
		return session.Changes{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
