package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// decodedView is the reference for a stored event: decoded as the store's
// Session decodes it, its view appended as for GET /sessions/{id}.
func decodedView(body []byte) ([]byte, error) {
	e, err := report.DecodeEvent(body)
	if err != nil {
		return nil, err
	}
	if e.Type == event.TypeMessage {
		return appendMessage(nil, &e), nil
	}
	return appendTimelineEvent(nil, &e), nil
}

// copiedView is the view jsonlEncoder writes, and whether it copied the
// stored bytes.
func copiedView(body []byte) ([]byte, bool, error) {
	var se storedEvent
	copied := se.read(body)
	j := jsonlEncoder{}
	err := j.add(body)
	return append(j.messages, j.events...), copied, err
}

// TestStoredEventMatchesDecoding: for random events as the store writes
// them (encoding/json's encoding) and for stored JSON of other shapes, the
// view copied from the stored bytes is the view of the decoded event, or
// both fail; and every body that is the store's encoding of a valid event
// is copied, not decoded.
func TestStoredEventMatchesDecoding(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	alphabet := []string{"a", "Z", "ç", "ã", "😀", "<", ">", "&", "\n", "\t", "\r", "\b", "\f", "\x01", "\x1f", "\x7f",
		"\"", "\\", "/", "\u2028", "\u2029", " ", "é", "\u00a0", "\ufffd", "\xff"}
	text := func(valid bool) string {
		var b strings.Builder
		for range r.IntN(8) {
			s := alphabet[r.IntN(len(alphabet))]
			if valid && s == "\xff" {
				continue
			}
			b.WriteString(s)
		}
		return b.String()
	}
	maybe := func(valid bool) string {
		if r.IntN(3) == 0 {
			return ""
		}
		return text(valid)
	}
	base := time.Date(2025, 10, 7, 9, 26, 33, 0, time.UTC)
	copied, valid := 0, 0
	for i := range 20000 {
		utf := r.IntN(10) > 0
		e := event.Event{
			EventID: fmt.Sprintf("e-%d%s", i, maybe(utf)), Tenant: "acme", Channel: "whatsapp",
			OccurredAt: base.Add(time.Duration(r.IntN(1e6)) * time.Millisecond),
			Contact:    event.Contact{ID: "c" + maybe(utf), Phone: maybe(utf), Name: maybe(utf)},
		}
		if r.IntN(2) == 0 {
			e.Protocol = "20251007092633646"
		}
		if r.IntN(20) == 0 {
			e.OccurredAt = e.OccurredAt.Add(time.Duration(r.IntN(1000)) * time.Microsecond).In(time.FixedZone("", 3600))
		}
		switch r.IntN(5) {
		case 0, 1:
			e.Type = event.TypeMessage
			e.Author = &event.Author{Role: []string{event.RoleCustomer, event.RoleBot, event.RoleAgent}[r.IntN(3)], ID: maybe(utf), Name: maybe(utf)}
			e.Text, e.ContentType = text(utf), "text"
			if r.IntN(10) == 0 {
				e.ContentType = ""
			}
			for range r.IntN(3) {
				e.Attachments = append(e.Attachments, event.Attachment{URL: "https://x/" + text(utf), MIMEType: maybe(utf), Name: maybe(utf)})
			}
		case 2:
			e.Type = event.TypeHandoff
			e.Handoff = &event.Handoff{Action: event.ActionAssigned, Queue: maybe(utf), Reason: maybe(utf)}
			if r.IntN(2) == 0 {
				e.Handoff.Agent = &event.Agent{ID: "ag" + maybe(utf), Name: maybe(utf)}
			}
			if r.IntN(2) == 0 {
				e.Handoff.Action, e.Handoff.Status = event.ActionClosed, "resolved"
			}
		case 3:
			e.Type, e.Tag = event.TypeTag, "t"+text(utf)
		default:
			e.Type, e.Info = event.TypeInfo, &event.Info{Key: "PLANO", Value: text(utf)}
		}
		body, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr := decodedView(body)
		got, fast, err := copiedView(body)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("%s:\ncopied %s (%v)\ndecoded %s (%v)", body, got, err, want, wantErr)
		}
		if fast {
			copied++
		}
		// The store's encoding of an event the decoder accepts is copied.
		if d, err := event.Decode(body); err == nil {
			if again, _ := json.Marshal(&d); bytes.Equal(again, body) {
				valid++
				if !fast {
					t.Fatalf("the stored form of a valid event is decoded: %s", body)
				}
			}
		}
	}
	if valid < 10000 {
		t.Fatalf("only %d of the random events are valid", valid)
	}
	t.Logf("%d of 20000 random events copied, %d valid", copied, valid)
}

