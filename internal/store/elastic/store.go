// Package elastic is the production store: sessions and events in
// Elasticsearch 8, in monthly indices behind aliases, with index templates
// kept as data in templates/. docs/elasticsearch.md explains the
// layout, the write path's guarantees and the query translation.
package elastic

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/typedapi/core/search"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/idref"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/versions"
)

// SchemaVersion is the version of the mappings this code writes and reads:
// the component templates are named by it. It is not the data version
// (Config.Version), which names indices and changes with every rebuild
// (docs/elasticsearch.md, "Versions").
const SchemaVersion = "v1"

// Config configures a Store.
type Config struct {
	// Addresses are the URLs of the cluster's nodes.
	Addresses []string
	// Username and Password authenticate with HTTP basic auth; APIKey
	// (base64 "id:key"), when set, is used instead.
	Username string
	Password string
	APIKey   string
	// CACert is a PEM bundle that verifies the cluster's TLS certificate.
	CACert []byte
	// IndexPrefix starts the name of every index, alias and template:
	// <prefix>-sessions-v1-2025.10, read alias <prefix>-sessions.
	IndexPrefix string
	// Version is the data version the store writes: it names the indices
	// (<prefix>-sessions-<version>-2025.10) and the versioned aliases. The
	// default is versions.Initial, the layout of a cluster that was never
	// rebuilt. Versions hold no "-", so that no version's index pattern
	// matches another's indices.
	Version string
	// RegistryTTL is how long Registry.State answers from memory; a
	// replay's grace period must be longer (docs/elasticsearch.md).
	RegistryTTL time.Duration
	// ClaimLease is how long a key claimed by another writer, and not
	// released, stays busy: past it that writer is taken to have died
	// (docs/elasticsearch.md, "Write path").
	ClaimLease time.Duration
	// CacheBytes and CacheIdle are the budget and the idle horizon of the
	// session.StateCache that holds the state of the keys the writer wrote
	// (docs/sessions.md, "What memory holds"): past the budget, in bytes
	// of heap as keyState.cost weighs the states, the least recently
	// written keys are forgotten, and so are keys that got no event for
	// CacheIdle (session.DefaultStateIdle when zero); each is read back by
	// id when it next gets events.
	CacheBytes int
	CacheIdle  time.Duration
	// BulkMaxBytes caps the body of one _bulk request; bigger batches are
	// sent in several requests.
	BulkMaxBytes int
	// SessionTextMaxBytes bounds the text of a session's messages, which
	// its document holds for full-text search and every write of the
	// session sends again whole: a new message that would take it past
	// the bound is rejected (dead-lettered), and the session goes on
	// without it (docs/elasticsearch.md, "Size limits").
	SessionTextMaxBytes int
	// BulkAttempts is how many times a bulk item that Elasticsearch
	// answered with 429 or 5xx (or a request that failed as a whole) is
	// sent before Update gives up and returns ErrUnavailable.
	BulkAttempts int
	// UpdateAttempts bounds the runs of fn that an Update call's own
	// faults cause: again after a concurrent writer changed what fn read,
	// or to rewrite sessions without events Elasticsearch rejected. A run
	// again because a write of an Update call that began earlier failed,
	// whose state fn planned on (errLost), comes on top: at most one per
	// failed attempt of such a call (docs/elasticsearch.md).
	UpdateAttempts int
	// Backoff is the first pause before a retry; it doubles up to
	// MaxBackoff, with jitter.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// PageSize is how many hits one search request reads while scanning.
	PageSize int
	// ExportKeepAlive is how long each point in time of an export lives
	// after its last use; an export renews them every third of it while it
	// waits for its client (docs/elasticsearch.md, "Export").
	ExportKeepAlive time.Duration
	// Transport replaces the HTTP transport (tests, custom TLS).
	Transport http.RoundTripper
	// Fence, when set, is called before every _bulk request, retries
	// included; when it fails, nothing more is sent and the write returns
	// its error. The version set makes it check that the store's version
	// is still writable (versions.Fence), so that a write in flight when
	// the version is abandoned cannot recreate its indices.
	Fence func(context.Context) error
	// Observer, when set, receives measurements of the write path.
	Observer Observer
	// RefKey makes the references that name documents in errors and log
	// lines (docRef); the zero Key is the process's random key.
	RefKey idref.Key
}

