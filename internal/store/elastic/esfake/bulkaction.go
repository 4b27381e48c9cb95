package esfake

import (
	"bytes"
	"errors"
	"io"

	"github.com/go-json-experiment/json/jsontext"
)

// actionReader reads the action lines of a bulk body,
// {"<action>":{"<parameter>":<value>,...}}, token by token with one
// jsontext decoder, instead of decoding each into maps: in the bench, bulk
// bodies are most of what the fake reads.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/docs-bulk.html
type actionReader struct {
	line bytes.Buffer
	dec  *jsontext.Decoder
	// indices holds the index names read, so that the items of a body,
	// which name a few indices, share their strings.
	indices map[string]string
}

// read reads the action line l, the n-th line of the body.
func (r *actionReader) read(l []byte, n int) (writeOp, error) {
	r.line = *bytes.NewBuffer(l)
	if r.dec == nil {
		r.dec = jsontext.NewDecoder(&r.line)
	} else {
		r.dec.Reset(&r.line)
	}
	op, err := r.readOp(n)
	if err == nil {
		// One object, and nothing after it on the line.
		if _, err = r.dec.ReadToken(); err == io.EOF {
			err = nil
		} else if err == nil {
			err = errors.New("more than one action")
		}
	}
	var fe *fakeError
	switch {
	case errors.As(err, &fe):
		return op, fe
	case err != nil:
		return op, bad("Malformed action/metadata line [%d], expected {\"<action>\":{...}}: %v", n, err)
	}
	if op.index == "" {
		return op, bad("fake: bulk item without _index")
	}
	return op, nil
}

func (r *actionReader) readOp(n int) (writeOp, error) {
	op := writeOp{version: versionMatchAny}
	dec := r.dec
	if err := readDelim(dec, '{'); err != nil {
		return op, err
	}
	name, err := dec.ReadValue()
	if err != nil {
		return op, err
	}
	switch string(quoted(name)) {
	case `"index"`:
		op.action = "index"
	case `"create"`:
		op.action = "create"
	case `"delete"`:
		op.action = "delete"
	case `"update"`:
		return op, bad("fake: bulk update is unsupported")
	default:
		action, _ := stringValue(name)
		return op, bad("Malformed action/metadata line [%d], expected one of [create, delete, index, update] but found [%s]", n, action)
	}
	if err := readDelim(dec, '{'); err != nil {
		return op, err
	}
	var versionType string
	var versionTypeSet bool
	for dec.PeekKind() != '}' {
		k, err := dec.ReadValue()
		if err != nil {
			return op, err
		}
		v, err := dec.ReadValue()
		if err != nil {
			return op, err
		}
		ok := true
		switch string(quoted(k)) { // compared as written: no string made of it
		case `"_index"`:
			op.index, ok = r.index(v)
		case `"_id"`:
			op.id, ok = stringValue(v)
		case `"version_type"`:
			versionType, ok = stringValue(v)
			versionTypeSet = v.Kind() != 'n'
		case `"if_seq_no"`:
			op.ifSeq, ok = intValue(v)
		case `"if_primary_term"`:
			op.ifTerm, ok = intValue(v)
		case `"version"`:
			var p *int64
			if p, ok = intValue(v); p != nil {
				op.version = *p
			}
		default:
			key, _ := stringValue(k)
			return op, bad("Action/metadata line [%d] contains an unknown parameter [%s]", n, key)
		}
		if !ok {
			key, _ := stringValue(k)
			return op, bad("Action/metadata line [%d]: [%s] has a value of the wrong type: %s", n, key, v)
		}
	}
	if err := readDelim(dec, '}'); err != nil {
		return op, err
	}
	if err := readDelim(dec, '}'); err != nil {
		return op, err
	}
	op.versionType, err = parseVersionType(versionType, versionTypeSet)
	return op, err
}

// quoted returns the JSON string v as it would be written without
// escapes it does not need, to be compared with a quoted name: v itself
// when it holds no escape.
func quoted(v jsontext.Value) []byte {
	if bytes.IndexByte(v, '\\') < 0 {
		return v
	}
	s, ok := stringValue(v)
	if !ok {
		return nil
	}
	q, _ := jsontext.AppendQuote(nil, s)
	return q
}

// index returns the index name v, one string per name.
func (r *actionReader) index(v jsontext.Value) (string, bool) {
	if v.Kind() != '"' || bytes.IndexByte(v, '\\') >= 0 {
		return stringValue(v)
	}
	if name, ok := r.indices[string(v)]; ok {
		return name, true
	}
	if r.indices == nil {
		r.indices = map[string]string{}
	}
	name := string(v[1 : len(v)-1])
	r.indices[string(v)] = name
	return name, true
}

// stringValue returns a JSON string's text ("" for null); ok is false for
// another kind of value.
func stringValue(v jsontext.Value) (string, bool) {
	switch v.Kind() {
	case 'n':
		return "", true
	case '"':
		if bytes.IndexByte(v, '\\') < 0 {
			return string(v[1 : len(v)-1]), true
		}
		s, err := jsontext.AppendUnquote(nil, v)
		return string(s), err == nil
	}
	return "", false
}

// intValue returns a JSON integer (nil for null); ok is false for another
// kind of value, a fraction or an integer beyond int64.
func intValue(v jsontext.Value) (*int64, bool) {
	switch v.Kind() {
	case 'n':
		return nil, true
	case '0':
	default:
		return nil, false
	}
	digits, neg := []byte(v), false
	if digits[0] == '-' {
		digits, neg = digits[1:], true
	}
	if len(digits) == 0 || len(digits) > 18 {
		return nil, false
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return nil, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return &n, true
}

func readDelim(dec *jsontext.Decoder, want jsontext.Kind) error {
	tok, err := dec.ReadToken()
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	if err != nil {
		return err
	}
	if tok.Kind() != want {
		return errors.New("want " + want.String() + ", found " + tok.Kind().String())
	}
	return nil
}
