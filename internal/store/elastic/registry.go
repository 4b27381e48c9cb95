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
	"strings"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/chatreport/chatreport/internal/versions"
)

// The registry of data versions lives in the cluster, in <prefix>-versions,
// so that every ingest pod, the API and the operators' commands agree on it:
// document "registry" holds a versions.State; "replay-<version>" the progress
// of a replay. docs/elasticsearch.md, "Versions".
const (
	registryDoc = "registry"
	versionsDir = templateDir + "/versions.json"
	// registryAttempts bounds the rereads after a concurrent change.
	registryAttempts = 5
)

func replayDoc(version string) string { return "replay-" + version }

// registryState is the registry document.
type registryState struct {
	Current   string               `json:"current"`
	Building  map[string]time.Time `json:"building,omitempty"`
	Retired   map[string]time.Time `json:"retired,omitempty"`
	Abandoned map[string]time.Time `json:"abandoned,omitempty"`
	UpdatedAt time.Time            `json:"updated_at"`
}

// replayState is a replay's progress document.
type replayState struct {
	Version   string    `json:"version"`
	State     []byte    `json:"state"`
	UpdatedAt time.Time `json:"updated_at"`
}

// getResponse is a GET of one document.
type getResponse struct {
	Found       bool            `json:"found"`
	SeqNo       int64           `json:"_seq_no"`
	PrimaryTerm int64           `json:"_primary_term"`
	Source      json.RawMessage `json:"_source"`
}

// getDoc reads a document of the versions index in real time; a missing
// index or document gives found false.
func (s *Store) getDoc(ctx context.Context, id string) (getResponse, error) {
	var res getResponse
	err := s.getOrMissing(ctx, esapi.GetRequest{Index: s.names.versionsIndex(), DocumentID: id}, &res)
	if err != nil {
		return res, fmt.Errorf("read %s/%s: %w", s.names.versionsIndex(), id, err)
	}
	return res, nil
}

// putDoc writes a document of the versions index, creating the index first.
// With expect set it is conditional: on the version read (found) or on
// there being none (not found); a concurrent change answers a 409.
func (s *Store) putDoc(ctx context.Context, id string, doc any, expect *getResponse) error {
	if err := s.createVersionsIndex(ctx); err != nil {
		return err
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode %s: %w", id, err)
	}
	req := esapi.IndexRequest{Index: s.names.versionsIndex(), DocumentID: id, Body: bytes.NewReader(body)}
	switch {
	case expect == nil:
	case expect.Found:
		seq, term := int(expect.SeqNo), int(expect.PrimaryTerm)
		req.IfSeqNo, req.IfPrimaryTerm = &seq, &term
	default:
		req.OpType = "create"
	}
	if err := s.do(ctx, req, nil); err != nil {
		return fmt.Errorf("write %s/%s: %w", s.names.versionsIndex(), id, err)
	}
	return nil
}

func (s *Store) deleteDoc(ctx context.Context, id string) error {
	err := s.getOrMissing(ctx, esapi.DeleteRequest{Index: s.names.versionsIndex(), DocumentID: id}, nil)
	if err != nil {
		return fmt.Errorf("delete %s/%s: %w", s.names.versionsIndex(), id, err)
	}
	return nil
}