// Observer receives measurements of the write path (metrics.Registry
// implements it).
type Observer interface {
	// ObserveBulk records one _bulk request: how long it took, how many
	// operations it carried and how many of those are sent again (429,
	// 5xx, or the request failed as a whole).
	ObserveBulk(d time.Duration, ops, retried int)
	// ObserveConflict records an update that runs again because a
	// concurrent writer changed what it read.
	ObserveConflict()
}

// Defaults fills zero fields with defaults.
func (c *Config) Defaults() {
	if c.IndexPrefix == "" {
		c.IndexPrefix = defaultPrefix
	}
	if c.Version == "" {
		c.Version = versions.Initial
	}
	if c.RegistryTTL == 0 {
		c.RegistryTTL = DefaultRegistryTTL
	}
	if c.ClaimLease == 0 {
		c.ClaimLease = 10 * time.Second
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = DefaultCacheBytes
	}
	if c.CacheIdle == 0 {
		c.CacheIdle = session.DefaultStateIdle
	}
	if c.BulkMaxBytes == 0 {
		c.BulkMaxBytes = 5 << 20
	}
	if c.SessionTextMaxBytes == 0 {
		c.SessionTextMaxBytes = DefaultSessionTextMaxBytes
	}
	if c.BulkAttempts == 0 {
		c.BulkAttempts = 6
	}
	if c.UpdateAttempts == 0 {
		c.UpdateAttempts = 8
	}
	if c.Backoff == 0 {
		c.Backoff = 100 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.PageSize == 0 {
		c.PageSize = 1000
	}
	if c.ExportKeepAlive == 0 {
		c.ExportKeepAlive = DefaultExportKeepAlive
	}
}

// Validate reports every problem of the configuration.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Addresses) == 0 {
		errs = append(errs, errors.New("elasticsearch: no addresses"))
	}
	if !validPrefix(c.IndexPrefix) {
		errs = append(errs, fmt.Errorf("elasticsearch: index prefix %q: lowercase letters, digits, - and _, starting with a letter or digit", c.IndexPrefix))
	}
	if !ValidVersion(c.Version) {
		errs = append(errs, fmt.Errorf("elasticsearch: version %q: lowercase letters, digits and _, at most 32, starting with a letter or digit", c.Version))
	}
	if c.RegistryTTL < 0 {
		errs = append(errs, errors.New("elasticsearch: registry TTL must not be negative"))
	}
	if c.CacheBytes < 1 || c.CacheIdle < 0 {
		errs = append(errs, errors.New("elasticsearch: the key-state cache (cache_mib) must be at least 1 byte, its idle horizon not negative"))
	}
	if c.BulkMaxBytes < 1<<10 {
		errs = append(errs, errors.New("elasticsearch: bulk max bytes must be at least 1 KiB"))
	}
	if c.SessionTextMaxBytes < 1 {
		errs = append(errs, errors.New("elasticsearch: session text max bytes must be at least 1"))
	}
	if c.BulkAttempts < 1 || c.UpdateAttempts < 1 {
		errs = append(errs, errors.New("elasticsearch: attempts must be at least 1"))
	}
	if c.Backoff <= 0 || c.MaxBackoff < c.Backoff {
		errs = append(errs, errors.New("elasticsearch: backoff must be positive and at most max backoff"))
	}
	if c.PageSize < 1 || c.PageSize > 10000 {
		errs = append(errs, errors.New("elasticsearch: page size must be between 1 and 10000"))
	}
	if c.ExportKeepAlive < time.Millisecond {
		errs = append(errs, errors.New("elasticsearch: export keep-alive must be at least 1ms"))
	}
	return errors.Join(errs...)
}

