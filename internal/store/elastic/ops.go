package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/typedapi/core/search"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types"
)

// Counts is how much a version holds.
type Counts struct {
	Sessions int64 `json:"sessions"`
	Events   int64 `json:"events"`
}

// Refresh makes every write to the store's version acknowledged so far
// visible to search. The write path never needs it (it reads by id); the
// operations that search a whole version (counts, verify, forget) and tests
// that query right after writing do. Elsewhere search sees writes within
// index.refresh_interval (1 s).
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/indices-refresh.html
func (s *Store) Refresh(ctx context.Context) error {
	yes := true
	req := esapi.IndicesRefreshRequest{
		Index:             []string{s.names.sessionsAll() + "-*", s.names.eventsAll() + "-*", s.names.keysIndex()},
		IgnoreUnavailable: &yes, AllowNoIndices: &yes,
	}
	if err := s.do(ctx, req, nil); err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	return nil
}

// Counts counts the sessions and events of the store's version, every
// tenant.
func (s *Store) Counts(ctx context.Context) (Counts, error) {
	if err := s.Refresh(ctx); err != nil {
		return Counts{}, err
	}
	var c Counts
	for index, into := range map[string]*int64{s.names.sessionsAll(): &c.Sessions, s.names.eventsAll(): &c.Events} {
		size := 0
		res, err := s.search(ctx, index, &search.Request{Size: &size, TrackTotalHits: true})
		if err != nil {
			return c, fmt.Errorf("count %s: %w", index, err)
		}
		if res.Hits.Total == nil {
			return c, fmt.Errorf("count %s: no total in the answer", index)
		}
		*into = int64(res.Hits.Total.Value)
	}
	return c, nil
}

// SessionDocs calls fn with every session document of the store's version
// (tenant, id, the source as stored) in (tenant, id) order, for comparing
// two versions document for document.
func (s *Store) SessionDocs(ctx context.Context, fn func(tenant, id string, doc []byte) error) error {
	if err := s.Refresh(ctx); err != nil {
		return err
	}
	req := &search.Request{Sort: sortBy(asc("tenant"), asc("session_id"))}
	return s.scan(ctx, s.names.sessionsAll(), req, func(h *hit) error {
		var head struct {
			Tenant    string `json:"tenant"`
			SessionID string `json:"session_id"`
		}
		if err := json.Unmarshal(h.Source, &head); err != nil {
			return fmt.Errorf("decode session %s: %w", s.docRef(h.Index, h.ID), err)
		}
		return fn(head.Tenant, head.SessionID, h.Source)
	})
}

// Forgotten is what Forget removed.
type Forgotten struct {
	Sessions int64 `json:"sessions"`
	Events   int64 `json:"events"`
	Keys     int64 `json:"keys"`
}

// forgetPasses bounds how often Forget starts over when a concurrent write
// changed a document it was deleting.
const forgetPasses = 5

// Forget erases a contact of a tenant from the store's version: every
// session of the contact (by contact.id, or holding an event of the
// contact), every event of those sessions and any other event of the
// contact, and the key documents of those sessions (a derived key holds the
// contact id). Deletes are _delete_by_query with refresh and
// conflicts=proceed; a document a concurrent write changed meanwhile is
// skipped by Elasticsearch, so Forget runs another pass until one finds
// nothing left.
func (s *Store) Forget(ctx context.Context, tenant, contactID string) (Forgotten, error) {
	var total Forgotten
	// Searches and deletes by wildcard skip closed indices (expand_wildcards
	// defaults to open), so an erasure would leave the contact's documents
	// in a closed month without a word: refuse, erasing nothing, instead.
	// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/api-conventions.html#api-multi-index
	cat, err := s.catIndices(ctx, s.names.indexPatterns())
	if err != nil {
		return total, fmt.Errorf("forget: %w", err)
	}
	var closed []string
	for _, c := range cat {
		if c.Status != "open" {
			closed = append(closed, c.Index)
		}
	}
	if len(closed) > 0 {
		return total, fmt.Errorf("forget: nothing erased: %s closed, and what it holds of the contact could not be erased; open it (POST /<index>/_open) and run forget again", strings.Join(closed, ", "))
	}
	// The sessions and keys found stay known across passes: an event
	// skipped on a conflict may be findable only by its session, whose
	// document an earlier pass deleted.
	sessions, keys := map[string]bool{}, map[string]bool{}
	for pass := 0; pass < forgetPasses; pass++ {
		f, conflicts, err := s.forgetPass(ctx, tenant, contactID, sessions, keys)
		total.Sessions += f.Sessions
		total.Events += f.Events
		total.Keys += f.Keys
		if err != nil || conflicts == 0 {
			return total, err
		}
	}
	return total, fmt.Errorf("forget: documents of the contact kept changing through %d passes; run it again", forgetPasses)
}

