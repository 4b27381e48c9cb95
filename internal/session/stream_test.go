package session_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/sessiontest"
)

// stream is endless in-order traffic: a fixed number of conversations are
// going on at once, each a dozen or so events of one contact on one channel
// a few minutes apart; when one ends, another contact starts one. Contacts
// come back about once a week.
type stream struct {
	rng    *rand.Rand
	now    time.Time
	step   time.Duration
	seq    int
	active []conversation
}

type conversation struct {
	contact, left int
}

// streamContacts is the contact pool: with 7,200 conversations a day, a
// contact comes back about once a week.
const streamContacts = 50_000

func newStream(seed uint64, step time.Duration) *stream {
	s := &stream{rng: rand.New(rand.NewPCG(seed, 7)), now: sessiontest.Base, step: step, active: make([]conversation, 200)}
	for i := range s.active {
		s.active[i] = s.newConversation()
	}
	return s
}

func (s *stream) newConversation() conversation {
	return conversation{contact: s.rng.IntN(streamContacts), left: 4 + s.rng.IntN(20)}
}

var streamChannels = []string{"whatsapp", "webchat", "telegram"}

func (s *stream) next() event.Event {
	s.seq++
	s.now = s.now.Add(s.step)
	i := s.rng.IntN(len(s.active))
	c := s.active[i].contact
	if s.active[i].left--; s.active[i].left == 0 {
		s.active[i] = s.newConversation()
	}
	e := event.Event{
		EventID:    "e" + strconv.Itoa(s.seq),
		OccurredAt: s.now,
		Tenant:     "acme",
		Channel:    streamChannels[c%3],
		Contact:    event.Contact{ID: "c" + strconv.Itoa(c), Name: "Maria"},
	}
	switch r := s.rng.IntN(20); {
	case r < 15:
		e.Type, e.Text, e.ContentType = event.TypeMessage, "olá, preciso da segunda via", "text"
		e.Author = &event.Author{Role: []string{event.RoleCustomer, event.RoleBot, event.RoleAgent}[r%3], ID: "ag-" + strconv.Itoa(r%4)}
	case r < 17:
		e.Type, e.Tag = event.TypeTag, "Segunda Via Sucesso"
	case r < 19:
		e.Type, e.Info = event.TypeInfo, &event.Info{Key: "PLANO", Value: "Fibra"}
	default:
		e.Type, e.Protocol = event.TypeHandoff, "20251007092633646"
		e.Handoff = &event.Handoff{Action: event.ActionAssigned, Agent: &event.Agent{ID: "ag-1", Name: "Carla"}}
	}
	return e
}

func (s *stream) batch(n int) []event.Event {
	b := make([]event.Event, n)
	for i := range b {
		b[i] = s.next()
	}
	return b
}