// DefaultCacheBytes is the default of Config.CacheBytes. It is larger than
// the SQLite store's session.DefaultStateBudget because a miss costs
// requests to the cluster rather than a read of a local file.
const DefaultCacheBytes = 128 << 20

// DefaultExportKeepAlive is the default of Config.ExportKeepAlive.
const DefaultExportKeepAlive = 2 * time.Minute

// DefaultSessionTextMaxBytes is the default of Config.SessionTextMaxBytes:
// far above any real conversation, and far below the cluster's
// http.max_content_length (100mb by default), which a session document
// must fit in.
const DefaultSessionTextMaxBytes = 16 << 20

// DefaultRegistryTTL is how long the registry's state is cached by default.
const DefaultRegistryTTL = 5 * time.Second

// ValidVersion reports whether v can be a data version of this store: a
// version name (versions.Valid) without "-", because index templates match
// <prefix>-sessions-<version>-* and "v2-*" would match the indices of a
// version "v2-fix".
func ValidVersion(v string) bool { return versions.Valid(v) && !strings.Contains(v, "-") }

func validPrefix(p string) bool {
	if p == "" || len(p) > 100 {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Store keeps sessions and events in Elasticsearch. It is safe for
// concurrent use.
type Store struct {
	cfg   Config
	es    *elasticsearch.Client
	bulk  *BulkWriter
	log   *zap.Logger
	names names
	// writer names this store in the key documents it claims.
	writer string
	// cache holds the state of the session keys this store wrote last.
	cache *session.StateCache[*keyState]
	// flights are, per key, the last write whose successor state was lent
	// (Store.lend), while it may be in flight: a key read back by id
	// waits for it.
	flightsMu sync.Mutex
	flights   map[session.StateID]*flight
	// updates numbers the Update calls in the order they begin
	// (flight.update).
	updates atomic.Uint64
	// versionsIndexReady is set once the versions index is known to exist.
	versionsIndexReady atomic.Bool
	// owned is the transport New made, closed by Close.
	owned *http.Transport
}

var _ session.Store = (*Store)(nil)

// New returns a Store for the cluster of cfg. It does not contact the
// cluster: Ping checks it, Init installs the templates.
func New(cfg Config, log *zap.Logger) (*Store, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, log: log, names: names{prefix: cfg.IndexPrefix, version: cfg.Version}, cache: session.NewStateCache(cfg.CacheBytes, cfg.CacheIdle, (*keyState).cost),
		flights: map[session.StateID]*flight{}}
	var w [8]byte
	_, _ = rand.Read(w[:])
	s.writer = hex.EncodeToString(w[:])
	transport := cfg.Transport
	if transport == nil {
		s.owned = http.DefaultTransport.(*http.Transport).Clone()
		// The ingester's workers write at once; the default keeps two
		// idle connections per host and would reopen the others.
		s.owned.MaxIdleConnsPerHost = 32
		transport = s.owned
	}
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: cfg.Addresses,
		Username:  cfg.Username,
		Password:  cfg.Password,
		APIKey:    cfg.APIKey,
		CACert:    cfg.CACert,
		Transport: transport,
		// Retries are ours: the bulk writer retries item by item, and
		// everything else returns ErrUnavailable to a caller that retries.
		// (With retries off the client also never copies request bodies.)
		DisableRetry: true,
	})
	if err != nil {
		return nil, fmt.Errorf("elasticsearch client: %w", err)
	}
	s.es = es
	s.bulk = NewBulkWriter(es, BulkConfig{
		MaxBytes:   cfg.BulkMaxBytes,
		Attempts:   cfg.BulkAttempts,
		Backoff:    cfg.Backoff,
		MaxBackoff: cfg.MaxBackoff,
		Fence:      cfg.Fence,
		Observer:   cfg.Observer,
		RefKey:     cfg.RefKey,
	}, log)
	return s, nil
}

