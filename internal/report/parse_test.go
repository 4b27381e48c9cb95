package report

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func ptr(s string) *string { return &s }

var (
	saoPaulo = mustLocation("America/Sao_Paulo")
	parseNow = time.Date(2025, 10, 20, 12, 0, 0, 0, time.UTC)
	oct1SP   = time.Date(2025, 10, 1, 3, 0, 0, 0, time.UTC) // 2025-10-01 00:00 in São Paulo
	validID  = "c639c747-4637-4ff5-99c0-9f0e86d3c21b"
)

func mustLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// fe is a FieldError without its message.
type fe struct {
	field string
	index int
	part  string
	code  Code
	limit int
}

func brief(errs []FieldError) []fe {
	var out []fe
	for _, e := range errs {
		out = append(out, fe{e.Field, e.Index, e.Part, e.Code, e.Limit})
	}
	return out
}

// parseCases: each rule, broken and kept. parseOnly marks the errors that
// only exist in what was sent (a missing bound, an empty value), which a
// Filter cannot hold.
var parseCases = []struct {
	name      string
	in        Input
	want      []fe
	parseOnly bool
}{
	{name: "nothing", in: Input{}},
	{name: "dates", in: Input{From: ptr("2025-10-01"), To: ptr("2025-10-31")}},
	// São Paulo left daylight-saving time on 2019-02-17: 31 days and an hour.
	{name: "31 calendar days across a DST change", in: Input{From: ptr("2019-02-01"), To: ptr("2019-03-03")}},
	{name: "from alone", in: Input{From: ptr("2025-10-01")}, want: []fe{{"to", -1, "", CodeIncompleteRange, 0}}, parseOnly: true},
	{name: "to alone", in: Input{To: ptr("2025-10-01")}, want: []fe{{"from", -1, "", CodeIncompleteRange, 0}}, parseOnly: true},
	{name: "bad times", in: Input{From: ptr("ontem"), To: ptr("2025-10-01T25:00:00Z")},
		want: []fe{{"from", -1, "", CodeInvalidTime, 0}, {"to", -1, "", CodeInvalidTime, 0}}, parseOnly: true},
	{name: "order", in: Input{From: ptr("2025-10-02"), To: ptr("2025-10-01")}, want: []fe{{"to", -1, "", CodeIntervalOrder, 0}}},
	{name: "32 days", in: Input{From: ptr("2025-10-01"), To: ptr("2025-11-01")}, want: []fe{{"to", -1, "", CodeIntervalTooLong, 31}}},
	// Validate allows an hour more: it cannot tell instants from dates.
	{name: "31 days and a second", in: Input{From: ptr("2025-10-01T00:00:00Z"), To: ptr("2025-11-01T00:00:01Z")},
		want: []fe{{"to", -1, "", CodeIntervalTooLong, 31}}, parseOnly: true},
	{name: "32 days of instants", in: Input{From: ptr("2025-10-01T00:00:00Z"), To: ptr("2025-11-02T00:00:00Z")},
		want: []fe{{"to", -1, "", CodeIntervalTooLong, 31}}},
	{name: "session", in: Input{Session: ptr("abc")}, want: []fe{{"session", -1, "", CodeInvalidSessionID, 0}}},
	{name: "session empty", in: Input{Session: ptr("")}, want: []fe{{"session", -1, "", CodeInvalidSessionID, 0}}, parseOnly: true},
	{name: "protocol", in: Input{Protocol: ptr("20251307092633646")}, want: []fe{{"protocol", -1, "", CodeInvalidProtocol, 0}}},
	{name: "tags", in: Input{Tags: []string{"ok", " ", strings.Repeat("x", MaxTagBytes+1), "a\x01b", "\xff"}},
		want: []fe{{"tags", 1, "", CodeEmpty, 0}, {"tags", 2, "", CodeTooLong, MaxTagBytes}, {"tags", 3, "", CodeControlCharacter, 0}, {"tags", 4, "", CodeTooLong, MaxTagBytes}}},
	{name: "too many tags", in: Input{Tags: slices.Repeat([]string{"a"}, MaxTags+1)}, want: []fe{{"tags", -1, "", CodeTooMany, MaxTags}}},
	{name: "tag mode", in: Input{TagMode: ptr("some")}, want: []fe{{"tag_mode", -1, "", CodeInvalidTagMode, 0}}},
	{name: "tag mode empty", in: Input{TagMode: ptr("")}, want: []fe{{"tag_mode", -1, "", CodeInvalidTagMode, 0}}, parseOnly: true},
	// Pos, not the place in Info, is the index: the condition at 1 could
	// not be read.
	{name: "conditions", in: Input{Info: []ConditionInput{
		{Key: "K", Op: "equals", Value: "v", Pos: 0},
		{Key: "a b", Op: "like", Pos: 2},
		{Key: "K", Op: "contains", Pos: 3},
		{Key: "K", Op: "exists", Value: "x", Pos: 4},
		{Key: "K", Op: "equals", Value: strings.Repeat("v", MaxValueBytes+1), Pos: 5},
		{Key: "K", Op: "equals", Value: "v\x00", Pos: 6},
	}}, want: []fe{
		{"info", 2, "key", CodeInvalidInfoKey, 0}, {"info", 2, "op", CodeUnknownOperation, 0},
		{"info", 3, "value", CodeValueRequired, 0}, {"info", 4, "value", CodeValueNotAllowed, 0},
		{"info", 5, "value", CodeTooLong, MaxValueBytes}, {"info", 6, "value", CodeControlCharacter, 0},
	}},
	{name: "too many conditions", in: Input{Info: slices.Repeat([]ConditionInput{{Key: "K", Op: "exists"}}, MaxConditions+1)},
		want: []fe{{"info", -1, "", CodeTooMany, MaxConditions}}},
	{name: "channels", in: Input{Channels: []string{"whatsapp", "Web Chat", "-x", strings.Repeat("a", MaxChannelLen+1)}},
		want: []fe{{"channels", 1, "", CodeInvalidChannel, 0}, {"channels", 2, "", CodeInvalidChannel, 0}, {"channels", 3, "", CodeInvalidChannel, 0}}},
	{name: "too many channels", in: Input{Channels: slices.Repeat([]string{"webchat"}, MaxChannels+1)},
		want: []fe{{"channels", -1, "", CodeTooMany, MaxChannels}}},
	{name: "outcomes", in: Input{Outcomes: []string{"resolved", "Resolvido", ""}},
		want: []fe{{"outcomes", 1, "", CodeInvalidOutcome, 0}, {"outcomes", 2, "", CodeInvalidOutcome, 0}}},
	{name: "agents and queues", in: Input{Agents: []string{"ag-1", "", "a\x00"}, Queues: slices.Repeat([]string{"Financeiro"}, MaxNames+1)},
		want: []fe{{"agents", 1, "", CodeEmpty, 0}, {"agents", 2, "", CodeControlCharacter, 0}, {"queues", -1, "", CodeTooMany, MaxNames}}},
	{name: "contact empty", in: Input{Contact: ptr("  ")}, want: []fe{{"contact", -1, "", CodeEmpty, 0}}, parseOnly: true},
	{name: "contact", in: Input{Contact: ptr(strings.Repeat("x", MaxContactBytes+1))}, want: []fe{{"contact", -1, "", CodeTooLong, MaxContactBytes}}},
	{name: "contact control", in: Input{Contact: ptr("a\x1bb")}, want: []fe{{"contact", -1, "", CodeControlCharacter, 0}}},
	{name: "handed_off", in: Input{HandedOff: ptr(`"true"`)}, want: []fe{{"handed_off", -1, "", CodeInvalidBoolean, 0}}, parseOnly: true},
	{name: "q empty", in: Input{Query: ptr(" ")}, want: []fe{{"q", -1, "", CodeEmpty, 0}}, parseOnly: true},
	{name: "q", in: Input{Query: ptr(strings.Repeat("a", MaxQueryBytes+1))}, want: []fe{{"q", -1, "", CodeTooLong, MaxQueryBytes}}},
	{name: "q control", in: Input{Query: ptr("a\x00")}, want: []fe{{"q", -1, "", CodeControlCharacter, 0}}},
	{name: "q no word", in: Input{Query: ptr("?! -")}, want: []fe{{"q", -1, "", CodeNoWord, 0}}},
	{name: "every field at once", in: Input{From: ptr("x"), To: ptr("2025-10-01"), Session: ptr("y"), Tags: []string{""}, Query: ptr("!")},
		want:      []fe{{"from", -1, "", CodeInvalidTime, 0}, {"session", -1, "", CodeInvalidSessionID, 0}, {"tags", 0, "", CodeEmpty, 0}, {"q", -1, "", CodeNoWord, 0}},
		parseOnly: true},
}

