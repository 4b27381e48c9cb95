package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/report"
)

// problemBody is a problem document as a client reads it.
type problemBody struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail"`
	Code   ErrorCode    `json:"code"`
	Errors []ParamError `json:"errors"`
}

func errorParams(t *testing.T, w interface {
	Header() http.Header
}, body []byte) []string {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	var p problemBody
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body: %v: %s", err, body)
	}
	if p.Status != http.StatusBadRequest || p.Type != "about:blank" || p.Title == "" || p.Code != CodeInvalidParameters {
		t.Fatalf("problem %+v", p)
	}
	var params []string
	for _, e := range p.Errors {
		if e.Message == "" || e.Code == "" {
			t.Errorf("error of %s has no message or no code: %+v", e.Param, e)
		}
		params = append(params, e.Param)
	}
	return params
}

// paramCase is one request: either its errors (the params the 400 names) or
// a check of the filter and page the store receives.
type paramCase struct {
	name  string
	in    string // query string (GET) or JSON body (POST)
	errs  []string
	check func(t *testing.T, f report.Filter, p report.Page)
}

var (
	oct1SP  = time.Date(2025, 10, 1, 3, 0, 0, 0, time.UTC) // 2025-10-01 00:00 in São Paulo
	nov1SP  = time.Date(2025, 11, 1, 3, 0, 0, 0, time.UTC)
	validID = "c639c747-4637-4ff5-99c0-9f0e86d3c21b"
)

func wantInterval(from, to time.Time) func(*testing.T, report.Filter, report.Page) {
	return func(t *testing.T, f report.Filter, _ report.Page) {
		t.Helper()
		if !f.From.Equal(from) || !f.To.Equal(to) {
			t.Fatalf("interval [%s, %s), want [%s, %s)", f.From, f.To, from, to)
		}
	}
}

func validCursor() string {
	return report.NewCursorCodec(testCursorKey).Encode(report.Cursor{StartedAt: testNow.Add(-time.Hour), SessionID: validID})
}

