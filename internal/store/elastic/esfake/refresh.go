package esfake

import (
	"context"
	"maps"
	"net/url"
	"time"
)

// Near-real-time search. Each index has its live documents (what get and
// mget read and what writes change) and a searchable view: the documents as
// of its last refresh, which _search, _msearch, _count, points in time,
// aggregations and the search phase of _delete_by_query see. A refresh
// copies the changes made since the previous one into the view. It happens
// every index.refresh_interval (from the index settings, 1s by default, -1
// never), on POST /_refresh and POST /<target>/_refresh, and for a write
// with ?refresh=true; a write with ?refresh=wait_for answers after the next
// refresh of the indices it changed.
// https://www.elastic.co/docs/manage-data/data-store/near-real-time-search
// https://www.elastic.co/docs/reference/elasticsearch/rest-apis/refresh-parameter
// https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-indices-refresh

// NoRefresh as a refresh interval disables periodic refreshes, as
// index.refresh_interval: -1 does: writes become searchable only on an
// explicit refresh (Server.Refresh, POST /_refresh, or ?refresh=true on the
// write). A write with ?refresh=wait_for then waits for that refresh.
const NoRefresh time.Duration = -1

// defaultRefreshInterval is index.refresh_interval when the settings of the
// index do not set it.
const defaultRefreshInterval = time.Second

// WithRefreshInterval is SetRefreshInterval(d) from the start.
func WithRefreshInterval(d time.Duration) Option {
	return func(f *Server) { f.setInterval(d) }
}

// SetRefreshInterval overrides index.refresh_interval of every index,
// existing or to come: d > 0 refreshes each changed index every d, d <= 0
// (NoRefresh) never periodically, so that a test proves its code does not
// rely on a search seeing its own writes.
func (f *Server) SetRefreshInterval(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setInterval(d)
}

func (f *Server) setInterval(d time.Duration) {
	f.override, f.overridden = d, true
	now := time.Now()
	for _, ix := range f.indices {
		ix.anchor = now
	}
	f.wakeScheduler()
}

// Refresh refreshes every index, as POST /_refresh does: a test calls it
// before asserting on what a search finds.
func (f *Server) Refresh() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ix := range f.indices {
		f.refreshIndex(ix)
	}
}

// interval is the refresh interval of ix: the server's override, or its
// index.refresh_interval.
func (f *Server) interval(ix *fakeIndex) time.Duration {
	if f.overridden {
		return f.override
	}
	return ix.interval
}

// refreshIndex makes the changes to ix since its last refresh searchable
// and releases the writes waiting for it. A view a point in time holds is
// copied, not changed.
func (f *Server) refreshIndex(ix *fakeIndex) {
	if len(ix.pending) > 0 {
		if ix.shared {
			ix.view, ix.shared = maps.Clone(ix.view), false
		}
		// In the order made: a document changed twice takes the last.
		for _, c := range ix.pending {
			if c.doc == nil {
				delete(ix.view, c.id)
			} else {
				ix.view[c.id] = c.doc
			}
		}
		clear(ix.pending) // hold no document for the garbage collector
		ix.pending = ix.pending[:0]
	}
	close(ix.refreshed)
	ix.refreshed = make(chan struct{})
	// Elasticsearch prunes the tombstones older than gc_deletes on refresh.
	for id, t := range ix.tombs {
		if time.Since(t.at) > ix.gcDeletes {
			delete(ix.tombs, id)
		}
	}
}

// changed records a write of id in ix (d nil for a delete): live at once,
// searchable after the next refresh.
func (f *Server) changed(ix *fakeIndex, id string, d *fakeDoc) {
	if d == nil {
		delete(ix.docs, id)
	} else {
		ix.docs[id] = d
	}
	if len(ix.pending) == 0 {
		ix.dirtyAt = time.Now()
		f.wakeScheduler()
	}
	ix.pending = append(ix.pending, change{id, d})
}

// change is a write of a document not yet searchable. A list of them costs
// an append per write, where a map by id cost a hashed insert per write and
// a pass over every slot it had grown to at each refresh.
type change struct {
	id  string
	doc *fakeDoc // nil: deleted
}

func (f *Server) wakeScheduler() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// schedule runs the periodic refreshes until the server stops. An index
// with changes is refreshed at the first tick of its interval (counted
// from its creation, or from the last change of interval) at or after its
// first change since the previous refresh, but never at the tick of the
// anchor itself.
func (f *Server) schedule() {
	defer close(f.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		f.mu.Lock()
		now := time.Now()
		var next time.Time
		for _, ix := range f.indices {
			iv := f.interval(ix)
			if iv <= 0 || len(ix.pending) == 0 {
				continue
			}
			ticks := max(1, (ix.dirtyAt.Sub(ix.anchor)+iv-1)/iv)
			due := ix.anchor.Add(ticks * iv)
			if !due.After(now) {
				f.refreshIndex(ix)
				continue
			}
			if next.IsZero() || due.Before(next) {
				next = due
			}
		}
		f.mu.Unlock()
		var tick <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			tick = timer.C
		}
		select {
		case <-f.stop:
			return
		case <-f.wake:
		case <-tick:
		}
	}
}

// shutdown stops the scheduler and releases the writes still waiting for a
// refresh; it runs before the HTTP server closes, which waits for them.
func (f *Server) shutdown() {
	close(f.stop)
	<-f.done
}

// refreshPolicy parses the refresh parameter of a write: "true" (also the
// empty value), "wait_for" or "false" (also absent).
func refreshPolicy(q url.Values) (string, error) {
	if !q.Has("refresh") {
		return "false", nil
	}
	switch v := q.Get("refresh"); v {
	case "", "true":
		return "true", nil
	case "false", "wait_for":
		return v, nil
	default:
		return "", bad("Unknown value for refresh: [%s].", v)
	}
}

// afterWrite applies the refresh policy of a write to the indices it
// changed, with f.mu held: "true" refreshes them at once; "wait_for"
// returns what to wait for (after unlocking) with awaitRefresh.
func (f *Server) afterWrite(policy string, touched map[*fakeIndex]bool) []chan struct{} {
	var wait []chan struct{}
	for ix := range touched {
		switch policy {
		case "true":
			f.refreshIndex(ix)
		case "wait_for":
			wait = append(wait, ix.refreshed)
		}
	}
	return wait
}

// awaitRefresh waits for the refreshes of chans (from afterWrite). It gives
// up when the request is abandoned or the server stops.
func (f *Server) awaitRefresh(ctx context.Context, chans []chan struct{}) error {
	for _, ch := range chans {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-f.stop:
			return &fakeError{status: 503, typ: "node_closed_exception", reason: "the fake stopped before the refresh a write with refresh=wait_for waited for"}
		}
	}
	return nil
}
