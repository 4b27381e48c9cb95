package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chatreport/chatreport/internal/report"
)

// wantErr is what a client reads of one invalid parameter.
type wantErr struct {
	param string
	code  ErrorCode
	index int // -1: none
	limit int
}

func (e ParamError) brief() wantErr {
	w := wantErr{param: e.Param, code: e.Code, index: -1, limit: e.Limit}
	if e.Index != nil {
		w.index = *e.Index
	}
	return w
}

// TestErrorCodes: every invalid parameter carries a stable code, the index of
// the value of a repeated parameter it is about, and the bound it broke, so
// that a client can say it in its own language and mark the right field.
func TestErrorCodes(t *testing.T) {
	long := strings.Repeat("x", maxTagLen+1)
	cases := []struct {
		name string
		get  string // query of GET /api/v1/sessions, or
		post string // body of POST /api/v1/sessions/search
		want []wantErr
	}{
		{name: "unknown and repeated", get: "channels=webchat&q=a&q=b",
			want: []wantErr{{"channels", CodeUnknownParameter, -1, 0}, {"q", CodeRepeated, -1, 0}}},
		{name: "interval incomplete", get: "from=2025-10-01", want: []wantErr{{"to", ErrorCode(report.CodeIncompleteRange), -1, 0}}},
		{name: "interval order", get: "from=2025-10-05&to=2025-10-01", want: []wantErr{{"to", ErrorCode(report.CodeIntervalOrder), -1, 0}}},
		{name: "interval too long", get: "from=2025-09-01&to=2025-10-10", want: []wantErr{{"to", ErrorCode(report.CodeIntervalTooLong), -1, 31}}},
		{name: "bad time", get: "from=ontem&to=2025-10-10", want: []wantErr{{"from", ErrorCode(report.CodeInvalidTime), -1, 0}}},
		{name: "session and protocol", get: "session=abc&protocol=123",
			want: []wantErr{{"session", ErrorCode(report.CodeInvalidSessionID), -1, 0}, {"protocol", ErrorCode(report.CodeInvalidProtocol), -1, 0}}},
		{name: "tags", get: "tag=ok&tag=+&tag=" + long + "&tag_mode=some",
			want: []wantErr{{"tag", ErrorCode(report.CodeEmpty), 1, 0}, {"tag", ErrorCode(report.CodeTooLong), 2, maxTagLen}, {"tag_mode", ErrorCode(report.CodeInvalidTagMode), -1, 0}}},
		{name: "control character", get: "tag=ok&tag=a%01b&q=x%00y",
			want: []wantErr{{"tag", ErrorCode(report.CodeControlCharacter), 1, 0}, {"q", ErrorCode(report.CodeControlCharacter), -1, 0}}},
		{name: "too many channels", get: "channel=" + strings.Repeat("a&channel=a", maxChannels),
			want: []wantErr{{"channel", ErrorCode(report.CodeTooMany), -1, maxChannels}}},
		{name: "channel", get: "channel=whatsapp&channel=Web+Chat", want: []wantErr{{"channel", ErrorCode(report.CodeInvalidChannel), 1, 0}}},
		// The index is the value's place among the info values sent, even
		// after one that could not be read at all.
		{name: "info", get: "info=NOCOLON&info=A:like:x&info=B:equals&info=C:exists:x&info=bad%20key:exists",
			want: []wantErr{
				{"info", CodeInvalidCondition, 0, 0}, {"info", ErrorCode(report.CodeUnknownOperation), 1, 0}, {"info", ErrorCode(report.CodeValueRequired), 2, 0},
				{"info", ErrorCode(report.CodeValueNotAllowed), 3, 0}, {"info", ErrorCode(report.CodeInvalidInfoKey), 4, 0},
			}},
		{name: "contact, q, handed_off", get: "contact=+&q=%21%21&handed_off=yes",
			want: []wantErr{{"contact", ErrorCode(report.CodeEmpty), -1, 0}, {"handed_off", ErrorCode(report.CodeInvalidBoolean), -1, 0}, {"q", ErrorCode(report.CodeNoWord), -1, 0}}},
		{name: "limit and cursor", get: "limit=500&cursor=xyz",
			want: []wantErr{{"limit", ErrorCode(report.CodeInvalidLimit), -1, maxLimit}, {"cursor", ErrorCode(report.CodeInvalidCursor), -1, 0}}},
		{name: "json body", post: `[1]`, want: []wantErr{{"body", CodeInvalidBody, -1, 0}}},
		{name: "json fields", post: `{"tags": ["a", 3], "info": [7, {"key": "K", "op": "like"}], "colour": 1}`,
			want: []wantErr{
				{"colour", CodeUnknownParameter, -1, 0}, {"tags[1]", CodeInvalidType, 1, 0},
				{"info[0]", CodeInvalidCondition, 0, 0}, {"info[1].op", ErrorCode(report.CodeUnknownOperation), 1, 0},
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, testConfig(t), &fakeStore{})
			var w interface {
				Header() http.Header
			}
			var code int
			var body []byte
			if tc.post != "" {
				r := do(s, http.MethodPost, "/api/v1/sessions/search", acmeKey, tc.post)
				w, code, body = r, r.Code, r.Body.Bytes()
			} else {
				r := do(s, http.MethodGet, "/api/v1/sessions?"+tc.get, acmeKey, "")
				w, code, body = r, r.Code, r.Body.Bytes()
			}
			if code != http.StatusBadRequest {
				t.Fatalf("status %d: %s", code, body)
			}
			errorParams(t, w, body) // a problem document whose errors all have codes
			var p problemBody
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			got := make([]wantErr, len(p.Errors))
			for i, e := range p.Errors {
				got[i] = e.brief()
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("errors\n got %v\nwant %v\n%s", got, tc.want, body)
			}
		})
	}
}

