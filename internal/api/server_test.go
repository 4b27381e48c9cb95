package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store/sqlite"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

func openSQLite(t testing.TB) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "api.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func ingest(t testing.TB, st session.Store, events ...event.Event) {
	t.Helper()
	if err := session.NewAssembler(pipeline.MustDefault(), st).Ingest(context.Background(), events); err != nil {
		t.Fatal(err)
	}
}

const (
	mariaID  = "c639c747-4637-4ff5-99c0-9f0e86d3c21b"
	globexID = "0b7e9d8a-5f1c-4c2e-9a61-3d2f1e0c9b8a"
)

// conversations: two acme sessions and one of globex, with every kind of
// event. storetest.Base is 2025-10-07 09:00 UTC (06:00 in São Paulo).
func conversations() []event.Event {
	maria := storetest.B{Contact: "5511987654321", Phone: "+55 11 98765-4321", Name: "Maria Souza", SessionID: mariaID, Protocol: "20251007092633646"}
	joao := storetest.B{Channel: "webchat", Contact: "web-77"}
	globex := storetest.B{Tenant: "globex", Contact: "5511987654321", Name: "Maria Souza", SessionID: globexID}
	m := time.Minute
	img := maria.Msg("m9", 9*m, event.RoleCustomer, "")
	img.ContentType = "image"
	img.Attachments = []event.Attachment{{URL: "https://cdn.example/boleto.jpg", MIMEType: "image/jpeg", Name: "boleto.jpg"}}
	return []event.Event{
		maria.Msg("m1", 0, event.RoleCustomer, "Olá, preciso da segunda via\ndo boleto"),
		maria.Msg("m2", m, event.RoleBot, "Claro! Informe seu CPF"),
		maria.Tag("m3", 2*m, "Segunda Via Sucesso"),
		maria.Info("m4", 3*m, "PLANO", "Fibra 500 Mega"),
		maria.Handoff("m5", 4*m, event.ActionRequested, ""),
		maria.Handoff("m6", 5*m, event.ActionAssigned, ""),
		maria.Msg("m7", 6*m, event.RoleAgent, "=HYPERLINK(\"x\") Oi Maria, sou a Carla"),
		maria.Handoff("m8", 7*m, event.ActionClosed, "resolved"),
		img,
		joao.Tag("j1", 2*time.Hour, "Menu Principal"), // a session without messages
		joao.Info("j2", 2*time.Hour+m, "NAO_TRANSBORDADA", "true"),
		globex.Msg("g1", time.Hour, event.RoleCustomer, "segunda via, NÃO recebi"),
		globex.Tag("g2", time.Hour+m, "Globex Tag"),
	}
}

func conversationServer(t testing.TB) (*Server, *sqlite.Store) {
	t.Helper()
	st := openSQLite(t)
	ingest(t, st, conversations()...)
	return newServer(t, testConfig(t), st), st
}

func getJSON(t *testing.T, h http.Handler, target, key string, into any) *httptest.ResponseRecorder {
	t.Helper()
	w := do(h, http.MethodGet, target, key, "")
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", target, w.Code, w.Body)
	}
	if into != nil {
		if err := json.Unmarshal(w.Body.Bytes(), into); err != nil {
			t.Fatalf("GET %s: %v", target, err)
		}
	}
	return w
}

type page struct {
	Items      []map[string]any `json:"items"`
	NextCursor *string          `json:"next_cursor"`
	Total      int              `json:"total"`
	TotalExact *bool            `json:"total_exact"`
}

// boundedStore answers every search as a store whose count went past its
// bound.
type boundedStore struct{ Store }

func (b boundedStore) Search(ctx context.Context, f report.Filter, p report.Page) (report.Result, error) {
	res, err := b.Store.Search(ctx, f, p)
	res.BoundTotal(p.Bound(&f)+1, p.Bound(&f))
	return res, err
}

