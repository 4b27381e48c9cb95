package config

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/chatreport/chatreport/internal/idref"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadFileAndEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("http: {addr: ':9000'}\nauth: {api_keys: {acme: k1}}\n"), 0o600)
	t.Setenv(EnvAPIKeys, "globex=k2, initech=k3")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != ":9000" || c.Kafka.Brokers[0] != "127.0.0.1:9092" {
		t.Errorf("file over defaults: %+v", c)
	}
	if c.Auth.APIKeys["acme"] != "k1" || c.Auth.APIKeys["globex"] != "k2" || c.Auth.APIKeys["initech"] != "k3" {
		t.Errorf("keys %v", c.Auth.APIKeys)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	unknown := filepath.Join(dir, "u.yaml")
	os.WriteFile(unknown, []byte("htp: {addr: x}\n"), 0o600)
	if _, err := Load(unknown); err == nil || !strings.Contains(err.Error(), "htp") {
		t.Errorf("unknown key: %v", err)
	}
	renamed := filepath.Join(dir, "r.yaml")
	os.WriteFile(renamed, []byte("store: {elasticsearch: {cache_size: 400000}}\n"), 0o600)
	if _, err := Load(renamed); err == nil || !strings.Contains(err.Error(), "replaced by cache_mib") {
		t.Errorf("renamed key: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file accepted")
	}
	t.Setenv(EnvAPIKeys, "acme")
	if _, err := Load(""); err == nil || !strings.Contains(err.Error(), EnvAPIKeys) {
		t.Errorf("bad env: %v", err)
	}
}

func TestValidate(t *testing.T) {
	sum := sha256.Sum256([]byte("k"))
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no brokers", func(c *Config) { c.Kafka.Brokers = nil }, "kafka.brokers"},
		{"bad store", func(c *Config) { c.Store.Kind = "mysql" }, "store.kind"},
		{"no sqlite dir", func(c *Config) { c.Store.SQLite.Dir = "" }, "store.sqlite.dir"},
		{"bad zone", func(c *Config) { c.API.TimeZone = "Mars/Olympus" }, "api.time_zone"},
		{"bad tenant", func(c *Config) { c.Auth.APIKeys = map[string]Secret{"Acme!": "k"} }, "not a tenant"},
		{"bad hash", func(c *Config) { c.Auth.APIKeyHashes = map[string][]string{"acme": {"abc"}} }, "SHA-256"},
		{"batch", func(c *Config) { c.Ingest.BatchSize = -1 }, "batch_size"},
		{"workers", func(c *Config) { c.Ingest.Workers = -1 }, "ingest.workers"},
		{"batches in flight", func(c *Config) { c.Ingest.BatchesInFlight = -1 }, "ingest.batches_in_flight"},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, "log.format"},
		{"log level", func(c *Config) { c.Log.Level = "loud" }, `log.level "loud"`},
		{"log level warn", func(c *Config) { c.Log.Level = "warn" }, ""},
		{"ref key short", func(c *Config) { c.Log.RefKey = "fifteen bytes.." }, "log.ref_key: at least 16 bytes (15 given)"},
		{"ref key 16 bytes", func(c *Config) { c.Log.RefKey = "sixteen bytes..." }, ""},
		{"http addr without port", func(c *Config) { c.HTTP.Addr = "nonsense" }, `http.addr "nonsense": want host:port`},
		{"http addr any host", func(c *Config) { c.HTTP.Addr = ":8080" }, ""},
		{"broker without port", func(c *Config) { c.Kafka.Brokers = []string{"kafka:9092", "kafka2"} }, ""},
		{"broker with a bad port", func(c *Config) { c.Kafka.Brokers = []string{"kafka:90x2"} }, `kafka.brokers: "kafka:90x2": want host or host:port`},
		{"broker without host", func(c *Config) { c.Kafka.Brokers = []string{":9092"} }, `kafka.brokers: ":9092"`},
		{"broker empty", func(c *Config) { c.Kafka.Brokers = []string{""} }, `kafka.brokers: "": want host or host:port`},
		{"broker with two colons", func(c *Config) { c.Kafka.Brokers = []string{"a:b:9092"} }, `kafka.brokers: "a:b:9092"`},
		{"jwt both keys", func(c *Config) {
			c.Auth.JWT = JWT{HS256SecretFile: "s", RS256PublicKeyFile: "p"}
			c.API.CursorKey = "k"
		}, "not both"},
		{"jwt only needs a cursor key", func(c *Config) { c.Auth.JWT = JWT{RS256PublicKeyFile: "p"} }, "api.cursor_key"},
		{"jwt only with a cursor key", func(c *Config) { c.Auth.JWT = JWT{RS256PublicKeyFile: "p"}; c.API.CursorKey = "k" }, ""},
		{"jwt and api keys", func(c *Config) {
			c.Auth.JWT = JWT{HS256Secret: "s"}
			c.Auth.APIKeys = map[string]Secret{"acme": "k"}
		}, ""},
		{"export keep-alive negative", func(c *Config) { es(c).ExportKeepAlive = -time.Minute }, "store.elasticsearch.export_keep_alive"},
		{"export keep-alive under 1s", func(c *Config) { es(c).ExportKeepAlive = 500 * time.Millisecond }, "store.elasticsearch.export_keep_alive"},
		{"export keep-alive over 24h", func(c *Config) { es(c).ExportKeepAlive = 25 * time.Hour }, "store.elasticsearch.export_keep_alive"},
		{"export keep-alive 1s", func(c *Config) { es(c).ExportKeepAlive = time.Second }, ""},
		{"export keep-alive default", func(c *Config) { es(c).ExportKeepAlive = 0 }, ""},
		{"good hash", func(c *Config) { c.Auth.APIKeyHashes = map[string][]string{"acme": {hex.EncodeToString(sum[:])}} }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// es makes c use Elasticsearch and returns its section.
func es(c *Config) *Elasticsearch {
	c.Store.Kind, c.Store.Elasticsearch.URLs = StoreElasticsearch, []string{"http://127.0.0.1:9200"}
	return &c.Store.Elasticsearch
}

func TestCursorKeyFollowsKeys(t *testing.T) {
	a, b := Default(), Default()
	a.Auth.APIKeys = map[string]Secret{"acme": "k1"}
	b.Auth.APIKeys = map[string]Secret{"acme": "k1"}
	if string(a.CursorKeyBytes()) != string(b.CursorKeyBytes()) {
		t.Error("same keys, different cursor keys")
	}
	b.Auth.APIKeys["acme"] = "k2"
	if string(a.CursorKeyBytes()) == string(b.CursorKeyBytes()) {
		t.Error("different keys, same cursor key")
	}
	b.API.CursorKey = "explicit"
	if string(b.CursorKeyBytes()) != "explicit" {
		t.Error("configured cursor key ignored")
	}
}

// TestIngestDefaultsOf: batch_size, batches_in_flight and workers 0 take
// the store kind's default; a value set wins on every store.
func TestIngestDefaultsOf(t *testing.T) {
	for _, tc := range []struct {
		set  int
		kind string
		// the batch size, batches in flight and workers of ing with
		// each setting at set
		batch, inFlight, workers int
	}{
		{0, StoreSQLite, SQLiteBatchSize, SQLiteInFlight, 1},
		{0, StoreElasticsearch, ElasticsearchBatchSize, ElasticsearchInFlight, 0},
		{3, StoreSQLite, 3, 3, 3},
		{3, StoreElasticsearch, 3, 3, 3},
	} {
		ing := Ingest{BatchSize: tc.set, BatchesInFlight: tc.set, Workers: tc.set}
		if got := ing.BatchSizeOf(tc.kind); got != tc.batch {
			t.Errorf("batch_size %d on %s: %d, want %d", tc.set, tc.kind, got, tc.batch)
		}
		if got := ing.InFlightOf(tc.kind); got != tc.inFlight {
			t.Errorf("batches_in_flight %d on %s: %d, want %d", tc.set, tc.kind, got, tc.inFlight)
		}
		if got := ing.WorkersOf(tc.kind); got != tc.workers {
			t.Errorf("workers %d on %s: %d, want %d", tc.set, tc.kind, got, tc.workers)
		}
	}
}

// TestREADMEConfigurationIsTheDefault: the README's configuration block,
// which says "everything has a default" and shows it, is Default() — its
// example credentials and the JWT key file aside. (It showed a JWT leeway
// of 30s where the default was none, and an Elasticsearch URL where none
// is assumed.)
func TestREADMEConfigurationIsTheDefault(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "## Configuration")
	if !ok {
		t.Fatal("no Configuration section in the README")
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no yaml block in the README's Configuration section")
	}
	var got Config
	dec := yaml.NewDecoder(strings.NewReader(block))
	dec.KnownFields(true)
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("the README's configuration: %v", err)
	}
	if len(got.Auth.APIKeys) == 0 || len(got.Auth.APIKeyHashes) == 0 {
		t.Fatalf("the README's example credentials are gone: %+v", got.Auth)
	}
	got.Auth.APIKeys, got.Auth.APIKeyHashes, got.Auth.JWT.RS256PublicKeyFile = nil, nil, ""
	if len(got.Store.Elasticsearch.URLs) == 0 {
		got.Store.Elasticsearch.URLs = nil // "[]" in YAML
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("the README's configuration\n%+v\nis not the default\n%+v", got, want)
	}
}