// createVersionsIndex creates the versions index with its mapping, once per
// Store: no template matches it, and a write must not create it with
// dynamic mappings. An index that exists gets the mapping's new fields (the
// registry's retired and abandoned came after the first layouts): adding
// fields to an existing mapping is allowed, and adding those it has changes
// nothing.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/indices-put-mapping.html
func (s *Store) createVersionsIndex(ctx context.Context) error {
	if s.versionsIndexReady.Load() {
		return nil
	}
	body, err := fs.ReadFile(templateFiles, versionsDir)
	if err != nil {
		return fmt.Errorf("elasticsearch: %w", err)
	}
	err = s.do(ctx, esapi.IndicesCreateRequest{Index: s.names.versionsIndex(), Body: bytes.NewReader(body)}, nil)
	var re *ResponseError
	switch {
	case err == nil:
	case errors.As(err, &re) && re.Type == "resource_already_exists_exception":
		var b struct {
			Mappings json.RawMessage `json:"mappings"`
		}
		if err := json.Unmarshal(body, &b); err != nil || len(b.Mappings) == 0 {
			return fmt.Errorf("elasticsearch %s: no mappings", versionsDir)
		}
		req := esapi.IndicesPutMappingRequest{Index: []string{s.names.versionsIndex()}, Body: bytes.NewReader(b.Mappings)}
		if err := s.do(ctx, req, nil); err != nil {
			return fmt.Errorf("update the mapping of %s: %w", s.names.versionsIndex(), err)
		}
	default:
		return fmt.Errorf("create index %s: %w", s.names.versionsIndex(), err)
	}
	s.versionsIndexReady.Store(true)
	return nil
}

// LoadReplayState returns the saved progress of a replay into the store's
// version, or nil when none was saved (replay.Target).
func (s *Store) LoadReplayState(ctx context.Context) ([]byte, error) {
	res, err := s.getDoc(ctx, replayDoc(s.names.version))
	if err != nil || !res.Found {
		return nil, err
	}
	var doc replayState
	if err := json.Unmarshal(res.Source, &doc); err != nil {
		return nil, fmt.Errorf("decode replay state of %s: %w", s.names.version, err)
	}
	return doc.State, nil
}

// SaveReplayState saves the progress of a replay into the store's version.
func (s *Store) SaveReplayState(ctx context.Context, state []byte) error {
	return s.putDoc(ctx, replayDoc(s.names.version), &replayState{Version: s.names.version, State: state, UpdatedAt: time.Now().UTC()}, nil)
}

// Registry is the registry of data versions in the cluster. State is
// cached for Config.RegistryTTL, so the live ingester, which reads it before
// every batch, sees a change within that time.
type Registry struct {
	s   *Store
	ttl time.Duration

	mu     sync.Mutex
	cached versions.State
	at     time.Time
}

var _ versions.Registry = (*Registry)(nil)

// Registry returns the registry of the store's cluster and prefix. It
// shares the store's client: it is usable until the store is closed.
func (s *Store) Registry() *Registry { return &Registry{s: s, ttl: s.cfg.RegistryTTL} }

// TTL is how long State may answer from memory.
func (r *Registry) TTL() time.Duration { return r.ttl }

// read reads the registry document: a cluster without one never went
// through a swap, so the initial version is current.
func (r *Registry) read(ctx context.Context) (versions.State, error) {
	st, _, err := r.readDoc(ctx)
	return st, err
}

func (r *Registry) readDoc(ctx context.Context) (versions.State, getResponse, error) {
	res, err := r.s.getDoc(ctx, registryDoc)
	if err != nil || !res.Found {
		return versions.State{Current: versions.Initial}, res, err
	}
	var doc registryState
	if err := json.Unmarshal(res.Source, &doc); err != nil || !ValidVersion(doc.Current) {
		return versions.State{}, res, fmt.Errorf("versions registry %s/%s: not a valid state", r.s.names.versionsIndex(), registryDoc)
	}
	return versions.State{Current: doc.Current, Building: doc.Building, Retired: doc.Retired, Abandoned: doc.Abandoned}, res, nil
}

// State returns the registry's state, from memory when read less than the
// TTL ago.
func (r *Registry) State(ctx context.Context) (versions.State, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.at.IsZero() && time.Since(r.at) < r.ttl {
		return r.cached, nil
	}
	st, err := r.read(ctx)
	if err != nil {
		return st, err
	}
	r.cached, r.at = st, time.Now()
	return st, nil
}

