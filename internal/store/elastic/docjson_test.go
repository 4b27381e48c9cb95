package elastic

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
)

// TestDocJSONMatchesEncodingJSON: the hand-written encoders write what
// encoding/json writes, byte for byte, for documents whose fields are
// filled by reflection — so a field added to a type and not to its encoder
// makes this test fail — with strings that need escaping, nil and empty
// slices and maps, absent pointers, and times with and without nanoseconds.
func TestDocJSONMatchesEncodingJSON(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 7))
		for _, doc := range []jsonAppender{new(eventDoc), new(sessionDoc), new(keyDoc)} {
			fillRandom(r, reflect.ValueOf(doc).Elem(), seed%3 == 0)
			if d, ok := doc.(*eventDoc); ok {
				d.Event = someEvent(r, seed)
			}
			want := encodingJSON(t, doc)
			if d, ok := doc.(*sessionDoc); ok {
				// The fields made of the session's events.
				type message struct {
					Text string `json:"text"`
				}
				messages, refs := []message{}, []string{}
				for range r.IntN(5) {
					st := &session.Stored{Event: someEvent(r, seed)}
					if r.IntN(2) == 0 {
						st.Type = event.TypeMessage
					}
					d.events = append(d.events, *st)
					if st.Type == event.TypeMessage && st.Text != "" {
						messages = append(messages, message{st.Text})
					}
					refs = append(refs, st.OccurredAt.UTC().Format("2006.01")+"/"+st.EventID)
				}
				want = slices.Concat(want[:len(want)-2], []byte(`,"messages":`))
				want = slices.Concat(want, bytes.TrimSpace(encodingJSON(t, messages)), []byte(`,"event_refs":`),
					bytes.TrimSpace(encodingJSON(t, refs)), []byte("}\n"))
			}
			got := append(doc.appendJSON(nil), '\n')
			if !bytes.Equal(got, want) {
				t.Fatalf("seed %d, %T:\n got %s\nwant %s", seed, doc, got, want)
			}
		}
	}
}

// encodingJSON is v as encoding/json writes it to a stream, newline ended.
func encodingJSON(t *testing.T, v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// strs are strings that exercise every branch of appendString.
var strs = []string{
	"", "a", "Olá, tudo bem?", `quote " and \ back`, "tab\tnew\nline\rcr\bbs\fff",
	"\x00\x01\x1f\x7f", "<html> & </html>", "line\u2028sep\u2029para", "bad \xff utf8 \xe2\x82",
	"emoji 😀 ç ã", "5511987654321",
}

// fillRandom sets every field of v, recursively. Slices, maps and pointers are
// nil or empty now and then (always filled when full is set, so that each
// field is seen).
// someEvent is an event filled by fillRandom: an event document and a
// session's events always point to one.
func someEvent(r *rand.Rand, seed uint64) *event.Event {
	e := new(event.Event)
	fillRandom(r, reflect.ValueOf(e).Elem(), seed%3 == 0)
	return e
}

func fillRandom(r *rand.Rand, v reflect.Value, full bool) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(strs[r.IntN(len(strs))])
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Int, reflect.Int64:
		v.SetInt(r.Int64N(1<<40) - 1<<20)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			ns := int64(0)
			if r.IntN(2) == 0 {
				ns = r.Int64N(1e9)
			}
			v.Set(reflect.ValueOf(time.Unix(r.Int64N(4e9), ns).UTC()))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillRandom(r, v.Field(i), full)
			}
		}
	case reflect.Pointer:
		if !full && r.IntN(3) == 0 {
			v.SetZero()
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		fillRandom(r, v.Elem(), full)
	case reflect.Slice:
		if !full && r.IntN(4) == 0 {
			v.SetZero()
			return
		}
		n := r.IntN(4)
		if full {
			n++
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fillRandom(r, s.Index(i), full)
		}
		v.Set(s)
	case reflect.Map:
		if !full && r.IntN(4) == 0 {
			v.SetZero()
			return
		}
		m := reflect.MakeMap(v.Type())
		for range r.IntN(4) + 1 {
			k := reflect.New(v.Type().Key()).Elem()
			fillRandom(r, k, full)
			e := reflect.New(v.Type().Elem()).Elem()
			fillRandom(r, e, full)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	default:
		panic("fill: no case for " + v.Type().String())
	}
}