// TestListSessionsBoundedTotal: past the bound the answer says the total
// is not exact, and the bound of a full-text search is the smaller one.
func TestListSessionsBoundedTotal(t *testing.T) {
	_, st := conversationServer(t)
	s := newServer(t, testConfig(t), boundedStore{st})
	for _, tc := range []struct {
		target string
		want   int
	}{
		{"/api/v1/sessions", report.DefaultTotalBound},
		{"/api/v1/sessions?q=boleto", report.QueryTotalBound},
		{"/api/v1/sessions?q=boleto&tag=x&channel=whatsapp", report.QueryTotalBound},
	} {
		var p page
		getJSON(t, s, tc.target, acmeKey, &p)
		if p.Total != tc.want || p.TotalExact == nil || *p.TotalExact {
			t.Fatalf("%s: total %d, exact %v; want %d, false", tc.target, p.Total, p.TotalExact, tc.want)
		}
	}
}

func TestListSessions(t *testing.T) {
	s, _ := conversationServer(t)
	var p page
	w := getJSON(t, s, "/api/v1/sessions", acmeKey, &p)
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q", ct)
	}
	if p.Total != 2 || p.TotalExact == nil || !*p.TotalExact || len(p.Items) != 2 || p.NextCursor != nil {
		t.Fatalf("page: total %d (exact %v), %d items, next %v", p.Total, p.TotalExact, len(p.Items), p.NextCursor)
	}
	joao, maria := p.Items[0], p.Items[1]
	if maria["session_id"] != mariaID {
		t.Fatalf("order: %v, %v", joao["session_id"], maria["session_id"])
	}
	keys := func(m map[string]any) []string {
		out := make([]string, 0, len(m))
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	want := []string{"agents", "attendances", "channel", "contact", "handed_off", "info", "last_activity_at", "message_counts",
		"protocols", "session_id", "started_at", "status", "tags", "window_ends_at"}
	if !slices.Equal(keys(maria), want) || !slices.Equal(keys(joao), want) {
		t.Fatalf("session keys %v, want %v", keys(maria), want)
	}
	if maria["started_at"] != "2025-10-07T09:00:00Z" || maria["status"] != "ended" || maria["handed_off"] != true {
		t.Fatalf("maria: %v", maria)
	}
	contact := joao["contact"].(map[string]any)
	if contact["id"] != "web-77" || contact["phone"] != nil || contact["name"] != nil || len(contact) != 3 {
		t.Fatalf("joao's contact: %v", contact)
	}
	att := maria["attendances"].([]any)[0].(map[string]any)
	if att["protocol"] != "20251007092633646" || att["status"] != "resolved" || att["handed_off"] != true {
		t.Fatalf("attendance %v", att)
	}
	if fmt.Sprint(maria["message_counts"]) != "map[agent:1 bot:1 customer:2]" {
		t.Fatalf("counts %v", maria["message_counts"])
	}

	// Paging with limit=1 and the POST form reach the same sessions.
	var ids []string
	cursor := ""
	for range 3 {
		var q page
		body := `{"limit":1}`
		if cursor != "" {
			body = `{"limit":1,"cursor":"` + cursor + `"}`
		}
		w := do(s, http.MethodPost, "/api/v1/sessions/search", acmeKey, body)
		if w.Code != http.StatusOK {
			t.Fatalf("search: %d %s", w.Code, w.Body)
		}
		if err := json.Unmarshal(w.Body.Bytes(), &q); err != nil {
			t.Fatal(err)
		}
		if q.Total != 2 {
			t.Fatalf("total %d", q.Total)
		}
		for _, it := range q.Items {
			ids = append(ids, it["session_id"].(string))
		}
		if q.NextCursor == nil {
			break
		}
		cursor = *q.NextCursor
	}
	if len(ids) != 2 || ids[1] != mariaID {
		t.Fatalf("paged %v", ids)
	}

	var f page
	getJSON(t, s, "/api/v1/sessions?q=segunda+via&info=PLANO:contains:FIBRA&handed_off=true&channel=whatsapp&tag=Segunda+Via+Sucesso&contact=98765-4321&protocol=20251007092633646", acmeKey, &f)
	if f.Total != 1 || f.Items[0]["session_id"] != mariaID {
		t.Fatalf("filtered: %+v", f)
	}
}