// Close releases the client and its connections; the Store is unusable
// afterwards.
func (s *Store) Close() error {
	err := s.es.Close(context.Background())
	if s.owned != nil {
		s.owned.CloseIdleConnections()
	}
	if errors.Is(err, elasticsearch.ErrAlreadyClosed) {
		return nil
	}
	return err
}

// Ping reports whether the cluster answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.do(ctx, esapi.PingRequest{}, nil)
}

// names derives every index, alias and template name from the prefix and
// the data version.
//
//	<prefix>-sessions                  read alias (the report API; the current version's indices)
//	<prefix>-sessions-v1               alias of the v1 indices (the write path's reads)
//	<prefix>-sessions-v1-2025.10       monthly index, by started_at (UTC)
//
// and the same for events, by occurred_at; <prefix>-keys-v1 is one index;
// <prefix>-versions holds the registry and replay progress.
type names struct{ prefix, version string }

func (n names) sessionsRead() string { return n.prefix + "-sessions" }
func (n names) eventsRead() string   { return n.prefix + "-events" }
func (n names) sessionsAll() string  { return n.prefix + "-sessions-" + n.version }
func (n names) eventsAll() string    { return n.prefix + "-events-" + n.version }

// keysIndex holds one version document per session key (not monthly: it is
// read by id, in real time).
func (n names) keysIndex() string { return n.prefix + "-keys-" + n.version }

// versionsIndex holds the registry of versions and the progress of replays:
// one index for every version, since it says which one is current.
func (n names) versionsIndex() string { return n.prefix + "-versions" }

// of returns the names of another version.
func (n names) of(version string) names { return names{prefix: n.prefix, version: version} }

func (n names) sessionsIndex(t time.Time) string { return n.monthly("sessions", t) }
func (n names) eventsIndex(t time.Time) string   { return n.monthly("events", t) }

// monthly is the index of kind for t's month. The names are kept: every
// event and session written names one, and the months of a batch repeat.
// They are few (two kinds, a few versions, the months that data spans).
func (n names) monthly(kind string, t time.Time) string {
	t = t.UTC()
	k := monthKey{n, kind, t.Year()*12 + int(t.Month())}
	monthNames.RLock()
	name, ok := monthNames.m[k]
	monthNames.RUnlock()
	if ok {
		return name
	}
	name = n.prefix + "-" + kind + "-" + n.version + "-" + t.Format(monthLayout)
	monthNames.Lock()
	monthNames.m[k] = name
	monthNames.Unlock()
	return name
}

type monthKey struct {
	names
	kind  string
	month int
}

var monthNames = struct {
	sync.RWMutex
	m map[monthKey]string
}{m: map[monthKey]string{}}

// Document ids are deterministic: event ids are unique per tenant, session
// ids are UUIDs, and tenants never contain a slash. Elasticsearch refuses an
// _id over 512 bytes; the event contract keeps every id well under it
// (docs/events.md), and an id that still is longer is a digest rather than
// a document that can never be written.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/mapping-id-field.html
func docID(tenant, id string) string {
	if len(tenant)+1+len(id) <= maxIDBytes {
		return tenant + "/" + id
	}
	sum := sha256.Sum256([]byte(id))
	return tenant + "/sha256:" + hex.EncodeToString(sum[:])
}

// maxIDBytes is Elasticsearch's limit on the length of a document _id
// (https://www.elastic.co/guide/en/elasticsearch/reference/8.19/mapping-id-field.html).
const maxIDBytes = 512

// ErrUnavailable wraps failures that say nothing about the data: the cluster
// is down, unreachable, overloaded (429) or failing (5xx). Retrying later is
// the remedy.
var ErrUnavailable = errors.New("elasticsearch unavailable")

// ErrConflict is returned by Update when concurrent writers kept changing
// the sessions it read, through every attempt.
var ErrConflict = errors.New("elasticsearch: concurrent update of the same sessions")

// ResponseError is an error answer of Elasticsearch.
type ResponseError struct {
	Status int
	Type   string
	Reason string
}