// forgetPass deletes once what Forget deletes, adding the sessions and
// keys it finds to those given; it returns how many documents changed under
// it.
func (s *Store) forgetPass(ctx context.Context, tenant, contactID string, sessions, keys map[string]bool) (Forgotten, int64, error) {
	var f Forgotten
	if err := s.Refresh(ctx); err != nil {
		return f, 0, err
	}
	contact := []types.Query{termQuery("tenant", tenant), termQuery("contact.id", contactID)}
	collect := func(index string, sort sortField, sessionField string) error {
		req := &search.Request{
			Query:   boolFilter(contact...),
			Sort:    sortBy(sort),
			Source_: &types.SourceFilter{Includes: []string{sessionField, "key"}},
		}
		return s.scan(ctx, index, req, func(h *hit) error {
			var doc map[string]string
			if err := json.Unmarshal(h.Source, &doc); err != nil {
				return fmt.Errorf("decode %s: %w", s.docRef(h.Index, h.ID), err)
			}
			if doc[sessionField] != "" {
				sessions[doc[sessionField]] = true
			}
			if doc["key"] != "" {
				keys[doc["key"]] = true
			}
			return nil
		})
	}
	if err := collect(s.names.sessionsAll(), asc("session_id"), "session_id"); err != nil {
		return f, 0, fmt.Errorf("forget: find sessions: %w", err)
	}
	if err := collect(s.names.eventsAll(), asc("event_id"), "session"); err != nil {
		return f, 0, fmt.Errorf("forget: find events: %w", err)
	}
	ids := slices.Sorted(maps.Keys(sessions))
	var conflicts int64
	// Events first: a session must not be gone while events that count in
	// it remain findable by their session.
	for _, d := range []struct {
		index, sessionField string
		into                *int64
	}{
		{s.names.eventsAll(), "session", &f.Events},
		{s.names.sessionsAll(), "session_id", &f.Sessions},
	} {
		for _, q := range contactQueries(tenant, contactID, d.sessionField, ids) {
			res, err := s.deleteByQuery(ctx, d.index, q)
			if err != nil {
				return f, conflicts, fmt.Errorf("forget: delete from %s: %w", d.index, err)
			}
			*d.into += res.Deleted
			conflicts += res.VersionConflicts
		}
	}
	for chunk := range slices.Chunk(slices.Sorted(maps.Keys(keys)), forgetChunk) {
		res, err := s.deleteByQuery(ctx, s.names.keysIndex(), boolFilter(termQuery("tenant", tenant), termsQuery("key", chunk)))
		if err != nil {
			return f, conflicts, fmt.Errorf("forget: delete key documents: %w", err)
		}
		f.Keys += res.Deleted
		conflicts += res.VersionConflicts
	}
	return f, conflicts, nil
}

// forgetChunk is how many ids one terms query holds.
const forgetChunk = 1000

// contactQueries select, within tenant, the documents of the contact or of
// one of its sessions: one query per chunk of session ids (at least one).
func contactQueries(tenant, contactID, sessionField string, ids []string) []*types.Query {
	var out []*types.Query
	for i := 0; i == 0 || i < len(ids); i += forgetChunk {
		should := []types.Query{termQuery("contact.id", contactID)}
		if chunk := ids[i:min(i+forgetChunk, len(ids))]; len(chunk) > 0 {
			should = append(should, termsQuery(sessionField, chunk))
		}
		one := 1
		out = append(out, &types.Query{Bool: &types.BoolQuery{
			Filter:             []types.Query{termQuery("tenant", tenant)},
			Should:             should,
			MinimumShouldMatch: one,
		}})
	}
	return out
}

// deleteByQueryResponse is the part of a _delete_by_query answer Forget
// reads.
type deleteByQueryResponse struct {
	TimedOut         bool              `json:"timed_out"`
	Deleted          int64             `json:"deleted"`
	VersionConflicts int64             `json:"version_conflicts"`
	Failures         []json.RawMessage `json:"failures"`
}

// deleteByQuery deletes the documents of index matching q and refreshes it,
// so that the next pass and the report no longer find them.
func (s *Store) deleteByQuery(ctx context.Context, index string, q *types.Query) (deleteByQueryResponse, error) {
	var res deleteByQueryResponse
	body, err := json.Marshal(map[string]any{"query": q})
	if err != nil {
		return res, fmt.Errorf("encode query: %w", err)
	}
	yes := true
	req := esapi.DeleteByQueryRequest{
		Index: []string{index}, Body: bytes.NewReader(body),
		Conflicts: "proceed", Refresh: &yes, IgnoreUnavailable: &yes, AllowNoIndices: &yes,
	}
	if err := s.do(ctx, req, &res); err != nil {
		return res, err
	}
	if res.TimedOut || len(res.Failures) > 0 {
		return res, fmt.Errorf("%w: delete by query on %s incomplete (timed out %t, %d failures)", ErrUnavailable, index, res.TimedOut, len(res.Failures))
	}
	return res, nil
}
