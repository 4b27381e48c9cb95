package event_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
)

// A byte-order mark before the object is refused with a reason that says
// so (docs/events.md, "General rules"); one inside a string is text.
func TestDecodeByteOrderMark(t *testing.T) {
	ie := wantInvalid(t, []byte("\ufeff"+botMessage), "")
	if ie.Reason != "event starts with a byte-order mark (U+FEFF): send the JSON without it" {
		t.Errorf("Reason = %q", ie.Reason)
	}
	ev := decodeOK(t, []byte(strings.Replace(botMessage, "Claro!", "\ufeffClaro!", 1)))
	if !strings.HasPrefix(ev.Text, "\ufeff") {
		t.Errorf("Text = %q", ev.Text)
	}
	// After white space it is no JSON at all.
	if ie := wantInvalid(t, []byte(" \ufeff"+botMessage), ""); ie.Reason != "not a JSON event object" {
		t.Errorf("Reason = %q", ie.Reason)
	}
}

// An unknown field is ignored at any depth up to MaxDepth levels, the event
// counting as one; deeper, the event is refused with a reason that says so
// (docs/events.md, "General rules"). It used to be "not a JSON event object".
func TestDecodeNesting(t *testing.T) {
	arrays := func(depth int) string {
		return strings.Replace(botMessage, `"text"`, `"x": `+strings.Repeat("[", depth-1)+strings.Repeat("]", depth-1)+`, "text"`, 1)
	}
	objects := func(depth int) string {
		return strings.Replace(botMessage, `"text"`, `"x": `+strings.Repeat(`{"a":`, depth-1)+"1"+strings.Repeat("}", depth-1)+`, "text"`, 1)
	}
	for _, nested := range []func(int) string{arrays, objects} {
		decodeOK(t, []byte(nested(event.MaxDepth)))
		for _, depth := range []int{event.MaxDepth + 1, 20000} {
			if ie := wantInvalid(t, []byte(nested(depth)), ""); ie.Reason != "event is nested deeper than 10000 levels" {
				t.Errorf("depth %d: Reason = %q", depth, ie.Reason)
			}
		}
	}
	// Inside a known member too.
	raw := strings.Replace(botMessage, `"role": "bot"`, `"role": "bot", "x": `+strings.Repeat("[", 20000)+strings.Repeat("]", 20000), 1)
	if ie := wantInvalid(t, []byte(raw), ""); ie.Reason != "event is nested deeper than 10000 levels" {
		t.Errorf("Reason = %q", ie.Reason)
	}
	// A syntax error well within the limit is still not JSON.
	if ie := wantInvalid(t, []byte(`{"x":[[[}`), ""); ie.Reason != "not a JSON event object" {
		t.Errorf("Reason = %q", ie.Reason)
	}
}

// Repeated names, as docs/events.md ("General rules") settles them: a later
// string replaces an earlier one but a later null does not clear it; a later
// object is read into the earlier one and a later null clears it (an object,
// a list, tag); a value of the wrong type is an error wherever it comes.
func TestDecodeRepeatedNamesSettled(t *testing.T) {
	if ev := decodeOK(t, []byte(strings.Replace(botMessage, `"text"`, `"text": "a", "text": null, "text"`, 1))); ev.Text == "a" {
		t.Errorf("Text = %q", ev.Text)
	}
	ev := decodeOK(t, []byte(strings.Replace(botMessage, `"text": "Claro! Vou transferir você para um atendente."`, `"text": "first", "text": null`, 1)))
	if ev.Text != "first" {
		t.Errorf("a later null cleared the text: %q", ev.Text)
	}
	wantInvalid(t, []byte(strings.Replace(tagEvent, `"tag": `, `"tag": "x", "tag": null, "other": `, 1)), "tag")
	wantInvalid(t, []byte(strings.Replace(botMessage, `"text"`, `"event_id": 1, "event_id": "again", "text"`, 1)), "event_id")
	wantInvalid(t, []byte(strings.Replace(botMessage, `"text"`, `"event_id": "again", "event_id": 1, "text"`, 1)), "event_id")
}

// -00:00 ("UTC, local offset unknown" in RFC 3339) is the same instant as Z.
func TestParseTimeUnknownOffset(t *testing.T) {
	got, err := event.ParseTime("2025-10-07T09:26:33.646-00:00")
	if err != nil || !got.Equal(time.Date(2025, 10, 7, 9, 26, 33, 646e6, time.UTC)) {
		t.Fatalf("ParseTime = %v, %v", got, err)
	}
}

// Every example of the Time table of docs/events.md is accepted or rejected
// as the table says.
func TestDocsTimeTable(t *testing.T) {
	doc, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(doc), "\n## Time\n")
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| (`[^|]+`) \\| ([^|]+) \\|$")
	code := regexp.MustCompile("`([^`]+)`")
	n := 0
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		rejected := strings.HasPrefix(m[2], "rejected")
		for _, c := range code.FindAllStringSubmatch(m[1], -1) {
			n++
			raw := strings.Replace(botMessage, `"2025-10-07T12:26:34Z"`, `"`+c[1]+`"`, 1)
			if _, err := event.Decode([]byte(raw)); (err != nil) != rejected {
				t.Errorf("%s: Decode error %v, docs say %q", c[1], err, m[2])
			}
		}
	}
	if n < 9 {
		t.Fatalf("read %d examples of the Time table", n)
	}
}