func (e *ResponseError) Error() string {
	if e.Type == "" {
		// Some answers have no exception, only a text: a 400 "no handler
		// found for uri …" of a missing endpoint.
		if e.Reason != "" {
			return fmt.Sprintf("elasticsearch: HTTP %d: %s", e.Status, withoutURI(e.Reason))
		}
		return fmt.Sprintf("elasticsearch: HTTP %d", e.Status)
	}
	return fmt.Sprintf("elasticsearch: HTTP %d: %s: %s", e.Status, e.Type, e.Reason)
}

// withoutURI is reason with the request URI it quotes ("no handler found
// for uri [/x/_doc/<id>?…] and method [GET]") left out: a document id in a
// path, or a query string, may name a contact.
func withoutURI(reason string) string {
	i := strings.Index(reason, "uri [")
	if i < 0 {
		return reason
	}
	// The URI may hold "]": it ends where Elasticsearch's text goes on.
	j := strings.LastIndex(reason, "] and method [")
	if j < i {
		return reason[:i] + "uri […]"
	}
	return reason[:i] + "uri […]" + reason[j+1:]
}

// Unwrap makes overload and server errors match ErrUnavailable.
func (e *ResponseError) Unwrap() error {
	if retryableStatus(e.Status) {
		return ErrUnavailable
	}
	return nil
}

func retryableStatus(status int) bool { return status == http.StatusTooManyRequests || status >= 500 }

// errorBody is the JSON of an Elasticsearch error answer.
type errorBody struct {
	Error  json.RawMessage `json:"error"`
	Status int             `json:"status"`
}

// causeJSON is an Elasticsearch exception.
type causeJSON struct {
	Type     string     `json:"type"`
	Reason   string     `json:"reason"`
	CausedBy *causeJSON `json:"caused_by"`
}

func responseError(res *esapi.Response) error {
	e := &ResponseError{Status: res.StatusCode}
	var body errorBody
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&body); err == nil && len(body.Error) > 0 {
		var c causeJSON
		if json.Unmarshal(body.Error, &c) == nil {
			e.Type, e.Reason = c.Type, sanitize(&c)
		} else {
			var s string
			_ = json.Unmarshal(body.Error, &s)
			e.Reason = s
		}
	}
	return e
}

// docRef names a document in an error or a log line without its id, which
// for a key document holds the contact's id (often a phone number), and for
// an event document the producer's event_id (which may embed one): the
// index, when known, and the id's keyed reference (Config.RefKey), enough
// to tell documents apart and, with the key, to find one whose id is known
// (`chatreport ref`). Every error and log line of the store names
// documents this way; a reason Elasticsearch gave that quotes an id ("[<id>]:
// version conflict", "[get [<index>][<id>]]") has it replaced by the same
// reference (idref.Key.Redact).
func (s *Store) docRef(index, id string) string { return s.cfg.RefKey.Doc(index, id) }

// redacted is sanitize's reason with the document's id replaced by its
// reference first, before sanitize cuts the reason short (which could cut
// the id and leave its start in the text).
func redacted(c *causeJSON, refs idref.Key, id string) string {
	r := *c
	r.Reason = refs.Redact(r.Reason, id)
	return sanitize(&r)
}