func getCases() []paramCase {
	cur := validCursor()
	tampered := []byte(cur)
	tampered[3] ^= 1
	foreign := report.NewCursorCodec([]byte("another key")).Encode(report.Cursor{StartedAt: testNow, SessionID: validID})
	long := strings.Repeat("x", 129)
	many := strings.Repeat("tag=a&", 51)
	return []paramCase{
		// Good values.
		{name: "no parameters", in: "", check: func(t *testing.T, f report.Filter, p report.Page) {
			if !f.From.Equal(testNow.Add(-31*24*time.Hour)) || !f.To.Equal(testNow) {
				t.Fatalf("default interval [%s, %s)", f.From, f.To)
			}
			if f.Tenant != "acme" || f.TagMode != report.TagsAny || p.Limit != 20 || p.After != nil {
				t.Fatalf("defaults: %+v %+v", f, p)
			}
		}},
		{name: "dates in the report time zone", in: "from=2025-10-01&to=2025-10-31", check: wantInterval(oct1SP, nov1SP)},
		{name: "one day", in: "from=2025-10-07&to=2025-10-07", check: wantInterval(oct1SP.AddDate(0, 0, 6), oct1SP.AddDate(0, 0, 7))},
		{name: "RFC 3339", in: "from=2025-10-01T00:00:00-03:00&to=2025-10-02T00:00:00Z", check: wantInterval(oct1SP, time.Date(2025, 10, 2, 0, 0, 0, 0, time.UTC))},
		{name: "RFC 3339 fraction", in: "from=2025-10-01T00:00:00.5Z&to=2025-10-02T00:00:00Z", check: wantInterval(time.Date(2025, 10, 1, 0, 0, 0, 5e8, time.UTC), time.Date(2025, 10, 2, 0, 0, 0, 0, time.UTC))},
		{name: "31 days exactly", in: "from=2025-10-01T00:00:00Z&to=2025-11-01T00:00:00Z", check: wantInterval(time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC))},
		{name: "date and instant", in: "from=2025-10-01&to=2025-10-01T12:00:00-03:00", check: wantInterval(oct1SP, oct1SP.Add(12*time.Hour))},
		{name: "session", in: "session=" + strings.ToUpper(validID), check: func(t *testing.T, f report.Filter, _ report.Page) {
			if f.SessionID != validID {
				t.Fatalf("session %q", f.SessionID)
			}
		}},
		{name: "protocol", in: "protocol=20251007092633646", check: func(t *testing.T, f report.Filter, _ report.Page) {
			if f.Protocol != "20251007092633646" {
				t.Fatalf("protocol %q", f.Protocol)
			}
		}},
		{name: "tags", in: "tag=Segunda+Via+Sucesso&tag=Negocia%C3%A7%C3%A3o&tag_mode=all", check: func(t *testing.T, f report.Filter, _ report.Page) {
			if !slices.Equal(f.Tags, []string{"Segunda Via Sucesso", "Negociação"}) || f.TagMode != report.TagsAll {
				t.Fatalf("tags %q mode %s", f.Tags, f.TagMode)
			}
		}},
		{name: "tag_mode any", in: "tag=a&tag_mode=any", check: func(t *testing.T, f report.Filter, _ report.Page) {
			if f.TagMode != report.TagsAny {
				t.Fatalf("mode %s", f.TagMode)
			}
		}},
		{name: "info", in: "info=NAO_TRANSBORDADA:equals:true&info=URL:starts_with:http://x:8080/a&info=NPS:exists&info=PLANO:not_exists:&info=A.b-c:not_contains:x",
			check: func(t *testing.T, f report.Filter, _ report.Page) {
				want := []report.Condition{
					{Key: "NAO_TRANSBORDADA", Op: report.OpEquals, Value: "true"},
					{Key: "URL", Op: report.OpStartsWith, Value: "http://x:8080/a"},
					{Key: "NPS", Op: report.OpExists},
					{Key: "PLANO", Op: report.OpNotExists},
					{Key: "A.b-c", Op: report.OpNotContain, Value: "x"},
				}
				if !reflect.DeepEqual(f.Info, want) {
					t.Fatalf("info %+v", f.Info)
				}
			}},
		{name: "info every op", in: "info=K:equals:v&info=K:not_equals:v&info=K:contains:v&info=K:not_contains:v&info=K:starts_with:v&info=K:exists&info=K:not_exists",
			check: func(t *testing.T, f report.Filter, _ report.Page) {
				if len(f.Info) != len(report.Ops) {
					t.Fatalf("info %+v", f.Info)
				}
			}},
		{name: "channels", in: "channel=whatsapp&channel=webchat", check: func(t *testing.T, f report.Filter, _ report.Page) {
			if !slices.Equal(f.Channels, []string{"whatsapp", "webchat"}) {
				t.Fatalf("channels %q", f.Channels)
			}
		}},
		{name: "contact trimmed", in: "contact=+%2B55+11+98765-4321+", check: func(t *testing.T, f report.Filter, _ report.Page) {
			if f.Contact != "+55 11 98765-4321" {
				t.Fatalf("contact %q", f.Contact)
			}
		}},
		{name: "handed_off true", in: "handed_off=true", check: func(t *testing.T, f report.Filter, _ report.Page) {
			if f.HandedOff == nil || !*f.HandedOff {
				t.Fatal("handed_off not true")
			}
		}},
		{name: "handed_off false", in: "handed_off=false", check: func(t *testing.T, f report.Filter, _ report.Page) {
			if f.HandedOff == nil || *f.HandedOff {
				t.Fatal("handed_off not false")
			}
		}},
		{name: "q", in: "q=+segunda+via+", check: func(t *testing.T, f report.Filter, _ report.Page) {
			if f.Query != "segunda via" {
				t.Fatalf("q %q", f.Query)
			}
		}},
		{name: "limit 1", in: "limit=1", check: func(t *testing.T, _ report.Filter, p report.Page) {
			if p.Limit != 1 {
				t.Fatalf("limit %d", p.Limit)
			}
		}},
		{name: "limit 100", in: "limit=100", check: func(t *testing.T, _ report.Filter, p report.Page) {
			if p.Limit != 100 {
				t.Fatalf("limit %d", p.Limit)
			}
		}},
		{name: "cursor", in: "cursor=" + cur, check: func(t *testing.T, _ report.Filter, p report.Page) {
			if p.After == nil || p.After.SessionID != validID || !p.After.StartedAt.Equal(testNow.Add(-time.Hour)) {
				t.Fatalf("cursor %+v", p.After)
			}
		}},

		// Bad values: the 400 names each.
		{name: "from alone", in: "from=2025-10-01", errs: []string{"to"}},
		{name: "to alone", in: "to=2025-10-01", errs: []string{"from"}},
		{name: "from unparsable", in: "from=yesterday&to=2025-10-01", errs: []string{"from"}},
		{name: "to unparsable", in: "from=2025-10-01&to=2025-13-01", errs: []string{"to"}},
		{name: "both unparsable", in: "from=01/10/2025&to=2025-10-01T25:00:00Z", errs: []string{"from", "to"}},
		{name: "from empty", in: "from=&to=2025-10-01", errs: []string{"from"}},
		{name: "no offset", in: "from=2025-10-01T00:00:00&to=2025-10-02", errs: []string{"from"}},
		{name: "to equals from", in: "from=2025-10-01T00:00:00Z&to=2025-10-01T00:00:00Z", errs: []string{"to"}},
		{name: "to before from", in: "from=2025-10-02&to=2025-10-01", errs: []string{"to"}},
		{name: "32 days", in: "from=2025-10-01&to=2025-11-01", errs: []string{"to"}},
		{name: "31 days and a second", in: "from=2025-10-01T00:00:00Z&to=2025-11-01T00:00:01Z", errs: []string{"to"}},
		{name: "session not a UUID", in: "session=abc", errs: []string{"session"}},
		{name: "session empty", in: "session=", errs: []string{"session"}},
		{name: "protocol 16 digits", in: "protocol=2025100709263364", errs: []string{"protocol"}},
		{name: "protocol bad date", in: "protocol=20251307092633646", errs: []string{"protocol"}},
		{name: "protocol letters", in: "protocol=2025100709263364a", errs: []string{"protocol"}},
		{name: "tag empty", in: "tag=", errs: []string{"tag"}},
		{name: "tag blank", in: "tag=a&tag=+++", errs: []string{"tag"}},
		{name: "tag too long", in: "tag=" + long, errs: []string{"tag"}},
		{name: "too many tags", in: many, errs: []string{"tag"}},
		{name: "tag_mode", in: "tag_mode=both", errs: []string{"tag_mode"}},
		{name: "info no colon", in: "info=NAO_TRANSBORDADA", errs: []string{"info"}},
		{name: "info unknown op", in: "info=K:like:x", errs: []string{"info"}},
		{name: "info op case", in: "info=K:EQUALS:x", errs: []string{"info"}},
		{name: "info without value", in: "info=K:equals", errs: []string{"info"}},
		{name: "info empty value", in: "info=K:contains:", errs: []string{"info"}},
		{name: "info exists with value", in: "info=K:exists:x", errs: []string{"info"}},
		{name: "info bad key", in: "info=bad+key:exists", errs: []string{"info"}},
		{name: "info empty key", in: "info=:exists", errs: []string{"info"}},
		{name: "info bad key and op", in: "info=a/b:like", errs: []string{"info", "info"}},
		{name: "channel upper case", in: "channel=WhatsApp", errs: []string{"channel"}},
		{name: "channel empty", in: "channel=", errs: []string{"channel"}},
		{name: "contact empty", in: "contact=", errs: []string{"contact"}},
		{name: "contact blank", in: "contact=+++", errs: []string{"contact"}},
		{name: "contact too long", in: "contact=" + strings.Repeat("x", 257), errs: []string{"contact"}},
		{name: "handed_off yes", in: "handed_off=yes", errs: []string{"handed_off"}},
		{name: "handed_off empty", in: "handed_off=", errs: []string{"handed_off"}},
		{name: "handed_off upper case", in: "handed_off=TRUE", errs: []string{"handed_off"}},
		{name: "q empty", in: "q=", errs: []string{"q"}},
		{name: "q punctuation only", in: "q=%21%3F+-", errs: []string{"q"}},
		{name: "q too long", in: "q=" + strings.Repeat("a", 1001), errs: []string{"q"}},
		{name: "limit 0", in: "limit=0", errs: []string{"limit"}},
		{name: "limit 101", in: "limit=101", errs: []string{"limit"}},
		{name: "limit negative", in: "limit=-1", errs: []string{"limit"}},
		{name: "limit text", in: "limit=ten", errs: []string{"limit"}},
		{name: "limit fraction", in: "limit=1.5", errs: []string{"limit"}},
		{name: "limit empty", in: "limit=", errs: []string{"limit"}},
		{name: "cursor garbage", in: "cursor=garbage", errs: []string{"cursor"}},
		{name: "cursor empty", in: "cursor=", errs: []string{"cursor"}},
		{name: "cursor tampered", in: "cursor=" + url.QueryEscape(string(tampered)), errs: []string{"cursor"}},
		{name: "cursor of another key", in: "cursor=" + foreign, errs: []string{"cursor"}},
		{name: "unknown parameter", in: "channels=webchat", errs: []string{"channels"}},
		{name: "format on the list", in: "format=csv", errs: []string{"format"}},
		{name: "repeated parameter", in: "limit=1&limit=2", errs: []string{"limit"}},
		{name: "every error at once", in: "protocol=1&limit=0&tag_mode=x&session=y&from=z&to=2025-10-01&q=%21&xyz=1",
			errs: []string{"xyz", "from", "session", "protocol", "tag_mode", "q", "limit"}},
	}
}

