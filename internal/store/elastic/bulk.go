package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/go-json-experiment/json/jsontext"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/idref"
	"github.com/chatreport/chatreport/internal/retry"
)

// Action is what a bulk operation does.
type Action int

// Bulk actions.
const (
	// Create writes a document that must not exist yet.
	Create Action = iota
	// Index writes a document, replacing it.
	Index
	// Delete removes a document.
	Delete
)

// Op is one operation of a bulk request.
type Op struct {
	Action Action
	Index  string
	ID     string
	// Scoped makes the document's _id docID(Tenant, ID), which the request
	// then writes without building that string (the event documents, most
	// of every batch); an empty Tenant too, as docID would.
	Scoped bool
	Tenant string
	// IfSeqNo and IfPrimaryTerm make the operation conditional on the
	// document being the version that was read (optimistic concurrency).
	IfSeqNo       *int64
	IfPrimaryTerm *int64
	// Doc is the document of Create and Index, marshalled with
	// encoding/json.
	Doc any
	// ExistsOK makes a Create of a document that exists a success: the
	// write is idempotent, the document was written before.
	ExistsOK bool
	// Version, when positive, makes an Index or Delete apply only if it is
	// higher than the document's version (version_type external), and
	// stores it as the document's version. Elasticsearch keeps the
	// version of a deleted document for index.gc_deletes (60 s), so a
	// delete also fences off older writes of the same id for that long.
	// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-index_.html#index-versioning
	Version int64
	// VersionGTE makes Version apply also when it equals the document's
	// version (version_type external_gte): a Delete then removes the
	// document at exactly that version (or a lower one) and answers 409
	// for a higher one. The delete API takes the index API's version
	// types, and Elasticsearch checks a delete's version as it checks an
	// index's (VersionType.isVersionConflictForWrites serves both, in
	// InternalEngine's plans for indexing and for deletion).
	// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-index_.html#index-versioning
	// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-delete.html#delete-versioning
	VersionGTE bool
}

// Outcome is how a bulk operation ended.
type Outcome int

// Outcomes of bulk operations.
const (
	// Written: Elasticsearch applied the operation (or, for an ExistsOK
	// create or a delete of a missing document, had nothing to do).
	Written Outcome = iota
	// Conflict: the document was not the version the operation expected
	// (HTTP 409).
	Conflict
	// Rejected: Elasticsearch refused the document for good (HTTP 400,
	// e.g. a mapping error); Reason says why.
	Rejected
)