// sanitize is an exception's reason without the values it quotes: mapping
// errors preview the offending field's value, which may be message text or
// a phone number, and reasons end up in logs and dead-letter headers. The
// reasons of causes quote values in too many shapes to filter, so only
// their types are kept.
func sanitize(c *causeJSON) string {
	reason := c.Reason
	for _, tail := range []string{"Preview of field's value", "The prefix of the first immense term"} {
		if i := strings.Index(reason, tail); i >= 0 {
			reason = strings.TrimRight(reason[:i], " .")
		}
	}
	var b strings.Builder
	b.WriteString(reason)
	for cause, depth := c.CausedBy, 0; cause != nil && depth < 3; cause, depth = cause.CausedBy, depth+1 {
		b.WriteString("; caused by ")
		b.WriteString(cause.Type)
	}
	const max = 400
	s := b.String()
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// send sends req. A transport failure wraps ErrUnavailable; an error
// answer is a *ResponseError, its body read and closed.
func send(ctx context.Context, es esapi.Transport, req esapi.Request) (*esapi.Response, error) {
	res, err := req.Do(ctx, es)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if res.IsError() {
		defer res.Body.Close()
		return nil, responseError(res)
	}
	return res, nil
}

// do sends req and decodes a successful answer into out (when not nil).
func (s *Store) do(ctx context.Context, req esapi.Request, out any) error {
	res, err := send(ctx, s.es, req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		return nil
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return fmt.Errorf("elasticsearch: decode answer: %w", err)
	}
	return nil
}

// searchResponse is the part of a search answer the store reads.
type searchResponse struct {
	PitID    string `json:"pit_id"`
	TimedOut bool   `json:"timed_out"`
	Shards   struct {
		Total  int `json:"total"`
		Failed int `json:"failed"`
	} `json:"_shards"`
	Hits struct {
		Total *struct {
			Value    int    `json:"value"`
			Relation string `json:"relation"`
		} `json:"total"`
		Hits []hit `json:"hits"`
	} `json:"hits"`
	Aggregations map[string]json.RawMessage `json:"aggregations"`
}

type hit struct {
	Index       string            `json:"_index"`
	ID          string            `json:"_id"`
	SeqNo       *int64            `json:"_seq_no"`
	PrimaryTerm *int64            `json:"_primary_term"`
	Source      json.RawMessage   `json:"_source"`
	Sort        []json.RawMessage `json:"sort"`
}

// searchAfter is the hit's sort values, sent back verbatim to continue after
// it.
func (h *hit) searchAfter() []types.FieldValue {
	out := make([]types.FieldValue, len(h.Sort))
	for i, v := range h.Sort {
		out[i] = v
	}
	return out
}

// search runs req against index (an alias or index name; "" with a
// point in time). Missing indices give no hits rather than an error: a new
// deployment has no monthly index yet. Partial results are errors: the
// write path must not miss events, and the report's totals must be exact.
func (s *Store) search(ctx context.Context, index string, req *search.Request) (*searchResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: encode search: %w", err)
	}
	no := false
	sr := esapi.SearchRequest{Body: bytes.NewReader(body), AllowPartialSearchResults: &no}
	if index != "" {
		yes := true
		sr.Index = []string{index}
		sr.IgnoreUnavailable = &yes
		sr.AllowNoIndices = &yes
	}
	var res searchResponse
	if err := s.do(ctx, sr, &res); err != nil {
		return nil, err
	}
	if res.TimedOut || res.Shards.Failed > 0 {
		return nil, fmt.Errorf("%w: search of %s incomplete (timed out %t, %d of %d shards failed)",
			ErrUnavailable, index, res.TimedOut, res.Shards.Failed, res.Shards.Total)
	}
	return &res, nil
}

// scan calls fn with every hit of req, page by page with search_after; req
// must sort by a unique key.
func (s *Store) scan(ctx context.Context, index string, req *search.Request, fn func(*hit) error) error {
	return s.scanThrough(ctx, index, nil, req, fn)
}

// scanThrough is scan through pit when set (index is then not searched).
func (s *Store) scanThrough(ctx context.Context, index string, pit *pointInTime, req *search.Request, fn func(*hit) error) error {
	size := s.cfg.PageSize
	req.Size = &size
	for {
		var (
			res *searchResponse
			err error
		)
		if pit != nil {
			res, err = s.pitSearch(ctx, pit, req)
		} else {
			res, err = s.search(ctx, index, req)
		}
		if err != nil {
			return err
		}
		hits := res.Hits.Hits
		for i := range hits {
			if err := fn(&hits[i]); err != nil {
				return err
			}
		}
		if len(hits) < size {
			return nil
		}
		req.SearchAfter = hits[len(hits)-1].searchAfter()
	}
}