// TestReadBackDecoding: the json v2 package, which the write path decodes
// the documents it reads back with, gives what encoding/json gives for
// documents written by the encoders above, every field filled by
// reflection.
func TestReadBackDecoding(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 11))
		ed := &eventDoc{Event: someEvent(r, seed)}
		fillRandom(r, reflect.ValueOf(&ed.Key).Elem(), seed%3 == 0)
		fillRandom(r, reflect.ValueOf(&ed.Session).Elem(), seed%3 == 0)
		kd := new(keyDoc)
		fillRandom(r, reflect.ValueOf(kd).Elem(), seed%3 == 0)
		sd := &sessionDoc{}
		fillRandom(r, reflect.ValueOf(sd).Elem(), seed%3 == 0)
		for range r.IntN(4) {
			sd.events = append(sd.events, session.Stored{Event: someEvent(r, seed)})
		}
		type refs struct {
			EventRefs []string `json:"event_refs"`
		}
		for _, tc := range []struct {
			doc    jsonAppender
			v1, v2 any
		}{
			{ed, new(eventDoc), new(eventDoc)},
			{kd, new(keyDoc), new(keyDoc)},
			{sd, new(refs), new(refs)},
		} {
			raw := tc.doc.appendJSON(nil)
			if err := json.Unmarshal(raw, tc.v1); err != nil {
				t.Fatalf("seed %d, %T: encoding/json: %v", seed, tc.doc, err)
			}
			// As mget reads it: decoded straight from the _mget
			// answer's stream, between the members of the document.
			answer := slices.Concat([]byte(`{"docs":[{"_index":"i","_id":"x","found":true,"_source":`), raw, []byte(`,"_seq_no":1}]}`))
			dec := jsontext.NewDecoder(bytes.NewReader(answer), answerOptions)
			var bad error
			res, err := readMgetAnswer(dec, nil, func(i int, dec *jsontext.Decoder) (err error) {
				bad, err = decodeSource(dec, tc.v2)
				return err
			})
			if err != nil || bad != nil || len(res) != 1 || !res[0].Found || !res[0].Sourced || res[0].SeqNo != 1 {
				t.Fatalf("seed %d, %T: json v2 from the answer: %+v, %v, %v", seed, tc.doc, res, err, bad)
			}
			if !reflect.DeepEqual(tc.v1, tc.v2) {
				t.Fatalf("seed %d, %T: encoding/json read\n%#v\njson v2 read\n%#v", seed, tc.doc, tc.v1, tc.v2)
			}
		}
	}
}

// appendMonth writes what time.Format writes with monthLayout, for every
// year a time.Time holds (the index holds 1970 to 2261), in any location.
func TestAppendMonthMatchesFormat(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 13))
	zone := time.FixedZone("x", -11*3600)
	times := []time.Time{{}, time.Unix(0, 0), time.Date(999, 12, 31, 23, 0, 0, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2261, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(2026, 1, 1, 1, 0, 0, 0, zone)}
	for range 2000 {
		times = append(times, time.Unix(rng.Int64N(400*365*86400)-100*365*86400, rng.Int64N(1e9)).In(zone))
	}
	for _, tm := range times {
		if got, want := string(appendMonth(nil, tm)), tm.UTC().Format(monthLayout); got != want {
			t.Fatalf("%v: %q, want %q", tm, got, want)
		}
	}
}

// appendQuote quotes as jsontext.AppendQuote does, and fails where it does.
func TestAppendQuoteMatchesJSONText(t *testing.T) {
	cases := []string{"", "chatreport-events-v1-2026.12", "tenant/event-1", "a\"b", `a\b`, "é", "\x7f", "\xff", "a\u2028b"}
	for c := range 256 {
		cases = append(cases, "id"+string([]byte{byte(c)})+"x")
	}
	for _, s := range cases {
		got, gerr := appendQuote([]byte("x"), s)
		want, werr := jsontext.AppendQuote([]byte("x"), s)
		if string(got) != string(want) || (gerr == nil) != (werr == nil) {
			t.Errorf("%q: %q, %v; want %q, %v", s, got, gerr, want, werr)
		}
	}
}

// An operation with a tenant writes the _id docID writes, quoted as a
// whole, also for ids over the limit and parts that are not UTF-8 alone.
func TestAppendIDMatchesDocID(t *testing.T) {
	long := strings.Repeat("x", maxIDBytes)
	for _, tc := range []struct{ tenant, id string }{
		{"t1", "e-1"}, {"t1", `a"b\c`}, {"tenant", "é\u2028"}, {"t", long}, {"t", long[:maxIDBytes-2]},
		{"t\xc3", "\xa9x"}, {"t", "\xff"}, {"", "plain"},
	} {
		op := Op{Scoped: true, Tenant: tc.tenant, ID: tc.id}
		got, gerr := appendID([]byte("x"), &op)
		want, werr := appendQuote([]byte("x"), docID(tc.tenant, tc.id))
		if string(got) != string(want) || (gerr == nil) != (werr == nil) {
			t.Errorf("%q %q: %q, %v; want %q, %v", tc.tenant, tc.id, got, gerr, want, werr)
		}
		if op.docID() != docID(tc.tenant, tc.id) {
			t.Errorf("%q %q: docID %q, want %q", tc.tenant, tc.id, op.docID(), docID(tc.tenant, tc.id))
		}
	}
	// Not scoped: the id is the _id, whatever the tenant.
	op := Op{Tenant: "t1", ID: "key-1"}
	if got, _ := appendID(nil, &op); string(got) != `"key-1"` || op.docID() != "key-1" {
		t.Errorf("unscoped: %s, %q", got, op.docID())
	}
}
