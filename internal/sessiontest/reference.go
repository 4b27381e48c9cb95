// Package sessiontest checks session assembly from the outside: Reference is
// an independent, deliberately naive implementation of the session rules of
// docs/sessions.md (it takes the whole event set at once, so it cannot depend
// on arrival order), Check compares what a store holds with it, and Generate
// makes random multi-tenant event sets that exercise every rule.
//
// Nothing here calls the session package's rules (Split, WindowEnd,
// Summarize, DeriveID, KeyOf): a shared bug would hide itself.
package sessiontest

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/session"
)

// NamespaceText is the UUIDv5 namespace of derived session ids as
// docs/sessions.md states it; tests check that session.Namespace agrees.
const NamespaceText = "6f1c7a4e-2b1d-5c39-9a0e-c4a7d3b2e815"

var namespace = uuid.MustParse(NamespaceText)

// Expected is one session as the rules define it, with its events in
// (occurred_at, event_id) order.
type Expected struct {
	Session session.Session
	Events  []event.Event
}

// Reference applies the session rules to a whole set of events, duplicates
// included, and returns every session by (tenant, id).
func Reference(def *pipeline.Definition, events []event.Event) map[session.Ref]Expected {
	// Rule 4: one event per (tenant, event_id). Redeliveries are identical
	// copies, so which copy is kept does not matter.
	unique := map[event.Ref]event.Event{}
	for _, e := range events {
		if _, dup := unique[e.Ref()]; !dup {
			unique[e.Ref()] = e
		}
	}

	type explicitKey struct{ tenant, sessionID string }
	type derivedKey struct{ tenant, channel, contact string }
	explicit := map[explicitKey][]event.Event{}
	derived := map[derivedKey][]event.Event{}
	for _, e := range unique {
		if e.SessionID != "" {
			k := explicitKey{e.Tenant, e.SessionID}
			explicit[k] = append(explicit[k], e)
		} else {
			k := derivedKey{e.Tenant, e.Channel, e.Contact.ID}
			derived[k] = append(derived[k], e)
		}
	}

	out := map[session.Ref]Expected{}
	add := func(id, key string, members []event.Event) {
		policy := def.PolicyFor(members[0].Channel)
		s := summarize(id, key, policy, members)
		out[session.Ref{Tenant: s.Tenant, ID: id}] = Expected{Session: s, Events: members}
	}
	// Rule 1: an explicit session is all the events carrying its id.
	for k, members := range explicit {
		sortEvents(members)
		add(k.sessionID, "s:"+k.sessionID, members)
	}
	// Rule 2: the other events of a contact on a channel are cut into
	// windows, each opened by the first event at or after the previous
	// window's end.
	for k, members := range derived {
		sortEvents(members)
		policy := def.PolicyFor(k.channel)
		var windows [][]event.Event
		for _, e := range members {
			if n := len(windows); n > 0 && e.OccurredAt.Before(windowEnd(policy, windows[n-1])) {
				windows[n-1] = append(windows[n-1], e)
				continue
			}
			windows = append(windows, []event.Event{e})
		}
		for _, w := range windows {
			add(DerivedID(k.tenant, k.channel, k.contact, w[0].EventID), "d:"+k.channel+"/"+k.contact, w)
		}
	}
	return out
}

// DerivedID is the id of the derived session of tenant, channel and contact
// that the event eventID opens: the UUIDv5 of
// "<tenant>/<channel>/<contact.id>/<event_id>", with '%' and '/' of the two
// ids percent-escaped (tenants and channels are tokens without them).
func DerivedID(tenant, channel, contact, eventID string) string {
	name := tenant + "/" + channel + "/" + escape(contact) + "/" + escape(eventID)
	return uuid.NewSHA1(namespace, []byte(name)).String()
}

func escape(id string) string {
	return strings.ReplaceAll(strings.ReplaceAll(id, "%", "%25"), "/", "%2F")
}

// sortEvents orders events by (occurred_at, event_id).
func sortEvents(evs []event.Event) {
	sort.Slice(evs, func(i, j int) bool {
		a, b := evs[i], evs[j]
		if !a.OccurredAt.Equal(b.OccurredAt) {
			return a.OccurredAt.Before(b.OccurredAt)
		}
		return a.EventID < b.EventID
	})
}

func isCustomerMessage(e event.Event) bool {
	return e.Type == event.TypeMessage && e.Author != nil && e.Author.Role == event.RoleCustomer
}

// windowEnd is when a session with these (sorted) events ends: fixed, D after
// its first event; sliding, D after the later of its first event and its last
// customer message.
func windowEnd(p pipeline.Policy, members []event.Event) time.Time {
	from := members[0].OccurredAt
	if p.Mode == pipeline.Sliding {
		for _, e := range members {
			if isCustomerMessage(e) && e.OccurredAt.After(from) {
				from = e.OccurredAt
			}
		}
	}
	return from.Add(p.Duration)
}

