package elastic

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	goldenfile "github.com/chatreport/chatreport/internal/golden"
	"github.com/chatreport/chatreport/internal/idref"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// normalize re-encodes JSON with sorted keys and indentation, so that golden
// files compare by meaning and diff readably.
func normalize(t testing.TB, data []byte) []byte {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, data)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// golden compares got (JSON) with testdata/name, or rewrites it with -update.
func golden(t testing.TB, name string, got []byte) {
	t.Helper()
	goldenfile.Check(t, filepath.Join("testdata", name), got, normalize)
}

// testRefKey is the configured reference key of the tests' stores, so that
// a test expecting a reference computes it as an operator would.
var testRefKey = idref.New([]byte("test reference key, 32 bytes..."))

// fakeStore returns a Store on f with its templates installed.
func fakeStore(t testing.TB, f *esfake.Server, tune ...func(*Config)) *Store {
	t.Helper()
	return loggedFakeStore(t, f, zap.NewNop(), tune...)
}

// loggedFakeStore is fakeStore logging to log.
func loggedFakeStore(t testing.TB, f *esfake.Server, log *zap.Logger, tune ...func(*Config)) *Store {
	t.Helper()
	cfg := Config{
		Addresses: []string{f.URL()}, IndexPrefix: "test",
		Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, RegistryTTL: time.Millisecond,
		RefKey: testRefKey,
	}
	for _, fn := range tune {
		fn(&cfg)
	}
	s, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Init(t.Context()); err != nil {
		t.Fatalf("init: %v", err)
	}
	return s
}
