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
const trafficSHA256 = "4c1862f9de51f955f2e83f3eae45603a3f6cae8eba5bac022a5c9bf4ad44ed05"

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

// TestProtocolsCarryTheTenantsDate: a protocol starts with the date and time
// of its attendance's first event in Brasília, as the platform writes it —
// also in the evening, when the UTC date is already the next day.
func TestProtocolsCarryTheTenantsDate(t *testing.T) {
	brasilia := time.FixedZone("BRT", -3*60*60)
	evening := 0
	for _, conv := range generate(t, trafficOptions) {
		first := map[string]time.Time{}
		for _, e := range conv {
			if e.Protocol != "" && (first[e.Protocol].IsZero() || e.OccurredAt.Before(first[e.Protocol])) {
				first[e.Protocol] = e.OccurredAt
			}
		}
		for p, at := range first {
			local := at.In(brasilia)
			issued, err := time.ParseInLocation("20060102150405", p[:14], brasilia)
			if err != nil {
				t.Fatalf("protocol %s: %v", p, err)
			}
			// Issued beside the first message that carries it.
			if d := at.Sub(issued); d < -time.Minute || d > time.Minute {
				t.Fatalf("protocol %s reads %s in Brasília, its attendance began at %s (%s in Brasília)", p, issued.Format(time.DateTime), at, local.Format(time.DateTime))
			}
			if local.Hour() >= 21 {
				evening++
			}
		}
	}
	if evening == 0 {
		t.Fatal("no attendance began after 21:00 in Brasília: the test proves nothing")
	}
}
