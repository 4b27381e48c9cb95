package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/chatreport/chatreport/internal/event"
)

// memberNames are the names Decode reads, at any level.
var memberNames = []string{
	"event_id", "type", "occurred_at", "tenant", "channel", "contact", "session_id", "protocol",
	"author", "text", "content_type", "attachments", "handoff", "tag", "info",
	"id", "phone", "name", "role", "url", "mime_type", "action", "queue", "agent", "reason", "status",
	"key", "value",
}

// foldsToMember reports whether raw has an object member whose name is one of
// memberNames in another case (Unicode case folding, as encoding/json
// matched names): there Decode and encoding/json differ on purpose.
func foldsToMember(raw []byte) bool {
	type container struct{ object, wantName bool }
	dec := json.NewDecoder(bytes.NewReader(raw))
	var open []container
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if name, ok := tok.(string); ok && len(open) > 0 && open[len(open)-1].wantName {
			for _, m := range memberNames {
				if name != m && strings.EqualFold(name, m) {
					return true
				}
			}
			open[len(open)-1].wantName = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			open = append(open, container{object: true, wantName: true})
			continue
		case json.Delim('['):
			open = append(open, container{})
			continue
		case json.Delim('}'), json.Delim(']'):
			if len(open) == 0 {
				return false
			}
			open = open[:len(open)-1]
		}
		// A value ended: in an object, a name comes next.
		if n := len(open); n > 0 && open[n-1].object {
			open[n-1].wantName = true
		}
	}
}

// index drops the element index of attachments from an error's field:
// encoding/json named attachments.url where Decode says attachments[0].url.
var index = regexp.MustCompile(`\[\d+\]`)

// sameAsEncodingJSON checks that Decode judges raw as the encoding/json
// decoder did: the same event, or the same error.
func sameAsEncodingJSON(t *testing.T, raw []byte) {
	t.Helper()
	got, gotErr := event.Decode(raw)
	want, wantErr := event.LegacyDecode(raw)
	if gotErr == nil && wantErr == nil {
		if !equalEvent(got, want) || got.OccurredAt.Location() != want.OccurredAt.Location() {
			t.Fatalf("%.300q:\n Decode        %+v\n encoding/json %+v", raw, got, want)
		}
		return
	}
	if gotErr == nil || wantErr == nil {
		t.Fatalf("%.300q:\n Decode        %v (%+v)\n encoding/json %v (%+v)", raw, gotErr, got, wantErr, want)
	}
	var g, w *event.InvalidError
	if !errors.As(gotErr, &g) || !errors.As(wantErr, &w) {
		t.Fatalf("%.300q: errors %T and %T, want *event.InvalidError", raw, gotErr, wantErr)
	}
	if w.Reason == "not a JSON event object" && g.Field == "" && (bytes.HasPrefix(raw, []byte("\ufeff")) ||
		g.Reason == fmt.Sprintf("event is nested deeper than %d levels", event.MaxDepth)) {
		return // rejected both, and Decode says why: TestDecodeByteOrderMark, TestDecodeNesting
	}
	if index.ReplaceAllString(g.Field, "") != index.ReplaceAllString(w.Field, "") || g.Reason != w.Reason {
		t.Fatalf("%.300q:\n Decode        %v\n encoding/json %v", raw, gotErr, wantErr)
	}
}