func TestSessionDetail(t *testing.T) {
	s, _ := conversationServer(t)
	var d map[string]any
	getJSON(t, s, "/api/v1/sessions/"+strings.ToUpper(mariaID), acmeKey, &d)
	if d["session_id"] != mariaID {
		t.Fatalf("session %v", d["session_id"])
	}
	msgs := d["messages"].([]any)
	events := d["events"].([]any)
	var msgIDs, eventIDs []string
	for _, m := range msgs {
		msgIDs = append(msgIDs, m.(map[string]any)["event_id"].(string))
	}
	for _, e := range events {
		eventIDs = append(eventIDs, e.(map[string]any)["event_id"].(string))
	}
	if !slices.Equal(msgIDs, []string{"m1", "m2", "m7", "m9"}) || !slices.Equal(eventIDs, []string{"m3", "m4", "m5", "m6", "m8"}) {
		t.Fatalf("timeline: messages %v, events %v", msgIDs, eventIDs)
	}
	first := msgs[0].(map[string]any)
	if first["text"] != "Olá, preciso da segunda via\ndo boleto" || first["content_type"] != "text" ||
		first["protocol"] != "20251007092633646" || first["occurred_at"] != "2025-10-07T09:00:00Z" {
		t.Fatalf("first message %v", first)
	}
	if a := first["author"].(map[string]any); a["role"] != "customer" || a["id"] != nil || a["name"] != nil {
		t.Fatalf("author %v", a)
	}
	if a := msgs[2].(map[string]any)["author"].(map[string]any); a["role"] != "agent" || a["id"] != "ag-1" || a["name"] != "Carla" {
		t.Fatalf("agent author %v", a)
	}
	img := msgs[3].(map[string]any)
	if att := img["attachments"].([]any); len(att) != 1 || att[0].(map[string]any)["mime_type"] != "image/jpeg" {
		t.Fatalf("attachments %v", img["attachments"])
	}
	byType := map[string]map[string]any{}
	for _, e := range events {
		m := e.(map[string]any)
		byType[m["type"].(string)] = m
	}
	if byType["tag"]["tag"] != "Segunda Via Sucesso" || byType["tag"]["handoff"] != nil {
		t.Fatalf("tag event %v", byType["tag"])
	}
	if info := byType["info"]["info"].(map[string]any); info["key"] != "PLANO" || info["value"] != "Fibra 500 Mega" {
		t.Fatalf("info event %v", byType["info"])
	}
	if h := byType["handoff"]["handoff"].(map[string]any); h["action"] != "closed" || h["status"] != "resolved" || h["queue"] != "Financeiro" {
		t.Fatalf("handoff event %v", byType["handoff"])
	}

	for _, target := range []string{
		"/api/v1/sessions/00000000-0000-0000-0000-000000000000",
		"/api/v1/sessions/" + globexID, // another tenant's
		"/api/v1/sessions/00000000-0000-0000-0000-000000000000/transcript",
	} {
		w := do(s, http.MethodGet, target, acmeKey, "")
		if w.Code != http.StatusNotFound || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%s: %d %s", target, w.Code, w.Header().Get("Content-Type"))
		}
	}
}

