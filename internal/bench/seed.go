package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/simulate"
	"github.com/chatreport/chatreport/internal/store/sqlite"
)

// The report database: one tenant's month of simulated conversations.
const (
	reportTenant = "acme"
	reportSpread = 30 * 24 * time.Hour
	// seedBatch is how many events one assembler call stores while seeding.
	seedBatch = 5000
	// seedFormat changes when what is seeded, or the layout it is seeded
	// into, changes, so that a cached database of an older bench is seeded
	// again rather than reused (3: SQLite schema version 6, protocols in the
	// tenant's time zone).
	seedFormat = 3
)

var reportStart = simulate.DefaultStart

// seeded describes a seeded report database; it is kept next to the
// database, and its presence says the seed completed.
type seeded struct {
	Format        int       `json:"format"`
	Conversations int       `json:"conversations"`
	Seed          int64     `json:"seed"`
	Events        int       `json:"events"`
	Messages      int       `json:"messages"`
	Sessions      int       `json:"sessions"`
	Start         time.Time `json:"start"`
	Spread        string    `json:"spread"`
	// Seeding figures, from the run that seeded.
	SeedSeconds    float64 `json:"seed_seconds"`
	SeedCPUSeconds float64 `json:"seed_cpu_seconds"`
	SeedAllocs     uint64  `json:"seed_allocs"`
	SeededAt       string  `json:"seeded_at"`
}

// reportDB returns the report database of cfg.Sessions conversations,
// seeding it through the assembler unless DataDir holds it already.
func (r *run) reportDB(ctx context.Context) (path string, meta seeded, cached bool, err error) {
	name := fmt.Sprintf("bench-report-c%d-s%d-f%d", r.cfg.Sessions, r.cfg.Seed, seedFormat)
	path = filepath.Join(r.dataDir, name+".db")
	metaPath := filepath.Join(r.dataDir, name+".json")
	if data, err := os.ReadFile(metaPath); err == nil {
		if json.Unmarshal(data, &meta) == nil && meta.Format == seedFormat {
			if _, err := os.Stat(path); err == nil {
				return path, meta, true, nil
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", meta, false, err
	}
	// A database without its description is a seed that did not finish.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", meta, false, err
		}
	}
	meta, err = r.seed(ctx, path)
	if err != nil {
		return "", meta, false, err
	}
	data, _ := json.MarshalIndent(meta, "", "  ") // plain data: always marshals
	if err := os.WriteFile(metaPath, append(data, '\n'), 0o644); err != nil {
		return "", meta, false, err
	}
	return path, meta, false, nil
}

// seed stores the simulated month through session.Assembler into a new
// SQLite store, seedBatch events per call, in the order the simulator
// makes them (conversation by conversation, as a producer would send them).
func (r *run) seed(ctx context.Context, path string) (seeded, error) {
	opts := simulate.Options{Seed: r.cfg.Seed, Tenants: []string{reportTenant}, Sessions: r.cfg.Sessions,
		Start: reportStart, Spread: reportSpread}
	meta := seeded{Format: seedFormat, Conversations: r.cfg.Sessions, Seed: r.cfg.Seed, Start: reportStart, Spread: reportSpread.String()}
	// It ingests: its store packs and merges, as the ingester's does, so
	// the seed rate is an ingester's.
	st, err := sqlite.Open(ctx, path, sqlite.WithPacker(), sqlite.WithMerger())
	if err != nil {
		return meta, err
	}
	defer st.Close()
	a := session.NewAssembler(r.cfg.Def, st)
	stop := r.profile("seed")
	defer stop()
	g := simulate.NewGenerator(opts)
	batch := make([]event.Event, 0, seedBatch+64)
	begin := snapshot()
	lastReport := time.Now()
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := a.Ingest(ctx, batch); err != nil {
			return err
		}
		batch = batch[:0]
		return nil
	}
	done := 0
	for {
		evs, ok := g.Next()
		if !ok {
			break
		}
		done++
		meta.Events += len(evs)
		for i := range evs {
			if evs[i].Type == event.TypeMessage {
				meta.Messages++
			}
		}
		// The assembler gets events as the consumer would: decoded from
		// their JSON (the generator shares pointed-to values).
		for i := range evs {
			raw, err := json.Marshal(&evs[i])
			if err != nil {
				return meta, err
			}
			e, err := event.Decode(raw)
			if err != nil {
				return meta, fmt.Errorf("the simulator made an invalid event: %w", err)
			}
			batch = append(batch, e)
		}
		if len(batch) >= seedBatch {
			if err := flush(); err != nil {
				return meta, err
			}
			if time.Since(lastReport) > 15*time.Second {
				lastReport = time.Now()
				el := time.Since(begin.at)
				r.progress("  seeded %d of %d conversations (%d events, %.0f events/s)", done, r.cfg.Sessions, meta.Events,
					float64(meta.Events)/el.Seconds())
			}
		}
		if err := ctx.Err(); err != nil {
			return meta, err
		}
	}
	if err := flush(); err != nil {
		return meta, err
	}
	sp := begin.until(snapshot())
	meta.SeedSeconds, meta.SeedCPUSeconds, meta.SeedAllocs = sp.wall.Seconds(), sp.cpu.Seconds(), sp.allocs
	meta.SeededAt = time.Now().UTC().Format(time.RFC3339)
	return meta, nil
}