// TestStoredEventOddShapes: stored JSON that is not encoding/json's encoding
// of a decoded event is decoded (or fails as decoding does).
func TestStoredEventOddShapes(t *testing.T) {
	const head = `"event_id":"x","type":"message","occurred_at":"2025-10-07T09:00:00.5Z","tenant":"acme","channel":"whatsapp","contact":{"id":"c"}`
	for _, tc := range []struct {
		body   string
		copied bool
	}{
		{`{` + head + `,"author":{"role":"bot"},"text":"oi","content_type":"text"}`, true},
		{` {` + head + ` , "author" : {"role":"bot"} ,"text":"oi","content_type":"text"} `, true},
		{`{` + head + `,"author":{"role":"bot"},"text":"oi","content_type":"text","key":"k","session":"s"}`, true}, // Elasticsearch's document
		{`{` + head + `,"text":"oi","author":{"role":"bot"},"content_type":"text"}`, false},                        // another order
		{`{` + head + `,"author":{"role":"bot"},"text":"oi"}`, false},                                              // no content type: "text" when decoded
		{`{` + head + `,"author":{"role":"bot"},"text":"oi","content_type":""}`, false},
		{`{` + head + `,"text":"oi","content_type":"text"}`, true}, // no author: not valid, the same view
		{`{` + head + `,"author":null,"text":"oi","content_type":"text"}`, false},
		{`{` + head + `,"author":{"role":"bot","Role":"agent"},"text":"oi","content_type":"text"}`, false}, // names in other cases
		{`{` + head + `,"author":{"role":"bot"},"Text":"oi","content_type":"text"}`, false},
		{`{` + head + `,"author":{"role":"bot"},"text":"a","text":"b","content_type":"text"}`, false}, // duplicates
		{`{` + head + `,"author":{"role":"bot"},"text":"\u00e9\/\u003C","content_type":"text"}`, false},
		{`{` + head + `,"author":{"role":"bot"},"text":"<b>","content_type":"text"}`, false},
		{`{` + head + `,"author":{"role":"bot"},"text":"\u003c\u2028\n\u0001","content_type":"text"}`, true},
		{`{` + head + `,"author":{"role":"bot"},"text":"\ud800","content_type":"text"}`, false},
		{`{` + head + `,"author":{"role":"bot"},"text":"` + "\u2028" + `","content_type":"text"}`, false},
		{`{` + head + `,"author":{"role":"bot"},"text":"` + "\xff" + `","content_type":"text"}`, false},
		{`{` + head + `,"author":{"role":"bot"},"text":"oi","content_type":"text","attachments":[]}`, true},
		{`{` + head + `,"author":{"role":"bot"},"text":"oi","content_type":"text","attachments":[{"url":"u","size":1}]}`, false},
		{`{` + head + `,"author":{"role":"bot"},"text":"oi","content_type":"text","extra":1}`, false},
		{`{` + head + `,"author":{"role":"bot"},"text":5,"content_type":"text"}`, false}, // fails both ways
		{`{` + head + `,"author":{"role":"bot"},"text":"oi","content_type":"text"`, false},
		{`{` + head + `,"author":{"role":"bot"},"text":"oi","content_type":"text"}x`, false},
		{`{` + head + `,"author":{"role":"bot"},"text":"oi","content_type":"text"}{}`, false},
		{"\xef\xbb\xbf{" + head + `,"author":{"role":"bot"},"text":"oi","content_type":"text"}`, false},
		{strings.Replace(`{`+head+`,"author":{"role":"bot"},"text":"oi","content_type":"text"}`, "00.5Z", "00.500Z", 1), false},
		{strings.Replace(`{`+head+`,"author":{"role":"bot"},"text":"oi","content_type":"text"}`, "00.5Z", "00.5123Z", 1), false},
		{strings.Replace(`{`+head+`,"author":{"role":"bot"},"text":"oi","content_type":"text"}`, "00.5Z", "00.5-03:00", 1), false},
		{strings.Replace(`{`+head+`,"author":{"role":"bot"},"text":"oi","content_type":"text"}`, "10-07", "02-30", 1), false},
		{strings.Replace(`{`+head+`,"author":{"role":"bot"},"text":"oi","content_type":"text"}`, "T09", "T24", 1), false},
		{`{"event_id":"x","type":"tag","occurred_at":"2025-10-07T09:00:00Z","tenant":"acme","channel":"whatsapp","contact":{"id":"c"},"tag":""}`, true},
		{`{"event_id":"x","type":"tag","occurred_at":"2025-10-07T09:00:00Z","tenant":"acme","channel":"whatsapp","contact":{"id":"c"}}`, true},
		{`{"event_id":"x","type":"legacy","occurred_at":"2025-10-07T09:00:00Z","tag":"t","info":{"key":"k","value":"v"}}`, true},
		{`{"event_id":"x","type":"info","occurred_at":"2025-10-07T09:00:00Z","info":{"key":"k","value":7}}`, false},
		{`{"event_id":"x","type":"info","occurred_at":"2025-10-07T09:00:00Z","info":{"key":"k","value":"7"}}`, true},
		{`{"event_id":"x","type":"handoff","occurred_at":"2025-10-07T09:00:00Z","handoff":{"action":"assigned","queue":"","agent":{"id":"a"}}}`, true},
		{`{"event_id":"x","type":"handoff","occurred_at":"2025-10-07T09:00:00Z","handoff":{"action":"assigned","agent":{"id":"a"},"queue":""}}`, false}, // another order
		{`{"event_id":"x","type":"handoff","occurred_at":"2025-10-07T09:00:00Z","handoff":{"action":"assigned","agent":null}}`, false},
		{`{"event_id":"x","type":"handoff","occurred_at":"2025-10-07T09:00:00Z"}`, true},
		{`{"event_id":"x","type":"mess\u0061ge","occurred_at":"2025-10-07T09:00:00Z"}`, false},
		{`{"type":"tag","occurred_at":"2025-10-07T09:00:00Z","tag":"t"}`, false},
		{`{"event_id":"x","type":"tag","tag":"t"}`, false},
		{`[]`, false},
		{``, false},
	} {
		body := []byte(tc.body)
		want, wantErr := decodedView(body)
		got, fast, err := copiedView(body)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Errorf("%s:\ncopied %s (%v)\ndecoded %s (%v)", body, got, err, want, wantErr)
		}
		if fast != tc.copied {
			t.Errorf("%s: copied %t, want %t", body, fast, tc.copied)
		}
	}
}