func postCases() []paramCase {
	cur := validCursor()
	return []paramCase{
		// Good values.
		{name: "empty object", in: "{}", check: func(t *testing.T, f report.Filter, p report.Page) {
			if !f.From.Equal(testNow.Add(-31*24*time.Hour)) || !f.To.Equal(testNow) || p.Limit != 20 || f.TagMode != report.TagsAny {
				t.Fatalf("defaults: %+v %+v", f, p)
			}
		}},
		{name: "nulls are absent", in: `{"from":null,"to":null,"tags":null,"info":null,"handed_off":null,"limit":null,"q":null}`, check: func(t *testing.T, f report.Filter, p report.Page) {
			if f.HandedOff != nil || f.Tags != nil || f.Info != nil || p.Limit != 20 {
				t.Fatalf("nulls: %+v %+v", f, p)
			}
		}},
		{name: "dates", in: `{"from":"2025-10-01","to":"2025-10-31"}`, check: wantInterval(oct1SP, nov1SP)},
		{name: "session", in: `{"session":"` + strings.ToUpper(validID) + `"}`, check: func(t *testing.T, f report.Filter, _ report.Page) {
			if f.SessionID != validID {
				t.Fatalf("session %q", f.SessionID)
			}
		}},
		{name: "everything", in: `{"from":"2025-10-01T00:00:00-03:00","to":"2025-10-31","session":"` + validID + `","protocol":"20251007092633646",
			"tags":["Segunda Via Sucesso","Negociação"],"tag_mode":"all",
			"info":[{"key":"NAO_TRANSBORDADA","op":"equals","value":"true"},{"key":"NPS","op":"equals","value":9},{"key":"VIP","op":"equals","value":false},
			        {"key":"PLANO","op":"exists"},{"key":"X","op":"not_exists","value":null},{"key":"URL","op":"starts_with","value":"http://x:1/"}],
			"channels":["whatsapp","webchat"],"contact":" Maria ","handed_off":false,"q":"segunda via","limit":50,"cursor":"` + cur + `",
			"outcomes":["cancelled_inactivity","open"],"agents":["ag-1"],"queues":["Financeiro","Retenção"]}`,
			check: func(t *testing.T, f report.Filter, p report.Page) {
				no := false
				want := report.Filter{
					Tenant: "acme", From: oct1SP, To: nov1SP, SessionID: validID, Protocol: "20251007092633646",
					Tags: []string{"Segunda Via Sucesso", "Negociação"}, TagMode: report.TagsAll,
					Info: []report.Condition{
						{Key: "NAO_TRANSBORDADA", Op: report.OpEquals, Value: "true"},
						{Key: "NPS", Op: report.OpEquals, Value: "9"},
						{Key: "VIP", Op: report.OpEquals, Value: "false"},
						{Key: "PLANO", Op: report.OpExists},
						{Key: "X", Op: report.OpNotExists},
						{Key: "URL", Op: report.OpStartsWith, Value: "http://x:1/"},
					},
					Channels: []string{"whatsapp", "webchat"}, Contact: "Maria", HandedOff: &no, Query: "segunda via",
					Outcomes: []string{"cancelled_inactivity", "open"}, Agents: []string{"ag-1"}, Queues: []string{"Financeiro", "Retenção"},
					Now: testNow,
				}
				if !reflect.DeepEqual(f, want) {
					t.Fatalf("filter\n got %+v\nwant %+v", f, want)
				}
				if p.Limit != 50 || p.After == nil || p.After.SessionID != validID {
					t.Fatalf("page %+v", p)
				}
			}},

		// Bad values: the 400 names each JSON field.
		{name: "not JSON", in: `{"from":`, errs: []string{"body"}},
		{name: "an array", in: `[]`, errs: []string{"body"}},
		{name: "a string", in: `"x"`, errs: []string{"body"}},
		{name: "unknown field", in: `{"tag":["x"]}`, errs: []string{"tag"}},
		{name: "unknown fields", in: `{"foo":1,"bar":2,"limit":5}`, errs: []string{"bar", "foo"}},
		{name: "from alone", in: `{"from":"2025-10-01"}`, errs: []string{"to"}},
		{name: "from a number", in: `{"from":20251001,"to":"2025-10-02"}`, errs: []string{"from"}},
		{name: "to unparsable", in: `{"from":"2025-10-01","to":"tomorrow"}`, errs: []string{"to"}},
		{name: "32 days", in: `{"from":"2025-10-01","to":"2025-11-01"}`, errs: []string{"to"}},
		{name: "session", in: `{"session":"abc"}`, errs: []string{"session"}},
		{name: "protocol", in: `{"protocol":"123"}`, errs: []string{"protocol"}},
		{name: "protocol a number", in: `{"protocol":20251007092633646}`, errs: []string{"protocol"}},
		{name: "tags a string", in: `{"tags":"x"}`, errs: []string{"tags"}},
		{name: "tags a number", in: `{"tags":["a",1]}`, errs: []string{"tags[1]"}},
		{name: "tags empty", in: `{"tags":["a",""]}`, errs: []string{"tags[1]"}},
		{name: "too many tags", in: `{"tags":[` + strings.TrimSuffix(strings.Repeat(`"a",`, 51), ",") + `]}`, errs: []string{"tags"}},
		{name: "tag_mode", in: `{"tag_mode":"ALL"}`, errs: []string{"tag_mode"}},
		{name: "info an object", in: `{"info":{"key":"K","op":"exists"}}`, errs: []string{"info"}},
		{name: "info a string", in: `{"info":["K:exists"]}`, errs: []string{"info[0]"}},
		{name: "info unknown op", in: `{"info":[{"key":"K","op":"exists"},{"key":"K","op":"like","value":"x"}]}`, errs: []string{"info[1].op"}},
		{name: "info missing op", in: `{"info":[{"key":"K"}]}`, errs: []string{"info[0].op"}},
		{name: "info missing key", in: `{"info":[{"op":"exists"}]}`, errs: []string{"info[0].key"}},
		{name: "info bad key", in: `{"info":[{"key":"a b","op":"exists"}]}`, errs: []string{"info[0].key"}},
		{name: "info key a number", in: `{"info":[{"key":1,"op":"exists"}]}`, errs: []string{"info[0].key"}},
		{name: "info needs a value", in: `{"info":[{"key":"K","op":"contains"}]}`, errs: []string{"info[0].value"}},
		{name: "info empty value", in: `{"info":[{"key":"K","op":"equals","value":""}]}`, errs: []string{"info[0].value"}},
		{name: "info takes no value", in: `{"info":[{"key":"K","op":"not_exists","value":"x"}]}`, errs: []string{"info[0].value"}},
		{name: "info value an object", in: `{"info":[{"key":"K","op":"equals","value":{}}]}`, errs: []string{"info[0].value"}},
		{name: "info unknown field", in: `{"info":[{"key":"K","op":"exists","negate":true}]}`, errs: []string{"info[0].negate"}},
		{name: "info several errors", in: `{"info":[{"key":"","op":"x"},{"key":"K","op":"equals"}]}`, errs: []string{"info[0].key", "info[0].op", "info[1].value"}},
		{name: "channels", in: `{"channels":["whatsapp","Web Chat"]}`, errs: []string{"channels[1]"}},
		{name: "contact empty", in: `{"contact":"  "}`, errs: []string{"contact"}},
		{name: "contact a number", in: `{"contact":5511987654321}`, errs: []string{"contact"}},
		{name: "handed_off a string", in: `{"handed_off":"true"}`, errs: []string{"handed_off"}},
		{name: "q empty", in: `{"q":""}`, errs: []string{"q"}},
		{name: "limit a string", in: `{"limit":"20"}`, errs: []string{"limit"}},
		{name: "limit 0", in: `{"limit":0}`, errs: []string{"limit"}},
		{name: "limit 101", in: `{"limit":101}`, errs: []string{"limit"}},
		{name: "limit fraction", in: `{"limit":1.5}`, errs: []string{"limit"}},
		{name: "cursor", in: `{"cursor":"abc.def"}`, errs: []string{"cursor"}},
		{name: "every error at once", in: `{"from":"x","to":"y","tags":[""],"channels":["A"],"limit":0,"unknown":1}`,
			errs: []string{"unknown", "from", "to", "tags[0]", "channels[0]", "limit"}},
	}
}

