package sqlite

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
)

// TestDocReaderMatchesEncodingJSON decodes stored session documents, and
// documents in other shapes, with docReader and with encoding/json: the two
// must give the same session, or both fail.
func TestDocReaderMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 14))
	var docs [][]byte
	for range 2000 {
		doc, err := json.Marshal(randomSession(rng))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc)
	}
	base := `"tenant":"acme","session_id":"s1","key":"k","channel":"whatsapp","contact":{"id":"c"},` +
		`"started_at":"2026-01-02T03:04:05Z","last_activity_at":"2026-01-02T03:04:05Z","window_ends_at":"2026-01-02T03:04:05Z",` +
		`"protocols":null,"tags":[],"info":{"a":"b"},"handed_off":false,"agents":null,"queues":null,` +
		`"message_counts":{"customer":1,"bot":2,"agent":3},"attendances":null,"events":6`
	for _, doc := range []string{
		"{" + base + "}",
		" {" + base + "} \n",
		"{" + base + `,"Tenant":"other"}`,         // another case: encoding/json matches it
		"{" + base + `,"tenant":"again"}`,         // repeated: the last wins
		"{" + base + `,"tags":["x"],"tags":null}`, // repeated list
		"{" + base + `,"info":{"c":"d"}}`,         // repeated map: encoding/json merges
		"{" + base + `,"unknown":{"x":[1,2]}}`,    // ignored
		"{" + base + `,"channel":null}`,           // null leaves a string as it was
		"{" + base + `,"handed_off":null}`,        // and a bool
		"{" + base + `,"events":6.0}`,             // not an int
		"{" + base + `,"events":99999999999999999999}`,
		"{" + base + `,"started_at":null}`,
		"{" + base + `,"started_at":"yesterday"}`,
		"{" + base + `,"contact":{"id":"c","ID":"d"}}`,
		"{" + base + `,"info":{"a":"b","a":"c"}}`,
		"{" + base + `,"info":{"\u0061":"x","<":"\u003c"}}`,
		"{" + base + `,"\u0074enant":"escaped name"}`,
		"{" + base + `,"tenant":"\ud800 lone surrogate"}`,
		"{" + base + `,"tenant":"é \n \u2028"}`,
		"{" + base + "}{}",
		"{" + base + "} x",
		"{" + base,
		"[]",
		"null",
		"{}",
		"{" + base + `,"tenant":"` + "\xff" + `"}`, // invalid UTF-8: encoding/json makes it U+FFFD
		"{" + base + `,"attendances":[{"protocol":"p","Status":"x","tags":null,"info":{}}]}`,
		"{" + base + `,"agents":[{"id":"a","name":"n","id":"b"}]}`,
		"{" + base + `,"message_counts":{"customer":-1,"bot":1e2}}`,
	} {
		docs = append(docs, []byte(doc))
	}
	for _, doc := range docs {
		var want session.Session
		wantErr := json.Unmarshal(doc, &want)
		var got session.Session
		var r docReader
		err := r.decode(doc, &got)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%s:\nerror %v, encoding/json's %v", doc, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\ngot  %#v\nwant %#v", doc, got, want)
		}
	}
}

// TestDocReaderReadsStoredShape checks that the documents the store writes
// take the fast path, not encoding/json's.
func TestDocReaderReadsStoredShape(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		ss := randomSession(rng)
		doc, _ := json.Marshal(ss)
		var r docReader
		var got session.Session
		if err := r.read(doc, &got); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
	}
}

func randomSession(rng *rand.Rand) session.Session {
	str := func() string {
		parts := []string{"", "a", "Olá", "<b>&", "\"quoted\"", "\\", "\n\t", "\u2028", "😀", "\xff", "\x00", "ação", "+55 11 91234-5678"}
		s := ""
		for range rng.IntN(4) {
			s += parts[rng.IntN(len(parts))]
		}
		return s
	}
	strs := func() []string {
		switch rng.IntN(3) {
		case 0:
			return nil
		case 1:
			return []string{}
		}
		out := make([]string, 1+rng.IntN(3))
		for i := range out {
			out[i] = str()
		}
		return out
	}
	info := func() map[string]string {
		switch rng.IntN(3) {
		case 0:
			return nil
		case 1:
			return map[string]string{}
		}
		m := map[string]string{}
		for range 1 + rng.IntN(3) {
			m[str()] = str()
		}
		return m
	}
	zones := []*time.Location{time.UTC, time.FixedZone("", -3*3600), time.FixedZone("", 5*3600+1800)}
	at := func() time.Time {
		t := time.UnixMilli(rng.Int64N(4e12)).In(zones[rng.IntN(len(zones))])
		if rng.IntN(2) == 0 {
			t = t.Add(time.Duration(rng.IntN(1e6)))
		}
		return t
	}
	ss := session.Session{
		Tenant: str(), ID: str(), Key: str(), Channel: str(),
		Contact:   event.Contact{ID: str(), Phone: str(), Name: str()},
		StartedAt: at(), LastActivityAt: at(), WindowEndsAt: at(),
		Protocols: strs(), Tags: strs(), Info: info(), HandedOff: rng.IntN(2) == 0, Queues: strs(),
		MessageCounts: session.Counts{Customer: rng.IntN(100), Bot: -rng.IntN(3), Agent: rng.IntN(1 << 40)},
		Events:        rng.IntN(1000),
	}
	if rng.IntN(3) > 0 {
		ss.Agents = []event.Agent{}
		for range rng.IntN(3) {
			ss.Agents = append(ss.Agents, event.Agent{ID: str(), Name: str()})
		}
	}
	if rng.IntN(3) > 0 {
		ss.Attendances = []session.Attendance{}
		for range rng.IntN(3) {
			ss.Attendances = append(ss.Attendances, session.Attendance{
				Protocol: str(), StartedAt: at(), EndedAt: at(), Status: str(), HandedOff: rng.IntN(2) == 0,
				Tags: strs(), Info: info(),
			})
		}
	}
	return ss
}
