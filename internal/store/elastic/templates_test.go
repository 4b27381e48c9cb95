package elastic

import (
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"

	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/typedapi/cluster/putcomponenttemplate"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
)

func testStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(Config{Addresses: []string{"http://127.0.0.1:1"}, IndexPrefix: "chatreport"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mappingOf(t *testing.T, c componentTemplate) (props map[string]any, settings map[string]any) {
	t.Helper()
	var body struct {
		Template struct {
			Settings map[string]any `json:"settings"`
			Mappings struct {
				Dynamic    string         `json:"dynamic"`
				Properties map[string]any `json:"properties"`
			} `json:"mappings"`
		} `json:"template"`
	}
	if err := json.Unmarshal(c.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Template.Mappings.Dynamic != "strict" {
		t.Errorf("%s: dynamic %q, want strict", c.name, body.Template.Mappings.Dynamic)
	}
	return body.Template.Mappings.Properties, body.Template.Settings
}

// fill sets every field reachable from v to a non-zero value (one element
// in slices and maps), so that a field added to the Go types later shows up
// in the documents below and must be mapped.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2025, 10, 7, 9, 0, 0, 1, time.UTC)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.String:
		v.SetString("x.y")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(1)
	}
}

// TestMappingsCoverDocuments: every field the Go types can produce is in
// the strict mappings, with a type that takes its value. A field added to
// event.Event or session.Session fails here before it fails in production
// as a 400 for every document.
func TestMappingsCoverDocuments(t *testing.T) {
	s := testStore(t)
	components, err := s.componentTemplates()
	if err != nil {
		t.Fatal(err)
	}
	mappings := map[string]map[string]any{}
	for i, k := range s.kinds(false) {
		mappings[k.name], _ = mappingOf(t, components[i])
	}
	var e event.Event
	fill(reflect.ValueOf(&e).Elem())
	var ss session.Session
	fill(reflect.ValueOf(&ss).Elem())
	ss.Contact.Phone = "+55 11 98765-4321"
	st := session.Stored{Event: &e, SessionID: "sid"}
	var ref keyDoc
	fill(reflect.ValueOf(&ref).Elem())
	ed := newEventDoc(&st, session.KeyOf(&e))
	for kind, doc := range map[string]jsonAppender{
		"events":   &ed,
		"sessions": newSessionDoc(&ss, []session.Stored{{Event: &event.Event{Type: event.TypeMessage, Text: "oi"}}}),
		"keys":     &ref,
	} {
		raw := doc.appendJSON(nil)
		var m map[string]any
		json.Unmarshal(raw, &m)
		if err := esfake.Validate(mappings[kind], m); err != nil {
			t.Errorf("%s document does not fit the mapping: %v\n%s", kind, err, raw)
		}
	}
}

// TestTemplatesParse decodes each template with the typed API's request
// type: Elasticsearch's own specification of the body. A misspelt
// parameter disappears in the round trip and fails the comparison.
func TestTemplatesParse(t *testing.T) {
	s := testStore(t)
	components, err := s.componentTemplates()
	if err != nil {
		t.Fatal(err)
	}
	var analysis []any
	for _, c := range components {
		var req putcomponenttemplate.Request
		if err := json.Unmarshal(c.body, &req); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		props, settings := mappingOf(t, c)
		if len(props) == 0 {
			t.Fatalf("%s: no properties", c.name)
		}
		typed, err := json.Marshal(req.Template.Mappings)
		if err != nil {
			t.Fatal(err)
		}
		var orig struct {
			Template struct {
				Mappings json.RawMessage `json:"mappings"`
			} `json:"template"`
		}
		json.Unmarshal(c.body, &orig)
		if !bytes.Equal(normalize(t, typed), normalize(t, orig.Template.Mappings)) {
			t.Errorf("%s: the typed API reads the mappings differently:\n%s\nvs\n%s", c.name, normalize(t, typed), normalize(t, orig.Template.Mappings))
		}
		idx, _ := settings["index"].(map[string]any)
		if idx["analysis"] != nil {
			analysis = append(analysis, idx["analysis"])
		}
		if idx["refresh_interval"] != "1s" {
			t.Errorf("%s: refresh_interval must be set explicitly (search-idle shards skip scheduled refreshes otherwise)", c.name)
		}
		if c.version < 1 {
			t.Errorf("%s: version %d", c.name, c.version)
		}
	}
	if len(analysis) != 2 || !reflect.DeepEqual(analysis[0], analysis[1]) {
		t.Error("the session and event templates define different analyzers: full text would match differently")
	}
}

// TestIndexTemplatesGolden: the serving v1 templates are those of clusters
// installed before data versions existed (the files predate them); a
// version being built gets its own names and no read aliases.
func TestIndexTemplatesGolden(t *testing.T) {
	s := testStore(t)
	for _, tc := range []struct {
		version string
		serving bool
		suffix  string
	}{
		{"v1", true, ""},
		{"v2", false, "_v2_building"},
		{"v2", true, "_v2_serving"},
	} {
		for _, k := range kindsOf(s.names.of(tc.version), tc.serving) {
			body, err := json.Marshal(s.indexTemplateRequest(k))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "index_template_"+k.name+tc.suffix+".json", body)
		}
	}
}