// BenchmarkAssemble measures events per second through the assembler, on an
// in-memory store that forgets sessions an hour after their window ended
// (so the store's size stays that of one day of traffic).
func BenchmarkAssemble(b *testing.B) {
	for _, size := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			ctx := context.Background()
			st := sessiontest.NewEvictingMemStore(time.Hour)
			a := session.NewAssembler(sessiontest.Definition(), st)
			s := newStream(1, 3*time.Second)
			// Warm up a day of traffic, so that windows close.
			for range 28800 / size {
				if err := a.Ingest(ctx, s.batch(size)); err != nil {
					b.Fatal(err)
				}
			}
			batches := make([][]event.Event, 64)
			b.ReportAllocs()
			b.ResetTimer()
			events := 0
			for i := 0; b.Loop(); i++ {
				if i%len(batches) == 0 {
					b.StopTimer()
					for j := range batches {
						batches[j] = s.batch(size)
					}
					b.StartTimer()
				}
				if err := a.Ingest(ctx, batches[i%len(batches)]); err != nil {
					b.Fatal(err)
				}
				events += size
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

var streamEvents = flag.Int("stream.events", 0, "events TestAssemblerHeapIsFlat streams (default 400,000; 100,000 with -short)")

// TestAssemblerHeapIsFlat streams a long in-order run (400,000 events, 14
// days of traffic, by default; -stream.events=5000000 for a longer one)
// through the assembler into an in-memory store that forgets closed
// sessions, and checks that the live heap after GC stops growing once windows
// close: the assembler keeps nothing between batches.
func TestAssemblerHeapIsFlat(t *testing.T) {
	total := 400_000
	switch {
	case *streamEvents > 0:
		total = *streamEvents
	case testing.Short():
		total = 100_000
	}
	const batch, samples = 1000, 20
	total -= total % (batch * samples)
	ctx := context.Background()
	st := sessiontest.NewEvictingMemStore(time.Hour)
	a := session.NewAssembler(sessiontest.Definition(), st)
	s := newStream(2, 3*time.Second)
	var heap []uint64
	var ms runtime.MemStats
	began := time.Now()
	for done := 0; done < total; done += batch {
		if err := a.Ingest(ctx, s.batch(batch)); err != nil {
			t.Fatal(err)
		}
		if (done+batch)%(total/samples) == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			heap = append(heap, ms.HeapAlloc)
			sessions, events := st.Size()
			t.Logf("%8d events (%5.1f days): heap %6.1f MiB; store holds %5d sessions, %6d events",
				done+batch, s.now.Sub(sessiontest.Base).Hours()/24, float64(ms.HeapAlloc)/(1<<20), sessions, events)
		}
	}
	elapsed := time.Since(began)
	t.Logf("%d events in %s: %.0f events/s", total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds())
	// Windows close after a day (a fourteenth of the default run);
	// compare the second half with the second quarter.
	early := slices.Max(heap[samples/4 : samples/2])
	late := slices.Max(heap[samples/2:])
	if limit := early + early/8 + 2<<20; late > limit {
		t.Fatalf("live heap grows: at most %.1f MiB in the second quarter, %.1f MiB in the second half",
			float64(early)/(1<<20), float64(late)/(1<<20))
	}
}

// TestLateLookups measures how often a batch reads back state that a memory
// of open windows only would not hold ("late look-ups"), and how much it
// reads back, for the same traffic delivered in order, as a topic-by-topic
// replay, and shuffled. docs/sessions.md quotes the numbers.
func TestLateLookups(t *testing.T) {
	n := 60_000
	if testing.Short() {
		n = 20_000
	}
	const batch = 500
	s := newStream(3, 3*time.Second) // 2 days; 1 with -short
	events := s.batch(n)
	rng := rand.New(rand.NewPCG(3, 3))
	// A replay that reads three topics one after the other: every event of
	// the second and third topic arrives days late.
	byTopic := slices.Clone(events)
	topic := make(map[string]int, n)
	for _, e := range events {
		topic[e.EventID] = rng.IntN(3)
	}
	slices.SortStableFunc(byTopic, func(a, b event.Event) int { return topic[a.EventID] - topic[b.EventID] })
	shuffled := slices.Clone(events)
	rng.Shuffle(n, func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })

	ctx := context.Background()
	var stats []sessiontest.Stats
	for _, c := range []struct {
		name    string
		arrival []event.Event
	}{{"in order", events}, {"topic by topic", byTopic}, {"shuffled", shuffled}} {
		st := sessiontest.NewMemStore()
		a := session.NewAssembler(sessiontest.Definition(), st)
		began := time.Now()
		for i := 0; i < n; i += batch {
			if err := a.Ingest(ctx, c.arrival[i:min(n, i+batch)]); err != nil {
				t.Fatal(err)
			}
		}
		elapsed := time.Since(began)
		x := st.Stats()
		stats = append(stats, x)
		t.Logf("%-15s %4d batches, %4d (%5.1f%%) with a late look-up; %6d key look-ups, %6d late (%5.1f%%), %6d began in an ended session; "+
			"%.1f events read back per event; %5d events moved, %4d sessions deleted; %.0f events/s",
			c.name, x.Updates, x.LateUpdates, pct(x.LateUpdates, x.Updates), x.Keys, x.Late, pct(x.Late, x.Keys), x.ReadEnded,
			float64(x.EventsRead)/float64(n), x.Moved, x.Deleted, float64(n)/elapsed.Seconds())
	}
	if stats[0].Late != 0 || stats[0].Moved != 0 {
		t.Errorf("an in-order stream needed %d late look-ups and moved %d events", stats[0].Late, stats[0].Moved)
	}
	if stats[2].Late == 0 {
		t.Error("a shuffled stream needed no late look-up: the measure is broken")
	}
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
