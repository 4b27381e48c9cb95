package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// demoStateFile, in the data directory, is what `up --demo` remembers across
// restarts: the demo API key, so that a restart does not sign open tabs out,
// and whether the week of history was already produced into this data
// directory, so that a restart does not add it again.
const demoStateFile = "demo.json"

// demoLockFile, in the data directory, is locked by the `up --demo` that
// feeds demo traffic into it (lockDemo): two `up` may ingest into one folder,
// but two demo feeds would double the demo data.
const demoLockFile = "demo.lock"

// errDemoFeeding is the refusal of a second demo feed into dir.
func errDemoFeeding(dir string) error {
	return fmt.Errorf("another `chatreport up --demo` is feeding demo traffic into the data folder %q (it holds %s), and a second feed would double the demo data: stop that one, or give this one another --data-dir (an `up` without --demo may share the folder)",
		dir, filepath.Join(dir, demoLockFile))
}

// demoHistorySessions is how many conversations the demo seeds once.
const demoHistorySessions = 500

type demoState struct {
	// APIKey is the generated demo key; empty when the configuration names
	// the demo tenant's key itself.
	APIKey string `json:"api_key,omitempty"`
	// SeededAt is when the history was produced; zero until it was.
	SeededAt time.Time `json:"seeded_at,omitzero"`
}

func demoStatePath(dir string) string { return filepath.Join(dir, demoStateFile) }

// loadDemoState reads the demo's state of dir; a missing file is a data
// directory the demo never ran in.
func loadDemoState(dir string) (demoState, error) {
	var s demoState
	b, err := os.ReadFile(demoStatePath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read the demo state: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("read the demo state %s: %w (delete the file to start the demo afresh)", demoStatePath(dir), err)
	}
	return s, nil
}

// save writes the state readable by its owner only (it holds a key),
// replacing the file whole so that a crash never leaves half of it.
func (s demoState) save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create the data directory: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, demoStateFile+".*")
	if err != nil {
		return fmt.Errorf("write the demo state: %w", err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write the demo state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write the demo state: %w", err)
	}
	if err := os.Rename(tmp.Name(), demoStatePath(dir)); err != nil {
		return fmt.Errorf("write the demo state: %w", err)
	}
	return nil
}

// keptDemoKey returns the demo key of dir, generating and keeping one the
// first time.
func keptDemoKey(dir string) (string, error) {
	s, err := loadDemoState(dir)
	if err != nil {
		return "", err
	}
	if s.APIKey != "" {
		return s.APIKey, nil
	}
	s.APIKey = randomKey()
	if err := s.save(dir); err != nil {
		return "", err
	}
	return s.APIKey, nil
}

// markDemoSeeded records that dir has its history.
func markDemoSeeded(dir string, at time.Time) error {
	s, err := loadDemoState(dir)
	if err != nil {
		return err
	}
	s.SeededAt = at.UTC()
	return s.save(dir)
}
