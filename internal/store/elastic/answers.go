package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/go-json-experiment/json/jsontext"
)

// The answers the write path reads most — _bulk and _mget, thousands of
// items each — are read streaming with jsontext, keeping only what the
// write path uses.

// readBulkAnswer reads a _bulk answer's items into items[:0], streaming:
// of each item it keeps the status, _seq_no, _primary_term and error, and
// skips the rest (_index, _id, result, _shards, _version...), which the
// write path does not need; decoding all of it with encoding/json cost a
// tenth of the ingester's CPU. The answer's shape is
// {"took":…,"errors":…,"items":[{"<action>":{…}},…]}
// (https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-bulk.html#bulk-api-response-body).
func readBulkAnswer(dec *jsontext.Decoder, items []bulkItem) ([]bulkItem, error) {
	items = items[:0]
	err := readArrayMember(dec, `"items"`, func() error {
		var it bulkItem
		if err := readBulkItem(dec, &it); err != nil {
			return fmt.Errorf("item %d: %w", len(items), err)
		}
		items = append(items, it)
		return nil
	})
	return items, err
}

// readBulkItem reads {"<action>":{…}}.
func readBulkItem(dec *jsontext.Decoder, it *bulkItem) error {
	if err := readDelim(dec, '{'); err != nil {
		return err
	}
	if dec.PeekKind() == '}' {
		return errors.New("names no action")
	}
	if _, err := dec.ReadValue(); err != nil { // the action: index, create, delete, update
		return err
	}
	if err := readDelim(dec, '{'); err != nil {
		return err
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadValue()
		if err != nil {
			return err
		}
		switch string(name) {
		case `"status"`:
			n, err := readInt(dec)
			if err != nil {
				return fmt.Errorf("status: %w", err)
			}
			it.Status = int(n)
		case `"_seq_no"`:
			if it.SeqNo, err = readInt(dec); err != nil {
				return fmt.Errorf("_seq_no: %w", err)
			}
		case `"_primary_term"`:
			if it.PrimaryTerm, err = readInt(dec); err != nil {
				return fmt.Errorf("_primary_term: %w", err)
			}
		case `"error"`:
			c, err := readCause(dec)
			if err != nil {
				return err
			}
			if c != nil {
				it.Error = c
			}
		default:
			if err := dec.SkipValue(); err != nil {
				return err
			}
		}
	}
	if err := readDelim(dec, '}'); err != nil {
		return err
	}
	return readDelim(dec, '}')
}

// readMgetAnswer reads an _mget answer's documents into out[:0],
// streaming: of each it keeps found, _seq_no, _primary_term and error, and
// hands its _source to source with the document's index in the answer,
// which decodes it from the stream (the source is read once, not copied
// and parsed again). The answer's shape is
// {"docs":[{"_index":…,"_id":…,"found":…,"_source":{…}},…]}, in the order
// of the request's docs
// (https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-multi-get.html#docs-multi-get-api-response-body).
func readMgetAnswer(dec *jsontext.Decoder, out []mgetResult, source func(i int, dec *jsontext.Decoder) error) ([]mgetResult, error) {
	out = out[:0]
	err := readArrayMember(dec, `"docs"`, func() error {
		var d mgetResult
		if err := readMgetDoc(dec, &d, len(out), source); err != nil {
			return fmt.Errorf("document %d: %w", len(out), err)
		}
		out = append(out, d)
		return nil
	})
	return out, err
}

// readArrayMember reads an object, calling each for every element of its
// member name (quoted, as it is in the JSON), and skipping the other members.
func readArrayMember(dec *jsontext.Decoder, name string, each func() error) error {
	if err := readDelim(dec, '{'); err != nil {
		return err
	}
	for dec.PeekKind() != '}' {
		n, err := dec.ReadValue()
		if err != nil {
			return err
		}
		if string(n) != name {
			if err := dec.SkipValue(); err != nil {
				return err
			}
			continue
		}
		if err := readDelim(dec, '['); err != nil {
			return err
		}
		for dec.PeekKind() != ']' {
			if err := each(); err != nil {
				return err
			}
		}
		if err := readDelim(dec, ']'); err != nil {
			return err
		}
	}
	return readDelim(dec, '}')
}