// differentialCases are events whose JSON is odd in every way the contract
// leaves to the JSON decoder: repeated names, nulls, escapes, wrong types in
// odd places, syntax errors after type errors.
func differentialCases() [][]byte {
	var out [][]byte
	add := func(s string) { out = append(out, []byte(s)) }
	for _, ex := range examples {
		add(ex.raw)
	}
	for _, c := range contractCases() {
		out = append(out, c.raw)
	}
	const head = `"event_id":"e","type":"message","occurred_at":"2025-10-07T09:26:33Z","tenant":"a","channel":"c"`
	obj := func(members string) { add("{" + head + "," + members + "}") }
	// Repeated names: strings are replaced; objects, and the elements of
	// lists, are read again into the same place.
	obj(`"contact":{"id":"1","name":"n"},"contact":{"id":"2"},"author":{"role":"bot"}`)
	obj(`"contact":{"id":"1","name":"n"},"contact":null,"contact":{"id":"2"},"author":{"role":"bot"}`)
	obj(`"contact":{"id":"1"},"contact":null,"author":{"role":"bot"}`)
	obj(`"contact":{"id":"1"},"author":{"role":"bot","name":"x"},"author":{"id":"b"}`)
	obj(`"contact":{"id":"1"},"author":{"role":"bot"},"text":"a","text":null`)
	obj(`"contact":{"id":"1"},"author":{"role":"bot"},"text":"a","text":"b"`)
	obj(`"contact":{"id":"1"},"author":{"role":"bot"},"attachments":[{"url":"a","name":"n"},{"url":"b"}],"attachments":[{"mime_type":"m"}]`)
	obj(`"contact":{"id":"1"},"author":{"role":"bot"},"attachments":[{"url":"a"},{"url":"b"}],"attachments":[{"url":"c"}],"attachments":[null,null]`)
	obj(`"contact":{"id":"1"},"author":{"role":"bot"},"attachments":[{"url":"a"}],"attachments":[]`)
	obj(`"contact":{"id":"1"},"author":{"role":"bot"},"attachments":[{"url":"a"}],"attachments":null`)
	obj(`"contact":{"id":"1"},"author":{"role":"bot"},"attachments":[null]`)
	obj(`"contact":{"id":"1"},"author":{"role":"bot"},"event_id":"f"`)
	obj(`"contact":{"id":"1"},"author":{"role":"bot"},"event_id":null`)
	obj(`"contact":{"id":"1"},"author":{"role":"bot"},"type":"tag","tag":"x","tag":null`)
	obj(`"contact":{"id":"1"},"author":{"role":"bot"},"type":"tag","tag":"x","tag":"y"`)
	obj(`"contact":{"id":"1"},"type":"handoff","handoff":{"action":"closed","agent":{"id":"a","name":"n"}},"handoff":{"agent":{"id":"b"}}`)
	obj(`"contact":{"id":"1"},"type":"handoff","handoff":{"action":"closed","agent":{"id":"a"}},"handoff":{"agent":null}`)
	obj(`"contact":{"id":"1"},"type":"info","info":{"key":"k","value":1},"info":{"key":"j"}`)
	obj(`"contact":{"id":"1"},"type":"info","info":{"key":"k","value":1},"info":{"value":null}`)
	obj(`"contact":{"id":"1"},"type":"info","info":{"key":"k","value":"a"},"info":null,"info":{"key":"k"}`)
	// info.value of every kind, spaced.
	for _, v := range []string{`"s"`, `""`, `"\u00e9\""`, `0`, `-0.5e+3`, `1E9`, `true`, `false`, `null`, `{}`, `[1]`, ` 7 `, "\n\"x\"\t"} {
		obj(`"contact":{"id":"1"},"type":"info","info":{"key":"k","value":` + v + `}`)
	}
	// Escaped names and values.
	obj(`"contact":{"\u0069d":"1"},"\u0061uthor":{"role":"b\u006ft"},"te\u0078t":"\ud83d\ude00"`)
	obj(`"contact":{"id":"1"},"author":{"role":"bot"},"text":"\ud800","tag":"\udc00x","content_type":"\ud800\u0041"`)
	obj(`"contact":{"id":"1"},"author":{"role":"bot"},"text":"a\"b\\c\/d\b\f\n\r\t"`)
	obj(`"contact":{"id":"1"},"author":{"role":"bot"},"session_id":"C639C747-4637-4FF5-99C0-9F0E86D3C21\u0042"`)
	// Wrong types, in every kind of member, and then other errors.
	for _, m := range []string{
		`"contact":1`, `"contact":[]`, `"contact":"x"`, `"contact":true`, `"contact":{"id":{}}`, `"contact":{"phone":[]}`,
		`"author":"bot"`, `"author":{"role":1}`, `"author":{"id":false}`, `"text":{}`, `"content_type":1`,
		`"attachments":{}`, `"attachments":"a"`, `"attachments":[1]`, `"attachments":[[]]`, `"attachments":[{"url":"a"},{"url":1}]`,
		`"attachments":[{"url":"a"},"x"]`, `"attachments":[{"name":1}]`, `"handoff":1`, `"handoff":{"agent":1}`,
		`"handoff":{"agent":{"id":1}}`, `"handoff":{"status":[]}`, `"tag":1`, `"tag":{}`, `"info":[]`, `"info":{"key":1}`,
		`"type":1`, `"event_id":true`, `"occurred_at":1.5`, `"session_id":[]`, `"protocol":1`,
	} {
		obj(`"contact":{"id":"1"},"author":{"role":"bot"},` + m)
		obj(m + `,"contact":{"id":"1"},"author":{"role":"bot"},"text":5`)
		obj(m + `,"contact":{"id":"1"},"author":{"role":"bot"},"x":[1,]`)
	}
	// Unknown members of every kind, nested.
	obj(`"contact":{"id":"1","x":{"y":[1,{"z":null}]}},"author":{"role":"bot","a":[]},"u":-1.5e-3,"v":[[[]]],"w":{"contact":1}`)
	// Syntax.
	for _, s := range []string{
		`{}`, `null`, ` null `, `[]`, `"x"`, `1`, `true`, `{"a":1,}`, `{"a":1`, `{"a"}`, `{"a":}`, `{,}`, `{"a":1}}`,
		`{"a":1} {}`, `{"a":1}x`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`, `{"a":"\x"}`, `{"a":"` + "\x01" + `"}`,
		`{"a":tru}`, `{"a":nul}`, `{'a':1}`, "{\"a\":1}\n", "\t{\"a\" : 1 }\r\n",
		`{"event_id":1,"a":}`, `{"contact":1,`, `{"contact":{"id":1}`,
	} {
		add(s)
	}
	// Nesting at and past the limit of both decoders.
	for _, depth := range []int{9998, 9999, 10000, 10001} {
		add(`{"x":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + "}")
		add(`{"x":` + strings.Repeat(`{"a":`, depth-1) + "1" + strings.Repeat("}", depth-1) + "}")
	}
	return out
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for i, raw := range differentialCases() {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if foldsToMember(raw) {
				t.Skip("a member name in another case: TestDecodeFieldNames")
			}
			sameAsEncodingJSON(t, raw)
		})
	}
}

