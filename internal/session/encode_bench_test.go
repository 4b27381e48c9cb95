package session_test

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/benchkit"
	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/sessiontest"
)

// indexedSession has the shape of the Elasticsearch store's session document
// (internal/store/elastic, sessionDoc): the summary plus the fields that
// exist to be queried, the texts of its messages among them.
type indexedSession struct {
	session.Session
	InfoKeys        []string         `json:"info_keys"`
	InfoKV          []string         `json:"info_kv"`
	ContactName     string           `json:"contact_name,omitempty"`
	ContactPhoneRev string           `json:"contact_phone_rev,omitempty"`
	Messages        []indexedMessage `json:"messages"`
}

type indexedMessage struct {
	Text string `json:"text"`
}

func newIndexedSession(x sessiontest.Expected) *indexedSession {
	d := &indexedSession{Session: x.Session, ContactName: strings.ToLower(x.Session.Contact.Name), Messages: []indexedMessage{}}
	for k, v := range x.Session.Info {
		d.InfoKeys = append(d.InfoKeys, k)
		d.InfoKV = append(d.InfoKV, k+"="+strings.ToLower(v))
	}
	slices.Sort(d.InfoKeys)
	slices.Sort(d.InfoKV)
	for _, e := range x.Events {
		if e.Type == event.TypeMessage && e.Text != "" {
			d.Messages = append(d.Messages, indexedMessage{Text: e.Text})
		}
	}
	return d
}

// BenchmarkEncodeSession encodes session documents as the stores do
// (SQLite: json.Marshal of the summary; Elasticsearch: a json.Encoder over
// the bulk body), and with go-json-experiment/json writing the same bytes:
//
//	go test ./internal/session/ -run '^$' -bench EncodeSession -count 10 | tee encode-session.txt
//	benchstat -col /impl encode-session.txt
func BenchmarkEncodeSession(b *testing.B) {
	events := sessiontest.Generate(rand.New(rand.NewPCG(1, 2)), sessiontest.Options{
		Tenants: []string{"acme"}, Conversations: 200, MaxEvents: 30,
		Start: sessiontest.Base, Spread: 30 * 24 * time.Hour,
	})
	var sessions []*indexedSession
	for _, x := range sessiontest.Reference(sessiontest.Definition(), events) {
		sessions = append(sessions, newIndexedSession(x))
	}
	slices.SortFunc(sessions, func(a, b *indexedSession) int { return strings.Compare(a.ID, b.ID) })
	docs, bodies := make([]any, len(sessions)), make([]any, len(sessions))
	for i, d := range sessions {
		docs[i], bodies[i] = d, &d.Session
	}
	benchkit.EncodeDocs(b, "session-doc", docs)
	benchkit.MarshalBodies(b, "session-summary", bodies)
}
