package session_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/sessiontest"
	"github.com/chatreport/chatreport/internal/store/sqlite"
)

// The worked examples of docs/sessions.md, step by step, on the SQLite store
// with the embedded default pipeline. If one of these fails, the document is
// wrong or the code is.

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func message(tenant, channel, contact, id, when, role string) event.Event {
	return event.Event{
		EventID: id, Type: event.TypeMessage, OccurredAt: at(when), Tenant: tenant, Channel: channel,
		Contact: event.Contact{ID: contact}, Author: &event.Author{Role: role}, Text: "…", ContentType: "text",
	}
}

type exampleStep struct {
	name  string
	batch []event.Event
	// want: session id → its events in order; ends: session id → window end.
	want map[string][]string
	ends map[string]string
}

func runExample(t *testing.T, tenant string, steps []exampleStep) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "example.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	def := pipeline.MustDefault()
	a := session.NewAssembler(def, st)
	var all []event.Event
	for _, step := range steps {
		if err := a.Ingest(ctx, step.batch); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		all = append(all, step.batch...)
		res, err := st.Search(ctx, report.Filter{Tenant: tenant, From: at("2025-10-01T00:00:00Z"), To: at("2025-10-31T00:00:00Z")}, report.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]string{}
		for _, s := range res.Items {
			d, err := st.Session(ctx, tenant, s.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range d.Events {
				got[s.ID] = append(got[s.ID], e.EventID)
			}
			if want, ok := step.ends[s.ID]; ok && !s.WindowEndsAt.Equal(at(want)) {
				t.Errorf("%s: session %s ends at %s, want %s", step.name, s.ID, s.WindowEndsAt.Format(time.RFC3339), want)
			}
		}
		if !mapsEqual(got, step.want) {
			t.Fatalf("%s: sessions\n  got  %v\n  want %v", step.name, got, step.want)
		}
	}
	// The reference agrees with the last step, whatever the arrival order.
	ref := map[string][]string{}
	for r, x := range sessiontest.Reference(def, all) {
		if r.Tenant == tenant {
			for _, e := range x.Events {
				ref[r.ID] = append(ref[r.ID], e.EventID)
			}
		}
	}
	if last := steps[len(steps)-1].want; !mapsEqual(ref, last) {
		t.Fatalf("reference: %v, the example says %v", ref, last)
	}
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestExampleTwoFixedWindows(t *testing.T) {
	m := func(id, when, role string) event.Event {
		return message("acme", "whatsapp", "5511987654321", id, when, role)
	}
	runExample(t, "acme", []exampleStep{{
		name: "one batch",
		batch: []event.Event{
			m("m1", "2025-10-07T09:00:00Z", event.RoleCustomer),
			m("m2", "2025-10-07T09:01:00Z", event.RoleBot),
			m("m3", "2025-10-08T08:59:59Z", event.RoleCustomer),
			m("m4", "2025-10-08T09:00:00Z", event.RoleCustomer),
			m("a9", "2025-10-08T09:00:00Z", event.RoleBot),
			m("m5", "2025-10-08T10:00:00Z", event.RoleBot),
		},
		want: map[string][]string{
			"e8a311d6-4aa8-527b-bcae-c0042ed91a6f": {"m1", "m2", "m3"},
			"96217380-da2c-56f3-af3f-b1fbfd283dcc": {"a9", "m4", "m5"},
		},
		ends: map[string]string{
			"e8a311d6-4aa8-527b-bcae-c0042ed91a6f": "2025-10-08T09:00:00Z",
			"96217380-da2c-56f3-af3f-b1fbfd283dcc": "2025-10-09T09:00:00Z",
		},
	}})
}

func TestExampleSlidingWindow(t *testing.T) {
	w := func(id, when, role string) event.Event {
		return message("acme", "webchat", "web-77", id, when, role)
	}
	const s1, s5 = "c4dace44-dd4c-5aab-8d6c-56bac9afe6a2", "1c55dabd-bae1-50fd-9645-f4df54e5355f"
	runExample(t, "acme", []exampleStep{{
		name: "in order",
		batch: []event.Event{
			w("w1", "2025-10-07T10:00:00Z", event.RoleCustomer),
			w("w2", "2025-10-07T10:20:00Z", event.RoleBot),
			w("w3", "2025-10-07T10:25:00Z", event.RoleCustomer),
			w("w4", "2025-10-07T10:50:00Z", event.RoleAgent),
			w("w5", "2025-10-07T10:56:00Z", event.RoleBot),
		},
		want: map[string][]string{s1: {"w1", "w2", "w3", "w4"}, s5: {"w5"}},
		ends: map[string]string{s1: "2025-10-07T10:55:00Z", s5: "2025-10-07T11:26:00Z"},
	}, {
		name:  "late customer message",
		batch: []event.Event{w("w6", "2025-10-07T10:54:00Z", event.RoleCustomer)},
		want:  map[string][]string{s1: {"w1", "w2", "w3", "w4", "w6", "w5"}},
		ends:  map[string]string{s1: "2025-10-07T11:24:00Z"},
	}})
}

func TestExampleLateEventSplitsAndMerges(t *testing.T) {
	e := func(id, when string) event.Event {
		return message("acme", "whatsapp", "5511912345678", id, when, event.RoleCustomer)
	}
	const (
		s0 = "65557d71-9798-5565-b82a-165923019209"
		s1 = "315f1f2b-62a0-503a-bcf8-2c8fee56939b"
		s2 = "4d9c9139-a33b-52c7-aa67-5339bfbc9b68"
		s3 = "ab60dd2e-f528-5911-8cfb-ccc11297be9a"
	)
	runExample(t, "acme", []exampleStep{{
		name:  "before",
		batch: []event.Event{e("e1", "2025-10-07T10:00:00Z"), e("e2", "2025-10-08T08:00:00Z"), e("e3", "2025-10-08T12:00:00Z")},
		want:  map[string][]string{s1: {"e1", "e2"}, s3: {"e3"}},
		ends:  map[string]string{s1: "2025-10-08T10:00:00Z", s3: "2025-10-09T12:00:00Z"},
	}, {
		name:  "after e0 arrives late",
		batch: []event.Event{e("e0", "2025-10-07T06:00:00Z")},
		want:  map[string][]string{s0: {"e0", "e1"}, s2: {"e2", "e3"}},
		ends:  map[string]string{s0: "2025-10-08T06:00:00Z", s2: "2025-10-09T08:00:00Z"},
	}})
}

func TestExampleExplicitSessions(t *testing.T) {
	const sid = "c639c747-4637-4ff5-99c0-9f0e86d3c21b"
	x := func(tenant, id, when, role string) event.Event {
		e := message(tenant, "whatsapp", "5511987654321", id, when, role)
		e.SessionID = sid
		return e
	}
	batch := []event.Event{
		x("acme", "x1", "2025-10-07T09:00:00Z", event.RoleCustomer),
		x("acme", "x2", "2025-10-09T10:00:00Z", event.RoleAgent),
		x("globex", "x1", "2025-10-07T12:00:00Z", event.RoleCustomer),
	}
	step := exampleStep{
		name: "explicit", batch: batch,
		want: map[string][]string{sid: {"x1", "x2"}},
		ends: map[string]string{sid: "2025-10-08T09:00:00Z"},
	}
	runExample(t, "acme", []exampleStep{step})
	step.want = map[string][]string{sid: {"x1"}}
	step.ends = map[string]string{sid: "2025-10-08T12:00:00Z"}
	runExample(t, "globex", []exampleStep{step})
}

func TestExampleDuplicates(t *testing.T) {
	m := func(tenant, id, when string) event.Event {
		return message(tenant, "whatsapp", "5511987654321", id, when, event.RoleCustomer)
	}
	one, other := m("acme", "m1", "2025-10-07T09:00:00Z"), m("acme", "m2", "2025-10-07T09:05:00Z")
	const s = "e8a311d6-4aa8-527b-bcae-c0042ed91a6f"
	want := map[string][]string{s: {"m1", "m2"}}
	runExample(t, "acme", []exampleStep{
		{name: "first", batch: []event.Event{one, other, one}, want: want},
		{name: "redelivered", batch: []event.Event{other, one}, want: want},
		// The same event id in another tenant is another event.
		{name: "other tenant", batch: []event.Event{m("globex", "m1", "2025-10-07T09:00:00Z")}, want: want},
	})
}

func TestPolicyTag(t *testing.T) {
	for _, tc := range []struct {
		p    pipeline.Policy
		want string
	}{
		{pipeline.Policy{Mode: pipeline.Fixed, Duration: 24 * time.Hour}, "f86400000"},
		{pipeline.Policy{Mode: pipeline.Sliding, Duration: 30 * time.Minute}, "s1800000"},
		{pipeline.Policy{}, ""},
	} {
		if got := session.PolicyTag(tc.p); got != tc.want {
			t.Errorf("PolicyTag(%+v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}