func runParamCases(t *testing.T, cases []paramCase, send func(s *Server, in string) (int, http.Header, []byte)) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := &fakeStore{}
			s := newServer(t, testConfig(t), store)
			status, header, body := send(s, tc.in)
			_, _, calls := store.last()
			if tc.errs != nil {
				if status != http.StatusBadRequest {
					t.Fatalf("status %d, want 400: %s", status, body)
				}
				got := errorParams(t, headerOnly(header), body)
				if !slices.Equal(got, tc.errs) {
					t.Fatalf("errors name %q, want %q: %s", got, tc.errs, body)
				}
				if calls != 0 {
					t.Fatal("the store was asked despite invalid parameters")
				}
				return
			}
			if status != http.StatusOK {
				t.Fatalf("status %d, want 200: %s", status, body)
			}
			f, p, _ := store.last()
			tc.check(t, f, p)
		})
	}
}

type headerOnly http.Header

func (h headerOnly) Header() http.Header { return http.Header(h) }

func TestListParameters(t *testing.T) {
	runParamCases(t, getCases(), func(s *Server, in string) (int, http.Header, []byte) {
		w := do(s, http.MethodGet, "/api/v1/sessions?"+in, acmeKey, "")
		return w.Code, w.Header(), w.Body.Bytes()
	})
}