func TestTranscript(t *testing.T) {
	s, _ := conversationServer(t)
	w := do(s, http.MethodGet, "/api/v1/sessions/"+mariaID+"/transcript", acmeKey, "")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("%d %s", w.Code, w.Header().Get("Content-Type"))
	}
	want := `2025-10-07 06:00:00 -03:00 Maria Souza (customer): Olá, preciso da segunda via\ndo boleto
2025-10-07 06:01:00 -03:00 bot: Claro! Informe seu CPF
2025-10-07 06:06:00 -03:00 Carla (agent): =HYPERLINK("x") Oi Maria, sou a Carla
2025-10-07 06:09:00 -03:00 Maria Souza (customer): [attachment: boleto.jpg]
`
	if got := w.Body.String(); got != want {
		t.Fatalf("transcript\n%s\nwant\n%s", got, want)
	}
}

func TestEscapeLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain":             "plain",
		"a\nb":              `a\nb`,
		"a\r\nb":            `a\r\nb`,
		`back\slash`:        `back\\slash`,
		"tab\there":         `tab\there`,
		"ls\u2028ps\u2029":  `ls\u2028ps\u2029`,
		"nel\u0085vt\vff\f": `nel\u0085vt\u000bff\u000c`,
		"não":               "não",
	} {
		if got := escapeLine(in); got != want {
			t.Errorf("escapeLine(%q) = %q, want %q", in, got, want)
		}
		if strings.ContainsAny(escapeLine(in), "\n\r\u2028\u2029\u0085\v\f") {
			t.Errorf("escapeLine(%q) keeps a line break", in)
		}
	}
}

func TestFacets(t *testing.T) {
	s, _ := conversationServer(t)
	var f report.Facets
	getJSON(t, s, "/api/v1/facets?from=2025-10-01&to=2025-10-31", acmeKey, &f)
	if fmt.Sprint(f) != "{[{Menu Principal 1} {Segunda Via Sucesso 1}] [{NAO_TRANSBORDADA 1} {PLANO 1}] [{webchat 1} {whatsapp 1}]}" {
		t.Fatalf("facets %v", f)
	}
	w := getJSON(t, s, "/api/v1/facets?from=2025-09-01&to=2025-09-02", acmeKey, nil)
	if got := strings.TrimSpace(w.Body.String()); got != `{"tags":[],"info_keys":[],"channels":[]}` {
		t.Fatalf("empty facets %s", got)
	}
}

// TestTenantIsolation: a tenant's credentials never reach another tenant's
// sessions, whatever the route, even by id.
func TestTenantIsolation(t *testing.T) {
	s, _ := conversationServer(t)
	for _, tc := range []struct {
		key, mine, theirs, theirTag string
	}{
		{globexKey, globexID, mariaID, "Segunda Via Sucesso"},
		{acmeKey, mariaID, globexID, "Globex Tag"},
	} {
		// List and search, even by the other's session id or contact.
		for _, target := range []string{
			"/api/v1/sessions",
			"/api/v1/sessions?session=" + tc.theirs,
			"/api/v1/sessions?contact=5511987654321",
			"/api/v1/sessions?q=segunda",
			"/api/v1/sessions?tag=" + strings.ReplaceAll(tc.theirTag, " ", "+"),
		} {
			var p page
			getJSON(t, s, target, tc.key, &p)
			for _, it := range p.Items {
				if it["session_id"] == tc.theirs {
					t.Fatalf("%s lists the other tenant's session", target)
				}
			}
		}
		w := do(s, http.MethodPost, "/api/v1/sessions/search", tc.key, `{"session":"`+tc.theirs+`"}`)
		if w.Code != http.StatusOK || strings.Contains(w.Body.String(), tc.theirs) {
			t.Fatalf("search by the other's id: %d %s", w.Code, w.Body)
		}
		// Open and transcript: 404, as for a session that does not exist.
		for _, target := range []string{"/api/v1/sessions/" + tc.theirs, "/api/v1/sessions/" + tc.theirs + "/transcript"} {
			if w := do(s, http.MethodGet, target, tc.key, ""); w.Code != http.StatusNotFound || strings.Contains(w.Body.String(), tc.theirs) {
				t.Fatalf("%s: %d %s", target, w.Code, w.Body)
			}
		}
		if w := do(s, http.MethodGet, "/api/v1/sessions/"+tc.mine, tc.key, ""); w.Code != http.StatusOK {
			t.Fatalf("own session: %d", w.Code)
		}
		// Export, both formats, with and without the other's id.
		for _, target := range []string{"/api/v1/export", "/api/v1/export?format=csv", "/api/v1/export?session=" + tc.theirs} {
			w := do(s, http.MethodGet, target, tc.key, "")
			if w.Code != http.StatusOK || strings.Contains(w.Body.String(), tc.theirs) {
				t.Fatalf("%s: %d, other tenant's session in the export", target, w.Code)
			}
		}
		if w := do(s, http.MethodGet, "/api/v1/export", tc.key, ""); !strings.Contains(w.Body.String(), tc.mine) {
			t.Fatal("own export misses own session")
		}
		// Facets.
		w = do(s, http.MethodGet, "/api/v1/facets", tc.key, "")
		if w.Code != http.StatusOK || strings.Contains(w.Body.String(), tc.theirTag) {
			t.Fatalf("facets show the other tenant's tag: %s", w.Body)
		}
	}
}