// update applies change to the registry document, conditionally on the
// version read: a concurrent change makes it read again.
func (r *Registry) update(ctx context.Context, change func(*versions.State) error) (versions.State, error) {
	for attempt := 0; ; attempt++ {
		st, res, err := r.readDoc(ctx)
		if err != nil {
			return st, err
		}
		if err := change(&st); err != nil {
			return st, err
		}
		err = r.s.putDoc(ctx, registryDoc, &registryState{Current: st.Current, Building: st.Building, Retired: st.Retired,
			Abandoned: st.Abandoned, UpdatedAt: time.Now().UTC()}, &res)
		var re *ResponseError
		if errors.As(err, &re) && re.Status == http.StatusConflict && attempt+1 < registryAttempts {
			continue
		}
		if err != nil {
			return st, err
		}
		r.mu.Lock()
		r.cached, r.at = st, time.Now()
		r.mu.Unlock()
		return st, nil
	}
}

// Register marks version as being built. Its templates and first indices
// must exist before (Store.Init of a store of that version): the live
// ingester writes it from the moment it reads the registry again.
func (r *Registry) Register(ctx context.Context, version string, now time.Time) (versions.State, error) {
	if !ValidVersion(version) {
		return versions.State{}, fmt.Errorf("version %q: use a short lowercase name without '-', such as v2", version)
	}
	return r.update(ctx, func(s *versions.State) error { return s.Register(version, now) })
}

// Swap makes version current. In this order, each step idempotent, so that
// running it again after a failure completes it:
//
//  1. the index templates: version's attach the read aliases to its new
//     months, every other writable version's no longer do;
//  2. one POST _aliases moves both read aliases from every index to
//     version's indices, atomically (readers see the old version or the
//     new one, never both or neither);
//  3. the registry: the live ingester writes only version from its next
//     read of it (within the TTL; until then it writes both, harmlessly).
func (r *Registry) Swap(ctx context.Context, version string) (versions.State, error) {
	st, err := r.read(ctx)
	if err != nil {
		return st, err
	}
	next := st
	if err := next.Swap(version, time.Now()); err != nil {
		return st, err
	}
	if err := r.serve(ctx, st, version); err != nil {
		return st, err
	}
	return r.update(ctx, func(s *versions.State) error { return s.Swap(version, time.Now()) })
}

// serve makes version, one of st's writable versions, the one the read
// aliases designate: now (its indices) and for new months (the templates of
// every writable version).
func (r *Registry) serve(ctx context.Context, st versions.State, version string) error {
	for _, v := range st.Writable() {
		if err := r.s.putIndexTemplates(ctx, kindsOf(r.s.names.of(v), v == version)); err != nil {
			return err
		}
	}
	body, err := json.Marshal(aliasSwap(r.s.names, version))
	if err != nil {
		return fmt.Errorf("encode alias actions: %w", err)
	}
	if err := r.s.do(ctx, esapi.IndicesUpdateAliasesRequest{Body: bytes.NewReader(body)}, nil); err != nil {
		return fmt.Errorf("move the read aliases to version %s: %w", version, err)
	}
	return nil
}

// aliasAction is one action of POST _aliases.
type aliasAction struct {
	Index     string `json:"index"`
	Alias     string `json:"alias"`
	MustExist *bool  `json:"must_exist,omitempty"`
}

type aliasActions struct {
	Actions []map[string]aliasAction `json:"actions"`
}

// aliasSwap removes both read aliases from the indices of every version
// (must_exist false: most have none) and adds them to version's. The index
// patterns are resolved when Elasticsearch applies the request, so a month
// created meanwhile is included. Actions apply in order, in one cluster
// state update.
func aliasSwap(n names, version string) aliasActions {
	no := false
	to := n.of(version)
	return aliasActions{Actions: []map[string]aliasAction{
		{"remove": {Index: n.sessionsRead() + "-*", Alias: n.sessionsRead(), MustExist: &no}},
		{"remove": {Index: n.eventsRead() + "-*", Alias: n.eventsRead(), MustExist: &no}},
		{"add": {Index: to.sessionsAll() + "-*", Alias: n.sessionsRead()}},
		{"add": {Index: to.eventsAll() + "-*", Alias: n.eventsRead()}},
	}}
}

