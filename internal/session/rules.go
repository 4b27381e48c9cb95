package session

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
)

// Namespace is the UUIDv5 namespace of derived session ids (docs/sessions.md).
var Namespace = uuid.MustParse("6f1c7a4e-2b1d-5c39-9a0e-c4a7d3b2e815")

// Key prefixes: an explicit session is keyed by its id, a derived one by the
// contact it belongs to.
const (
	explicitPrefix = "s:"
	derivedPrefix  = "d:"
)

// KeyOf returns the grouping key of an event within its tenant: "s:<session_id>"
// for events that carry a session id, "d:<channel>/<contact.id>" for the others.
func KeyOf(e *event.Event) string {
	if e.SessionID != "" {
		return explicitPrefix + e.SessionID
	}
	return derivedPrefix + e.Channel + "/" + e.Contact.ID
}

// KeyIs reports whether KeyOf(e) is key, without building KeyOf(e).
// Channels are tokens without '/', so the first '/' of a derived key ends
// the channel.
func KeyIs(e *event.Event, key string) bool {
	if e.SessionID != "" {
		id, ok := strings.CutPrefix(key, explicitPrefix)
		return ok && id == e.SessionID
	}
	rest, ok := strings.CutPrefix(key, derivedPrefix)
	channel, contact, found := strings.Cut(rest, "/")
	return ok && found && channel == e.Channel && contact == e.Contact.ID
}

// appendGroup appends a name of e's tenant and key that no other tenant
// and key share (the tenant, a NUL, KeyOf(e)): a map lookup by it costs no
// allocation.
func appendGroup(b []byte, e *event.Event) []byte {
	b = append(b, e.Tenant...)
	b = append(b, 0)
	if e.SessionID != "" {
		b = append(b, explicitPrefix...)
		return append(b, e.SessionID...)
	}
	b = append(b, derivedPrefix...)
	b = append(b, e.Channel...)
	b = append(b, '/')
	return append(b, e.Contact.ID...)
}

// IsDerivedKey reports whether key groups events without a session id.
func IsDerivedKey(key string) bool { return strings.HasPrefix(key, derivedPrefix) }

// DeriveID is the id of the derived session that e opens: the UUIDv5 of
// "<tenant>/<channel>/<contact.id>/<event_id>". Tenants and channels are
// tokens without '/'; contact and event ids may hold one, so their '%' and
// '/' are percent-escaped to keep the name unambiguous (ids without either
// character are used as they are).
func DeriveID(e *event.Event) string {
	name := e.Tenant + "/" + e.Channel + "/" + escapeID(e.Contact.ID) + "/" + escapeID(e.EventID)
	return uuid.NewSHA1(Namespace, []byte(name)).String()
}

var idEscaper = strings.NewReplacer("%", "%25", "/", "%2F")

func escapeID(s string) string {
	if !strings.ContainsAny(s, "%/") {
		return s
	}
	return idEscaper.Replace(s)
}

// Split cuts the events of one derived key, sorted by (occurred_at, event_id),
// into the windows of policy p. It returns the index of each window's first
// event; window i is events[starts[i]:starts[i+1]].
func Split(p pipeline.Policy, events []*event.Event) (starts []int) {
	var end time.Time
	for i, e := range events {
		if i == 0 || !e.OccurredAt.Before(end) {
			starts = append(starts, i)
			end = e.OccurredAt.Add(p.Duration)
			continue
		}
		if p.Mode == pipeline.Sliding && isCustomerMessage(e) {
			if t := e.OccurredAt.Add(p.Duration); t.After(end) {
				end = t
			}
		}
	}
	return starts
}

// WindowEnd applies policy p to a session's sorted events.
func WindowEnd(p pipeline.Policy, events []*event.Event) time.Time {
	start := events[0].OccurredAt
	if p.Mode == pipeline.Fixed {
		return start.Add(p.Duration)
	}
	last := start
	for _, e := range events {
		if isCustomerMessage(e) && e.OccurredAt.After(last) {
			last = e.OccurredAt
		}
	}
	return last.Add(p.Duration)
}

func isCustomerMessage(e *event.Event) bool {
	return e.Type == event.TypeMessage && e.Author != nil && e.Author.Role == event.RoleCustomer
}

