package event_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/chatreport/chatreport/internal/benchkit"
	"github.com/chatreport/chatreport/internal/event"
)

// decoders are the implementations BenchmarkDecode compares: Decode, and
// the encoding/json decoder it replaced (kept as the differential tests'
// reference).
var decoders = []struct {
	name   string
	decode func([]byte) (event.Event, error)
}{
	{"jsontext", event.Decode},
	{"encoding-json", event.LegacyDecode},
}

// benchVariants returns n copies of a fixture, compact as producers send
// it, each with its own event_id, contact id and second, so that no cache
// sees the same strings twice in a row.
func benchVariants(tb testing.TB, raw string, n int) [][]byte {
	tb.Helper()
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(raw)); err != nil {
		tb.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(compact.Bytes(), &ev); err != nil {
		tb.Fatal(err)
	}
	id, contact := ev["event_id"].(string), ev["contact"].(map[string]any)["id"].(string)
	at := ev["occurred_at"].(string)
	out := make([][]byte, n)
	for i := range out {
		s := compact.String()
		s = strings.Replace(s, `"event_id":"`+id+`"`, fmt.Sprintf(`"event_id":"%s-%04d"`, id, i), 1)
		s = strings.Replace(s, `"id":"`+contact+`"`, fmt.Sprintf(`"id":"%s%04d"`, contact[:len(contact)-4], i), 1)
		s = strings.Replace(s, at, fmt.Sprintf("%s%02d%s", at[:17], i%60, at[19:]), 1) // the second
		out[i] = []byte(s)
	}
	for _, v := range out {
		if _, err := event.Decode(v); err != nil {
			tb.Fatalf("variant %s: %v", v, err)
		}
	}
	return out
}

// benchEach runs decode over inputs in turn, reporting ns/op, B/op and
// allocs/op, plus cpu-ns/op: the process's CPU time (garbage collection
// included) per event.
func benchEach(b *testing.B, inputs [][]byte, decode func([]byte) (event.Event, error), wantErr bool) {
	b.SetBytes(int64(len(inputs[0])))
	benchkit.Loop(b, func(i int) error {
		if _, err := decode(inputs[i%len(inputs)]); (err != nil) != wantErr {
			return fmt.Errorf("error %v, want error %v", err, wantErr)
		}
		return nil
	})
}

// BenchmarkDecode decodes the documented events, each as 256 variants:
//
//	go test ./internal/event/ -run '^$' -bench Decode -count 10 | tee decode.txt
//	benchstat -col /impl decode.txt
func BenchmarkDecode(b *testing.B) {
	cases := []struct {
		name string
		raw  string
	}{
		{"bot", botMessage},
		{"customer", customerMessage},
		{"agent-attachment", agentMessage},
		{"handoff", handoffAssigned},
		{"tag", tagEvent},
		{"info", infoNumber},
	}
	for _, c := range cases {
		inputs := benchVariants(b, c.raw, 256)
		for _, d := range decoders {
			b.Run(c.name+"/impl="+d.name, func(b *testing.B) { benchEach(b, inputs, d.decode, false) })
		}
	}
	// One stream of all the kinds, in the proportions of a conversation:
	// mostly messages.
	var mix [][]byte
	for _, c := range []string{botMessage, customerMessage, botMessage, customerMessage, agentMessage,
		handoffRequested, handoffAssigned, tagEvent, infoString, botMessage} {
		mix = append(mix, benchVariants(b, c, 64)...)
	}
	for _, d := range decoders {
		b.Run("mix/impl="+d.name, func(b *testing.B) { benchEach(b, mix, d.decode, false) })
	}
	long := [][]byte{variant(botMessage, set("text", strings.Repeat("Olá, tudo bem? ", 64<<10/16)))}
	for _, d := range decoders {
		b.Run("text-64KiB/impl="+d.name, func(b *testing.B) { benchEach(b, long, d.decode, false) })
	}
	rejected := [][]byte{variant(botMessage, set("occurred_at", "2025-10-07 09:26:33"))}
	for _, d := range decoders {
		b.Run("rejected/impl="+d.name, func(b *testing.B) { benchEach(b, rejected, d.decode, true) })
	}
}