// TestLoadGivesBareBrokersKafkasPort: a broker named by its host alone is
// dialed on 9092 by kafka-go; Load writes the port, so that the readiness
// check (which dials the brokers itself) reaches the same address.
func TestLoadGivesBareBrokersKafkasPort(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("kafka:\n  brokers: [kafka, \"kafka2:9093\", \"[::1]:9094\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kafka:9092", "kafka2:9093", "[::1]:9094"}
	if !slices.Equal(c.Kafka.Brokers, want) {
		t.Fatalf("brokers %q, want %q", c.Kafka.Brokers, want)
	}
}

// TestLogRefKey: log.ref_key is read from the file, the environment
// overrides it, and it makes the references; unset, references are the
// process's random key's.
func TestLogRefKey(t *testing.T) {
	const fileKey, envKey = "reference key of the file", "reference key of the environment"
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("log: {ref_key: '"+fileKey+"'}\n"), 0o600)
	cases := []struct {
		name, path, env string
		want            idref.Key
	}{
		{"unset", "", "", idref.New(nil)},
		{"file", path, "", idref.New([]byte(fileKey))},
		{"environment", "", envKey, idref.New([]byte(envKey))},
		{"environment over file", path, envKey, idref.New([]byte(envKey))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvLogRefKey, tc.env)
			c, err := Load(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			refs := c.Log.Refs()
			if refs.Configured() != tc.want.Configured() || refs.Of("+5511999990000") != tc.want.Of("+5511999990000") {
				t.Errorf("log.ref_key makes %s, want %s", refs.Of("+5511999990000"), tc.want.Of("+5511999990000"))
			}
		})
	}
}