// Summarize builds the session of tenant with id from its events, which must be
// non-empty and sorted by (occurred_at, event_id).
func Summarize(id, key string, p pipeline.Policy, events []*event.Event) Session {
	first, last := events[0], events[len(events)-1]
	f := summary{
		s: Session{
			Tenant:         first.Tenant,
			ID:             id,
			Key:            key,
			Channel:        first.Channel,
			Contact:        event.Contact{ID: first.Contact.ID},
			StartedAt:      first.OccurredAt,
			LastActivityAt: last.OccurredAt,
			WindowEndsAt:   WindowEnd(p, events),
			Info:           map[string]string{},
			Events:         len(events),
			Protocols:      []string{},
			Tags:           []string{},
			Agents:         []event.Agent{},
			Queues:         []string{},
			Attendances:    []Attendance{},
		},
		owned: true,
	}
	for _, e := range events {
		f.add(e)
	}
	return f.done()
}

// Extend returns the summary of s's session with more events, which must be
// sorted and all come after the events s summarises: what Summarize returns
// for them all, at the cost of the new events only (a store that holds the
// summaries it wrote passes them to the assembler, SummaryHolder). It does
// not change s; the summary it returns shares with s the lists and maps the
// new events leave as they were, so neither may be changed afterwards.
func (s *Session) Extend(p pipeline.Policy, more []*event.Event) Session {
	f := summary{s: *s}
	if len(more) == 0 {
		return f.done()
	}
	f.s.LastActivityAt = more[len(more)-1].OccurredAt
	f.s.Events += len(more)
	// WindowEnd of them all: a fixed window ends where it did; a sliding
	// one at the latest customer message's time plus the duration, which
	// only a new customer message can move (the new events are later).
	if p.Mode == pipeline.Sliding {
		for _, e := range more {
			if isCustomerMessage(e) {
				if t := e.OccurredAt.Add(p.Duration); t.After(f.s.WindowEndsAt) {
					f.s.WindowEndsAt = t
				}
			}
		}
	}
	for _, e := range more {
		f.add(e)
	}
	return f.done()
}

// summary is a session's summary while its events are folded in, in event
// order. Extend starts from a summary it must not change: each list and map
// is copied before its first change (owned says Summarize made them all).
type summary struct {
	s     Session
	owned bool
	// agents are the agents by id (by name when the id is missing), made
	// from s.Agents when the first is noted; done sorts them back.
	agents map[string]string
	// info, tags, queues, attendances: the summary's own copies were made.
	info, tags, queues, attendances bool
	// attOwned[i]: Attendances[i]'s tags and info are the summary's own.
	attOwned []bool
	// protocols: an attendance was added, Protocols are made again.
	protocols bool
}

// add folds e, the next event of the session, into the summary (all but
// the times, which Summarize and Extend set).
func (f *summary) add(e *event.Event) {
	s := &f.s
	// Events are sorted, so the last assignment wins: "latest" by
	// (occurred_at, event_id).
	if e.Contact.Phone != "" {
		s.Contact.Phone = e.Contact.Phone
	}
	if e.Contact.Name != "" {
		s.Contact.Name = e.Contact.Name
	}
	a := -1
	if e.Protocol != "" {
		a = f.attendance(e.Protocol, e.OccurredAt)
		s.Attendances[a].EndedAt = e.OccurredAt
	}
	switch e.Type {
	case event.TypeMessage:
		switch e.Author.Role {
		case event.RoleCustomer:
			s.MessageCounts.Customer++
		case event.RoleBot:
			s.MessageCounts.Bot++
		case event.RoleAgent:
			s.MessageCounts.Agent++
			f.noteAgent(e.Author.ID, e.Author.Name)
		}
	case event.TypeHandoff:
		s.HandedOff = true
		h := e.Handoff
		if h.Queue != "" {
			s.Queues = f.insert(s.Queues, &f.queues, h.Queue)
		}
		if h.Agent != nil && (h.Action == event.ActionAssigned || h.Action == event.ActionTransferred) {
			f.noteAgent(h.Agent.ID, h.Agent.Name)
		}
		if a >= 0 {
			at := &s.Attendances[a]
			at.HandedOff = true
			if h.Action == event.ActionClosed {
				at.Status = h.Status
				if at.Status == "" {
					at.Status = StatusClosed
				}
			}
		}
	case event.TypeTag:
		s.Tags = f.insert(s.Tags, &f.tags, e.Tag)
		if a >= 0 {
			f.ownAttendance(a)
			s.Attendances[a].Tags = insertSorted(s.Attendances[a].Tags, e.Tag)
		}
	case event.TypeInfo:
		if !f.owned && !f.info {
			s.Info, f.info = maps.Clone(s.Info), true
		}
		s.Info[e.Info.Key] = e.Info.Value
		if a >= 0 {
			f.ownAttendance(a)
			s.Attendances[a].Info[e.Info.Key] = e.Info.Value
		}
	}
}

