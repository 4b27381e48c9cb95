package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/typedapi/indices/putindextemplate"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types"
)

// The index layout is data: one component template per kind in
// templates/ (settings, analysis and mappings; self-contained
// because Elasticsearch validates each component template alone), composed
// here into an index template whose name and patterns depend on the prefix.
const (
	templateDir = "templates"
	// indexTemplateVersion is the version of the index templates built
	// below; the component templates carry theirs in their files.
	indexTemplateVersion = 1
	// templatePriority beats Elastic's built-in templates (100) should a
	// pattern ever overlap one.
	templatePriority = 200
)

// componentTemplate is one template file and the name it is installed as.
type componentTemplate struct {
	name    string
	body    []byte
	version int64
}

// kind is one of the document kinds and its templates, in one version.
type kind struct {
	name     string // sessions, events, keys
	file     string // its component template
	template string // its index template
	pattern  string // of its indices
	aliases  []string
}

// kinds are the kinds of the store's version: the serving version's new
// indices join the read aliases, those of a version being built do not.
func (s *Store) kinds(serving bool) []kind { return kindsOf(s.names, serving) }

func kindsOf(n names, serving bool) []kind {
	sessions, events := []string{n.sessionsAll()}, []string{n.eventsAll()}
	if serving {
		sessions, events = append(sessions, n.sessionsRead()), append(events, n.eventsRead())
	}
	return []kind{
		{"sessions", "sessions-" + SchemaVersion + ".json", n.sessionsAll(), n.sessionsAll() + "-*", sessions},
		{"events", "events-" + SchemaVersion + ".json", n.eventsAll(), n.eventsAll() + "-*", events},
		{"keys", "keys-" + SchemaVersion + ".json", n.keysIndex(), n.keysIndex(), nil},
	}
}

// mappingsTemplate is the component template of k: one per schema, shared
// by every data version.
func (s *Store) mappingsTemplate(k kind) string {
	return s.cfg.IndexPrefix + "-" + k.name + "-" + SchemaVersion + "-mappings"
}

// customTemplate is the operators' hook: settings such as shards and
// replicas in a component template of this name apply to new indices. It
// may be missing.
func (s *Store) customTemplate(k kind) string { return s.cfg.IndexPrefix + "-" + k.name + "@custom" }

func loadTemplate(name, file string) (componentTemplate, error) {
	body, err := fs.ReadFile(templateFiles, templateDir+"/"+file)
	if err != nil {
		return componentTemplate{}, fmt.Errorf("elasticsearch template %s: %w", file, err)
	}
	var head struct {
		Version int64 `json:"version"`
	}
	if err := json.Unmarshal(body, &head); err != nil || head.Version < 1 {
		return componentTemplate{}, fmt.Errorf("elasticsearch template %s: needs a positive version", file)
	}
	return componentTemplate{name: name, body: body, version: head.Version}, nil
}

