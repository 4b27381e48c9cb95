package elastic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/idref"
	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
	"github.com/chatreport/chatreport/internal/store/storetest"
	"github.com/chatreport/chatreport/internal/waitfor"
)

// A contact whose id, name and words must never reach an error or a log
// line; its event ids embed its phone number, as producers' ids may
// (docs/events.md's "tag-5511987654321-1759829300").
const (
	privateContact = "+5511999990000"
	privateName    = "Joana Privada"
	privateText    = "meu cartão termina em 4321"
)

var private = storetest.B{Contact: privateContact, Phone: privateContact, Name: privateName}

// privateEvents are two messages of the private contact.
func privateEvents() []event.Event {
	return []event.Event{
		private.Msg("msg-"+privateContact+"-1", 0, event.RoleCustomer, privateText),
		private.Msg("msg-"+privateContact+"-2", time.Minute, event.RoleBot, "Olá "+privateName),
	}
}

// privateLeak returns what of the private contact s quotes, or "".
func privateLeak(s string) string {
	for _, p := range []string{privateContact, strings.TrimPrefix(privateContact, "+"), privateName, privateText} {
		if strings.Contains(s, p) {
			return p
		}
	}
	return ""
}

// checkLogsPrivate fails t for every log entry whose message or fields
// quote the private contact.
func checkLogsPrivate(t *testing.T, logs *observer.ObservedLogs) {
	t.Helper()
	for _, e := range logs.All() {
		enc := zapcore.NewMapObjectEncoder()
		for _, f := range e.Context {
			f.AddTo(enc)
		}
		fields, _ := json.Marshal(enc.Fields)
		if p := privateLeak(e.Message + " " + string(fields)); p != "" {
			t.Errorf("log entry %q %s quotes %q", e.Message, fields, p)
		}
	}
}

// claimedByAnotherWriter leaves the private contact's key claimed by
// another writer, which failed before it marked the key done.
func claimedByAnotherWriter(t *testing.T, f *esfake.Server) {
	t.Helper()
	f.BulkHook = func(action, index, _ string, _ int) (int, string) {
		if strings.Contains(index, "-keys-") && action == "index" {
			return 403, "security_exception"
		}
		return 0, ""
	}
	if err := assembler(fakeStore(t, f)).Ingest(t.Context(), privateEvents()[:1]); err == nil {
		t.Fatal("the other writer's release succeeded")
	}
	f.BulkHook = nil
}

// TestErrorsNeverNameContacts: whatever the cluster refuses or fails, the
// errors of the store (and its rejection reasons, which become dead-letter
// headers) and its log lines name documents by a hash, never by the ids
// that hold a contact (key documents) or may (event documents), and quote
// no name or text.
func TestErrorsNeverNameContacts(t *testing.T) {
	key := func(index string) bool { return strings.Contains(index, "-keys-") }
	cases := []struct {
		name string
		tune func(*Config)
		hook func(action, index, id string, attempt int) (int, string)
		// before runs before the batch, on the same cluster.
		before func(t *testing.T, f *esfake.Server)
		want   func(error) bool
	}{
		{name: "event rejected",
			hook: func(_, index, _ string, _ int) (int, string) {
				if strings.Contains(index, "-events-") {
					return 400, "document_parsing_exception"
				}
				return 0, ""
			},
			want: func(err error) bool { var r *RejectedError; return errors.As(err, &r) }},
		{name: "session rejected",
			hook: func(_, index, _ string, _ int) (int, string) {
				if strings.Contains(index, "-sessions-") {
					return 400, "document_parsing_exception"
				}
				return 0, ""
			},
			want: func(err error) bool { var r *RejectedError; return errors.As(err, &r) }},
		{name: "key document refused",
			hook: func(_, index, _ string, _ int) (int, string) {
				if key(index) {
					return 400, "document_parsing_exception"
				}
				return 0, ""
			},
			want: func(err error) bool { return strings.Contains(err.Error(), "key document") }},
		{name: "key index forbidden",
			hook: func(_, index, _ string, _ int) (int, string) {
				if key(index) {
					return 403, "security_exception"
				}
				return 0, ""
			},
			want: func(err error) bool { return strings.Contains(err.Error(), "HTTP 403") }},
		{name: "cluster unavailable",
			tune: func(c *Config) { c.BulkAttempts = 2 },
			hook: func(string, string, string, int) (int, string) { return 503, "unavailable_shards_exception" },
			want: func(err error) bool { return errors.Is(err, ErrUnavailable) }},
		{name: "key claimed",
			hook: func(action, index, _ string, _ int) (int, string) {
				if key(index) && action == "create" {
					return 409, "version_conflict_engine_exception"
				}
				return 0, ""
			},
			want: func(err error) bool { return errors.Is(err, ErrConflict) }},
		{name: "key held by another writer",
			before: claimedByAnotherWriter,
			want:   func(err error) bool { return errors.Is(err, ErrConflict) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := esfake.New(t)
			if c.before != nil {
				c.before(t, f)
			}
			core, logs := observer.New(zap.DebugLevel)
			s := loggedFakeStore(t, f, zap.New(core), func(cfg *Config) {
				cfg.UpdateAttempts = 2
				if c.tune != nil {
					c.tune(cfg)
				}
			})
			f.BulkHook = c.hook
			err := assembler(s).Ingest(t.Context(), privateEvents())
			if err == nil || !c.want(err) {
				t.Fatalf("err %v, not the failure the case makes", err)
			}
			texts := []string{err.Error()}
			var rej *RejectedError
			if errors.As(err, &rej) {
				for _, reason := range rej.Rejected() {
					texts = append(texts, reason)
				}
			}
			for _, s := range texts {
				if p := privateLeak(s); p != "" {
					t.Errorf("%q quotes %q", s, p)
				}
			}
			checkLogsPrivate(t, logs)
		})
	}
}