func TestSearchBody(t *testing.T) {
	runParamCases(t, postCases(), func(s *Server, in string) (int, http.Header, []byte) {
		w := do(s, http.MethodPost, "/api/v1/sessions/search", acmeKey, in)
		return w.Code, w.Header(), w.Body.Bytes()
	})
}

// TestSearchBodyMatchesQuery: a POST body and the equivalent GET parameters
// give the store the same filter and page.
func TestSearchBodyMatchesQuery(t *testing.T) {
	pairs := []struct{ query, body string }{
		{"", ""},
		{"", "{}"},
		{"from=2025-10-01&to=2025-10-31&limit=7", `{"from":"2025-10-01","to":"2025-10-31","limit":7}`},
		{"tag=a&tag=b&tag_mode=all&channel=webchat", `{"tags":["a","b"],"tag_mode":"all","channels":["webchat"]}`},
		{"info=K:equals:a:b&info=N:exists&info=M:not_equals:9", `{"info":[{"key":"K","op":"equals","value":"a:b"},{"key":"N","op":"exists"},{"key":"M","op":"not_equals","value":9}]}`},
		{"contact=maria&handed_off=true&q=boleto&session=" + validID + "&protocol=20251007092633646",
			`{"contact":"maria","handed_off":true,"q":"boleto","session":"` + validID + `","protocol":"20251007092633646"}`},
		{"cursor=" + validCursor(), `{"cursor":"` + validCursor() + `"}`},
	}
	for _, pair := range pairs {
		get, post := &fakeStore{}, &fakeStore{}
		if w := do(newServer(t, testConfig(t), get), http.MethodGet, "/api/v1/sessions?"+pair.query, acmeKey, ""); w.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", pair.query, w.Code, w.Body)
		}
		if w := do(newServer(t, testConfig(t), post), http.MethodPost, "/api/v1/sessions/search", acmeKey, pair.body); w.Code != http.StatusOK {
			t.Fatalf("POST %s: %d %s", pair.body, w.Code, w.Body)
		}
		gf, gp, _ := get.last()
		pf, pp, _ := post.last()
		if !reflect.DeepEqual(gf, pf) || !reflect.DeepEqual(gp, pp) {
			t.Fatalf("GET %s and POST %s differ:\n%+v %+v\n%+v %+v", pair.query, pair.body, gf, gp, pf, pp)
		}
	}
}