// stream sends req and reads its answer with read, from a pooled decoder.
// A transport failure or an answer that cannot be read wraps
// ErrUnavailable: the caller retries.
func stream(ctx context.Context, es esapi.Transport, req esapi.Request, what string, read func(*jsontext.Decoder) error) error {
	res, err := send(ctx, es, req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	dec := answerDecoders.Get().(*jsontext.Decoder)
	dec.Reset(res.Body, answerOptions)
	err = read(dec)
	dec.Reset(eof{})
	answerDecoders.Put(dec)
	if err != nil {
		return fmt.Errorf("%w: decode %s answer: %v", ErrUnavailable, what, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	return nil
}

// answerDecoders keep their read buffers across answers.
var answerDecoders = sync.Pool{New: func() any { return jsontext.NewDecoder(eof{}) }}

// answerOptions are the options answers are read with. Duplicate member
// names are not looked for: Elasticsearch writes none, and after a source
// that does not decode json v2 would otherwise give up on the names of
// every object it was inside, so that the answer's other documents could
// not be read (decodeSource).
var answerOptions = jsontext.AllowDuplicateNames(true)

// eof is an empty reader: a pooled decoder holds no answer's body.
type eof struct{}

func (eof) Read([]byte) (int, error) { return 0, io.EOF }

func readMgetDoc(dec *jsontext.Decoder, d *mgetResult, i int, source func(i int, dec *jsontext.Decoder) error) error {
	if err := readDelim(dec, '{'); err != nil {
		return err
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadValue()
		if err != nil {
			return err
		}
		switch string(name) {
		case `"found"`:
			v, err := dec.ReadValue()
			if err != nil {
				return err
			}
			d.Found = v.Kind() == 't'
		case `"_version"`:
			if d.Version, err = readInt(dec); err != nil {
				return fmt.Errorf("_version: %w", err)
			}
		case `"_seq_no"`:
			if d.SeqNo, err = readInt(dec); err != nil {
				return fmt.Errorf("_seq_no: %w", err)
			}
		case `"_primary_term"`:
			if d.PrimaryTerm, err = readInt(dec); err != nil {
				return fmt.Errorf("_primary_term: %w", err)
			}
		case `"_source"`:
			if source == nil {
				if err := dec.SkipValue(); err != nil {
					return err
				}
				continue
			}
			if err := source(i, dec); err != nil {
				return err
			}
			d.Sourced = true
		case `"error"`:
			c, err := readCause(dec)
			if err != nil {
				return err
			}
			if c != nil {
				d.Error = c
			}
		default:
			if err := dec.SkipValue(); err != nil {
				return err
			}
		}
	}
	return readDelim(dec, '}')
}

// readCause reads the "error" of a bulk item or an _mget document: nil
// for null. Rare: decoded with encoding/json.
func readCause(dec *jsontext.Decoder) (*causeJSON, error) {
	v, err := dec.ReadValue()
	if err != nil || v.Kind() == 'n' {
		return nil, err
	}
	var c causeJSON
	if err := json.Unmarshal(v, &c); err != nil {
		return nil, fmt.Errorf("error: %w", err)
	}
	return &c, nil
}

// readInt reads an integer; null is 0.
func readInt(dec *jsontext.Decoder) (int64, error) {
	v, err := dec.ReadValue()
	if err != nil {
		return 0, err
	}
	switch v.Kind() {
	case '0':
		// Statuses, sequence numbers and terms: small non-negative
		// integers, read without making a string of each.
		if len(v) > 18 || v[0] == '-' || bytes.ContainsAny(v, ".eE") {
			return 0, fmt.Errorf("not a small non-negative integer: %.20s", v)
		}
		var n int64
		for _, c := range v {
			n = n*10 + int64(c-'0')
		}
		return n, nil
	case 'n':
		return 0, nil
	}
	return 0, fmt.Errorf("not a number: %.20s", v)
}

func readDelim(dec *jsontext.Decoder, want jsontext.Kind) error {
	tok, err := dec.ReadToken()
	if err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if tok.Kind() != want {
		return fmt.Errorf("want %v, got %v", want, tok.Kind())
	}
	return nil
}