// TestIngesterLogsNeverNameContacts: the ingester over this store, while
// the cluster rejects some of the private contact's events and fails for a
// while, logs its retries and dead letters without the contact, its name
// or its words.
func TestIngesterLogsNeverNameContacts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and a consumer group")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	def := pipeline.MustDefault()
	b := startBroker(ctx, t, def)
	f := esfake.New(t)
	core, logs := observer.New(zap.DebugLevel)
	log := zap.New(core)
	// Until the claim's lease ends, the store answers that the key is
	// busy, and the ingester retries.
	claimedByAnotherWriter(t, f)
	s := loggedFakeStore(t, f, log, func(c *Config) { c.BulkAttempts = 2; c.UpdateAttempts = 3; c.ClaimLease = time.Second })
	f.BulkHook = func(action, index, id string, attempt int) (int, string) {
		switch {
		case strings.Contains(index, "-events-") && strings.HasSuffix(id, "-2"):
			return 400, "document_parsing_exception"
		case strings.Contains(index, "-keys-") && attempt <= 2:
			return 503, "unavailable_shards_exception"
		}
		return 0, ""
	}
	var msgs []kafka.Message
	for _, e := range privateEvents() {
		v, _ := json.Marshal(e)
		msgs = append(msgs, kafka.Message{Topic: def.Topics.Events[0], Key: []byte(e.RecommendedKey()), Value: v})
	}
	if err := producer(t, b).WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	stop := runLoggedIngester(ctx, t, ingest.Config{
		Brokers: []string{b.Addr()}, Topics: def.Topics.Events, Group: def.ConsumerGroup, DeadLetter: def.Topics.DeadLetter,
		BatchSize: 10, BatchWait: 10 * time.Millisecond, MaxWait: 50 * time.Millisecond, ShutdownGrace: 200 * time.Millisecond,
	}, session.NewAssembler(def, s), log)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs: %q", messages(logs))
		}
	})
	waitfor.True(t, 20*time.Second, "every event committed", func() bool { return committedOffsets(t, ctx, b.Addr(), def) == 2 })
	stop()
	if got := deadLetters(t, ctx, b.Addr(), def.Topics.DeadLetter, 1); got["msg-"+privateContact+"-2"] != 1 {
		t.Fatalf("dead letters %v, want the rejected event's", got)
	}
	if logs.FilterMessage("retrying").Len() == 0 || logs.FilterMessage("events dead-lettered").Len() == 0 {
		t.Fatalf("the ingester logged no retry or no dead letter: %v", messages(logs))
	}
	checkLogsPrivate(t, logs)
}

func messages(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.All() {
		out = append(out, fmt.Sprintf("%s %v", e.Message, e.ContextMap()))
	}
	return out
}

// TestReferencesUseTheConfiguredKey: the store names a rejected event by
// its document's reference under Config.RefKey (what `chatreport ref`
// prints with the same key), so two stores with different keys name it
// differently, and neither by the process's random key.
func TestReferencesUseTheConfiguredKey(t *testing.T) {
	ev := privateEvents()[0]
	id := docID(ev.Tenant, ev.EventID)
	refs := map[string]string{}
	for _, key := range []idref.Key{idref.New([]byte("first reference key, 16+ bytes")), idref.New([]byte("second reference key, 16+ bytes"))} {
		f := esfake.New(t)
		s := fakeStore(t, f, func(c *Config) { c.RefKey = key })
		f.BulkHook = func(_, index, _ string, _ int) (int, string) {
			if strings.Contains(index, "-events-") {
				return 400, "document_parsing_exception"
			}
			return 0, ""
		}
		err := assembler(s).Ingest(t.Context(), []event.Event{ev})
		var rej *RejectedError
		if !errors.As(err, &rej) {
			t.Fatalf("err %v, want the event rejected", err)
		}
		if want := key.Of(id); !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not name the event by its reference %s", err, want)
		}
		if strings.Contains(err.Error(), idref.New(nil).Of(id)) {
			t.Errorf("%q names the event with the process's key", err)
		}
		refs[key.Of(id)] = err.Error()
	}
	if len(refs) != 2 {
		t.Errorf("two keys, one reference: %v", refs)
	}
}

// TestRedactedBeforeCut: an id that a long reason quotes across the length
// sanitize keeps is replaced whole before the reason is cut, so that no
// start of it stays in the text.
func TestRedactedBeforeCut(t *testing.T) {
	refs := idref.New([]byte("a reference key of 16+ bytes"))
	id := "acme/+5511999990000"
	c := &causeJSON{Type: "mapper_parsing_exception", Reason: strings.Repeat("x", 390) + " [" + id + "] failed"}
	got := redacted(c, refs, id)
	if strings.Contains(got, "acme/+55") {
		t.Errorf("%q keeps the start of the id", got)
	}
	if !strings.Contains(sanitize(c), "acme/+55") {
		t.Fatal("the case does not cut the id: it cannot fail")
	}
}