func (o Outcome) String() string {
	switch o {
	case Written:
		return "written"
	case Conflict:
		return "conflict"
	case Rejected:
		return "rejected"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is the outcome of one operation.
type Result struct {
	Outcome Outcome
	Status  int
	// SeqNo and PrimaryTerm are the version an applied Create or Index
	// wrote.
	SeqNo, PrimaryTerm int64
	Reason             string
	// IndexClosed: Rejected because the op's index is closed
	// (closedIndexReason).
	IndexClosed bool
}

// BulkConfig configures a BulkWriter. Bulk requests never ask for a
// refresh: the write path reads its own writes by id (realtime), never
// through search (docs/elasticsearch.md, "Write path").
type BulkConfig struct {
	MaxBytes   int
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Fence, when set, must succeed before each request is sent.
	Fence func(context.Context) error
	// Observer, when set, is told about every request.
	Observer Observer
	// RefKey names documents in errors and reasons (Config.RefKey).
	RefKey idref.Key
}

// BulkWriter sends operations with _bulk and reads every item's result:
// esutil.BulkIndexer neither retries items nor reports rejected ones as
// errors, and the write path needs both.
type BulkWriter struct {
	es  esapi.Transport
	cfg BulkConfig
	log *zap.Logger
	// bufs are request bodies, reused: a few MB each, kept across garbage
	// collections (a sync.Pool would drop them and grow new ones).
	bufs chan *bytes.Buffer
	// sleep waits between attempts; tests replace it.
	sleep func(context.Context, time.Duration) error
}

// NewBulkWriter returns a BulkWriter sending through es.
func NewBulkWriter(es esapi.Transport, cfg BulkConfig, log *zap.Logger) *BulkWriter {
	return &BulkWriter{
		es:    es,
		cfg:   cfg,
		log:   log,
		bufs:  make(chan *bytes.Buffer, 8),
		sleep: retry.Sleep,
	}
}

// Write applies ops and returns one Result per op, in order. Items answered
// with 429 or 5xx, and requests that fail as a whole for the same reasons,
// are sent again (only those) with backoff, up to Attempts times; then Write
// returns an error wrapping ErrUnavailable along with the results so far.
// Any other failure of a whole request is returned as an error at once.
// Conflicts and rejections are results, not errors: what they mean depends
// on the operation.
func (w *BulkWriter) Write(ctx context.Context, ops []Op) ([]Result, error) {
	results := make([]Result, len(ops))
	pending := make([]int, len(ops))
	for i := range pending {
		pending[i] = i
	}
	attempt := 0
	err := retry.Backoff{
		Base: w.cfg.Backoff, Max: w.cfg.MaxBackoff, Attempts: w.cfg.Attempts, Sleep: w.sleep,
		OnRetry: func(attempt int, err error) {
			w.log.Warn("retrying bulk operations", zap.Int("attempt", attempt), zap.Error(err))
		},
	}.Do(ctx, func() error {
		attempt++
		var again []int
		var last string
		for len(pending) > 0 {
			n, failed, err := w.send(ctx, ops, pending, results)
			if err != nil {
				return retry.Permanent(err)
			}
			if len(failed) > 0 {
				again = append(again, failed...)
				last = results[failed[len(failed)-1]].Reason
			}
			pending = pending[n:]
		}
		if pending = again; len(again) > 0 {
			return fmt.Errorf("%w: %d bulk operations still failing after %d attempts, last: %s",
				ErrUnavailable, len(again), attempt, last)
		}
		return nil
	})
	return results, err
}

// send sends one request with as many of the pending ops as fit in
// MaxBytes (at least one), records their results, and returns how many it
// sent and which of them to send again. An op is left for the next request
// when it would take the body past MaxBytes; one op alone may exceed it.
func (w *BulkWriter) send(ctx context.Context, ops []Op, pending []int, results []Result) (n int, again []int, err error) {
	buf := w.buffer()
	defer w.putBuffer(buf)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	for n < len(pending) {
		before := buf.Len()
		if err := encodeOp(buf, enc, &ops[pending[n]], w.cfg.RefKey); err != nil {
			return 0, nil, err
		}
		if n > 0 && buf.Len() > w.cfg.MaxBytes {
			buf.Truncate(before)
			break
		}
		n++
	}
	again, err = w.sendBody(ctx, buf, enc, ops, pending[:n], results)
	if err != nil {
		return 0, nil, err
	}
	return n, again, nil
}

func (w *BulkWriter) buffer() *bytes.Buffer {
	select {
	case buf := <-w.bufs:
		buf.Reset()
		return buf
	default:
		return bytes.NewBuffer(make([]byte, 0, w.cfg.MaxBytes+w.cfg.MaxBytes/4))
	}
}

func (w *BulkWriter) putBuffer(buf *bytes.Buffer) {
	select {
	case w.bufs <- buf:
	default:
	}
}

// sendBody posts buf, the encoded ops sent, and records their results. A
// body over the cluster's http.max_content_length (100mb by default) is
// refused whole with 413 Request Entity Too Large: a request of several
// ops is sent again as two halves, and an op that alone is too large is
// rejected, since sending it again can never succeed.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/modules-network.html#http-settings
func (w *BulkWriter) sendBody(ctx context.Context, buf *bytes.Buffer, enc *json.Encoder, ops []Op, sent []int, results []Result) (again []int, err error) {
	if w.cfg.Fence != nil {
		if err := w.cfg.Fence(ctx); err != nil {
			return nil, err
		}
	}
	size := buf.Len()
	start := time.Now()
	items, err := w.post(ctx, buf, len(sent))
	took := time.Since(start)
	var re *ResponseError
	switch {
	case err == nil:
	case errors.As(err, &re) && re.Status == http.StatusRequestEntityTooLarge:
		w.observe(took, len(sent), 0)
		if len(sent) == 1 {
			results[sent[0]] = Result{Outcome: Rejected, Status: re.Status, Reason: fmt.Sprintf(
				"request_entity_too_large: the document's bulk request is %d bytes, over the cluster's http.max_content_length", size)}
			return nil, nil
		}
		for _, half := range [][]int{sent[:len(sent)/2], sent[len(sent)/2:]} {
			buf.Reset()
			for _, i := range half {
				if err := encodeOp(buf, enc, &ops[i], w.cfg.RefKey); err != nil {
					return nil, err
				}
			}
			a, err := w.sendBody(ctx, buf, enc, ops, half, results)
			if err != nil {
				return nil, err
			}
			again = append(again, a...)
		}
		return again, nil
	case ctx.Err() != nil || !isUnavailable(err):
		return nil, err
	default:
		for _, i := range sent {
			results[i] = Result{Status: 0, Reason: err.Error()}
		}
		w.observe(took, len(sent), len(sent))
		return sent, nil
	}
	if len(items) != len(sent) {
		return nil, fmt.Errorf("elasticsearch: bulk answered %d items for %d operations", len(items), len(sent))
	}
	for k, i := range sent {
		r, v := classify(&ops[i], &items[k], w.cfg.RefKey)
		results[i] = r
		switch v {
		case retryItem:
			again = append(again, i)
		case failItem:
			return nil, fmt.Errorf("elasticsearch: bulk operation on %s: HTTP %d: %s",
				w.cfg.RefKey.Doc(ops[i].Index, ops[i].docID()), r.Status, r.Reason)
		}
	}
	w.observe(took, len(sent), len(again))
	return again, nil
}

func (w *BulkWriter) observe(d time.Duration, ops, retried int) {
	if w.cfg.Observer != nil {
		w.cfg.Observer.ObserveBulk(d, ops, retried)
	}
}

// docID is the operation's document _id.
func (op *Op) docID() string {
	if !op.Scoped {
		return op.ID
	}
	return docID(op.Tenant, op.ID)
}

func isUnavailable(err error) bool {
	var re *ResponseError
	if errors.As(err, &re) {
		return retryableStatus(re.Status)
	}
	return errors.Is(err, ErrUnavailable) // transport failures: refused, reset, timeouts
}

// encodeOp appends an operation as NDJSON to buf: the action line, then the
// document line for Create and Index. The action line is written by hand
// (it is a few fields, on every operation); documents go through enc,
// which writes to buf.
func encodeOp(buf *bytes.Buffer, enc *json.Encoder, op *Op, refs idref.Key) error {
	var name string
	switch op.Action {
	case Create:
		name = "create"
		if op.Version > 0 {
			// Elasticsearch refuses create with an external version.
			return fmt.Errorf("elasticsearch: create of %s with an external version", refs.Doc(op.Index, op.docID()))
		}
	case Index:
		name = "index"
	case Delete:
		name = "delete"
	default:
		return fmt.Errorf("elasticsearch: unknown bulk action %d", op.Action)
	}
	line := buf.AvailableBuffer()
	line = append(line, `{"`...)
	line = append(line, name...)
	line = append(line, `":{"_index":`...)
	var err error
	if line, err = appendQuote(line, op.Index); err != nil {
		return fmt.Errorf("elasticsearch: index name %q: %w", op.Index, err)
	}
	line = append(line, `,"_id":`...)
	if line, err = appendID(line, op); err != nil {
		return fmt.Errorf("elasticsearch: document id of %s: %w", op.Index, err)
	}
	if op.IfSeqNo != nil && op.IfPrimaryTerm != nil {
		line = append(line, `,"if_seq_no":`...)
		line = strconv.AppendInt(line, *op.IfSeqNo, 10)
		line = append(line, `,"if_primary_term":`...)
		line = strconv.AppendInt(line, *op.IfPrimaryTerm, 10)
	}
	if op.Version > 0 {
		line = append(line, `,"version":`...)
		line = strconv.AppendInt(line, op.Version, 10)
		if op.VersionGTE {
			line = append(line, `,"version_type":"external_gte"`...)
		} else {
			line = append(line, `,"version_type":"external"`...)
		}
	}
	line = append(line, "}}\n"...)
	if op.Action == Delete {
		buf.Write(line)
		return nil
	}
	if d, ok := op.Doc.(jsonAppender); ok {
		line = d.appendJSON(line)
		buf.Write(append(line, '\n'))
		return nil
	}
	buf.Write(line)
	if err := enc.Encode(op.Doc); err != nil {
		return fmt.Errorf("elasticsearch: encode document %s: %w", refs.Doc(op.Index, op.docID()), err)
	}
	return nil
}

// appendQuote is jsontext.AppendQuote (an error for invalid UTF-8), with
// the index names and ids of printable ASCII, nearly all, copied as they
// are: they need no escape.
func appendQuote(b []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			return jsontext.AppendQuote(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), nil
}

// appendID appends op's _id quoted: "<tenant>/<id>" from its parts when
// it is scoped and fits, quoted as the whole would be.
func appendID(b []byte, op *Op) ([]byte, error) {
	if !op.Scoped || len(op.Tenant)+1+len(op.ID) > maxIDBytes {
		return appendQuote(b, op.docID())
	}
	n := len(b)
	b, err := appendQuote(b, op.Tenant)
	if err == nil {
		b[len(b)-1] = '/' // the tenant's closing quote
		m := len(b)
		if b, err = appendQuote(b, op.ID); err == nil {
			return append(b[:m], b[m+1:]...), nil // less the id's opening quote
		}
	}
	return appendQuote(b[:n], op.docID()) // a part that is not UTF-8 alone
}

// bulkItem is one item of a bulk answer, under its action's name.
type bulkItem struct {
	Index       string     `json:"_index"`
	ID          string     `json:"_id"`
	Status      int        `json:"status"`
	Result      string     `json:"result"`
	SeqNo       int64      `json:"_seq_no"` // 0 when absent or null
	PrimaryTerm int64      `json:"_primary_term"`
	Error       *causeJSON `json:"error"`
}

// bulkFilterPath asks Elasticsearch to answer, of each bulk item, only what
// readBulkItem keeps: an item's answer shrinks from ~180 bytes (_index,
// _id, _version, result, _shards...) to ~50, which both sides of every
// request would otherwise write and read. A request that fails whole is
// judged by its HTTP status, whatever the filter leaves of its body.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/common-options.html#common-options-response-filtering
var bulkFilterPath = []string{"items.*.status", "items.*._seq_no", "items.*._primary_term", "items.*.error"}

// post sends one bulk body. The body is read straight from the buffer: no
// copy is made on the way to the connection.
func (w *BulkWriter) post(ctx context.Context, body *bytes.Buffer, n int) (items []bulkItem, err error) {
	req := esapi.BulkRequest{Body: bytes.NewReader(body.Bytes()), FilterPath: bulkFilterPath}
	err = stream(ctx, w.es, req, "bulk", func(dec *jsontext.Decoder) error {
		items, err = readBulkAnswer(dec, make([]bulkItem, 0, n))
		return err
	})
	return items, err
}

type verdict int

const (
	doneItem  verdict = iota
	retryItem         // overloaded or failing: send it again
	failItem          // the cluster's configuration is wrong, not the document
)

// classify turns an item's status into a result, and says what to do next;
// refs names the document where the reason quotes its id.
func classify(op *Op, it *bulkItem, refs idref.Key) (r Result, v verdict) {
	r.Status = it.Status
	if it.Error != nil {
		r.Reason = it.Error.Type + ": " + redacted(it.Error, refs, op.docID())
	}
	switch st := it.Status; {
	case st >= 200 && st < 300:
		r.Outcome = Written
		r.SeqNo, r.PrimaryTerm = it.SeqNo, it.PrimaryTerm
	case st == http.StatusNotFound && op.Action == Delete && it.Error == nil:
		r.Outcome = Written // already gone
	case st == http.StatusConflict && op.Action == Create && op.ExistsOK:
		r.Outcome = Written
	case st == http.StatusConflict:
		r.Outcome = Conflict
	case retryableStatus(st):
		return r, retryItem
	case st == http.StatusBadRequest:
		r.Outcome = Rejected
		if it.Error != nil && it.Error.Type == indexClosedType {
			r.IndexClosed, r.Reason = true, closedIndexReason(op.Index)
		}
	default:
		// 401, 403, 404 index_not_found...: dead-lettering the document
		// would lose it for a fault of the cluster's configuration.
		return r, failItem
	}
	return r, doneItem
}

// indexClosedType is the error of a read or write of a closed index: an
// operator closed it (an old month, to free the cluster's memory), and
// Elasticsearch blocks it for reads and writes until it is opened again,
// with 400 for a GET and for each _mget and _bulk item of it.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/indices-close.html
const indexClosedType = "index_closed_exception"

// closedIndexReason says why an op or a read of index failed: the index,
// never a document's id.
func closedIndexReason(index string) string {
	return "index_closed_exception: the index " + index + " is closed"
}