// TestProblemCodes: every problem document has the code of its status.
func TestProblemCodes(t *testing.T) {
	s, _ := conversationServer(t)
	failing := newServer(t, testConfig(t), &fakeStore{err: errors.New("store down")})
	cases := []struct {
		h      http.Handler
		method string
		target string
		key    string
		status int
		code   ErrorCode
	}{
		{s, http.MethodGet, "/api/v1/sessions", "", http.StatusUnauthorized, CodeUnauthorized},
		{s, http.MethodGet, "/api/v1/sessions?limit=0", acmeKey, http.StatusBadRequest, CodeInvalidParameters},
		{s, http.MethodGet, "/api/v1/sessions/00000000-0000-4000-8000-000000000000", acmeKey, http.StatusNotFound, CodeNotFound},
		{s, http.MethodGet, "/api/v2/nothing", acmeKey, http.StatusNotFound, CodeNotFound},
		{s, http.MethodDelete, "/api/v1/sessions", acmeKey, http.StatusMethodNotAllowed, CodeMethodNotAllowed},
		{failing, http.MethodGet, "/api/v1/sessions", acmeKey, http.StatusServiceUnavailable, CodeUnavailable},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %s", tc.method, tc.target), func(t *testing.T) {
			w := do(tc.h, tc.method, tc.target, tc.key, "")
			var p problemBody
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatalf("%d %s: %v", w.Code, w.Body, err)
			}
			if w.Code != tc.status || p.Code != tc.code {
				t.Fatalf("%d %q, want %d %q", w.Code, p.Code, tc.status, tc.code)
			}
		})
	}
	// Malformed HTTP, answered before the API sees the request.
	for status, want := range map[int]ErrorCode{
		http.StatusBadRequest: CodeMalformedRequest, http.StatusRequestHeaderFieldsTooLarge: CodeHeadersTooLarge,
		http.StatusExpectationFailed: CodeExpectationFailed, http.StatusHTTPVersionNotSupported: CodeMalformedRequest,
	} {
		resp := string(problemResponse(status, ""))
		if !strings.Contains(resp, `"code":"`+string(want)+`"`) {
			t.Errorf("net/http's %d answers %s, want code %s", status, resp, want)
		}
	}
	if problemCode(http.StatusTeapot) != CodeError {
		t.Error("an unlisted status has no code")
	}
}
