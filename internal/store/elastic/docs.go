package elastic

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

// eventDoc is an event as indexed: the event as the platform sent it (its own
// session_id stays as sent, empty for derived sessions), plus its grouping
// key and the session it belongs to now.
type eventDoc struct {
	*event.Event
	Key     string `json:"key"`
	Session string `json:"session"`
}

// errNoEvent: a source read as an event document holds no event's fields.
var errNoEvent = errors.New("the document holds no event")

// newEventDoc is the document of st, an event of key.
func newEventDoc(st *session.Stored, key string) eventDoc {
	return eventDoc{Event: st.Event, Key: key, Session: st.SessionID}
}

// sessionDoc is a session as indexed: the summary, plus fields that exist to
// be queried (docs/elasticsearch.md, "Mappings").
type sessionDoc struct {
	session.Session
	// InfoKeys are the keys of Info: exists, not_exists and the facet.
	InfoKeys []string `json:"info_keys"`
	// InfoKV are "KEY=value" pairs, the value lowercased: term for equals,
	// prefix for starts_with; the wildcard sub-field serves contains.
	InfoKV []string `json:"info_kv"`
	// ContactName is the captured name lowercased, for substring search.
	ContactName string `json:"contact_name,omitempty"`
	// ContactPhoneRev is the phone's digits reversed: "ends with" becomes a
	// prefix query.
	ContactPhoneRev string `json:"contact_phone_rev,omitempty"`
	// Outcomes are the outcomes of the session's attendances that ended;
	// OutcomesAtEnd, those the others take when the window ends
	// (session.OutcomeMarks): the outcome filter reads both and the
	// window's end.
	Outcomes      []string `json:"outcomes"`
	OutcomesAtEnd []string `json:"outcomes_at_end"`
	// events are the session's events, in event order. The document
	// carries two fields made of them (appendJSON writes them straight
	// from the events, without building each string):
	//   - "messages": the texts of the session's messages, nested so that
	//     one message must hold every word of a full-text query;
	//   - "event_refs": "<month of occurred_at>/<event_id>" of each event,
	//     the monthly index and id of its document, which the writer
	//     reads back by id.
	events []session.Stored
}

// derivedFields are sessionDoc's additions, left out of answers.
var derivedFields = []string{"info_keys", "info_kv", "contact_name", "contact_phone_rev", "outcomes", "outcomes_at_end", "messages", "event_refs"}

// newSessionDoc builds the document of s, whose events are events (in
// event order).
func newSessionDoc(s *session.Session, events []session.Stored) *sessionDoc {
	d := &sessionDoc{Session: *s}
	d.fill(events)
	return d
}

// fill sets the fields a document of d.Session, whose events are events,
// adds to it: in place, since a write builds a document for every session
// it changes (a copy of the whole document cost as much as building it).
func (d *sessionDoc) fill(events []session.Stored) {
	s := &d.Session
	d.InfoKeys = make([]string, 0, len(s.Info))
	d.InfoKV = make([]string, 0, len(s.Info))
	d.ContactName = strings.ToLower(s.Contact.Name)
	d.ContactPhoneRev = report.ReversedPhoneDigits(s.Contact.Phone)
	d.events = events
	d.Outcomes, d.OutcomesAtEnd = s.OutcomeMarks()
	for k := range s.Info {
		d.InfoKeys = append(d.InfoKeys, k)
	}
	slices.Sort(d.InfoKeys)
	for _, k := range d.InfoKeys {
		d.InfoKV = append(d.InfoKV, infoPair(k, s.Info[k]))
	}
}

// infoPair is the indexed form of one additional-information value. Keys
// cannot contain "=" (event.IsInfoKey), so the pair splits unambiguously and
// a pattern that starts with "KEY=" only matches that key. Values are
// lowered by Go, as in the SQLite store, so both stores fold the same
// (Unicode) case.
func infoPair(key, value string) string { return key + "=" + strings.ToLower(value) }

// The date_nanos fields hold 1970-01-01 up to 2262-04-11. An event outside a
// slightly narrower range (its session's window must fit too) is rejected
// before anything is written.
var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
)

func storable(t time.Time) bool { return !t.Before(minTime) && t.Before(maxTime) }

// formatTime is the form of times in queries and search_after, which the
// date_nanos fields' format (strict_date_optional_time_nanos) parses to the
// nanosecond.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