// BenchmarkJSONLEncoder encodes a session of 26 events as the bench's
// conversations hold them (texts with accents and line breaks, tags,
// information, a handoff), stored as the store stores them.
//
//	go test ./internal/api -run '^$' -bench JSONLEncoder -benchmem
func BenchmarkJSONLEncoder(b *testing.B) {
	c := storetest.B{Contact: "5511987654321", Phone: "+5511987654321", Name: "Cláudia Simões", Protocol: "20251007092633646"}
	var events []event.Event
	for i := range 8 {
		at := time.Duration(i) * time.Minute
		events = append(events,
			c.Msg(fmt.Sprintf("m%d-1", i), at, event.RoleCustomer, "oi, preciso da segunda via"),
			c.Msg(fmt.Sprintf("m%d-2", i), at+time.Second, event.RoleBot, "Olá! Boas-vindas ao atendimento Acme! Sou a Lia, assistente virtual. 😊\nComo posso ajudar você hoje? Digite o número da opção:\n1) Segunda via de boleto\n2) Negociar débitos"),
			c.Tag(fmt.Sprintf("m%d-3", i), at+2*time.Second, "Menu Principal"))
	}
	events = append(events, c.Info("i1", time.Hour, "NPS", "9"), c.Handoff("h1", time.Hour, event.ActionAssigned, ""))
	d := report.StoredDetail{Session: session.Session{Tenant: "acme", ID: "c639c747-4637-4ff5-99c0-9f0e86d3c21b", Channel: "whatsapp",
		Contact: event.Contact{ID: c.Contact}, StartedAt: storetest.Base, LastActivityAt: storetest.Base.Add(time.Hour),
		WindowEndsAt: storetest.Base.Add(24 * time.Hour), Tags: []string{"Menu Principal"}, Info: map[string]string{"NPS": "9"}}}
	for i := range events {
		body, err := json.Marshal(&events[i])
		if err != nil {
			b.Fatal(err)
		}
		d.Events = append(d.Events, body)
	}
	enc := &jsonlEncoder{now: storetest.Base}
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if out, err = enc.Append(out[:0], &d); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(out)))
}