// attendance is the index of the attendance of protocol, added (as of at)
// when the session has none yet. Attendances stay sorted by protocol.
func (f *summary) attendance(protocol string, at time.Time) int {
	s := &f.s
	if !f.owned && !f.attendances {
		s.Attendances, f.attendances = slices.Clone(s.Attendances), true
	}
	// A session has a few attendances: a scan, by index (an Attendance is
	// too big to copy per comparison).
	i, found := 0, false
	for ; i < len(s.Attendances); i++ {
		if c := strings.Compare(s.Attendances[i].Protocol, protocol); c >= 0 {
			found = c == 0
			break
		}
	}
	if !found {
		s.Attendances = slices.Insert(s.Attendances, i, Attendance{Protocol: protocol, StartedAt: at, Status: StatusOpen, Tags: []string{}, Info: map[string]string{}})
		if f.attOwned != nil {
			f.attOwned = slices.Insert(f.attOwned, i, true)
		}
		f.protocols = true
	}
	return i
}

// ownAttendance copies Attendances[i]'s tags and info before their first
// change.
func (f *summary) ownAttendance(i int) {
	if f.owned {
		return
	}
	if f.attOwned == nil {
		f.attOwned = make([]bool, len(f.s.Attendances))
	}
	if !f.attOwned[i] {
		a := &f.s.Attendances[i]
		a.Tags, a.Info = slices.Clone(a.Tags), maps.Clone(a.Info)
		f.attOwned[i] = true
	}
}

// insert adds v to the sorted set, copied first unless own.
func (f *summary) insert(set []string, own *bool, v string) []string {
	i, found := slices.BinarySearch(set, v)
	if found {
		return set
	}
	if !f.owned && !*own {
		set, *own = slices.Clone(set), true
	}
	return slices.Insert(set, i, v)
}

// noteAgent records an agent, keyed by id (by name when the id is missing);
// the latest non-empty name wins.
func (f *summary) noteAgent(id, name string) {
	if f.agents == nil {
		f.agents = make(map[string]string, len(f.s.Agents)+1)
		for _, a := range f.s.Agents {
			f.agents[a.ID] = a.Name
		}
	}
	noteAgent(f.agents, id, name)
}

// done is the session, with its protocols and agents as sorted lists again
// when they changed.
func (f *summary) done() Session {
	s := f.s
	if f.protocols {
		s.Protocols = make([]string, len(s.Attendances))
		for i := range s.Attendances {
			s.Protocols[i] = s.Attendances[i].Protocol
		}
	}
	if f.agents != nil {
		s.Agents = make([]event.Agent, 0, len(f.agents))
		for id, name := range f.agents {
			s.Agents = append(s.Agents, event.Agent{ID: id, Name: name})
		}
		slices.SortFunc(s.Agents, func(a, b event.Agent) int { return strings.Compare(a.ID, b.ID) })
	}
	return s
}

// noteAgent records an agent, keyed by id (by name when the id is missing);
// the latest non-empty name wins.
func noteAgent(agents map[string]string, id, name string) {
	if id == "" {
		id = name
	}
	if id == "" {
		return
	}
	if name != "" || agents[id] == "" {
		agents[id] = name
	}
}

func insertSorted(set []string, v string) []string {
	i, found := slices.BinarySearch(set, v)
	if found {
		return set
	}
	return slices.Insert(set, i, v)
}
