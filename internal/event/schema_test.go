package event_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/chatreport/chatreport/internal/event"
)

// schemaPath is the contract's JSON Schema, published to producers
// (docs/events.md), beside the decoder it describes.
const schemaPath = "event.schema.json"

// contractCase is one event of the table that the schema and Decode must judge
// alike. valid is what the contract says. A case may be marked blind: a rule
// JSON Schema cannot express (sizes in bytes, raw UTF-8), so the schema
// accepts what Decode rightly rejects.
type contractCase struct {
	name  string
	raw   []byte
	valid bool
	blind string
}

func contractCases() []contractCase {
	long := func(s string, n int) string { return strings.Repeat(s, n) }
	cases := []contractCase{}
	for _, ex := range examples {
		cases = append(cases, contractCase{name: ex.name, raw: []byte(ex.raw), valid: true})
	}
	ok := func(name string, raw []byte) { cases = append(cases, contractCase{name: name, raw: raw, valid: true}) }
	bad := func(name string, raw []byte) { cases = append(cases, contractCase{name: name, raw: raw}) }

	ok("minimal message", []byte(`{"event_id":"e","type":"message","occurred_at":"2025-10-07T09:26:33Z","tenant":"a","channel":"c","contact":{"id":"1"},"author":{"role":"bot"}}`))
	ok("unknown fields", variant(agentMessage, set("schema_version", 2), set("contact.email", "m@example.com"), set("author.avatar", 1)))
	ok("null optional fields", variant(botMessage, set("session_id", nil), set("protocol", nil), set("contact.phone", nil), set("text", nil), set("content_type", nil), set("attachments", nil)))
	ok("empty session_id and protocol", variant(botMessage, set("session_id", ""), set("protocol", "")))
	ok("upper-case session_id", variant(botMessage, set("session_id", "C639C747-4637-4FF5-99C0-9F0E86D3C21B")))
	ok("protocol on a leap day", variant(botMessage, set("protocol", "20240229000000001")))
	ok("protocol on 29 February 2000", variant(botMessage, set("protocol", "20000229000000001")))
	ok("occurred_at on a leap day with a fraction", variant(botMessage, set("occurred_at", "2024-02-29T23:59:59.999999999+14:00")))
	ok("occurred_at -00:00", variant(botMessage, set("occurred_at", "2025-10-07T09:26:33-00:00")))
	ok("status another token", variant(handoffClosed, set("handoff.status", "transferred-to-email")))
	ok("status on requested", variant(handoffRequested, set("handoff.status", "pending")))
	ok("empty status", variant(handoffClosed, set("handoff.status", "")))
	ok("null agent", variant(handoffAssigned, set("handoff.agent", nil)))
	ok("tag with accents", variant(tagEvent, set("tag", "Emissão de 2ª via")))
	ok("tag between spaces", variant(tagEvent, set("tag", "\u00a0 x \u3000")))
	ok("tag of a zero-width space", variant(tagEvent, set("tag", "\u200b")))
	ok("info value 1.50", variant(infoString, set("info.value", raw("1.50"))))
	ok("info value -3", variant(infoString, set("info.value", raw("-3"))))
	ok("info value false", variant(infoString, set("info.value", false)))
	ok("info value empty string", variant(infoString, set("info.value", "")))
	ok("other types' fields are not checked", variant(tagEvent,
		set("author", map[string]any{"role": "robot"}), set("text", long("t", 70000)),
		set("attachments", []any{nil, map[string]any{}}), set("handoff", map[string]any{"action": "opened", "agent": map[string]any{}}),
		set("info", map[string]any{"key": "bad key", "value": nil})))
	ok("64 KiB of text", variant(botMessage, set("text", long("t", 64<<10))))
	ok("empty attachments", variant(agentMessage, set("attachments", []any{})))

	bad("not JSON", []byte("not json"))
	bad("JSON array", []byte(`[`+botMessage+`]`))
	bad("JSON null", []byte(`null`))
	bad("empty object", []byte(`{}`))
	bad("trailing data", []byte(botMessage+`{}`))
	for _, f := range []string{"event_id", "type", "occurred_at", "tenant", "channel", "contact"} {
		bad(f+" missing", variant(botMessage, del(f)))
	}
	bad("event_id empty", variant(botMessage, set("event_id", "")))
	bad("event_id of 129 characters", variant(botMessage, set("event_id", long("e", 129))))
	bad("event_id a number", variant(botMessage, set("event_id", 42)))
	bad("type unknown", variant(botMessage, set("type", "event")))
	bad("type null", variant(botMessage, set("type", nil)))
	bad("occurred_at without offset", variant(botMessage, set("occurred_at", "2025-10-07T09:26:33")))
	bad("occurred_at lower-case", variant(botMessage, set("occurred_at", "2025-10-07t09:26:33z")))
	bad("occurred_at with a space", variant(botMessage, set("occurred_at", "2025-10-07 09:26:33Z")))
	bad("occurred_at offset without colon", variant(botMessage, set("occurred_at", "2025-10-07T09:26:33+0300")))
	bad("occurred_at 31 September", variant(botMessage, set("occurred_at", "2025-09-31T09:26:33Z")))
	bad("occurred_at 29 February 2100", variant(botMessage, set("occurred_at", "2100-02-29T09:26:33Z")))
	bad("occurred_at leap second", variant(botMessage, set("occurred_at", "2016-12-31T23:59:60Z")))
	bad("occurred_at a number", variant(botMessage, set("occurred_at", 1759829193)))
	bad("tenant upper-case", variant(botMessage, set("tenant", "Acme")))
	bad("tenant starting with -", variant(botMessage, set("tenant", "-acme")))
	bad("tenant of 64 characters", variant(botMessage, set("tenant", long("t", 64))))
	bad("tenant with a newline", variant(botMessage, set("tenant", "acme\n")))
	bad("channel upper-case", variant(botMessage, set("channel", "WhatsApp")))
	bad("channel of 33 characters", variant(botMessage, set("channel", long("c", 33))))
	bad("contact null", variant(botMessage, set("contact", nil)))
	bad("contact a string", variant(botMessage, set("contact", "5511987654321")))
	bad("contact without id", variant(botMessage, set("contact", map[string]any{"phone": "+55"})))
	bad("contact id empty", variant(botMessage, set("contact.id", "")))
	bad("contact id of 257 characters", variant(botMessage, set("contact.id", long("i", 257))))
	bad("contact phone a number", variant(botMessage, set("contact.phone", 5511987654321)))
	bad("contact name of 257 characters", variant(botMessage, set("contact.name", long("n", 257))))
	bad("session_id without hyphens", variant(botMessage, set("session_id", "c639c74746374ff599c09f0e86d3c21b")))
	bad("session_id in braces", variant(botMessage, set("session_id", "{c639c747-4637-4ff5-99c0-9f0e86d3c21b}")))
	bad("protocol of 16 digits", variant(botMessage, set("protocol", "2025100709263364")))
	bad("protocol with a letter", variant(botMessage, set("protocol", "2025100709263364a")))
	bad("protocol in month 13", variant(botMessage, set("protocol", "20251307092633646")))
	bad("protocol on 31 April", variant(botMessage, set("protocol", "20250431092633646")))
	bad("protocol on 29 February 2025", variant(botMessage, set("protocol", "20250229092633646")))
	bad("protocol on 29 February 1900", variant(botMessage, set("protocol", "19000229092633646")))
	bad("protocol a number", variant(botMessage, set("protocol", 20251007092633646)))
	bad("message without author", variant(botMessage, del("author")))
	bad("message with null author", variant(botMessage, set("author", nil)))
	bad("author without role", variant(botMessage, del("author.role")))
	bad("author role unknown", variant(botMessage, set("author.role", "system")))
	bad("author name of 257 characters", variant(botMessage, set("author.name", long("a", 257))))
	bad("text of 65537 characters", variant(botMessage, set("text", long("t", 64<<10+1))))
	bad("65 attachments", variant(agentMessage, set("attachments", func() []any {
		a := make([]any, 65)
		for i := range a {
			a[i] = map[string]any{"url": "u"}
		}
		return a
	}())))
	bad("attachment without url", variant(agentMessage, set("attachments", []any{map[string]any{"name": "a.png"}})))
	bad("attachment null", variant(agentMessage, set("attachments", []any{nil})))
	bad("handoff missing", variant(handoffRequested, del("handoff")))
	bad("handoff action unknown", variant(handoffRequested, set("handoff.action", "opened")))
	bad("handoff agent without id", variant(handoffAssigned, set("handoff.agent", map[string]any{"name": "João"})))
	bad("handoff agent a string", variant(handoffAssigned, set("handoff.agent", "agent-042")))
	bad("handoff status upper-case", variant(handoffClosed, set("handoff.status", "Resolved")))
	bad("handoff status of 65 characters", variant(handoffClosed, set("handoff.status", long("s", 65))))
	bad("tag missing", variant(tagEvent, del("tag")))
	bad("tag empty", variant(tagEvent, set("tag", "")))
	bad("tag of white space", variant(tagEvent, set("tag", " \t\n\v\f\r\u0085\u00a0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000")))
	bad("tag of 129 characters", variant(tagEvent, set("tag", long("g", 129))))
	bad("tag a number on a message", variant(botMessage, set("tag", 5)))
	bad("info missing", variant(infoString, del("info")))
	bad("info key with a space", variant(infoString, set("info.key", "NAO TRANSBORDADA")))
	bad("info key of 129 characters", variant(infoString, set("info.key", long("k", 129))))
	bad("info key missing", variant(infoString, del("info.key")))
	bad("info value missing", variant(infoString, del("info.value")))
	bad("info value null", variant(infoString, set("info.value", nil)))
	bad("info value an object", variant(infoString, set("info.value", map[string]any{})))
	bad("info value of 4097 characters", variant(infoString, set("info.value", long("v", 4097))))

	blind := func(name, why string, raw []byte) {
		cases = append(cases, contractCase{name: name, raw: raw, blind: why})
	}
	blind("event over 1 MiB", "the size of the whole event", padded(nopTB{}, botMessage, event.MaxEventBytes+1))
	blind("event_id of 65 two-byte characters", "130 bytes but 65 characters", variant(botMessage, set("event_id", long("é", 65))))
	blind("contact name of 129 two-byte characters", "258 bytes", variant(botMessage, set("contact.name", long("ã", 129))))
	blind("text of 32769 two-byte characters", "65538 bytes", variant(botMessage, set("text", long("ç", 32<<10+1))))
	blind("tag of 65 two-byte characters", "130 bytes", variant(tagEvent, set("tag", long("ç", 65))))
	blind("info value of 2049 two-byte characters", "4098 bytes", variant(infoString, set("info.value", long("é", 2049))))
	blind("info value a number of 4097 digits", "the length of a number's text", variant(infoString, set("info.value", raw(long("9", 4097)))))
	blind("invalid UTF-8", "JSON parsers replace invalid bytes before a schema sees them", []byte(strings.Replace(botMessage, "Claro!", "Claro!\xff", 1)))

	// Forms time.Parse and encoding/json accept and the contract does not.
	bad("occurred_at hour of one digit", variant(botMessage, set("occurred_at", "2025-10-07T9:26:33Z")))
	bad("occurred_at comma before the fraction", variant(botMessage, set("occurred_at", "2025-10-07T09:26:33,5Z")))
	bad("occurred_at offset +24:00", variant(botMessage, set("occurred_at", "2025-10-07T09:26:33+24:00")))
	bad("occurred_at offset +05:60", variant(botMessage, set("occurred_at", "2025-10-07T09:26:33+05:60")))
	bad("field name in upper case", []byte(strings.Replace(botMessage, `"event_id"`, `"EVENT_ID"`, 1)))
	return cases
}