func (s *Store) componentTemplates() ([]componentTemplate, error) {
	var out []componentTemplate
	for _, k := range s.kinds(false) {
		t, err := loadTemplate(s.mappingsTemplate(k), k.file)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// indexTemplateRequest composes the index template of k: its indices (the
// monthly ones of sessions and events) get the settings and mappings and
// join the aliases.
func (s *Store) indexTemplateRequest(k kind) *putindextemplate.Request {
	priority, version := int64(templatePriority), int64(indexTemplateVersion)
	custom := s.customTemplate(k)
	aliases := map[string]types.Alias{}
	for _, a := range k.aliases {
		aliases[a] = types.Alias{}
	}
	return &putindextemplate.Request{
		IndexPatterns:                   []string{k.pattern},
		ComposedOf:                      []string{s.mappingsTemplate(k), custom},
		IgnoreMissingComponentTemplates: []string{custom},
		Priority:                        &priority,
		Version:                         &version,
		Template:                        &types.IndexTemplateMapping{Aliases: aliases},
		Meta_: types.Metadata{
			"managed_by": json.RawMessage(`"chatreport"`),
			"schema":     json.RawMessage(strconv.Quote(SchemaVersion)),
		},
	}
}

// Init installs the component and index templates of the store's version
// (create or update) and creates its key index and this month's indices, so
// the aliases exist before the first write. The templates of the current
// version (the registry says which) attach the read aliases too, and the
// version's existing indices get the fields the templates added
// (updateMappings). It is idempotent: `chatreport index init` runs it on
// every deploy.
func (s *Store) Init(ctx context.Context) error {
	components, err := s.componentTemplates()
	if err != nil {
		return err
	}
	for _, c := range components {
		if err := s.do(ctx, esapi.ClusterPutComponentTemplateRequest{Name: c.name, Body: bytes.NewReader(c.body)}, nil); err != nil {
			return fmt.Errorf("install component template %s: %w", c.name, err)
		}
	}
	state, err := s.Registry().read(ctx)
	if err != nil {
		return err
	}
	if err := s.putIndexTemplates(ctx, s.kinds(state.Current == s.names.version)); err != nil {
		return err
	}
	now := time.Now()
	for _, index := range []string{s.names.keysIndex(), s.names.sessionsIndex(now), s.names.eventsIndex(now)} {
		err := s.do(ctx, esapi.IndicesCreateRequest{Index: index}, nil)
		var re *ResponseError
		if errors.As(err, &re) && re.Type == "resource_already_exists_exception" {
			continue
		}
		if err != nil {
			return fmt.Errorf("create index %s: %w", index, err)
		}
	}
	// Last: the key index exists now (a concrete name must).
	return s.updateMappings(ctx, components)
}

// updateMappings gives the version's existing indices, made from an older
// template, the fields the templates have now: Elasticsearch adds new fields
// to an existing mapping (it refuses to change one, which a release must
// not do; a change of type needs a rebuild into a new version).
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/indices-put-mapping.html
func (s *Store) updateMappings(ctx context.Context, components []componentTemplate) error {
	for i, k := range s.kinds(false) {
		var t struct {
			Template struct {
				Mappings json.RawMessage `json:"mappings"`
			} `json:"template"`
		}
		if err := json.Unmarshal(components[i].body, &t); err != nil || len(t.Template.Mappings) == 0 {
			return fmt.Errorf("elasticsearch template %s: no mappings", components[i].name)
		}
		req := esapi.IndicesPutMappingRequest{Index: []string{k.pattern}, Body: bytes.NewReader(t.Template.Mappings)}
		if err := s.do(ctx, req, nil); err != nil {
			return fmt.Errorf("update the mappings of %s: %w", k.pattern, err)
		}
	}
	return nil
}

// putIndexTemplates installs the index templates of kinds.
func (s *Store) putIndexTemplates(ctx context.Context, kinds []kind) error {
	for _, k := range kinds {
		body, err := json.Marshal(s.indexTemplateRequest(k))
		if err != nil {
			return fmt.Errorf("encode index template %s: %w", k.template, err)
		}
		if err := s.do(ctx, esapi.IndicesPutIndexTemplateRequest{Name: k.template, Body: bytes.NewReader(body)}, nil); err != nil {
			return fmt.Errorf("install index template %s: %w", k.template, err)
		}
	}
	return nil
}

// Status is what `chatreport index status` shows.
type Status struct {
	// Prefix, Schema and Version name the layout this binary reads and
	// writes.
	Prefix  string
	Schema  string
	Version string
	// Serving is set when Version is the current version, whose indices
	// the read aliases designate.
	Serving   bool
	Templates []TemplateStatus
	Indices   []IndexStatus
}

// TemplateStatus compares an installed template with the one this binary
// installs.
type TemplateStatus struct {
	Name string
	Kind string // "component" or "index"
	// Want is the version Init installs; Have the installed one, 0 when
	// the template is missing.
	Want, Have int64
}

// Current reports whether the template is installed at the wanted version.
func (t TemplateStatus) Current() bool { return t.Have == t.Want }

// IndexStatus describes one monthly index.
type IndexStatus struct {
	Name   string
	Health string
	State  string
	// Docs counts the index's documents; DocsUnknown says why it could
	// not (closed, red, or gone since it was listed), and Docs is then 0.
	Docs        int64
	DocsUnknown string
	Aliases     []string
}

// Ready reports whether every template is current, the key index exists and
// the version's aliases point at an index: the read aliases too when it is
// the current version.
func (st *Status) Ready() bool {
	for _, t := range st.Templates {
		if !t.Current() {
			return false
		}
	}
	found := map[string]bool{}
	for _, ix := range st.Indices {
		found[ix.Name] = true
		for _, a := range ix.Aliases {
			found[a] = true
		}
	}
	n := names{prefix: st.Prefix, version: st.Version}
	ready := found[n.sessionsAll()] && found[n.eventsAll()] && found[n.keysIndex()]
	if st.Serving {
		ready = ready && found[n.sessionsRead()] && found[n.eventsRead()]
	}
	return ready
}

// Status inspects the templates, the monthly indices and their aliases.
func (s *Store) Status(ctx context.Context) (Status, error) {
	st := Status{Prefix: s.cfg.IndexPrefix, Schema: SchemaVersion, Version: s.names.version}
	state, err := s.Registry().read(ctx)
	if err != nil {
		return st, err
	}
	st.Serving = state.Current == s.names.version
	components, err := s.componentTemplates()
	if err != nil {
		return st, err
	}
	var installedComponents struct {
		ComponentTemplates []struct {
			Name              string `json:"name"`
			ComponentTemplate struct {
				Version int64 `json:"version"`
			} `json:"component_template"`
		} `json:"component_templates"`
	}
	if err := s.getOrMissing(ctx, esapi.ClusterGetComponentTemplateRequest{Name: []string{s.cfg.IndexPrefix + "-*"}}, &installedComponents); err != nil {
		return st, fmt.Errorf("read component templates: %w", err)
	}
	have := map[string]int64{}
	for _, c := range installedComponents.ComponentTemplates {
		have[c.Name] = c.ComponentTemplate.Version
	}
	for _, c := range components {
		st.Templates = append(st.Templates, TemplateStatus{Name: c.name, Kind: "component", Want: c.version, Have: have[c.name]})
	}
	var installedIndex struct {
		IndexTemplates []struct {
			Name          string `json:"name"`
			IndexTemplate struct {
				Version int64 `json:"version"`
			} `json:"index_template"`
		} `json:"index_templates"`
	}
	if err := s.getOrMissing(ctx, esapi.IndicesGetIndexTemplateRequest{Name: s.cfg.IndexPrefix + "-*"}, &installedIndex); err != nil {
		return st, fmt.Errorf("read index templates: %w", err)
	}
	clear(have)
	for _, t := range installedIndex.IndexTemplates {
		have[t.Name] = t.IndexTemplate.Version
	}
	for _, k := range s.kinds(st.Serving) {
		st.Templates = append(st.Templates, TemplateStatus{Name: k.template, Kind: "index", Want: indexTemplateVersion, Have: have[k.template]})
	}
	patterns := s.names.indexPatterns()
	cat, err := s.catIndices(ctx, patterns)
	if err != nil {
		return st, err
	}
	aliases := map[string]struct {
		Aliases map[string]json.RawMessage `json:"aliases"`
	}{}
	if err := s.getOrMissing(ctx, esapi.IndicesGetAliasRequest{Index: patterns}, &aliases); err != nil {
		return st, fmt.Errorf("list aliases: %w", err)
	}
	for _, c := range cat {
		ix := IndexStatus{Name: c.Index, Health: c.Health, State: c.Status}
		switch {
		case c.Status != "open": // a closed index cannot be searched
			ix.DocsUnknown = "closed"
		default:
			// One index that cannot be counted (red, or deleted since it
			// was listed) does not hide the status of the others: that
			// is when an operator needs it.
			if ix.Docs, err = s.countDocs(ctx, c.Index); err != nil {
				if ctx.Err() != nil {
					return st, err
				}
				ix.DocsUnknown = "not counted: " + err.Error()
			}
		}
		for a := range aliases[c.Index].Aliases {
			ix.Aliases = append(ix.Aliases, a)
		}
		slices.Sort(ix.Aliases)
		st.Indices = append(st.Indices, ix)
	}
	slices.SortFunc(st.Indices, func(a, b IndexStatus) int { return strings.Compare(a.Name, b.Name) })
	return st, nil
}

// indexPatterns match every index of the version. The key index is named
// by a pattern too: Elasticsearch answers 404 for a missing concrete index
// in _cat/indices and _alias, and a version may not have one yet (or any
// more). The pattern also matches the key index of a version whose name
// extends this one's (v2 and v20): ownIndex tells them apart.
func (n names) indexPatterns() []string {
	return []string{n.sessionsAll() + "-*", n.eventsAll() + "-*", n.keysIndex() + "*"}
}

// ownIndex reports whether index, matched by indexPatterns, is the
// version's.
func (n names) ownIndex(index string) bool {
	return !strings.HasPrefix(index, n.keysIndex()) || index == n.keysIndex()
}

// catIndex is one line of _cat/indices. Its docs.count is not read: it
// is Lucene's count, which counts every object of a nested field (a
// session's messages) as a document of its own ("These metrics are
// retrieved directly from Lucene ... all document counts include hidden
// nested documents"); countDocs counts documents.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/cat-indices.html
type catIndex struct {
	Index  string `json:"index"`
	Health string `json:"health"`
	Status string `json:"status"`
}

// countDocs counts the documents of index with _count, which counts
// top-level documents only, as a search sees them (refreshed).
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/search-count.html
func (s *Store) countDocs(ctx context.Context, index string) (int64, error) {
	var res struct {
		Count  int64 `json:"count"`
		Shards struct {
			Total  int `json:"total"`
			Failed int `json:"failed"`
		} `json:"_shards"`
	}
	if err := s.do(ctx, esapi.CountRequest{Index: []string{index}}, &res); err != nil {
		return 0, fmt.Errorf("count the documents of %s: %w", index, err)
	}
	if res.Shards.Failed > 0 {
		return 0, fmt.Errorf("%w: count of %s incomplete (%d of %d shards failed)", ErrUnavailable, index, res.Shards.Failed, res.Shards.Total)
	}
	return res.Count, nil
}

// catIndices lists the indices matching patterns; none is not an error.
func (s *Store) catIndices(ctx context.Context, patterns []string) ([]catIndex, error) {
	var cat []catIndex
	if err := s.do(ctx, esapi.CatIndicesRequest{Index: patterns, Format: "json", H: []string{"index", "health", "status"}}, &cat); err != nil {
		return nil, fmt.Errorf("list indices: %w", err)
	}
	return slices.DeleteFunc(cat, func(c catIndex) bool { return !s.names.ownIndex(c.Index) }), nil
}

// getOrMissing is do for reads where "nothing matched" is a 404.
func (s *Store) getOrMissing(ctx context.Context, req esapi.Request, out any) error {
	err := s.do(ctx, req, out)
	var re *ResponseError
	if errors.As(err, &re) && re.Status == http.StatusNotFound {
		return nil
	}
	return err
}
