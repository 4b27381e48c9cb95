package api

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// openAPIDoc is the part of an OpenAPI document the test reads.
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas    map[string]json.RawMessage `json:"schemas"`
		Parameters map[string]openAPIParam    `json:"parameters"`
		Responses  map[string]json.RawMessage `json:"responses"`
	} `json:"components"`
}

type openAPIParam struct {
	Ref  string `json:"$ref"`
	Name string `json:"name"`
	In   string `json:"in"`
}

type openAPIOperation struct {
	Parameters  []openAPIParam `json:"parameters"`
	RequestBody *struct {
		Content map[string]struct {
			Schema struct {
				Ref string `json:"$ref"`
			} `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
	Responses map[string]json.RawMessage `json:"responses"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Fatalf("openapi %q, want 3.1", doc.OpenAPI)
	}
	return doc
}

func (d *openAPIDoc) param(t *testing.T, p openAPIParam) openAPIParam {
	t.Helper()
	if p.Ref == "" {
		return p
	}
	name := strings.TrimPrefix(p.Ref, "#/components/parameters/")
	resolved, ok := d.Components.Parameters[name]
	if !ok {
		t.Fatalf("dangling parameter $ref %s", p.Ref)
	}
	return resolved
}

func (d *openAPIDoc) properties(t *testing.T, ref string) []string {
	t.Helper()
	raw, ok := d.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
	if !ok {
		t.Fatalf("dangling schema $ref %s", ref)
	}
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return sortedKeys(s.Properties)
}

var ginParam = regexp.MustCompile(`:([a-z_]+)`)

// TestOpenAPIMatchesRoutes: every route is documented, every documented
// operation is routed, and each operation documents exactly the parameters
// the parser accepts (query), the route's path parameters, and the fields of
// the search body.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	s := newServer(t, testConfig(t), &fakeStore{})
	routed := map[string]bool{}
	for _, r := range s.engine.Routes() {
		path := ginParam.ReplaceAllString(r.Path, "{$1}")
		key := r.Method + " " + path
		routed[key] = true
		raw, ok := doc.Paths[path][strings.ToLower(r.Method)]
		if !ok {
			t.Errorf("%s is routed but not documented", key)
			continue
		}
		var op openAPIOperation
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		var query, pathParams []string
		for _, p := range op.Parameters {
			p = doc.param(t, p)
			switch p.In {
			case "query":
				query = append(query, p.Name)
			case "path":
				pathParams = append(pathParams, p.Name)
			default:
				t.Errorf("%s: parameter %s in %q", key, p.Name, p.In)
			}
		}
		slices.Sort(query)
		accepted := slices.Sorted(slices.Values(queryParams[r.Method+" "+r.Path]))
		if !slices.Equal(query, accepted) {
			t.Errorf("%s documents query parameters %v; the parser accepts %v", key, query, accepted)
		}
		var wantPath []string
		for _, m := range ginParam.FindAllStringSubmatch(r.Path, -1) {
			wantPath = append(wantPath, m[1])
		}
		if !slices.Equal(pathParams, wantPath) {
			t.Errorf("%s documents path parameters %v, want %v", key, pathParams, wantPath)
		}
		if _, ok := op.Responses["401"]; !ok {
			t.Errorf("%s does not document 401", key)
		}
		if r.Method == http.MethodPost {
			if op.RequestBody == nil {
				t.Errorf("%s documents no body", key)
				continue
			}
			body := doc.properties(t, op.RequestBody.Content["application/json"].Schema.Ref)
			if want := slices.Sorted(slices.Values(searchFields)); !slices.Equal(body, want) {
				t.Errorf("%s documents body fields %v; the parser accepts %v", key, body, want)
			}
			if got, want := doc.properties(t, "InfoCondition"), slices.Sorted(slices.Values(conditionFields)); !slices.Equal(got, want) {
				t.Errorf("InfoCondition documents %v; the parser accepts %v", got, want)
			}
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if key := strings.ToUpper(method) + " " + path; !routed[key] {
				t.Errorf("%s is documented but not routed", key)
			}
		}
	}
	for key := range queryParams {
		if !routed[ginParam.ReplaceAllString(key, "{$1}")] {
			t.Errorf("queryParams has %s, which is not routed", key)
		}
	}
}

// TestOpenAPIRefs: every $ref points at a component.
func TestOpenAPIRefs(t *testing.T) {
	doc := loadOpenAPI(t)
	for _, m := range regexp.MustCompile(`"\$ref": *"#/components/([a-zA-Z]+)/([A-Za-z0-9_]+)"`).FindAllStringSubmatch(string(openAPIDocument), -1) {
		var ok bool
		switch m[1] {
		case "schemas":
			_, ok = doc.Components.Schemas[m[2]]
		case "parameters":
			_, ok = doc.Components.Parameters[m[2]]
		case "responses":
			_, ok = doc.Components.Responses[m[2]]
		}
		if !ok {
			t.Errorf("dangling $ref #/components/%s/%s", m[1], m[2])
		}
	}
}

// TestOpenAPIViews: the documented schemas of the session and its timeline
// have the fields the API renders.
func TestOpenAPIViews(t *testing.T) {
	doc := loadOpenAPI(t)
	for schema, value := range map[string]any{
		"Session":       sessionView{},
		"Contact":       contactView{},
		"Agent":         agentView{},
		"Attendance":    attendanceView{Matched: new(bool)},
		"Message":       messageView{},
		"Author":        authorView{},
		"Attachment":    attachmentView{},
		"TimelineEvent": timelineEvent{},
		"Handoff":       handoffView{},
		"ParamError":    ParamError{Index: index(0), Limit: 1},
	} {
		b, _ := json.Marshal(value)
		var fields map[string]json.RawMessage
		json.Unmarshal(b, &fields) //nolint:errcheck // marshalled just above
		// omitempty fields of TimelineEvent are absent from the zero value.
		documented := doc.properties(t, schema)
		for _, f := range sortedKeys(fields) {
			if !slices.Contains(documented, f) {
				t.Errorf("%s: field %s is rendered but not documented", schema, f)
			}
		}
		if schema != "TimelineEvent" && len(fields) != len(documented) {
			t.Errorf("%s documents %v, renders %v", schema, documented, sortedKeys(fields))
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	s := newServer(t, testConfig(t), &fakeStore{})
	w := do(s, http.MethodGet, "/api/v1/openapi.json", acmeKey, "")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" || w.Body.String() != string(openAPIDocument) {
		t.Fatalf("%d %s", w.Code, w.Header().Get("Content-Type"))
	}
}
