package elastic

import (
	"bytes"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// mgetEventsAnswer is an _mget answer of 1,000 event documents.
func mgetEventsAnswer() []byte {
	var b bytes.Buffer
	b.WriteString(`{"docs":[`)
	for i := 0; i < 1000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"_index":"i","_id":"x","_seq_no":3,"_primary_term":1,"found":true,"_source":{"event_id":"e1","type":"message","occurred_at":"2025-10-07T09:00:00Z","tenant":"acme","channel":"whatsapp","contact":{"id":"5511987654321","name":"Ana"},"author":{"role":"customer"},"text":"olá tudo bem","content_type":"text","key":"d:whatsapp/5511987654321","session":"s1"}}`)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// BenchmarkMgetEventDocs reads an _mget answer of 1,000 event documents as
// readSessions does: each source decoded from the stream (decodeSource),
// which allocates nothing beyond what json v2 does.
func BenchmarkMgetEventDocs(b *testing.B) {
	a := mgetEventsAnswer()
	eds := make([]eventDoc, 1000)
	bad := make([]error, 1000)
	b.ReportAllocs()
	for b.Loop() {
		clear(eds)
		dec := jsontext.NewDecoder(bytes.NewReader(a), answerOptions)
		if _, err := readMgetAnswer(dec, nil, func(i int, dec *jsontext.Decoder) (err error) {
			bad[i], err = decodeSource(dec, &eds[i])
			return err
		}); err != nil || bad[999] != nil {
			b.Fatal(err, bad[999])
		}
	}
}
