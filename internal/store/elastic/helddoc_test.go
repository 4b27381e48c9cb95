package elastic

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
)

// TestEncodeEventsMatchesWhole: a session's encoded events kept from batch
// to batch — events added after the last, late events among them, events
// moved out at either end, a restart that reads the same events back as
// new copies — are byte for byte what encoding them all at once writes,
// and the bytes held are reused whenever the events held are a prefix.
func TestEncodeEventsMatchesWhole(t *testing.T) {
	reused := 0
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 13))
		var evs []session.Stored
		var held *heldDoc
		newEvent := func() session.Stored {
			e := someEvent(r, seed)
			if r.IntN(2) == 0 {
				e.Type = event.TypeMessage
			}
			return session.Stored{Event: e}
		}
		for step := range 40 {
			prefix := len(evs)
			switch op := r.IntN(10); {
			case op < 5: // new events after the last
				for range 1 + r.IntN(4) {
					evs = append(evs, newEvent())
				}
			case op == 5 && len(evs) > 0: // a late event among them
				evs = slices.Insert(evs, r.IntN(len(evs)), newEvent())
				prefix = -1
			case op == 6 && len(evs) > 1: // the first events move to another session
				evs = slices.Clone(evs[1+r.IntN(len(evs)-1):])
				prefix = -1
			case op == 7 && len(evs) > 1: // the last events move to another session
				evs = evs[:r.IntN(len(evs))]
				prefix = -1
			case op == 8: // a restart: the same events, read back as copies
				for i := range evs {
					c := *evs[i].Event
					evs[i].Event = &c
				}
				prefix = -1
			default: // nothing new: the session written again as it is
			}
			want := encodeEvents(nil, evs)
			got := encodeEvents(held, evs)
			if !bytes.Equal(got.messages, want.messages) || !bytes.Equal(got.refs, want.refs) {
				t.Fatalf("seed %d, step %d:\nmessages %s\nwant     %s\nrefs %s\nwant %s", seed, step, got.messages, want.messages, got.refs, want.refs)
			}
			if prefix > 0 && held != nil && len(held.events) > 0 {
				if &got.refs[0] != &held.refs[0] && cap(held.refs) >= len(got.refs) {
					t.Fatalf("seed %d, step %d: the held bytes were not reused", seed, step)
				}
				reused++
			}
			held = got
		}
	}
	if reused == 0 {
		t.Fatal("no batch reused held bytes")
	}
}