// Abandon gives up building version and deletes its indices, index
// templates and replay progress. In this order, so that running it again
// after a failure completes it:
//
//  1. the current version gets the read aliases back (as in Swap: a swap to
//     version that failed halfway may have moved them);
//  2. the registry: the live ingester stops writing version;
//  3. a wait of the registry's TTL and fenceMargin: stores of the version
//     check that it is writable before every write request
//     (Config.Fence), against a registry cached for at most the TTL, so
//     that afterwards no write of the version is sent any more (one sent
//     after the deletion would create an index again);
//  4. the deletions.
//
// A version no longer in the registry whose indices remain is deleted too.
func (r *Registry) Abandon(ctx context.Context, version string) (versions.State, error) {
	st, err := r.read(ctx)
	if err != nil {
		return st, err
	}
	if version == st.Current {
		return st, fmt.Errorf("version %s is the current version; swap to another one first", version)
	}
	if !ValidVersion(version) {
		return st, fmt.Errorf("version %q: not a version name", version)
	}
	old := r.s.names.of(version)
	indices, err := r.s.catIndices(ctx, old.indexPatterns())
	if err != nil {
		return st, err
	}
	if _, building := st.Building[version]; !building && len(indices) == 0 {
		return st, fmt.Errorf("version %s is not being built", version)
	}
	if err := r.serve(ctx, st, st.Current); err != nil {
		return st, err
	}
	if _, building := st.Building[version]; building {
		if st, err = r.update(ctx, func(s *versions.State) error { return s.Abandon(version, time.Now()) }); err != nil {
			return st, err
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(r.ttl + fenceMargin):
		}
		// Indices created by a write during the wait are deleted too.
		if indices, err = r.s.catIndices(ctx, old.indexPatterns()); err != nil {
			return st, err
		}
	}
	names := make([]string, len(indices))
	for i, ix := range indices {
		names[i] = ix.Index
	}
	// By name: clusters refuse wildcard deletes by default
	// (action.destructive_requires_name); a few names per request keep the
	// URL short.
	for chunk := range slices.Chunk(names, 50) {
		if err := r.s.do(ctx, esapi.IndicesDeleteRequest{Index: chunk}, nil); err != nil {
			return st, fmt.Errorf("delete the indices of version %s: %w", version, err)
		}
	}
	for _, k := range kindsOf(old, false) {
		if err := r.s.getOrMissing(ctx, esapi.IndicesDeleteIndexTemplateRequest{Name: k.template}, nil); err != nil {
			return st, fmt.Errorf("delete index template %s: %w", k.template, err)
		}
	}
	return st, r.s.deleteDoc(ctx, replayDoc(version))
}

// fenceMargin is how long Abandon gives a write request sent just before
// its fence saw the version abandoned to reach the cluster.
var fenceMargin = time.Second

// Versions lists every version the cluster holds indices of, and those of
// the registry, in name order: forget erases a contact from each.
func (r *Registry) Versions(ctx context.Context) ([]string, error) {
	st, err := r.read(ctx)
	if err != nil {
		return nil, err
	}
	n := r.s.names
	cat, err := r.s.catIndices(ctx, []string{n.sessionsRead() + "-*", n.eventsRead() + "-*", n.prefix + "-keys-*"})
	if err != nil {
		return nil, err
	}
	found := st.Writable()
	for _, ix := range cat {
		if v, ok := n.versionOf(ix.Index); ok {
			found = append(found, v)
		}
	}
	slices.Sort(found)
	return slices.Compact(found), nil
}

// versionOf returns the data version of one of the prefix's indices.
func (n names) versionOf(index string) (string, bool) {
	if v, ok := strings.CutPrefix(index, n.prefix+"-keys-"); ok {
		return v, ValidVersion(v)
	}
	for _, base := range []string{n.sessionsRead(), n.eventsRead()} {
		rest, ok := strings.CutPrefix(index, base+"-")
		if !ok {
			continue
		}
		i := strings.LastIndexByte(rest, '-')
		if i < 0 {
			return "", false
		}
		if _, err := time.Parse("2006.01", rest[i+1:]); err != nil {
			return "", false
		}
		return rest[:i], ValidVersion(rest[:i])
	}
	return "", false
}
