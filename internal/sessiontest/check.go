package sessiontest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

// maxDiffs bounds how many differences Check reports.
const maxDiffs = 5

// Check compares everything st holds for tenants — every session that started
// in [from, to), read through Search, and each one's events, read through
// Session — with want. It returns nil when they are identical, else an error
// listing the first differences.
func Check(ctx context.Context, st Store, tenants []string, from, to time.Time, want map[session.Ref]Expected) error {
	var diffs []string
	diff := func(format string, args ...any) bool {
		diffs = append(diffs, fmt.Sprintf(format, args...))
		return len(diffs) < maxDiffs
	}
	got := map[session.Ref]session.Session{}
	for _, tenant := range tenants {
		sessions, err := searchAll(ctx, st, tenant, from, to)
		if err != nil {
			return err
		}
		for _, s := range sessions {
			ref := session.Ref{Tenant: tenant, ID: s.ID}
			if _, dup := got[ref]; dup {
				return fmt.Errorf("session %s/%s listed twice", tenant, s.ID)
			}
			got[ref] = s
		}
	}
	refs := make([]session.Ref, 0, len(want)+len(got))
	for ref := range want {
		if !slices.Contains(tenants, ref.Tenant) {
			return fmt.Errorf("want holds tenant %q, not among the checked tenants", ref.Tenant)
		}
		if w := want[ref].Session.StartedAt; w.Before(from) || !w.Before(to) {
			return fmt.Errorf("want holds session %s/%s started at %s, outside the checked interval", ref.Tenant, ref.ID, w)
		}
		refs = append(refs, ref)
	}
	for ref := range got {
		if _, ok := want[ref]; !ok {
			refs = append(refs, ref)
		}
	}
	slices.SortFunc(refs, func(a, b session.Ref) int {
		return strings.Compare(a.Tenant+"/"+a.ID, b.Tenant+"/"+b.ID)
	})
	for _, ref := range refs {
		w, wantIt := want[ref]
		g, gotIt := got[ref]
		switch {
		case !gotIt:
			if !diff("missing session %s/%s: %s", ref.Tenant, ref.ID, describe(w)) {
				return diffError(diffs)
			}
			continue
		case !wantIt:
			d, _ := st.Session(ctx, ref.Tenant, ref.ID)
			if !diff("extra session %s/%s with events %v: %s", ref.Tenant, ref.ID, eventIDs(d.Events), asJSON(normalize(g))) {
				return diffError(diffs)
			}
			continue
		}
		if gj, wj := asJSON(normalize(g)), asJSON(normalize(w.Session)); gj != wj {
			if !diff("session %s/%s (search):\n  got  %s\n  want %s", ref.Tenant, ref.ID, gj, wj) {
				return diffError(diffs)
			}
			continue
		}
		d, err := st.Session(ctx, ref.Tenant, ref.ID)
		if err != nil {
			return fmt.Errorf("read session %s/%s: %w", ref.Tenant, ref.ID, err)
		}
		if gj, wj := asJSON(normalize(d.Session)), asJSON(normalize(w.Session)); gj != wj {
			if !diff("session %s/%s (detail):\n  got  %s\n  want %s", ref.Tenant, ref.ID, gj, wj) {
				return diffError(diffs)
			}
			continue
		}
		if gj, wj := asJSON(d.Events), asJSON(w.Events); gj != wj {
			if !diff("session %s/%s events:\n  got  %v\n  want %v", ref.Tenant, ref.ID, eventIDs(d.Events), eventIDs(w.Events)) {
				return diffError(diffs)
			}
			continue
		}
		if msg := checkStatuses(&g); msg != "" {
			if !diff("session %s/%s: %s", ref.Tenant, ref.ID, msg) {
				return diffError(diffs)
			}
		}
	}
	if len(diffs) > 0 {
		return diffError(diffs)
	}
	return nil
}

func diffError(diffs []string) error {
	return errors.New(strings.Join(diffs, "\n"))
}

// searchAll pages through a tenant's sessions, 31 days of started_at at a
// time (the report's longest interval).
func searchAll(ctx context.Context, st Store, tenant string, from, to time.Time) ([]session.Session, error) {
	var out []session.Session
	for lo := from; lo.Before(to); lo = lo.Add(report.MaxInterval) {
		hi := lo.Add(report.MaxInterval)
		if hi.After(to) {
			hi = to
		}
		f := report.Filter{Tenant: tenant, From: lo, To: hi}
		page := report.Page{Limit: 100}
		for {
			res, err := st.Search(ctx, f, page)
			if err != nil {
				return nil, fmt.Errorf("search %s [%s, %s): %w", tenant, lo, hi, err)
			}
			out = append(out, res.Items...)
			if res.Next == nil {
				break
			}
			page.After = res.Next
		}
	}
	return out, nil
}

// checkStatuses compares the session's status methods with the rules at the
// instants where they change.
func checkStatuses(s *session.Session) string {
	for _, now := range []time.Time{s.StartedAt, s.WindowEndsAt.Add(-time.Nanosecond), s.WindowEndsAt, s.WindowEndsAt.Add(time.Hour)} {
		if got, want := s.StatusAt(now), StatusAt(s, now); got != want {
			return fmt.Sprintf("status at %s is %s, want %s", now, got, want)
		}
		for i, a := range s.Attendances {
			if got, want := s.AttendanceOutcome(i, now), AttendanceOutcomeAt(s, i, now); got != want {
				return fmt.Sprintf("attendance %s outcome at %s is %s, want %s", a.Protocol, now, got, want)
			}
		}
	}
	return ""
}

// normalize makes equal sessions encode equally: empty and nil collections
// are the same, times are UTC.
func normalize(s session.Session) session.Session {
	s.StartedAt, s.LastActivityAt, s.WindowEndsAt = s.StartedAt.UTC(), s.LastActivityAt.UTC(), s.WindowEndsAt.UTC()
	if s.Protocols == nil {
		s.Protocols = []string{}
	}
	if s.Tags == nil {
		s.Tags = []string{}
	}
	if s.Info == nil {
		s.Info = map[string]string{}
	}
	if s.Agents == nil {
		s.Agents = []event.Agent{}
	}
	atts := make([]session.Attendance, len(s.Attendances))
	for i, a := range s.Attendances {
		a.StartedAt, a.EndedAt = a.StartedAt.UTC(), a.EndedAt.UTC()
		atts[i] = a
	}
	s.Attendances = atts
	return s
}

func asJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(b)
}

func eventIDs(evs []event.Event) []string {
	ids := make([]string, len(evs))
	for i := range evs {
		ids[i] = evs[i].EventID
	}
	return ids
}

func describe(e Expected) string {
	return fmt.Sprintf("key %s, events %v", e.Session.Key, eventIDs(e.Events))
}
