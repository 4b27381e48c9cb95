package elastic

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/session"
)

var _ session.Prefetcher = (*reader)(nil)

// prefetchedKey is what Prefetch read of a key, for KeyEvents.
type prefetchedKey struct {
	since time.Time // as the assembler will ask
	out   []session.Stored
}

// keyPlan is the reads of one key during Prefetch.
type keyPlan struct {
	req   session.KeyRequest
	q     keyQueries
	since time.Time // req.Since, or earlier after a failed attempt
	// anchor is the latest stored event at or before since; from, the
	// first event of its session: where the key's state is read from.
	anchor *eventDoc
	from   time.Time
	// left: the key does not fit these reads; KeyEvents reads it.
	left bool
}

// Prefetch reads the state of every key of a batch (session.Prefetcher) as
// KeyEvents would, in a few requests instead of four or five per key: one
// _mget of the keys' versions, then three rounds of _msearch — the anchors,
// the first event of each anchor's session, and each key's sessions and
// events from there. A key that needs more than one page in a round, or
// that must be read again from an earlier session (see KeyEvents), is left
// to KeyEvents, which reads it alone.
func (r *reader) Prefetch(ctx context.Context, keys []session.KeyRequest) error {
	if err := r.readKeys(ctx, keys); err != nil {
		return err
	}
	plans := make([]*keyPlan, len(keys))
	for i, k := range keys {
		plans[i] = &keyPlan{req: k, q: keyQueries{tenant: k.Tenant, key: k.Key}, since: r.lowered(docID(k.Tenant, k.Key), k.Since)}
	}

	anchors, err := r.round(ctx, plans, func(p *keyPlan) []query {
		if p.since.IsZero() {
			return nil
		}
		return []query{{r.s.names.eventsAll(), p.q.anchor(p.since)}}
	}, func(p *keyPlan, res []*searchResponse) error {
		doc, more, err := r.pickStored(res[0].Hits.Hits)
		p.anchor, p.left = doc, more
		return err
	})
	if err != nil {
		return fmt.Errorf("find the sessions of keys: %w", err)
	}
	firsts, err := r.round(ctx, plans, func(p *keyPlan) []query {
		if p.anchor == nil {
			return nil
		}
		return []query{{r.s.names.eventsAll(), p.q.first(p.anchor.Session)}}
	}, func(p *keyPlan, res []*searchResponse) error {
		doc, _, err := r.pickStored(res[0].Hits.Hits)
		if err != nil {
			return err
		}
		if doc == nil {
			// A page of events fn treats as new, or the anchor moved
			// under a concurrent writer: KeyEvents reads the key alone.
			p.left = true
			return nil
		}
		p.from = doc.OccurredAt
		return nil
	})
	if err != nil {
		return fmt.Errorf("find the start of sessions: %w", err)
	}
	size := r.s.cfg.PageSize
	states, err := r.round(ctx, plans, func(p *keyPlan) []query {
		sessions, events := p.q.sessions(p.from), p.q.events(p.from)
		sessions.Size, events.Size = &size, &size
		return []query{{r.s.names.sessionsAll(), sessions}, {r.s.names.eventsAll(), events}}
	}, func(p *keyPlan, res []*searchResponse) error {
		sessions, events := res[0].Hits.Hits, res[1].Hits.Hits
		if len(sessions) == size || len(events) == size {
			p.left = true // more than a page
			return nil
		}
		st := r.newKeyState(p.req.Tenant, p.req.Key, p.from)
		for i := range sessions {
			if err := st.session(&sessions[i]); err != nil {
				return err
			}
		}
		for i := range events {
			if err := st.event(&events[i]); err != nil {
				return err
			}
		}
		out, earlier, err := st.finish(ctx)
		if err != nil || !earlier.IsZero() {
			p.left = true
			return err
		}
		r.prefetched[docID(p.req.Tenant, p.req.Key)] = &prefetchedKey{since: p.req.Since, out: out}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the state of keys: %w", err)
	}
	r.s.log.Debug("prefetched session keys", zap.Int("keys", len(keys)), zap.Int("left", len(keys)-len(r.prefetched)),
		zap.Int("searches", anchors+firsts+states))
	return nil
}

// round runs, in one _msearch, the searches queries returns for each plan
// not left yet, and hands each plan its answers in order. It returns how
// many searches it ran.
func (r *reader) round(ctx context.Context, plans []*keyPlan, queries func(*keyPlan) []query, take func(*keyPlan, []*searchResponse) error) (int, error) {
	var qs []query
	var who []*keyPlan
	var count []int
	for _, p := range plans {
		if p.left {
			continue
		}
		q := queries(p)
		if len(q) == 0 {
			continue
		}
		qs = append(qs, q...)
		who = append(who, p)
		count = append(count, len(q))
	}
	if len(qs) == 0 {
		return 0, nil
	}
	res, err := r.s.msearch(ctx, qs)
	if err != nil {
		return 0, err
	}
	at := 0
	for i, p := range who {
		if err := take(p, res[at:at+count[i]]); err != nil {
			return 0, err
		}
		at += count[i]
	}
	return len(qs), nil
}