func TestSearchBodyTransport(t *testing.T) {
	s := newServer(t, testConfig(t), &fakeStore{})
	r := func(ct, body, query string) int {
		req, _ := http.NewRequest(http.MethodPost, "/api/v1/sessions/search"+query, strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		req.Header.Set("Authorization", "Bearer "+acmeKey)
		w := &recorder{header: http.Header{}}
		s.ServeHTTP(w, req)
		return w.code
	}
	for _, tc := range []struct {
		ct, body, query string
		want            int
	}{
		{"application/json; charset=utf-8", `{"limit":5}`, "", 200},
		{"", `{"limit":5}`, "", 200},
		{"", "", "", 200},
		{"text/plain", `{"limit":5}`, "", 415},
		{"application/x-www-form-urlencoded", "limit=5", "", 415},
		{"application/json", `{"q":"` + strings.Repeat("a", maxBodyBytes) + `"}`, "", 413},
		{"application/json", `{}`, "?limit=5", 400},
	} {
		if got := r(tc.ct, tc.body, tc.query); got != tc.want {
			t.Errorf("Content-Type %q, body of %d bytes, query %q: status %d, want %d", tc.ct, len(tc.body), tc.query, got, tc.want)
		}
	}
}

// recorder is the least http.ResponseWriter: a status.
type recorder struct {
	header http.Header
	code   int
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = 200
	}
	return len(b), nil
}
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