func TestNames(t *testing.T) {
	n := names{prefix: "chatreport", version: "v1"}
	v2 := n.of("v2")
	at := time.Date(2025, 10, 31, 23, 59, 59, 0, time.FixedZone("BRT", -3*3600)) // November in UTC
	for got, want := range map[string]string{
		n.sessionsIndex(at):  "chatreport-sessions-v1-2025.11",
		n.eventsIndex(at):    "chatreport-events-v1-2025.11",
		n.sessionsRead():     "chatreport-sessions",
		n.sessionsAll():      "chatreport-sessions-v1",
		n.eventsRead():       "chatreport-events",
		n.keysIndex():        "chatreport-keys-v1",
		v2.sessionsIndex(at): "chatreport-sessions-v2-2025.11",
		v2.sessionsAll():     "chatreport-sessions-v2",
		v2.keysIndex():       "chatreport-keys-v2",
		v2.sessionsRead():    "chatreport-sessions",
		n.versionsIndex():    "chatreport-versions",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}

func TestVersionOf(t *testing.T) {
	n := names{prefix: "chatreport", version: "v1"}
	for _, tc := range []struct {
		index, want string
		ok          bool
	}{
		{"chatreport-sessions-v1-2025.11", "v1", true},
		{"chatreport-events-rebuild_2-2024.01", "rebuild_2", true},
		{"chatreport-keys-v3", "v3", true},
		{"chatreport-sessions-v1", "", false},        // an alias name, no month
		{"chatreport-sessions-v1-latest", "", false}, // not a month
		{"chatreport-versions", "", false},
		{"other-sessions-v1-2025.11", "", false},
		{"chatreport-keys-V2!", "V2!", false},
	} {
		got, ok := n.versionOf(tc.index)
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("versionOf(%s) = %q, %t; want %q, %t", tc.index, got, ok, tc.want, tc.ok)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	c := Config{Addresses: []string{"http://es:9200"}}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := Config{IndexPrefix: "Bad Prefix", Version: "v2-fix", CacheBytes: -1, BulkMaxBytes: 1, BulkAttempts: -1, Backoff: time.Second, MaxBackoff: time.Millisecond, PageSize: 20000}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config validates")
	}
	for _, want := range []string{"no addresses", "index prefix", "version", "cache_mib", "bulk max bytes", "attempts", "backoff", "page size"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestInitStatus: Init installs what Status then reports current, and is
// idempotent.
func TestInitStatus(t *testing.T) {
	f := esfake.New(t)
	s := fakeStore(t, f) // runs Init
	if err := s.Init(t.Context()); err != nil {
		t.Fatalf("second init: %v", err)
	}
	st, err := s.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ready() {
		t.Fatalf("not ready after init: %+v", st)
	}
	if len(st.Templates) != 6 || len(st.Indices) != 3 {
		t.Fatalf("status: %+v", st)
	}
	for _, ix := range st.Indices {
		if ix.Name != "test-keys-v1" && len(ix.Aliases) != 2 {
			t.Errorf("index %s has aliases %v", ix.Name, ix.Aliases)
		}
	}
	empty := esfake.New(t)
	s2, err := New(Config{Addresses: []string{empty.URL()}, IndexPrefix: "test"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	st, err = s2.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Ready() || st.Templates[0].Current() || len(st.Indices) != 0 {
		t.Fatalf("empty cluster looks ready: %+v", st)
	}
}

// TestStatusCountsDocuments: the documents Status shows per index are the
// sessions, events and keys stored, not Lucene's documents, which count
// every message of a session (a nested object) besides the session.
func TestStatusCountsDocuments(t *testing.T) {
	f := esfake.New(t)
	s := fakeStore(t, f)
	if err := assembler(s).Ingest(t.Context(), mariaEvents()); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	st, err := s.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"test-sessions-v1-2025.10": 1, "test-events-v1-2025.10": 6, "test-keys-v1": 1}
	got := map[string]int64{}
	for _, ix := range st.Indices {
		if _, ok := want[ix.Name]; ok {
			got[ix.Name] = ix.Docs
		}
		if n := int64(len(f.Docs(ix.Name))); ix.Docs != n {
			t.Errorf("index %s: %d documents, holds %d", ix.Name, ix.Docs, n)
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("documents %v, want %v", got, want)
	}
}

// failingCount answers 503 to a _count of the index named, as a red index
// does, and passes everything else to the fake.
type failingCount struct{ index string }

func (c failingCount) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == "/"+c.index+"/_count" {
		body := `{"error":{"type":"no_shard_available_action_exception","reason":"all shards failed"},"status":503}`
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Body: io.NopCloser(strings.NewReader(body)),
			Header: http.Header{"Content-Type": {"application/json"}, "X-Elastic-Product": {"Elasticsearch"}}, Request: req}, nil
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestStatusWithIndicesUncounted: an index that is closed, or whose count
// fails (a red index), is listed with its count unknown and why, and the
// other indices are counted: the status an operator needs most then.
func TestStatusWithIndicesUncounted(t *testing.T) {
	f := esfake.New(t)
	s := fakeStore(t, f, func(c *Config) { c.Transport = failingCount{index: "test-sessions-v1-2025.10"} })
	if err := assembler(s).Ingest(t.Context(), mariaEvents()); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	openClose(t, f, "test-keys-v1", "_close")
	st, err := s.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, ix := range st.Indices {
		got[ix.Name] = fmt.Sprintf("%d %s", ix.Docs, ix.DocsUnknown)
	}
	for name, want := range map[string]string{
		"test-sessions-v1-2025.10": "0 not counted: ",
		"test-events-v1-2025.10":   "6 ",
		"test-keys-v1":             "0 closed",
	} {
		if !strings.HasPrefix(got[name], want) {
			t.Errorf("index %s: %q, want %q…", name, got[name], want)
		}
	}
}