// TestParseFilter: each rule gives its code, field, index, part and limit,
// and every rule is checked (no stop at the first error).
func TestParseFilter(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := ParseFilter(&tc.in, saoPaulo, parseNow)
			if got := brief(errs); !slices.Equal(got, tc.want) {
				t.Fatalf("errors\n got %v\nwant %v", got, tc.want)
			}
			for _, e := range errs {
				if e.Message == "" || !strings.Contains(e.Error(), e.Message) {
					t.Errorf("%+v: no message", e)
				}
			}
		})
	}
}

// limitCodes are the codes of the limits of what a client may send, which
// ParseFilter checks and Validate leaves to the stores.
var limitCodes = []Code{CodeTooMany, CodeTooLong, CodeEmpty, CodeControlCharacter}

// TestValidateIsParseFilter: a filter that ParseFilter made from a value
// breaking a rule fails Validate with the same error, but for the limits of
// what a client may send; what a Filter cannot hold (a missing bound, an
// empty value) is ParseFilter's alone.
func TestValidateIsParseFilter(t *testing.T) {
	for _, tc := range parseCases {
		if tc.parseOnly {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			f, parsed := ParseFilter(&tc.in, saoPaulo, parseNow)
			var want []FieldError
			for _, e := range parsed {
				if !slices.Contains(limitCodes, e.Code) {
					want = append(want, e)
				}
			}
			f.Tenant = "acme"
			err := f.Validate()
			var got []FieldError
			for _, e := range unjoin(err) {
				var fe FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("Validate: %v is not a FieldError", e)
				}
				got = append(got, fe)
			}
			// Validate has the conditions, not their positions.
			for i := range want {
				if want[i].Field == FieldInfo && want[i].Index >= 0 {
					want[i].Index = slices.IndexFunc(tc.in.Info, func(c ConditionInput) bool { return c.Pos == want[i].Index })
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Validate\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// TestParseFilterValues: what a valid input becomes.
func TestParseFilterValues(t *testing.T) {
	yes := true
	in := Input{
		From: ptr("2025-10-01"), To: ptr("2025-10-31"), Session: ptr(strings.ToUpper(validID)), Protocol: ptr("20251007092633646"),
		Tags: []string{"Segunda Via Sucesso"}, TagMode: ptr("all"),
		Info:     []ConditionInput{{Key: "PLANO", Op: "contains", Value: "fibra", Pos: 0}, {Key: "NPS", Op: "exists", Pos: 1}},
		Channels: []string{"whatsapp"}, Contact: ptr(" Maria "), HandedOff: ptr("true"), Query: ptr(" segunda via "),
		Outcomes: []string{"cancelled_inactivity"}, Agents: []string{"ag-1"}, Queues: []string{"Financeiro"},
	}
	f, errs := ParseFilter(&in, saoPaulo, parseNow)
	want := Filter{
		From: oct1SP, To: oct1SP.AddDate(0, 0, 31), SessionID: validID, Protocol: "20251007092633646",
		Tags: []string{"Segunda Via Sucesso"}, TagMode: TagsAll,
		Info:     []Condition{{Key: "PLANO", Op: OpContains, Value: "fibra"}, {Key: "NPS", Op: OpExists}},
		Channels: []string{"whatsapp"}, Contact: "Maria", HandedOff: &yes, Query: "segunda via",
		Outcomes: []string{"cancelled_inactivity"}, Agents: []string{"ag-1"}, Queues: []string{"Financeiro"}, Now: parseNow,
	}
	if errs != nil || !reflect.DeepEqual(f, want) {
		t.Fatalf("ParseFilter = %+v, %v\nwant %+v", f, errs, want)
	}
	f, errs = ParseFilter(&Input{}, saoPaulo, parseNow)
	if errs != nil || !f.From.Equal(parseNow.Add(-MaxInterval)) || !f.To.Equal(parseNow) || f.TagMode != TagsAny {
		t.Fatalf("defaults: %+v, %v", f, errs)
	}
	// A date to includes its whole day; an instant is exact.
	f, _ = ParseFilter(&Input{From: ptr("2025-10-07"), To: ptr("2025-10-07T12:00:00-03:00")}, saoPaulo, parseNow)
	if !f.From.Equal(oct1SP.AddDate(0, 0, 6)) || !f.To.Equal(oct1SP.AddDate(0, 0, 6).Add(12*time.Hour)) {
		t.Fatalf("date and instant: [%s, %s)", f.From, f.To)
	}
}

func TestParsePage(t *testing.T) {
	codec := NewCursorCodec([]byte("key"))
	cur := Cursor{StartedAt: parseNow, SessionID: validID}
	for _, tc := range []struct {
		in    Input
		limit int
		after bool
		want  []fe
	}{
		{in: Input{}, limit: DefaultPageLimit},
		{in: Input{Limit: ptr("1")}, limit: 1},
		{in: Input{Limit: ptr("100"), Cursor: ptr(codec.Encode(cur))}, limit: 100, after: true},
		{in: Input{Limit: ptr("0")}, want: []fe{{"limit", -1, "", CodeInvalidLimit, MaxPageLimit}}},
		{in: Input{Limit: ptr("101")}, want: []fe{{"limit", -1, "", CodeInvalidLimit, MaxPageLimit}}},
		{in: Input{Limit: ptr("1.5")}, want: []fe{{"limit", -1, "", CodeInvalidLimit, MaxPageLimit}}},
		{in: Input{Limit: ptr(`"20"`)}, want: []fe{{"limit", -1, "", CodeInvalidLimit, MaxPageLimit}}},
		{in: Input{Cursor: ptr("abc.def")}, limit: DefaultPageLimit, want: []fe{{"cursor", -1, "", CodeInvalidCursor, 0}}},
	} {
		p, errs := ParsePage(&tc.in, codec)
		if got := brief(errs); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: errors %v, want %v", tc.in, got, tc.want)
			continue
		}
		if tc.want == nil && (p.Limit != tc.limit || (p.After != nil) != tc.after) {
			t.Errorf("%+v: page %+v", tc.in, p)
		}
		if tc.want == nil && p.Validate() != nil || tc.want != nil && tc.want[0].field == FieldLimit && p.Validate() == nil {
			t.Errorf("%+v: Validate disagrees with ParsePage: %v", tc.in, p.Validate())
		}
	}
}

// TestEveryCodeTested: each Code constant of rules.go is the want of a case
// above, so a new rule comes with its test.
func TestEveryCodeTested(t *testing.T) {
	file, err := parser.ParseFile(token.NewFileSet(), "rules.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	tested := map[Code]bool{CodeInvalidLimit: true, CodeInvalidCursor: true} // TestParsePage
	for _, tc := range parseCases {
		for _, w := range tc.want {
			tested[w.code] = true
		}
	}
	n := 0
	ast.Inspect(file, func(node ast.Node) bool {
		spec, ok := node.(*ast.ValueSpec)
		if !ok {
			return true
		}
		if id, ok := spec.Type.(*ast.Ident); ok && id.Name == "Code" {
			for _, v := range spec.Values {
				lit := v.(*ast.BasicLit)
				n++
				if code := Code(strings.Trim(lit.Value, `"`)); !tested[code] {
					t.Errorf("code %s has no case", code)
				}
			}
		}
		return true
	})
	if n < 20 {
		t.Fatalf("found %d codes in rules.go", n)
	}
}