// TestCanonicalTimeMatchesParseTime: canonicalTime accepts a string of the
// canonical form exactly when event.ParseTime does, for every kind of digit
// out of range, calendar edge and stray byte.
func TestCanonicalTimeMatchesParseTime(t *testing.T) {
	canonical := func(s string) bool {
		const whole = len("2006-01-02T15:04:05")
		n := len(s)
		return s != "" && s[n-1] == 'Z' && (n == whole+1 || n >= whole+3 && n <= whole+5 && s[whole] == '.' && s[n-2] != '0')
	}
	check := func(s string) {
		t.Helper()
		_, err := event.ParseTime(s)
		want := canonical(s) && err == nil
		if got := canonicalTime([]byte(s)); got != want {
			t.Fatalf("%q: canonicalTime %v, ParseTime of a canonical form %v (%v)", s, got, want, err)
		}
	}
	for _, s := range []string{
		"2026-03-02T12:11:11.339Z", "2026-03-02T12:11:11Z", "2026-03-02T12:11:11.3Z", "2026-03-02T12:11:11.33Z",
		"2026-03-02T12:11:11.330Z", "2026-03-02T12:11:11.Z", "2026-03-02T12:11:11.3x9Z", "2026-03-02T12:11:11.339+00:00",
		"2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2000-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "0000-02-29T00:00:00Z",
		"2026-04-31T00:00:00Z", "2026-12-31T23:59:59.999Z", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-01-00T00:00:00Z",
		"2026-01-01T24:00:00Z", "2026-01-01T23:60:00Z", "2026-01-01T23:59:60Z", "9999-12-31T23:59:59.999Z",
		"2026-01-01 00:00:00Z", "2026/01/01T00:00:00Z", "2026-01-01T00:00:0Z", "2026-1-01T00:00:00Z", "+026-01-01T00:00:00Z",
		"2026-01-01T00:00:00z", "2026-01-01T00:00:00.1234Z", "", "Z",
	} {
		check(s)
	}
	r := rand.New(rand.NewPCG(9, 10))
	const chars = "0123456789-T:.Z+x"
	for range 200_000 {
		b := []byte("2024-02-29T23:59:59.999Z")
		for range 1 + r.IntN(3) {
			b[r.IntN(len(b))] = chars[r.IntN(len(chars))]
		}
		check(string(b[:len(b)-r.IntN(5)]) + "Z"[:r.IntN(2)])
	}
}
