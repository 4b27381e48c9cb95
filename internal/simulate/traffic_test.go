package simulate_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/chatreport/chatreport/internal/simulate"
)

// trafficSHA256 is the SHA-256 of the JSON of every event trafficOptions
// generate. The traffic of a seed is a contract: benchmarks compare runs,
// and a replayed simulation deduplicates on event ids. A change that means
// to change the traffic updates it.
const trafficSHA256 = "b3707485aa1a3d25c76c206dac7998ef692297fb36df9cf59d16332fb6257661"

var trafficOptions = simulate.Options{Seed: 2026, Tenants: []string{"acme", "banco-sol"}, Sessions: 3000,
	Start: time.Date(2026, time.January, 5, 11, 30, 0, 0, time.UTC), Spread: 5 * 24 * time.Hour}

// TestGeneratedTrafficUnchanged: the same options give the same events as
// when trafficSHA256 was taken, byte for byte.
func TestGeneratedTrafficUnchanged(t *testing.T) {
	h := sha256.New()
	enc := json.NewEncoder(h)
	n := 0
	for _, conv := range generate(t, trafficOptions) {
		for i := range conv {
			if err := enc.Encode(&conv[i]); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != trafficSHA256 {
		t.Fatalf("the generated traffic changed: %d events hash to %s, want %s", n, got, trafficSHA256)
	}
}
