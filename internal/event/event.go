// Package event defines the chat event contract the platform publishes to Kafka:
// the types, their JSON form, and the validation every event passes before the
// pipeline trusts it. docs/events.md and event.schema.json (beside this file)
// describe the same contract for the platform's developers.
package event

import (
	"strings"
	"time"
)

// Type is the kind of an event.
type Type string

// The four event types of the contract.
const (
	TypeMessage Type = "message"
	TypeHandoff Type = "handoff"
	TypeTag     Type = "tag"
	TypeInfo    Type = "info"
)

// Author roles of a message.
const (
	RoleCustomer = "customer"
	RoleBot      = "bot"
	RoleAgent    = "agent"
)

// Handoff actions.
const (
	ActionRequested   = "requested"
	ActionAssigned    = "assigned"
	ActionTransferred = "transferred"
	ActionClosed      = "closed"
)

// Event is one validated, normalised chat event. Times are UTC; session ids are
// lowercase. Fields that do not belong to the event's Type are empty.
type Event struct {
	EventID    string    `json:"event_id"`
	Type       Type      `json:"type"`
	OccurredAt time.Time `json:"occurred_at"`
	Tenant     string    `json:"tenant"`
	Channel    string    `json:"channel"`
	Contact    Contact   `json:"contact"`
	SessionID  string    `json:"session_id,omitempty"`
	Protocol   string    `json:"protocol,omitempty"`

	// message
	Author      *Author      `json:"author,omitempty"`
	Text        string       `json:"text,omitempty"`
	ContentType string       `json:"content_type,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`

	// handoff
	Handoff *Handoff `json:"handoff,omitempty"`

	// tag
	Tag string `json:"tag,omitempty"`

	// info
	Info *Info `json:"info,omitempty"`
}

// Contact is the customer: an id that is always there, and the phone and the
// captured (profile) name when the channel provides them.
type Contact struct {
	ID    string `json:"id"`
	Phone string `json:"phone,omitempty"`
	Name  string `json:"name,omitempty"`
}

// Author is who wrote a message.
type Author struct {
	Role string `json:"role"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// Attachment is a file sent with a message.
type Attachment struct {
	URL      string `json:"url"`
	MIMEType string `json:"mime_type,omitempty"`
	Name     string `json:"name,omitempty"`
}

// Agent is a human agent.
type Agent struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Handoff is a step of a bot-to-human handoff.
type Handoff struct {
	Action string `json:"action"`
	Queue  string `json:"queue,omitempty"`
	Agent  *Agent `json:"agent,omitempty"`
	Reason string `json:"reason,omitempty"`
	Status string `json:"status,omitempty"`
}

// Info is one additional-information key set by the bot flow. Value is the
// string form of the JSON string, number or boolean that was sent.
type Info struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Ref names an event uniquely: event ids are unique per tenant.
type Ref struct {
	Tenant  string
	EventID string
}

// Ref returns the event's identity.
func (e *Event) Ref() Ref { return Ref{Tenant: e.Tenant, EventID: e.EventID} }

// Before orders events by (occurred_at, event_id), the order every rule of the
// pipeline uses.
func (e *Event) Before(o *Event) bool {
	if !e.OccurredAt.Equal(o.OccurredAt) {
		return e.OccurredAt.Before(o.OccurredAt)
	}
	return e.EventID < o.EventID
}

// Compare is Before as a three-way comparison, for slices.SortFunc.
func Compare(a, b *Event) int {
	if c := a.OccurredAt.Compare(b.OccurredAt); c != 0 {
		return c
	}
	return strings.Compare(a.EventID, b.EventID)
}

// RecommendedKey is the Kafka message key the platform should use, so that all
// events of one contact land in the same partition of every topic.
func (e *Event) RecommendedKey() string {
	return e.Tenant + "/" + e.Channel + "/" + e.Contact.ID
}
