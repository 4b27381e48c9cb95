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
	// Retired maps a version that was current to when a swap made another
	// one current; it has not been written since.
	Retired map[string]time.Time `json:"retired,omitempty"`
	// Abandoned maps a version whose build was given up to when. (A
	// registry written before these two were kept knows neither.)
	Abandoned map[string]time.Time `json:"abandoned,omitempty"`
}

// Role says what version is for, for people: current, being built (since
// when), retired by a swap, abandoned (when), or not written, retired or
// abandoned before the registry kept which.
func (s State) Role(version string) string {
	const at = time.RFC3339
	switch {
	case version == s.Current:
		return "current"
	case !s.Building[version].IsZero():
		return "building since " + s.Building[version].Format(at)
	case !s.Abandoned[version].IsZero():
		return "abandoned at " + s.Abandoned[version].Format(at)
	case !s.Retired[version].IsZero():
		return "old, current until " + s.Retired[version].Format(at)
	}
	return "old or abandoned (not written)"
}

// setTime returns a copy of m with version at t (or without version when t
// is zero), so that a State shared with others is never modified.
func setTime(m map[string]time.Time, version string, t time.Time) map[string]time.Time {
	_, had := m[version]
	if t.IsZero() && !had {
		return m
	}
	m = maps.Clone(m)
	if t.IsZero() {
		delete(m, version)
		if len(m) == 0 {
			return nil
		}
		return m
	}
	if m == nil {
		m = map[string]time.Time{}
	}
	m[version] = t.UTC()
	return m
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

// Register marks version as being built since now, unless it already is
// (an abandoned version is no longer abandoned: its replay resumes). It
// refuses a version a swap retired: that version's replay finished, so a
// replay into it would resume its finished progress and end at once, and
// a swap would then go back to a version that lacks every event ingested
// since (see Swap). Changes are made on copies of the maps, so a State
// shared with others is never modified.
func (s *State) Register(version string, now time.Time) error {
	if s.Current == version {
		return fmt.Errorf("version %s is the current version; replay into a new one", version)
	}
	if t := s.Retired[version]; !t.IsZero() {
		return fmt.Errorf("version %s was current until %s and a replay into it would not rebuild it (its replay finished then); replay into a new version instead (chatreport replay --from earliest --target NEW --swap); see docs/operations.md, \"Going back to an earlier version\"",
			version, t.Format(time.RFC3339))
	}
	if _, ok := s.Building[version]; !ok {
		s.Building = setTime(s.Building, version, now)
	}
	s.Abandoned = setTime(s.Abandoned, version, time.Time{})
	return nil
}

// Swap makes version, which must be being built, current; the current
// version is retired at now.
//
// A swap never goes back to a retired version: it was not written after it
// stopped being current, so it lacks what was ingested since (in the
// current version only, and in the topics). Live ingest commits its offsets
// once the current version has stored a batch, so nothing would bring those
// events back into it, and the report would lose them without a word.
// Going back is a rebuild instead (docs/operations.md, "Going back to an
// earlier version").
func (s *State) Swap(version string, now time.Time) error {
	if s.Current == version {
		return fmt.Errorf("version %s is already current", version)
	}
	if _, ok := s.Building[version]; !ok {
		switch {
		case !s.Retired[version].IsZero():
			return fmt.Errorf("version %s was current until %s and has not been written since: it lacks every event ingested after that (they are in %s and the topics only), which a swap to it would drop from the report, so index swap does not go back to it; to go back, rebuild a new version from the topics while live ingest goes on (chatreport replay --from earliest --target NEW --swap, within the topics' retention); see docs/operations.md, \"Going back to an earlier version\"",
				version, s.Retired[version].Format(time.RFC3339), s.Current)
		case !s.Abandoned[version].IsZero():
			return fmt.Errorf("version %s was abandoned at %s and has not been written since; replay into a new version", version, s.Abandoned[version].Format(time.RFC3339))
		}
		return fmt.Errorf("version %s is not being built; replay into it first", version)
	}
	s.Building = setTime(s.Building, version, time.Time{})
	s.Retired = setTime(s.Retired, s.Current, now)
	s.Abandoned = setTime(s.Abandoned, version, time.Time{})
	s.Current = version
	return nil
}

// Abandon removes version from those being built and records it abandoned
// at now.
func (s *State) Abandon(version string, now time.Time) error {
	if _, ok := s.Building[version]; !ok {
		return fmt.Errorf("version %s is not being built", version)
	}
	s.Building = setTime(s.Building, version, time.Time{})
	s.Abandoned = setTime(s.Abandoned, version, now)
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
	return f.update(func(s *State) error { return s.Swap(version, time.Now()) })
}

// Abandon stops building version: its fence refuses writes from now on.
func (f *File) Abandon(_ context.Context, version string) (State, error) {
	return f.update(func(s *State) error { return s.Abandon(version, time.Now()) })
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