// nopTB lets padded build table rows outside a test.
type nopTB struct{ testing.TB }

func (nopTB) Helper()                      {}
func (nopTB) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

func compileSchema(t testing.TB, assertFormat bool) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", schemaPath, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if assertFormat {
		c.AssertFormat()
	}
	if err := c.AddResource("event.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("event.schema.json")
	if err != nil {
		t.Fatalf("compiling %s: %v", schemaPath, err)
	}
	return sch
}

// validate reports whether the schema accepts raw; a document that is not
// JSON is not valid either.
func validate(sch *jsonschema.Schema, raw []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

func TestSchemaAgreesWithDecode(t *testing.T) {
	cases := contractCases()
	var valid, invalid int
	names := map[string]bool{}
	for _, c := range cases {
		if names[c.name] {
			t.Errorf("case %q twice", c.name)
		}
		names[c.name] = true
		if c.valid {
			valid++
		} else {
			invalid++
		}
	}
	if valid < 25 || invalid < 25 {
		t.Fatalf("%d valid and %d invalid cases, want at least 25 of each", valid, invalid)
	}
	// The schema must hold on its own (most validators treat format as an
	// annotation) and must not conflict with a validator that asserts format.
	for _, assertFormat := range []bool{false, true} {
		sch := compileSchema(t, assertFormat)
		t.Run(fmt.Sprintf("assertFormat=%v", assertFormat), func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					_, decodeErr := event.Decode(c.raw)
					schemaErr := validate(sch, c.raw)
					decodeOK, schemaOK := decodeErr == nil, schemaErr == nil
					switch {
					case c.blind != "":
						if c.valid || decodeOK {
							t.Fatalf("blind case must be one Decode rejects; Decode: %v", decodeErr)
						}
						if !schemaOK {
							t.Errorf("the schema now rejects it (%v); drop the blind mark", schemaErr)
						}
					default:
						if decodeOK != c.valid {
							t.Errorf("Decode valid=%v, want %v: %v", decodeOK, c.valid, decodeErr)
						}
						if schemaOK != c.valid {
							t.Errorf("schema valid=%v, want %v: %v", schemaOK, c.valid, schemaErr)
						}
					}
				})
			}
		})
	}
}