// summarize states rule 3 field by field; members are sorted.
func summarize(id, key string, p pipeline.Policy, members []event.Event) session.Session {
	first, last := members[0], members[len(members)-1]
	s := session.Session{
		Tenant:         first.Tenant,
		ID:             id,
		Key:            key,
		Channel:        first.Channel,
		Contact:        event.Contact{ID: first.Contact.ID},
		StartedAt:      first.OccurredAt,
		LastActivityAt: last.OccurredAt,
		WindowEndsAt:   windowEnd(p, members),
		Info:           map[string]string{},
		Events:         len(members),
	}
	// Latest non-empty phone and name: walk back from the end.
	for i := len(members) - 1; i >= 0; i-- {
		if s.Contact.Phone == "" {
			s.Contact.Phone = members[i].Contact.Phone
		}
		if s.Contact.Name == "" {
			s.Contact.Name = members[i].Contact.Name
		}
	}

	protocols := map[string]bool{}
	tags := map[string]bool{}
	queues := map[string]bool{}
	for _, e := range members {
		if e.Protocol != "" {
			protocols[e.Protocol] = true
		}
		switch e.Type {
		case event.TypeTag:
			tags[e.Tag] = true
		case event.TypeInfo:
			s.Info[e.Info.Key] = e.Info.Value // later events overwrite
		case event.TypeHandoff:
			s.HandedOff = true
			if e.Handoff.Queue != "" {
				queues[e.Handoff.Queue] = true
			}
		case event.TypeMessage:
			switch e.Author.Role {
			case event.RoleCustomer:
				s.MessageCounts.Customer++
			case event.RoleBot:
				s.MessageCounts.Bot++
			case event.RoleAgent:
				s.MessageCounts.Agent++
			}
		}
	}
	s.Protocols = sortedKeys(protocols)
	s.Tags = sortedKeys(tags)
	s.Queues = sortedKeys(queues)

	// Agents: keyed by id, or by name when there is no id; each with the
	// latest non-empty name seen for it.
	agentName := map[string]string{}
	note := func(id, name string) {
		k := id
		if k == "" {
			k = name
		}
		if k == "" {
			return
		}
		if _, ok := agentName[k]; !ok || name != "" {
			agentName[k] = name
		}
	}
	for _, e := range members {
		switch {
		case e.Type == event.TypeMessage && e.Author.Role == event.RoleAgent:
			note(e.Author.ID, e.Author.Name)
		case e.Type == event.TypeHandoff && e.Handoff.Agent != nil &&
			(e.Handoff.Action == event.ActionAssigned || e.Handoff.Action == event.ActionTransferred):
			note(e.Handoff.Agent.ID, e.Handoff.Agent.Name)
		}
	}
	s.Agents = []event.Agent{}
	for _, k := range sortedKeys(agentName) {
		s.Agents = append(s.Agents, event.Agent{ID: k, Name: agentName[k]})
	}

	// Attendances: one per protocol, from the events that carry it.
	s.Attendances = []session.Attendance{}
	for _, p := range s.Protocols {
		a := session.Attendance{Protocol: p, Status: session.StatusOpen, Info: map[string]string{}}
		seen := false
		atags := map[string]bool{}
		for _, e := range members {
			if e.Protocol != p {
				continue
			}
			if !seen {
				a.StartedAt, seen = e.OccurredAt, true
			}
			a.EndedAt = e.OccurredAt
			switch e.Type {
			case event.TypeTag:
				atags[e.Tag] = true
			case event.TypeInfo:
				a.Info[e.Info.Key] = e.Info.Value
			}
			if e.Type == event.TypeHandoff {
				a.HandedOff = true
				if e.Handoff.Action == event.ActionClosed {
					a.Status = e.Handoff.Status
					if a.Status == "" {
						a.Status = session.StatusClosed
					}
				}
			}
		}
		a.Tags = sortedKeys(atags)
		s.Attendances = append(s.Attendances, a)
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// StatusAt is the session status the rules give at now.
func StatusAt(s *session.Session, now time.Time) string {
	if now.Before(s.WindowEndsAt) {
		return session.StatusActive
	}
	return session.StatusEnded
}

// AttendanceOutcomeAt is the outcome of s.Attendances[i] the rules give at
// now (docs/sessions.md, "Outcomes of attendances"), from the table there.
func AttendanceOutcomeAt(s *session.Session, i int, now time.Time) string {
	a := s.Attendances[i]
	if outcome, closed := map[string]string{
		"resolved":             session.OutcomeResolved,
		"closed":               session.OutcomeResolved,
		"abandoned":            session.OutcomeAbandoned,
		"cancelled_inactivity": session.OutcomeCancelledInactivity,
	}[a.Status]; closed {
		return outcome
	}
	if a.Status != "open" {
		return session.OutcomeClosed
	}
	windowOver := !now.Before(s.WindowEndsAt)
	later := slices.ContainsFunc(s.Attendances, func(b session.Attendance) bool { return b.StartedAt.After(a.StartedAt) })
	switch {
	case a.HandedOff && windowOver:
		return session.OutcomeCancelledInactivity
	case !a.HandedOff && (windowOver || later):
		return session.OutcomeBotFinished
	}
	return session.OutcomeOpen
}
