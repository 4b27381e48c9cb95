// Package esfake is an in-memory Elasticsearch for tests of the
// Elasticsearch store and of the commands that use it.
//
// It keeps Elasticsearch's promises, and only those, so that code tested
// against it does not rely on what a real cluster does not guarantee:
//
//   - Near-real-time search. A write (bulk index, create and delete, _doc
//     writes, the deletes of _delete_by_query) changes the live documents at
//     once, but _search, _msearch, _count, aggregations, points in time and
//     the search phase of _delete_by_query see an index as of its last
//     refresh. An index refreshes every index.refresh_interval of its
//     settings (from its templates or its creation body; 1s by default, -1
//     never), on POST /_refresh or POST /<target>/_refresh, and for a write
//     with ?refresh=true; a write with ?refresh=wait_for answers after the
//     next refresh, which it does not cause. A point in time keeps the view
//     of when it was opened, for keep_alive after it was opened or last
//     searched with a keep_alive; past that it is a 404
//     search_context_missing_exception (WithClock moves its clock). That
//     is no later than Elasticsearch, which keeps the largest keep_alive
//     seen and counts any use. Its searches sort by the implicit _shard_doc
//     tiebreaker last, whose value ends each hit's sort values and must be
//     given back in search_after. Shards going search-idle (indices without an
//     explicit refresh_interval skip scheduled refreshes after 30s without
//     a search) are not modelled: this store sets refresh_interval.
//     https://www.elastic.co/docs/manage-data/data-store/near-real-time-search
//     https://www.elastic.co/docs/reference/elasticsearch/rest-apis/refresh-parameter
//     https://www.elastic.co/guide/en/elasticsearch/reference/8.17/point-in-time-api.html
//     https://www.elastic.co/guide/en/elasticsearch/reference/8.17/docs-delete-by-query.html
//
//   - Lucene's document counts. _cat/indices' docs.count counts, besides
//     each document a search sees, every object of its nested fields (at
//     any depth) as a hidden document of its own; _count counts documents.
//     https://www.elastic.co/guide/en/elasticsearch/reference/8.19/cat-indices.html
//
//   - Realtime reads. GET /<index>/_doc/<id> and _mget read the live
//     documents, refreshed or not (realtime=false reads what a search sees).
//     _mget takes {"ids": [...]} or {"docs": [...]} of several indices and
//     answers _source, _version, _seq_no, _primary_term and found per
//     document, or an index_not_found_exception entry for a missing index.
//     https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-get.html#realtime
//     https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-multi-get.html
//
//   - Versions. Internal versions count the writes of a document, deletes
//     included; version_type external (external_gte) writes, deletes as
//     much as indexes (Elasticsearch's VersionType.isVersionConflictForWrites
//     checks both), succeed only with a version greater than (or equal to)
//     the current one, which the document then takes, else 409
//     version_conflict_engine_exception: an external_gte delete removes a
//     document at exactly its version and not one at a higher version; so do
//     if_seq_no and if_primary_term, on mismatch. A delete leaves a
//     tombstone with its version for index.gc_deletes (60s): writes meanwhile
//     are checked against it. An external delete of a document that does
//     not exist answers not_found and still records its version (and
//     creates the index, which an internal delete does not). Create does not
//     take external versioning.
//     https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-index_.html#index-versioning
//     https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-delete.html#delete-versioning
//     https://www.elastic.co/guide/en/elasticsearch/reference/8.19/optimistic-concurrency-control.html
//     The not_found case is in Elasticsearch's engine, not its reference:
//     VersionType.EXTERNAL finds no conflict with a missing document and a
//     delete puts a tombstone of the version in the version map whether it
//     found a document or not (InternalEngine.planDeletionAsPrimary), and
//     TransportBulkAction creates the index for external deletes only;
//     https://github.com/elastic/elasticsearch/issues/1341.
//
//   - Missing indices. A concrete name (not a wildcard) that matches no index
//     or alias is a 404 index_not_found_exception for _cat/indices, GET
//     <target>/_alias, _search, _msearch, _count, _refresh, opening a point in
//     time and _delete_by_query, unless ignore_unavailable=true; a wildcard
//     matching nothing gives an empty answer, unless allow_no_indices=false.
//     https://www.elastic.co/guide/en/elasticsearch/reference/8.19/api-conventions.html#api-multi-index
//     https://www.elastic.co/guide/en/elasticsearch/reference/8.19/indices-get-alias.html
//     https://www.elastic.co/guide/en/elasticsearch/reference/8.19/cat-indices.html
//
//   - Id length. An index or create of an _id over 512 bytes fails the whole
//     request (a bulk too: nothing of it is applied) with 400
//     action_request_validation_exception, as the other validation errors
//     of Elasticsearch's write requests do.
//     https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/mapping-id-field
//     ("_id is limited to 512 bytes in size and larger values will be
//     rejected"); whole request because BulkRequest.validate gathers the
//     IndexRequest.validate errors of every item (DocWriteRequest
//     .validateDocIdLength) before any is applied.
//
//   - Request size. A request body over http.max_content_length (100mb,
//     WithMaxContentLength) is answered 413 with no body, and nothing of it
//     is read or applied.
//     https://www.elastic.co/guide/en/elasticsearch/reference/8.19/modules-network.html#http-settings
//
//   - Closed indices. POST <index>/_close and _open (names or aliases, no
//     wildcard: action.destructive_requires_name). A closed index keeps its
//     documents; GET answers 400 index_closed_exception, and so does each
//     _mget and _bulk item of it. _search, _count, _refresh, points in time
//     and _delete_by_query fail the same way when they name it or an alias
//     of it, skip it with ignore_unavailable, and their wildcards skip it
//     (expand_wildcards=open); _cat/indices (status "close"), _alias and
//     _mapping see it.
//     https://www.elastic.co/guide/en/elasticsearch/reference/8.19/indices-close.html
//     https://www.elastic.co/guide/en/elasticsearch/reference/8.19/api-conventions.html#api-multi-index
//
// Sources are kept as the bytes written: get and _mget answer them as they
// are (search hits, with spaces removed) unless source filtering is asked,
// and a document is decoded into a map only when a query, a sort, an
// aggregation or a filter by path or wildcard needs its fields (a filter of
// top-level names is applied to the bytes; a document without any of them
// answers "_source": {}, as Elasticsearch does).
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-get.html#get-source-filtering
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-multi-get.html#mget-source-filtering
// A write checks its document against the strict mapping of its index (unknown fields, values of the wrong type and date_nanos out
// of range are 400s), which decodes it; a member name repeated within one
// object, at any depth, is a 400 document_parsing_exception, as
// Elasticsearch's strict duplicate detection makes it (decodeSource).
// WithoutMappingChecks skips these checks, and only them, for the bench, whose stand-in must spend little of the CPU the
// measured ingester runs on (docs/performance.md): its writes do not parse
// documents (one that does not begin as an object is still refused; one
// that is not JSON is found out, with a 500, by the first search that needs
// its fields), while every promise above holds as it does for the tests.
//
// _bulk takes filter_path (inclusions only, as the write path asks; an
// exclusion, and an empty filter or name, whose effect the reference does
// not describe, are refused with a 400, less than Elasticsearch accepts): the
// answer keeps the members that match (filterpath.go). The fake leaves the
// answer of a request that fails whole unfiltered; the write path does not
// rely on it either way: it judges such a request by its status alone.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/common-options.html#common-options-response-filtering
//
// PUT <target>/_mapping adds new fields to the mappings of existing indices
// and refuses, whole, a change of a field's type.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/indices-put-mapping.html
//
// Security is disabled unless WithSecurity: like an Elasticsearch 8 with
// xpack.security.enabled false, the fake has no _security handler and
// answers POST /_security/user/_has_privileges with a 400 whose error is
// the string "no handler found for uri [...] and method [POST]"
// (elastic/elasticsearch#53761, elastic/kibana#210241). With
// WithSecurity(grants) it answers that API from the grants the test gives
// (GrantsOf builds them from role definitions); no other request checks
// privileges.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/security-api-has-privileges.html
//
// A test sets the refresh interval of every index with WithRefreshInterval
// or Server.SetRefreshInterval (NoRefresh: only explicit refreshes, to prove
// that code never relies on a search seeing its own writes), and calls
// Server.Refresh before asserting on what a search finds, as it would POST
// /_refresh against a real cluster. Server.Docs reads the live documents,
// Server.Sources their bytes.
package esfake
