package session

import (
	"crypto/sha1"
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
// and key share (the tenant, a NUL, KeyOf(e), which Assemble cuts from
// it): a map lookup by it costs no allocation.
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
//
// It is uuid.NewSHA1(Namespace, name).String(), computed with the name in
// a buffer on the stack: every window of a key recomputed gets its id
// again, and the library's way (the name built, then a hash, its sum and
// the string) allocated five times per id.
func DeriveID(e *event.Event) string {
	var buf [256]byte
	name := append(buf[:0], Namespace[:]...)
	name = append(name, e.Tenant...)
	name = append(name, '/')
	name = append(name, e.Channel...)
	name = append(name, '/')
	name = appendEscapedID(name, e.Contact.ID)
	name = append(name, '/')
	name = appendEscapedID(name, e.EventID)
	sum := sha1.Sum(name)
	var id uuid.UUID
	copy(id[:], sum[:])
	id[6] = id[6]&0x0f | 5<<4 // version 5 (RFC 4122, 4.3)
	id[8] = id[8]&0x3f | 0x80 // the RFC 4122 variant
	return id.String()
}

// appendEscapedID appends s with '%' and '/' percent-escaped.
func appendEscapedID(b []byte, s string) []byte {
	if !strings.ContainsAny(s, "%/") {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%':
			b = append(b, "%25"...)
		case '/':
			b = append(b, "%2F"...)
		default:
			b = append(b, c)
		}
	}
	return b
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
	s := Session{
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
	}
	agents := map[string]string{}
	attendance := map[string]*Attendance{}
	for _, e := range events {
		// Events are sorted, so the last assignment wins: "latest" by
		// (occurred_at, event_id).
		if e.Contact.Phone != "" {
			s.Contact.Phone = e.Contact.Phone
		}
		if e.Contact.Name != "" {
			s.Contact.Name = e.Contact.Name
		}
		var a *Attendance
		if e.Protocol != "" {
			a = attendance[e.Protocol]
			if a == nil {
				a = &Attendance{Protocol: e.Protocol, StartedAt: e.OccurredAt, Status: StatusOpen, Tags: []string{}, Info: map[string]string{}}
				attendance[e.Protocol] = a
			}
			a.EndedAt = e.OccurredAt
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
				noteAgent(agents, e.Author.ID, e.Author.Name)
			}
		case event.TypeHandoff:
			s.HandedOff = true
			h := e.Handoff
			if h.Queue != "" {
				s.Queues = insertSorted(s.Queues, h.Queue)
			}
			if h.Agent != nil && (h.Action == event.ActionAssigned || h.Action == event.ActionTransferred) {
				noteAgent(agents, h.Agent.ID, h.Agent.Name)
			}
			if a != nil {
				a.HandedOff = true
				if h.Action == event.ActionClosed {
					a.Status = h.Status
					if a.Status == "" {
						a.Status = StatusClosed
					}
				}
			}
		case event.TypeTag:
			s.Tags = insertSorted(s.Tags, e.Tag)
			if a != nil {
				a.Tags = insertSorted(a.Tags, e.Tag)
			}
		case event.TypeInfo:
			s.Info[e.Info.Key] = e.Info.Value
			if a != nil {
				a.Info[e.Info.Key] = e.Info.Value
			}
		}
	}
	for p, a := range attendance {
		s.Protocols = append(s.Protocols, p)
		s.Attendances = append(s.Attendances, *a)
	}
	slices.Sort(s.Protocols)
	slices.SortFunc(s.Attendances, func(a, b Attendance) int { return strings.Compare(a.Protocol, b.Protocol) })
	for id, name := range agents {
		s.Agents = append(s.Agents, event.Agent{ID: id, Name: name})
	}
	slices.SortFunc(s.Agents, func(a, b event.Agent) int { return strings.Compare(a.ID, b.ID) })
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
