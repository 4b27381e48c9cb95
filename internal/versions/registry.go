// Package versions keeps track of store versions: the current one, which the
// API reads and the live ingester writes, and those being rebuilt, each
// written by its replay alone until a swap makes it current. It holds the
// registry of their state, a fence for each version's writes, the store of
// each version opened once (Set), and the comparison of two versions; what
// writes the current version is package store's Sink.
package versions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/chatreport/chatreport/internal/event"
)

// Initial is the version of a store that never went through a swap.
const Initial = "v1"

// State is which versions exist and what each is for.
type State struct {
	Current string `json:"current"`
	// Building maps a version being rebuilt to when it was registered.
	Building map[string]time.Time `json:"building,omitempty"`
}

// Writable lists the versions that may be written: the current one first
// (the live ingester's), then those being built (each by its replay), in
// name order.
func (s State) Writable() []string {
	out := []string{s.Current}
	for _, v := range slices.Sorted(maps.Keys(s.Building)) {
		if v != s.Current {
			out = append(out, v)
		}
	}
	return out
}

// ErrNotWritable is the error of a write to a version that the registry no
// longer lists as writable: it was abandoned, or a swap retired it.
var ErrNotWritable = errors.New("the version is no longer written")

// Fence returns a check that version is writable, for a store to run
// before each write request, so that a write that began before the version
// was abandoned cannot recreate it afterwards. It asks reg, whose answers
// may be cached.
func Fence(reg Registry, version string) func(context.Context) error {
	return func(ctx context.Context) error {
		st, err := reg.State(ctx)
		if err != nil {
			return fmt.Errorf("read the registry of versions: %w", err)
		}
		if !slices.Contains(st.Writable(), version) {
			return fmt.Errorf("version %s: %w", version, ErrNotWritable)
		}
		return nil
	}
}

// Register marks version as being built since now, unless it already is;
// the change is made on a copy of Building, so a State shared with others is
// never modified.
func (s *State) Register(version string, now time.Time) error {
	if s.Current == version {
		return fmt.Errorf("version %s is the current version; replay into a new one", version)
	}
	if _, ok := s.Building[version]; !ok {
		s.Building = maps.Clone(s.Building)
		if s.Building == nil {
			s.Building = map[string]time.Time{}
		}
		s.Building[version] = now.UTC()
	}
	return nil
}

// Swap makes version, which must be being built, current.
func (s *State) Swap(version string) error {
	if s.Current == version {
		return fmt.Errorf("version %s is already current", version)
	}
	if _, ok := s.Building[version]; !ok {
		return fmt.Errorf("version %s is not being built; replay into it first", version)
	}
	s.Building = maps.Clone(s.Building)
	delete(s.Building, version)
	s.Current = version
	return nil
}

// Abandon removes version from those being built.
func (s *State) Abandon(version string) error {
	if _, ok := s.Building[version]; !ok {
		return fmt.Errorf("version %s is not being built", version)
	}
	s.Building = maps.Clone(s.Building)
	delete(s.Building, version)
	return nil
}

// Valid reports whether name can be a version: a token of at most 32
// characters such as v2 or rebuild202510. (The Elasticsearch store also
// refuses "-" in a version: elastic.ValidVersion.)
func Valid(name string) bool { return event.IsToken(name, 32, false) }

// Registry records the state of a store's versions. Changes are atomic:
// every reader sees the state before or after one, never half of it.
type Registry interface {
	State(ctx context.Context) (State, error)
	// Register marks version as being built from now on; registering it
	// again keeps the first time.
	Register(ctx context.Context, version string, now time.Time) (State, error)
	// Swap makes a version being built current.
	Swap(ctx context.Context, version string) (State, error)
	// Abandon stops building a version.
	Abandon(ctx context.Context, version string) (State, error)
}

var _ Registry = (*File)(nil)

// File is a registry kept in a JSON file; changes are written to a temporary
// file and renamed over it, so readers never see half a state.
type File struct {
	path string

	mu    sync.Mutex
	state State
	raw   []byte // the file state was decoded from
}

// FileName is the registry's file name in the data folder.
const FileName = "versions.json"

// OpenFile returns the registry in dir. A missing file means the initial
// version is current and nothing is being built.
func OpenFile(dir string) *File { return &File{path: filepath.Join(dir, FileName)} }

// Dir is the folder the registry is in.
func (f *File) Dir() string { return filepath.Dir(f.path) }

// State returns the registry's state as the file holds it now: the file is
// read on every call (it is a few hundred bytes; decoded again only when its
// bytes changed), so a change reaches every process at its next call, with
// no time to live. Comparing sizes and modification times instead could miss
// two changes made within one tick of the file system's clock.
func (f *File) State(context.Context) (State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stateLocked()
}

func (f *File) stateLocked() (State, error) {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		f.state, f.raw = State{Current: Initial}, nil
		return f.state, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("versions registry: %w", err)
	}
	if f.raw != nil && bytes.Equal(data, f.raw) {
		return f.state, nil
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil || !Valid(s.Current) {
		return State{}, fmt.Errorf("versions registry %s: not a valid state", f.path)
	}
	f.state, f.raw = s, data
	return s, nil
}

// Register marks version as being built, from now on (or from when it was
// registered before: registering again keeps the first time).
func (f *File) Register(_ context.Context, version string, now time.Time) (State, error) {
	if !Valid(version) {
		return State{}, fmt.Errorf("version %q: use a short lowercase name such as v2", version)
	}
	return f.update(func(s *State) error { return s.Register(version, now) })
}

// Swap makes version current; the old current version is no longer written.
func (f *File) Swap(_ context.Context, version string) (State, error) {
	return f.update(func(s *State) error { return s.Swap(version) })
}

// Abandon stops building version: its fence refuses writes from now on.
func (f *File) Abandon(_ context.Context, version string) (State, error) {
	return f.update(func(s *State) error { return s.Abandon(version) })
}

func (f *File) update(change func(*State) error) (State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.stateLocked()
	if err != nil {
		return State{}, err
	}
	if err := change(&s); err != nil {
		return State{}, err
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return State{}, fmt.Errorf("versions registry: %w", err)
	}
	tmp := f.path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return State{}, fmt.Errorf("versions registry: %w", err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		return State{}, fmt.Errorf("versions registry: %w", err)
	}
	return s, nil
}