// TestOtherRoutesParameters: export and facets take the filter (export) or
// the interval (facets), validated the same way.
func TestOtherRoutesParameters(t *testing.T) {
	for _, tc := range []struct {
		target string
		errs   []string
	}{
		{"/api/v1/export?format=xml", []string{"format"}},
		{"/api/v1/export?format=jsonl&limit=5", []string{"limit"}},
		{"/api/v1/export?cursor=x", []string{"cursor"}},
		{"/api/v1/export?from=2025-10-01&protocol=1", []string{"to", "protocol"}},
		{"/api/v1/export?format=csv&format=jsonl", []string{"format"}},
		{"/api/v1/export?tag=&info=x&channel=X&handed_off=1", []string{"tag", "info", "channel", "handed_off"}},
		{"/api/v1/facets?from=2025-10-01&to=2025-11-05", []string{"to"}},
		{"/api/v1/facets?tag=a", []string{"tag"}},
		{"/api/v1/facets?to=2025-10-01", []string{"from"}},
		{"/api/v1/sessions/" + validID + "?limit=1", []string{"limit"}},
		{"/api/v1/sessions/not-a-uuid", []string{"id"}},
		{"/api/v1/sessions/not-a-uuid/transcript", []string{"id"}},
		{"/api/v1/openapi.json?x=1", []string{"x"}},
	} {
		w := do(newServer(t, testConfig(t), &fakeStore{}), http.MethodGet, tc.target, acmeKey, "")
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", tc.target, w.Code, w.Body)
			continue
		}
		if got := errorParams(t, w, w.Body.Bytes()); !slices.Equal(got, tc.errs) {
			t.Errorf("%s: errors name %q, want %q", tc.target, got, tc.errs)
		}
	}
	store := &fakeStore{}
	s := newServer(t, testConfig(t), store)
	if w := do(s, http.MethodGet, "/api/v1/facets?from=2025-10-01&to=2025-10-31", acmeKey, ""); w.Code != http.StatusOK {
		t.Fatalf("facets: %d %s", w.Code, w.Body)
	}
	if f, _, _ := store.last(); f.Tenant != "acme" || !f.From.Equal(oct1SP) || !f.To.Equal(nov1SP) {
		t.Fatalf("facets asked %+v", f)
	}
	if w := do(s, http.MethodGet, "/api/v1/facets", acmeKey, ""); w.Code != http.StatusOK {
		t.Fatalf("facets: %d %s", w.Code, w.Body)
	}
	if f, _, _ := store.last(); !f.From.Equal(testNow.Add(-31*24*time.Hour)) || !f.To.Equal(testNow) {
		t.Fatalf("facets default interval %+v", f)
	}
}