// Decode reads exactly what encoding/json read, apart from names in another
// case.
func FuzzDecodeMatchesEncodingJSON(f *testing.F) {
	for _, raw := range differentialCases() {
		if len(raw) < 4096 {
			f.Add(raw)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if foldsToMember(raw) {
			return // the intended difference: TestDecodeFieldNames
		}
		sameAsEncodingJSON(t, raw)
	})
}

// Decode reuses its parsers; events decoded at the same time must not share
// anything but their input (run with -race).
func TestDecodeConcurrent(t *testing.T) {
	want := make([]event.Event, len(examples))
	for i, ex := range examples {
		want[i] = decodeOK(t, []byte(ex.raw))
	}
	done := make(chan error)
	for g := range 4 {
		go func() {
			for n := range 200 {
				i := (g + n) % len(examples)
				raw := []byte(examples[i].raw)
				ev, err := event.Decode(raw)
				clear(raw) // the event must not alias its input
				if err != nil || !equalEvent(ev, want[i]) {
					done <- fmt.Errorf("%s: %v, %+v", examples[i].name, err, ev)
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// Field names match exactly: a name in another case is an unknown member,
// ignored like any other (docs/events.md, "General rules").
func TestDecodeFieldNames(t *testing.T) {
	upper := func(base, name string) []byte {
		return []byte(strings.Replace(base, `"`+name+`":`, `"`+strings.ToUpper(name)+`":`, 1))
	}
	rejected := []struct {
		raw   []byte
		field string
	}{
		{upper(botMessage, "event_id"), "event_id"},
		{upper(botMessage, "type"), "type"},
		{upper(botMessage, "occurred_at"), "occurred_at"},
		{upper(botMessage, "tenant"), "tenant"},
		{upper(botMessage, "contact"), "contact"},
		{upper(botMessage, "author"), "author"},
		{upper(botMessage, "role"), "author.role"},
		{upper(handoffAssigned, "action"), "handoff.action"},
		{upper(tagEvent, "tag"), "tag"},
		{upper(infoString, "key"), "info.key"},
		{upper(infoString, "value"), "info.value"},
		{[]byte(strings.Replace(botMessage, `"event_id"`, `"Event_Id"`, 1)), "event_id"},
		// U+212A KELVIN SIGN folds to k, U+017F LATIN SMALL LETTER LONG S to s.
		{[]byte(strings.Replace(infoString, `"key"`, "\"\u212aey\"", 1)), "info.key"},
		{[]byte(strings.Replace(handoffClosed, `"status": "resolved"`, "\"\u017ftatus\": \"Not A Token\"", 1)), ""},
	}
	for _, tt := range rejected {
		if tt.field == "" {
			decodeOK(t, tt.raw) // the odd status is an unknown member
			continue
		}
		wantInvalid(t, tt.raw, tt.field)
	}
	// Optional members in another case are unknown, so ignored.
	raw := customerMessage
	for _, name := range []string{"text", "phone", "session_id", "protocol"} {
		raw = string(upper(raw, name))
	}
	ev := decodeOK(t, []byte(raw))
	if ev.Text != "" || ev.Contact.Phone != "" || ev.SessionID != "" || ev.Protocol != "" {
		t.Errorf("members in upper case were read: %+v", ev)
	}
	// The exact name wins over the other case, wherever it comes.
	for _, raw := range []string{
		strings.Replace(botMessage, `"type"`, `"EVENT_ID": "other", "type"`, 1),
		strings.Replace(botMessage, `"event_id"`, `"EVENT_ID": "other", "event_id"`, 1),
	} {
		if ev := decodeOK(t, []byte(raw)); ev.EventID != "01JA2M7R2B7KQ1W3E5R7T9Y1U3" {
			t.Errorf("EventID = %q", ev.EventID)
		}
	}
	// An escaped name is the name it spells.
	if ev := decodeOK(t, []byte(strings.Replace(botMessage, `"event_id"`, `"event\u005fid"`, 1))); ev.EventID != "01JA2M7R2B7KQ1W3E5R7T9Y1U3" {
		t.Errorf("EventID = %q", ev.EventID)
	}
}

// A name given twice in one object: the later value wins, and an object
// given twice is read into the same place, so its members combine
// (docs/events.md, "General rules").
func TestDecodeRepeatedNames(t *testing.T) {
	ev := decodeOK(t, []byte(strings.Replace(botMessage, `"text"`, `"text": "first", "text"`, 1)))
	if ev.Text != "Claro! Vou transferir você para um atendente." {
		t.Errorf("Text = %q", ev.Text)
	}
	ev = decodeOK(t, []byte(strings.Replace(customerMessage, `"author"`, `"contact": {"id": "other"}, "author"`, 1)))
	if ev.Contact != (event.Contact{ID: "other", Phone: "+5511987654321", Name: "Maria Souza"}) {
		t.Errorf("Contact = %+v", ev.Contact)
	}
	ev = decodeOK(t, []byte(strings.Replace(botMessage, `"text"`, `"text": null, "text"`, 1)))
	if ev.Text == "" {
		t.Error("a null before the text cleared it")
	}
	wantInvalid(t, []byte(strings.Replace(botMessage, `"text"`, `"author": null, "text"`, 1)), "author")
}

func TestParseTimeMatchesTimeParse(t *testing.T) {
	var n int
	check := func(s string) {
		n++
		got, gotErr := event.ParseTime(s)
		want, wantErr := event.LegacyParseTime(s)
		if (gotErr == nil) != (wantErr == nil) || !got.Equal(want) || got.Location() != want.Location() {
			t.Fatalf("ParseTime(%q) = %v, %v; time.Parse: %v, %v", s, got, gotErr, want, wantErr)
		}
	}
	for _, y := range []string{"0000", "0001", "0004", "0100", "1900", "1970", "2000", "2024", "2025", "2100", "2400", "9999"} {
		for m := 0; m <= 13; m++ {
			for d := 0; d <= 32; d++ {
				check(fmt.Sprintf("%s-%02d-%02dT12:00:00Z", y, m, d))
			}
		}
	}
	for _, date := range []string{"0000-01-01", "2024-02-29", "2025-10-07", "9999-12-31"} {
		for _, clock := range []string{"00:00:00", "23:59:59", "24:00:00", "23:60:00", "23:59:60", "9:26:33", "09:26:3", "09-26-33"} {
			for _, frac := range []string{"", ".", ".0", ".5", ".123", ".123456789", ".9999999999", ".000000000001", ",5", ".5.5", ".x"} {
				for _, zone := range []string{"Z", "z", "", "+00:00", "-00:00", "+01:00", "-03:00", "+05:30", "+14:00", "+23:59", "-23:59",
					"+24:00", "+05:60", "-0300", "+3:00", "+03", "Z ", "ZZ", "+03:00:00", "UTC"} {
					check(date + "T" + clock + frac + zone)
				}
			}
		}
	}
	for _, s := range []string{"", "2025", "2025-10-07", "2025-10-07 09:26:33Z", "2025-10-07t09:26:33Z", "+2025-10-07T09:26:33Z",
		"２025-10-07T09:26:33Z", "2025-10-07T09:26:33.\u0661Z"} {
		check(s)
	}
	if n < 10000 {
		t.Fatalf("only %d cases", n)
	}
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2025-10-07T09:26:33.646-03:00", "0000-01-01T00:00:00+01:00", "9999-12-31T23:59:59.999999999-23:59",
		"2024-02-29T00:00:00Z", "2016-12-31T23:59:60Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, gotErr := event.ParseTime(s)
		want, wantErr := event.LegacyParseTime(s)
		if (gotErr == nil) != (wantErr == nil) || !got.Equal(want) {
			t.Fatalf("ParseTime(%q) = %v, %v; time.Parse: %v, %v", s, got, gotErr, want, wantErr)
		}
	})
}