// Every JSON block of docs/events.md is a complete, valid event.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	sch := compileSchema(t, true)
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) < len(examples) {
		t.Fatalf("%d JSON blocks in docs/events.md, want at least %d", len(blocks), len(examples))
	}
	for i, b := range blocks {
		if _, err := event.Decode(b[1]); err != nil {
			t.Errorf("block %d: Decode: %v\n%s", i+1, err, b[1])
		}
		if err := validate(sch, b[1]); err != nil {
			t.Errorf("block %d: schema: %v", i+1, err)
		}
	}
	// The code examples of this package are the documented ones.
	for _, ex := range examples {
		if !bytes.Contains(doc, []byte(ex.raw)) {
			t.Errorf("docs/events.md lacks the %s example", ex.name)
		}
	}
}

// schemaPattern returns the pattern at a path of keywords in the schema file,
// compiled the way the validator compiles it (Go's regexp).
func schemaPattern(t *testing.T, path ...any) *regexp.Regexp {
	t.Helper()
	b, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var node any
	if err := json.Unmarshal(b, &node); err != nil {
		t.Fatal(err)
	}
	for _, p := range path {
		switch p := p.(type) {
		case string:
			node = node.(map[string]any)[p]
		case int:
			node = node.([]any)[p]
		}
	}
	re, err := regexp.Compile(node.(map[string]any)["pattern"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return re
}

// The protocol pattern encodes the calendar; it must agree with IsProtocol for
// every day of every year, and a few impossible ones.
func TestSchemaProtocolCalendar(t *testing.T) {
	re := schemaPattern(t, "properties", "protocol")
	check := func(s string) {
		if re.MatchString(s) != event.IsProtocol(s) {
			t.Fatalf("%s: pattern %v, IsProtocol %v", s, re.MatchString(s), event.IsProtocol(s))
		}
	}
	for y := 0; y <= 9999; y++ {
		for m := 0; m <= 13; m++ {
			days := []int{0, 1, 28, 29, 30, 31, 32}
			if y >= 2020 && y <= 2030 {
				days = nil
				for d := 0; d <= 40; d++ {
					days = append(days, d)
				}
			}
			for _, d := range days {
				check(fmt.Sprintf("%04d%02d%02d092633646", y, m, d))
			}
		}
	}
	for _, s := range []string{"", "2025100709263364", "202510070926336460", "2025100709263364x", "x0251007092633646", "２0251007092633646"} {
		if event.IsProtocol(s) {
			t.Errorf("IsProtocol(%q)", s)
		}
		if s != "" && re.MatchString(s) {
			t.Errorf("pattern matches %q", s)
		}
	}
}

// The occurred_at pattern must accept exactly what time.Parse accepts, apart
// from the forms where time.Parse is more lenient than RFC 3339, which the
// pattern and ParseTime reject.
func TestSchemaOccurredAtPattern(t *testing.T) {
	re := schemaPattern(t, "properties", "occurred_at")
	parses := func(s string) bool {
		_, err := time.Parse(time.RFC3339Nano, s)
		return err == nil
	}
	for _, y := range []int{0, 1, 4, 100, 400, 1900, 1970, 2000, 2023, 2024, 2025, 2100, 2400, 9999} {
		for m := 0; m <= 13; m++ {
			for d := 0; d <= 32; d++ {
				s := fmt.Sprintf("%04d-%02d-%02dT12:00:00Z", y, m, d)
				if re.MatchString(s) != parses(s) {
					t.Errorf("%s: pattern %v, time.Parse %v", s, re.MatchString(s), parses(s))
				}
			}
		}
	}
	agree := []string{
		"2025-10-07T00:00:00Z", "2025-10-07T23:59:59Z", "2025-10-07T24:00:00Z", "2025-10-07T23:60:00Z",
		"2025-10-07T23:59:60Z", "2025-10-07T09:26:33.1Z", "2025-10-07T09:26:33.123456789012Z",
		"2025-10-07T09:26:33.Z", "2025-10-07T09:26:33+00:00", "2025-10-07T09:26:33-23:59",
		"2025-10-07T09:26:33+2300", "2025-10-07T09:26:33", "2025-10-07t09:26:33Z", "2025-10-07T09:26:33z",
		"2025-10-07 09:26:33Z", "25-10-07T09:26:33Z", "2025-10-07T09:26Z", "2025-10-07T09:26:33ZZ",
		"2025-10-07T09:26:33+03:00 ", " 2025-10-07T09:26:33Z", "2025-10-07T09:26:33.5+01:30",
	}
	for _, s := range agree {
		if re.MatchString(s) != parses(s) {
			t.Errorf("%q: pattern %v, time.Parse %v", s, re.MatchString(s), parses(s))
		}
	}
	// Where time.Parse is more lenient than RFC 3339.
	for _, s := range []string{"2025-10-07T9:26:33Z", "2025-10-07T09:26:33,5Z", "2025-10-07T09:26:33+24:00", "2025-10-07T09:26:33+05:60"} {
		if re.MatchString(s) {
			t.Errorf("pattern matches %q, which is not RFC 3339", s)
		}
		if _, err := event.ParseTime(s); err == nil {
			t.Errorf("ParseTime accepts %q, which is not RFC 3339", s)
		}
	}
}

// The tag pattern asks for one character that strings.TrimSpace keeps.
func TestSchemaTagPattern(t *testing.T) {
	re := schemaPattern(t, "allOf", 2, "then", "properties", "tag")
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		s := string(r)
		if re.MatchString(s) != (strings.TrimSpace(s) != "") {
			t.Errorf("U+%04X: pattern %v, TrimSpace keeps it %v", r, re.MatchString(s), strings.TrimSpace(s) != "")
		}
	}
}

// The token patterns agree with the functions Decode uses, on every string of
// up to two printable ASCII characters and on long ones around the limits.
func TestSchemaTokenPatterns(t *testing.T) {
	tests := []struct {
		name string
		re   *regexp.Regexp
		ok   func(string) bool
		max  int
	}{
		{"tenant", schemaPattern(t, "properties", "tenant"), func(s string) bool { return event.IsToken(s, 63, false) }, 63},
		{"channel", schemaPattern(t, "properties", "channel"), func(s string) bool { return event.IsToken(s, 32, false) }, 32},
		{"status", schemaPattern(t, "allOf", 1, "then", "properties", "handoff", "properties", "status"),
			func(s string) bool { return s == "" || event.IsToken(s, 64, true) }, 64},
		{"info.key", schemaPattern(t, "allOf", 3, "then", "properties", "info", "properties", "key"), event.IsInfoKey, 128},
		{"session_id", schemaPattern(t, "properties", "session_id"), func(s string) bool { return s == "" || event.IsUUID(s) }, 36},
	}
	var short []string
	short = append(short, "")
	for a := byte(0x20); a < 0x7f; a++ {
		short = append(short, string(a))
		for b := byte(0x20); b < 0x7f; b++ {
			short = append(short, string([]byte{a, b}))
		}
	}
	short = append(short, "\n", "a\n", "é", "aé")
	uuid := "c639c747-4637-4ff5-99c0-9f0e86d3c21b"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cases := append([]string(nil), short...)
			for _, c := range []string{"a", "0", "_", "-", "A", "."} {
				cases = append(cases, strings.Repeat(c, tt.max), strings.Repeat(c, tt.max+1), "a"+strings.Repeat(c, tt.max-1))
			}
			for i := range uuid {
				for c := byte(0x20); c < 0x7f; c++ {
					cases = append(cases, uuid[:i]+string(c)+uuid[i+1:])
				}
			}
			for _, s := range cases {
				if tt.re.MatchString(s) != tt.ok(s) {
					t.Errorf("%q: pattern %v, Decode %v", s, tt.re.MatchString(s), tt.ok(s))
				}
			}
		})
	}
}
