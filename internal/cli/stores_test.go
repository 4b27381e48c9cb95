package cli

import (
	"io"
	"testing"

	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/metrics"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/store"
)

// TestWhoPacksAndMerges: of the commands that open the store's backend,
// only those that ingest (ingest, up) run the SQLite store's packer and
// full-text merger; serve does not (the other commands open the store
// without options).
func TestWhoPacksAndMerges(t *testing.T) {
	for _, tc := range []struct {
		command string
		ingests bool
	}{
		{"ingest", true},
		{"up", true},
		{"serve", false},
	} {
		t.Run(tc.command, func(t *testing.T) {
			if c, _, err := newRoot(io.Discard, io.Discard).Find([]string{tc.command}); err != nil || c.Name() != tc.command {
				t.Fatalf("no command %q: the names the commands pass are their own", tc.command)
			}
			var cfg config.Config
			cfg.Store.Kind = config.StoreSQLite
			cfg.Store.SQLite.Dir = t.TempDir()
			be, err := openBackend(tc.command, cfg, pipeline.MustDefault(), metrics.New(), zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			defer be.close()
			st, err := be.api.(store.Current).Set.Get(t.Context(), "v1")
			if err != nil {
				t.Fatal(err)
			}
			if st.Packs() != tc.ingests {
				t.Errorf("%s: the store packs: %v, want %v", tc.command, st.Packs(), tc.ingests)
			}
			if st.Merges() != tc.ingests {
				t.Errorf("%s: the store merges: %v, want %v", tc.command, st.Merges(), tc.ingests)
			}
		})
	}
}
