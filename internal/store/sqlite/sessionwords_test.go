package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/sqlite"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// TestSessionWordsFollowMoves: a search of one word (read from
// session_words, one row per session and write) finds exactly the sessions
// that have a message with the word, after late events have moved messages
// between derived sessions, restarted explicit ones and deleted others, in
// every batch of a random order. A session_words row keeps the words of all
// the messages of its write, so a message that moves must take its old
// session's other words out of the old row too.
func TestSessionWordsFollowMoves(t *testing.T) {
	vocab := []string{"alfa", "bravo", "charlie", "delta", "eco", "foxtrot", "golf", "hotel"}
	for seed := range uint64(10) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			ctx := context.Background()
			s, _ := openStore(ctx, t)
			rng := rand.New(rand.NewPCG(seed, 7))
			var events []event.Event
			for i := range 60 {
				b := storetest.B{Contact: fmt.Sprint("c", rng.IntN(3))}
				if rng.IntN(4) == 0 {
					b.SessionID = fmt.Sprintf("0f0e0d0c-0000-4000-8000-00000000000%d", rng.IntN(3))
				}
				at := time.Duration(rng.IntN(96*60)) * time.Minute
				text := vocab[rng.IntN(len(vocab))] + " " + vocab[rng.IntN(len(vocab))]
				events = append(events, b.Msg(fmt.Sprint("e", i), at, event.RoleCustomer, text))
			}
			a := session.NewAssembler(pipeline.MustDefault(), s)
			for len(events) > 0 {
				n := min(len(events), 1+rng.IntN(8))
				if err := a.Ingest(ctx, events[:n]); err != nil {
					t.Fatal(err)
				}
				events = events[n:]
				all := report.Filter{Tenant: "acme", From: storetest.Base.Add(-24 * time.Hour), To: storetest.Base.Add(5 * 24 * time.Hour)}
				has := map[string][]string{}
				for _, id := range searchAll(t, s, all) {
					d, err := s.Session(ctx, "acme", id)
					if err != nil {
						t.Fatal(err)
					}
					words := map[string]bool{}
					for _, e := range d.Events {
						for _, w := range strings.Fields(e.Text) {
							words[w] = true
						}
					}
					for w := range words {
						has[w] = append(has[w], id)
					}
				}
				for _, w := range vocab {
					f := all
					f.Query = w
					got := searchAll(t, s, f)
					slices.Sort(got)
					want := has[w]
					slices.Sort(want)
					if !slices.Equal(got, want) {
						t.Fatalf("%d events left: q=%s finds %v, want %v", len(events), w, got, want)
					}
				}
			}
		})
	}
}

func searchAll(t *testing.T, s *sqlite.Store, f report.Filter) []string {
	t.Helper()
	res, err := s.Search(context.Background(), f, report.Page{Limit: report.MaxPageLimit})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(res.Items))
	for _, ss := range res.Items {
		ids = append(ids, ss.ID)
	}
	return ids
}

// TestSearchOfAWordFTS5Splits: a word that Go's Unicode tables call one
// word and FTS5's tokenizer (Unicode 6.1) reads as two tokens is a phrase,
// searched message by message: a session whose one message ends with the
// first token and the next begins with the second does not match, as it
// would in session_words, where a session's texts follow one another.
func TestSearchOfAWordFTS5Splits(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(ctx, t)
	across, within := storetest.B{Contact: "5511900000001"}, storetest.B{Contact: "5511900000002"}
	if err := session.NewAssembler(pipeline.MustDefault(), s).Ingest(ctx, []event.Event{
		// In either order, one's last word and the other's first are
		// the phrase.
		across.Msg("e1", time.Minute, event.RoleCustomer, "bravo chegou alfa"),
		across.Msg("e2", 2*time.Minute, event.RoleCustomer, "bravo hoje alfa"),
		within.Msg("e3", time.Minute, event.RoleCustomer, "chegou alfa bravo hoje"),
	}); err != nil {
		t.Fatal(err)
	}
	f := report.Filter{Tenant: "acme", From: storetest.Base.Add(-time.Hour), To: storetest.Base.Add(time.Hour),
		Query: "alfa\u19b0bravo"} // U+19B0: a letter to Go, a separator to unicode61
	got := searchAll(t, s, f)
	if len(got) != 1 {
		t.Fatalf("%d sessions found, want the one whose message has the phrase", len(got))
	}
	d, err := s.Session(ctx, "acme", got[0])
	if err != nil {
		t.Fatal(err)
	}
	if d.Session.Contact.ID != within.Contact {
		t.Fatalf("found the session of %s, whose messages hold the tokens only one after the other", d.Session.Contact.ID)
	}
}
