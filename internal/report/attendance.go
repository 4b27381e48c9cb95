package report

import (
	"slices"
	"strings"

	"github.com/chatreport/chatreport/internal/session"
)

// ScopesAttendances reports whether f has conditions an attendance meets
// by itself: a protocol, tags, additional information or outcomes. A
// session matches them by the tags and information of all its events (and
// by any of its attendances' outcomes); the report then names the
// attendances that meet them on their own (MatchesAttendance), so that an
// operator sees which conversation of a session matched (docs/sessions.md,
// "Attendances in a filter").
func (f *Filter) ScopesAttendances() bool {
	return f.Protocol != "" || len(f.Tags) > 0 || len(f.Info) > 0 || len(f.Outcomes) > 0
}

// MatchesAttendance reports whether s.Attendances[i] meets f's protocol,
// tag, additional-information and outcome conditions with its own
// protocol, tags, information and outcome at f.At(). Values compare as the
// stores compare them: ignoring case.
func (f *Filter) MatchesAttendance(s *session.Session, i int) bool {
	if !f.ScopesAttendances() {
		return false
	}
	a := &s.Attendances[i]
	if f.Protocol != "" && a.Protocol != f.Protocol {
		return false
	}
	if len(f.Tags) > 0 {
		has := func(t string) bool { return slices.Contains(a.Tags, t) }
		if f.TagMode == TagsAll && !allOf(f.Tags, has) || f.TagMode != TagsAll && !slices.ContainsFunc(f.Tags, has) {
			return false
		}
	}
	for _, c := range f.Info {
		if !c.Matches(a.Info) {
			return false
		}
	}
	return len(f.Outcomes) == 0 || slices.Contains(f.Outcomes, s.AttendanceOutcome(i, f.At()))
}

func allOf(xs []string, ok func(string) bool) bool {
	for _, x := range xs {
		if !ok(x) {
			return false
		}
	}
	return true
}

// Matches reports whether info meets c; a negative operator is also met
// when the key is absent.
func (c Condition) Matches(info map[string]string) bool {
	v, ok := info[c.Key]
	v, want := strings.ToLower(v), strings.ToLower(c.Value)
	switch c.Op {
	case OpEquals:
		return ok && v == want
	case OpNotEquals:
		return !ok || v != want
	case OpContains:
		return ok && strings.Contains(v, want)
	case OpNotContain:
		return !ok || !strings.Contains(v, want)
	case OpStartsWith:
		return ok && strings.HasPrefix(v, want)
	case OpExists:
		return ok
	case OpNotExists:
		return !ok
	}
	return false
}