func TestUnauthorized(t *testing.T) {
	s, _ := conversationServer(t)
	for _, route := range s.engine.Routes() {
		target := strings.ReplaceAll(route.Path, ":id", mariaID)
		for _, auth := range []string{"", "Bearer ", "Bearer nope", "Basic " + acmeKey, acmeKey} {
			r := httptest.NewRequest(route.Method, target, nil)
			if auth != "" {
				r.Header.Set("Authorization", auth)
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != http.StatusUnauthorized || w.Header().Get("Content-Type") != "application/problem+json" ||
				!strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Bearer realm="chatreport"`) {
				t.Errorf("%s %s with %q: %d %q %q", route.Method, target, auth, w.Code, w.Header().Get("Content-Type"), w.Header().Get("WWW-Authenticate"))
			}
			if strings.Contains(w.Body.String(), "Maria") {
				t.Errorf("%s %s: data without credentials", route.Method, target)
			}
		}
	}
	// Unknown routes under /api/ also ask for credentials first.
	if w := do(s, http.MethodGet, "/api/v2/sessions", "", ""); w.Code != http.StatusUnauthorized {
		t.Fatalf("unknown route without credentials: %d", w.Code)
	}
	if w := do(s, http.MethodGet, "/api/v2/sessions", acmeKey, ""); w.Code != http.StatusNotFound {
		t.Fatalf("unknown route: %d", w.Code)
	}
	if w := do(s, http.MethodDelete, "/api/v1/sessions", acmeKey, ""); w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE: %d", w.Code)
	}
}

// manySessions ingests n acme sessions of varied shapes, one event batch.
func manySessions(t testing.TB, st session.Store, n int) {
	t.Helper()
	var events []event.Event
	channels := []string{"whatsapp", "webchat", "telegram"}
	for i := range n {
		b := storetest.B{Channel: channels[i%3], Contact: fmt.Sprintf("c%05d", i), Name: fmt.Sprintf("Cliente %d", i)}
		at := time.Duration(i/2) * time.Minute // pairs share a start: the tiebreak matters
		events = append(events, b.Msg(fmt.Sprintf("e%05d-1", i), at, event.RoleCustomer, "olá, quero a segunda via"))
		if i%4 == 0 {
			events = append(events, b.Tag(fmt.Sprintf("e%05d-2", i), at+time.Second, "Segunda Via Sucesso"))
		}
		if i%5 == 0 {
			events = append(events, b.Info(fmt.Sprintf("e%05d-3", i), at+2*time.Second, "NPS", fmt.Sprint(i%11)))
		}
		events = append(events, b.Msg(fmt.Sprintf("e%05d-4", i), at+3*time.Second, event.RoleBot, "segue o boleto"))
	}
	ingest(t, st, events...)
}

// TestExportEqualsPaging: the export holds exactly the sessions of paging
// through the list, in its order, each line equal to GET /sessions/{id}.
func TestExportEqualsPaging(t *testing.T) {
	st := openSQLite(t)
	const n = 450 // more than two store chunks
	manySessions(t, st, n)
	s := newServer(t, testConfig(t), st)
	for _, filter := range []string{"", "tag=Segunda+Via+Sucesso", "channel=webchat&info=NPS:exists"} {
		var paged []string
		cursor := ""
		for {
			target := "/api/v1/sessions?limit=37"
			if filter != "" {
				target += "&" + filter
			}
			if cursor != "" {
				target += "&cursor=" + cursor
			}
			var p page
			getJSON(t, s, target, acmeKey, &p)
			for _, it := range p.Items {
				paged = append(paged, it["session_id"].(string))
			}
			if p.NextCursor == nil {
				break
			}
			cursor = *p.NextCursor
		}
		w := do(s, http.MethodGet, "/api/v1/export?format=jsonl&"+filter, acmeKey, "")
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/x-ndjson" ||
			w.Header().Get("Content-Disposition") != `attachment; filename="chatreport-2025-10-20.jsonl"` {
			t.Fatalf("export: %d %v", w.Code, w.Header())
		}
		lines := bytes.Split(bytes.TrimSuffix(w.Body.Bytes(), []byte("\n")), []byte("\n"))
		var exported []string
		for i, line := range lines {
			var d struct {
				SessionID string `json:"session_id"`
			}
			if err := json.Unmarshal(line, &d); err != nil {
				t.Fatalf("line %d: %v", i+1, err)
			}
			exported = append(exported, d.SessionID)
			if i%25 == 0 { // a sample: each line is the session's detail object
				one := do(s, http.MethodGet, "/api/v1/sessions/"+d.SessionID, acmeKey, "")
				if strings.TrimSpace(one.Body.String()) != string(line) {
					t.Fatalf("export line of %s differs from GET /sessions/{id}:\n%s\n%s", d.SessionID, line, one.Body)
				}
			}
		}
		if len(paged) == 0 || !slices.Equal(exported, paged) {
			t.Fatalf("filter %q: export has %d sessions, paging %d (or their order differs)", filter, len(exported), len(paged))
		}
	}
}

func TestExportCSV(t *testing.T) {
	s, _ := conversationServer(t)
	w := do(s, http.MethodGet, "/api/v1/export?format=csv&from=2025-10-07&to=2025-10-07", acmeKey, "")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/csv; charset=utf-8" ||
		w.Header().Get("Content-Disposition") != `attachment; filename="chatreport-2025-10-20.csv"` {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	records, err := csv.NewReader(w.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(records[0], csvColumns) {
		t.Fatalf("header %v", records[0])
	}
	col := func(r []string, name string) string { return r[slices.Index(csvColumns, name)] }
	rows := records[1:]
	// joao (no messages): one row; maria: one per message.
	if len(rows) != 5 {
		t.Fatalf("%d rows, want 5", len(rows))
	}
	joao := rows[0]
	if col(joao, "contact_id") != "web-77" || col(joao, "message_event_id") != "" || col(joao, "tags") != `["Menu Principal"]` ||
		col(joao, "info") != `{"NAO_TRANSBORDADA":"true"}` || col(joao, "customer_messages") != "0" {
		t.Fatalf("joao's row %q", joao)
	}
	var texts []string
	for _, r := range rows[1:] {
		if col(r, "session_id") != mariaID || col(r, "contact_phone") != "'+55 11 98765-4321" || col(r, "handed_off") != "true" {
			t.Fatalf("maria's row %q", r)
		}
		texts = append(texts, col(r, "message_text"))
	}
	want := []string{"Olá, preciso da segunda via\ndo boleto", "Claro! Informe seu CPF", `'=HYPERLINK("x") Oi Maria, sou a Carla`, ""}
	if !slices.Equal(texts, want) {
		t.Fatalf("texts %q", texts)
	}
	if a := col(rows[4], "message_attachments"); !strings.Contains(a, "boleto.jpg") {
		t.Fatalf("attachments %q", a)
	}
	// Nothing matches: the header alone.
	w = do(s, http.MethodGet, "/api/v1/export?format=csv&q=inexistente", acmeKey, "")
	if w.Code != http.StatusOK || strings.Count(w.Body.String(), "\n") != 1 {
		t.Fatalf("empty csv: %d %q", w.Code, w.Body)
	}
	w = do(s, http.MethodGet, "/api/v1/export?q=inexistente", acmeKey, "")
	if w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Fatalf("empty jsonl: %d %q", w.Code, w.Body)
	}
}

// endlessStore exports sessions until the API stops it, in chunks of ten.
type endlessStore struct {
	fakeStore
	failAfter int // > 0: fail after that many sessions
	done      chan int
}

func (e *endlessStore) Export(ctx context.Context, f report.Filter, newEncoder func() report.Encoder, emit report.Emit) error {
	n := 0
	defer func() { e.done <- n }()
	d := report.StoredDetail{Session: session.Session{Tenant: f.Tenant, ID: mariaID, Channel: "whatsapp", StartedAt: storetest.Base}}
	for _, ev := range conversations()[:9] {
		body, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		d.Events = append(d.Events, body)
	}
	enc := newEncoder()
	var (
		chunk []byte
		ends  []int
	)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.failAfter > 0 && n == e.failAfter {
			return fmt.Errorf("disk on fire")
		}
		var err error
		if chunk, err = enc.Append(chunk, &d); err != nil {
			return err
		}
		ends = append(ends, len(chunk))
		n++
		if n%10 == 0 {
			if err := emit(chunk, ends); err != nil {
				return err
			}
			chunk, ends = chunk[:0], ends[:0]
		}
	}
}

// TestExportStopsWhenClientLeaves: an export has no end of its own here;
// closing the connection ends it.
func TestExportStopsWhenClientLeaves(t *testing.T) {
	store := &endlessStore{done: make(chan int, 1)}
	srv := httptest.NewServer(newServer(t, testConfig(t), store))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/export", nil)
	req.Header.Set("Authorization", "Bearer "+acmeKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case n := <-store.done:
		t.Logf("export stopped after %d sessions", n)
	case <-time.After(10 * time.Second):
		t.Fatal("the export goes on after the client left")
	}
}

// TestExportFailure: a store failing before the first session gets a 503
// problem; failing midway cuts the response, so the client sees an
// incomplete transfer rather than a short file.
func TestExportFailure(t *testing.T) {
	s := newServer(t, testConfig(t), &fakeStore{err: fmt.Errorf("store down")})
	if w := do(s, http.MethodGet, "/api/v1/export", acmeKey, ""); w.Code != http.StatusServiceUnavailable ||
		w.Header().Get("Content-Disposition") != "" || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("early failure: %d %v", w.Code, w.Header())
	}
	// Failing after a few sessions that are still buffered: still a 503.
	early := &endlessStore{failAfter: 3, done: make(chan int, 1)}
	if w := do(newServer(t, testConfig(t), early), http.MethodGet, "/api/v1/export", acmeKey, ""); w.Code != http.StatusServiceUnavailable ||
		w.Header().Get("Content-Disposition") != "" || strings.Contains(w.Body.String(), mariaID) {
		t.Fatalf("failure with sessions buffered: %d %v", w.Code, w.Header())
	}
	<-early.done
	store := &endlessStore{failAfter: 500, done: make(chan int, 1)}
	srv := httptest.NewServer(newServer(t, testConfig(t), store))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/export", nil)
	req.Header.Set("Authorization", "Bearer "+acmeKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK || err == nil {
		t.Fatalf("midway failure: status %d, body read error %v; want 200 and an error", resp.StatusCode, err)
	}
	<-store.done
}
