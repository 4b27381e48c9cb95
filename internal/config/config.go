// Package config is chatreport's configuration: one typed struct per
// component, defaults, validation, a YAML file (unknown keys are errors) and
// the environment.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
	"gopkg.in/yaml.v3"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/idref"
)

// Config is the whole configuration.
type Config struct {
	// Pipeline is the path of a pipeline definition; the embedded default
	// when empty.
	Pipeline string `yaml:"pipeline"`
	Kafka    Kafka  `yaml:"kafka"`
	Store    Store  `yaml:"store"`
	HTTP     HTTP   `yaml:"http"`
	API      API    `yaml:"api"`
	Auth     Auth   `yaml:"auth"`
	Ingest   Ingest `yaml:"ingest"`
	Log      Log    `yaml:"log"`
}

// Kafka says where the brokers are.
type Kafka struct {
	Brokers []string `yaml:"brokers"`
}

// Store kinds.
const (
	StoreSQLite        = "sqlite"
	StoreElasticsearch = "elasticsearch"
)

// Store chooses and configures the store.
type Store struct {
	Kind          string        `yaml:"kind"`
	SQLite        SQLite        `yaml:"sqlite"`
	Elasticsearch Elasticsearch `yaml:"elasticsearch"`
}

// Elasticsearch configures the production store.
type Elasticsearch struct {
	URLs     []string `yaml:"urls"`
	Username string   `yaml:"username"`
	// Password and APIKey are best given by the environment:
	// CHATREPORT_ES_PASSWORD, CHATREPORT_ES_API_KEY.
	Password   Secret `yaml:"password"`
	APIKey     Secret `yaml:"api_key"`
	CACertFile string `yaml:"ca_cert_file"`
	// IndexPrefix names the indices and aliases; "chatreport" when empty.
	IndexPrefix string `yaml:"index_prefix"`
	// RegistryTTL is how long a process trusts the versions registry it
	// read (5s when zero); `chatreport replay --grace` must be longer.
	RegistryTTL time.Duration `yaml:"registry_ttl"`
	// CacheMiB bounds the session-key state an ingester keeps in memory,
	// in MiB of heap (128 when zero): past it, the least recently written
	// keys are read back by id when they next get events.
	CacheMiB int `yaml:"cache_mib"`
	// ClaimLease is how long a key another writer claimed and did not
	// release stays busy before that writer is taken to have died (10s
	// when zero).
	ClaimLease time.Duration `yaml:"claim_lease"`
	// ExportKeepAlive is how long each point in time of an export lives
	// after its last use (2m when zero, at least 1s); the export renews
	// them every third of it while its client reads.
	ExportKeepAlive time.Duration `yaml:"export_keep_alive"`
	// SessionTextMaxBytes bounds the text of one session's messages, which
	// its document holds for full-text search (16 MiB when zero): a
	// message that would take it past is dead-lettered.
	SessionTextMaxBytes int `yaml:"session_text_max_bytes"`
}

// SQLite configures the embedded store.
type SQLite struct {
	// Dir holds one database file per store version (chatreport-v1.db, …)
	// and the versions registry.
	Dir string `yaml:"dir"`
}

// HTTP configures the listener.
type HTTP struct {
	Addr string `yaml:"addr"`
}

// API configures the report API.
type API struct {
	// TimeZone is the report time zone (IANA name) for dates without a time.
	TimeZone string `yaml:"time_zone"`
	// CursorKey signs page cursors; instances serving one API share it.
	// Derived from the API keys when empty.
	CursorKey Secret `yaml:"cursor_key"`
}

// Auth holds the API keys.
type Auth struct {
	// APIKeys maps a tenant to its API key, in the clear (development).
	APIKeys map[string]Secret `yaml:"api_keys"`
	// APIKeyHashes maps a tenant to SHA-256 hashes (hex) of its keys, so a
	// config file need not hold keys.
	APIKeyHashes map[string][]string `yaml:"api_key_hashes"`
	// JWT admits bearer tokens signed by an identity provider.
	JWT JWT `yaml:"jwt"`
}

// JWT configures bearer-token authentication; it is on when a key is set.
type JWT struct {
	// HS256SecretFile holds the shared secret (at least 32 bytes); the
	// environment variable CHATREPORT_JWT_HS256_SECRET may give it instead.
	HS256SecretFile string `yaml:"hs256_secret_file"`
	// RS256PublicKeyFile holds the issuer's public key or certificate (PEM).
	RS256PublicKeyFile string `yaml:"rs256_public_key_file"`
	// TenantClaim names the claim holding the tenant; "tenant" when empty.
	TenantClaim string        `yaml:"tenant_claim"`
	Issuer      string        `yaml:"issuer"`
	Audience    string        `yaml:"audience"`
	Leeway      time.Duration `yaml:"leeway"`
	// HS256Secret is read from CHATREPORT_JWT_HS256_SECRET or the file.
	HS256Secret Secret `yaml:"-"`
}

// Enabled reports whether JWTs are accepted.
func (j JWT) Enabled() bool {
	return len(j.HS256Secret) > 0 || j.HS256SecretFile != "" || j.RS256PublicKeyFile != ""
}

// Ingest tunes the consumer.
type Ingest struct {
	// BatchSize is the most events of a batch, stored and committed
	// together; 0 is the store's default: SQLiteBatchSize on SQLite,
	// ElasticsearchBatchSize on Elasticsearch. A batch fills up to it only
	// when the consumer is behind: it waits BatchWait at most.
	BatchSize int           `yaml:"batch_size"`
	BatchWait time.Duration `yaml:"batch_wait"`
	// Workers is how many partition numbers of a batch are stored at once;
	// 0 is the store's default: 1 (the batch in one call) for SQLite, one
	// per core the process may use (GOMAXPROCS) for Elasticsearch.
	Workers int `yaml:"workers"`
	// BatchesInFlight is how many consecutive batches are stored at once,
	// their offsets committed in order; 0 is the store's default:
	// SQLiteInFlight or ElasticsearchInFlight. A replay takes the same
	// (replay.Config.InFlight), its progress saved in order.
	BatchesInFlight int `yaml:"batches_in_flight"`
}

// SQLiteBatchSize is ingest.batch_size when 0 on SQLite: one transaction
// per batch, and a larger one writes fewer pages per event (each batch
// rewrites most pages of the indexes that events enter at random places),
// flushes fewer full-text segments and syncs less often. Not larger: with
// 100,000 open sessions a batch of 8,000 events carries 8,000 sessions'
// documents and rows, and the SQLite ingester's heap, held under its soft
// limit (ingest.SQLiteGC), spent 41 % of its CPU collecting
// (docs/performance.md, "SQLite ingest: full-text rows in order, the
// checkpoint off the writer, larger batches").
const SQLiteBatchSize = 4000

// ElasticsearchBatchSize is the Elasticsearch store's batch: each batch is a
// few bulk requests (three per worker, more only past the store's 5 MiB a
// request) and writes each key it touches once — its key document twice,
// each of its changed sessions whole — so a larger batch writes fewer
// documents and bytes per event and takes each key's state from memory
// fewer times. In the bench, batches of 4000 rather than 2000 events cost
// the ingester 8–20 % less CPU per event in the cold and steady phases, and
// 8000 rather than 4000 another 11–15 % in every phase; 16000 gained less
// and cost more in the late phase (docs/performance.md, "Elasticsearch
// ingest: filtered bulk answers, larger batches"). Memory: a batch is held
// several times over — the reader's queue, the batch being collected, the
// one prepared and those in flight — its events and documents ~3 KB per
// event: at 8000 the bench's ingester peaked at 445 MiB against its 448 MiB
// soft limit with a small key cache, so the default stays at 4000, which
// the limit's room for batches (ingest.GCSettings.WithCache) and the
// deployment's 640Mi pods leave space for with a full cache; 8000 asks
// for a larger GOMEMLIMIT and pod. A batch fills up only while the
// consumer is behind.
const ElasticsearchBatchSize = 4000

// BatchSizeOf is ingest.batch_size, or the default of the store kind when
// it is 0.
func (i Ingest) BatchSizeOf(kind string) int {
	switch {
	case i.BatchSize != 0:
		return i.BatchSize
	case kind == StoreSQLite:
		return SQLiteBatchSize
	default:
		return ElasticsearchBatchSize
	}
}

// SQLiteInFlight is ingest.batches_in_flight when 0 on SQLite: the next
// batch is planned while one is written; SQLite has one writer, so more
// would only queue for it.
const SQLiteInFlight = 2

// ElasticsearchInFlight is ingest.batches_in_flight when 0 on
// Elasticsearch. A batch's write is a few round trips, and the next batch's
// write of a shared key follows the previous one's claim and data (not its
// release: the key is handed over), so more batches in flight keep the
// ingester busy across a network's latency, and a key written by a longer
// run of consecutive batches is claimed and released once for the run:
// eight rather than four wrote 5–9 % fewer bulk bytes per event and took
// ~20 % less ingester CPU per event in the bench's steady phase, and with
// every answer 20 ms late stored 1.03–1.25× the events per second by phase
// (medians; docs/performance.md, "Eight batches in flight on
// Elasticsearch"). The collector's limit grows with them
// (ingest.GCSettings.WithCache: 512 MiB with the default cache).
const ElasticsearchInFlight = 8

// InFlightOf is ingest.batches_in_flight, or the default of the store kind
// when it is 0.
func (i Ingest) InFlightOf(kind string) int {
	switch {
	case i.BatchesInFlight != 0:
		return i.BatchesInFlight
	case kind == StoreSQLite:
		return SQLiteInFlight
	default:
		return ElasticsearchInFlight
	}
}

// WorkersOf is ingest.workers, or the default of the store kind when it is
// 0: 1 for SQLite, a single writer, for which concurrent writes would only
// queue and add transactions, each synced to disk (one batch is one
// transaction); 0 for Elasticsearch, which the ingester reads as one per
// core (ingest.Config.Workers).
func (i Ingest) WorkersOf(kind string) int {
	if i.Workers == 0 && kind == StoreSQLite {
		return 1
	}
	return i.Workers
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"` // json or console
	// RefKey keys the references ("id#…") that stand for contact ids,
	// event ids and document ids in log lines, errors and dead-letter
	// reasons (package idref), at least idref.MinKeyBytes bytes; also read
	// from CHATREPORT_LOG_REF_KEY. When empty each process draws a random
	// key, and references match only within its own log lines: give every
	// process the same key to follow an id across pods and to find its
	// reference (`chatreport ref`).
	RefKey Secret `yaml:"ref_key"`
}

// Refs is the key of log.ref_key, or the process's random key when it is
// empty.
func (l Log) Refs() idref.Key { return idref.New([]byte(l.RefKey)) }

// Default returns the configuration with every default set.
func Default() Config {
	return Config{
		Kafka: Kafka{Brokers: []string{"127.0.0.1:9092"}},
		Store: Store{
			Kind: StoreSQLite, SQLite: SQLite{Dir: "data"},
			// What the store takes a zero for, so that --check-config
			// prints the values in effect.
			Elasticsearch: Elasticsearch{IndexPrefix: "chatreport", RegistryTTL: 5 * time.Second, CacheMiB: 128, ClaimLease: 10 * time.Second,
				ExportKeepAlive: 2 * time.Minute, SessionTextMaxBytes: 16 << 20},
		},
		HTTP: HTTP{Addr: "127.0.0.1:8080"},
		API:  API{TimeZone: "America/Sao_Paulo"},
		Auth: Auth{JWT: JWT{TenantClaim: "tenant", Leeway: 30 * time.Second}},
		Ingest: Ingest{
			BatchWait: 100 * time.Millisecond,
		},
		Log: Log{Level: "info", Format: "json"},
	}
}

// EnvAPIKeys is the environment variable with extra API keys:
// "tenant1=key1,tenant2=key2".
const EnvAPIKeys = "CHATREPORT_API_KEYS"

// EnvJWTSecret is the environment variable with the HS256 JWT secret.
const EnvJWTSecret = "CHATREPORT_JWT_HS256_SECRET"

// EnvLogRefKey is the environment variable with log.ref_key.
const EnvLogRefKey = "CHATREPORT_LOG_REF_KEY"

// Load reads the file at path (none when "") over the defaults, then the
// environment.
func Load(path string) (Config, error) {
	c := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			if strings.Contains(err.Error(), "field cache_size not found") {
				// Renamed when the key state's budget became bytes.
				return c, fmt.Errorf("config %s: %w (store.elasticsearch.cache_size, counted in events, was replaced by cache_mib, in MiB)", path, err)
			}
			return c, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := c.applyEnv(os.Getenv); err != nil {
		return c, err
	}
	for i, b := range c.Kafka.Brokers {
		c.Kafka.Brokers[i] = BrokerAddr(b)
	}
	return c, nil
}

// KafkaPort is the port kafka-go dials a broker given without one on.
const KafkaPort = "9092"

// BrokerAddr is b with Kafka's port when it names a host alone, as
// kafka-go's Dialer dials it ("If no port is specified or resolved, the
// default of 9092 will be used"), so that every dialer of the brokers (the
// readiness check dials them itself) reaches the same address.
func BrokerAddr(b string) string {
	if b == "" || strings.Contains(b, ":") {
		return b
	}
	return net.JoinHostPort(b, KafkaPort)
}

func (c *Config) applyEnv(getenv func(string) string) error {
	if v := getenv("CHATREPORT_ES_PASSWORD"); v != "" {
		c.Store.Elasticsearch.Password = Secret(v)
	}
	if v := getenv("CHATREPORT_ES_API_KEY"); v != "" {
		c.Store.Elasticsearch.APIKey = Secret(v)
	}
	if secret := getenv(EnvJWTSecret); secret != "" {
		c.Auth.JWT.HS256Secret = Secret(secret)
	}
	if key := getenv(EnvLogRefKey); key != "" {
		c.Log.RefKey = Secret(key)
	}
	v := getenv(EnvAPIKeys)
	if v == "" {
		return nil
	}
	for _, pair := range strings.Split(v, ",") {
		tenant, key, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || tenant == "" || key == "" {
			return fmt.Errorf("config: %s: expected tenant=key pairs separated by commas", EnvAPIKeys)
		}
		if c.Auth.APIKeys == nil {
			c.Auth.APIKeys = map[string]Secret{}
		}
		c.Auth.APIKeys[tenant] = Secret(key)
	}
	return nil
}

// validBroker accepts a broker as kafka-go dials it: host:port, or a host
// alone, which Load gives Kafka's port (BrokerAddr).
func validBroker(b string) error {
	if b == "" {
		return errors.New("empty")
	}
	if !strings.Contains(b, ":") {
		return nil
	}
	host, port, err := net.SplitHostPort(b)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Kafka.Brokers) == 0 {
		errs = append(errs, errors.New("kafka.brokers: at least one broker"))
	}
	for _, b := range c.Kafka.Brokers {
		if err := validBroker(b); err != nil {
			errs = append(errs, fmt.Errorf("kafka.brokers: %q: want host or host:port (%w)", b, err))
		}
	}
	switch c.Store.Kind {
	case StoreSQLite:
		if c.Store.SQLite.Dir == "" {
			errs = append(errs, errors.New("store.sqlite.dir: required"))
		}
	case StoreElasticsearch:
		if len(c.Store.Elasticsearch.URLs) == 0 {
			errs = append(errs, errors.New("store.elasticsearch.urls: at least one URL"))
		}
		if c.Store.Elasticsearch.RegistryTTL < 0 {
			errs = append(errs, errors.New("store.elasticsearch.registry_ttl: must not be negative"))
		}
		if c.Store.Elasticsearch.CacheMiB < 0 || c.Store.Elasticsearch.ClaimLease < 0 {
			errs = append(errs, errors.New("store.elasticsearch.cache_mib and claim_lease: must not be negative"))
		}
		// Elasticsearch refuses a keep-alive over search.max_keep_alive (24h
		// by default) with a 400: every export would fail.
		// https://www.elastic.co/guide/en/elasticsearch/reference/8.19/search-settings.html
		if k := c.Store.Elasticsearch.ExportKeepAlive; k != 0 && (k < time.Second || k > 24*time.Hour) {
			errs = append(errs, errors.New("store.elasticsearch.export_keep_alive: between 1s and 24h (the cluster's search.max_keep_alive by default)"))
		}
		if c.Store.Elasticsearch.SessionTextMaxBytes < 0 {
			errs = append(errs, errors.New("store.elasticsearch.session_text_max_bytes: must not be negative"))
		}
	default:
		errs = append(errs, fmt.Errorf("store.kind %q: must be %s or %s", c.Store.Kind, StoreSQLite, StoreElasticsearch))
	}
	if c.HTTP.Addr == "" {
		errs = append(errs, errors.New("http.addr: required"))
	} else if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		errs = append(errs, fmt.Errorf("http.addr %q: want host:port, e.g. 127.0.0.1:8080 or 0.0.0.0:8080 (%w)", c.HTTP.Addr, err))
	}
	if _, err := time.LoadLocation(c.API.TimeZone); err != nil {
		errs = append(errs, fmt.Errorf("api.time_zone: %w", err))
	}
	for tenant := range c.Auth.APIKeys {
		if !event.IsToken(tenant, 63, false) {
			errs = append(errs, fmt.Errorf("auth.api_keys: %q is not a tenant", tenant))
		}
	}
	for tenant, hashes := range c.Auth.APIKeyHashes {
		if !event.IsToken(tenant, 63, false) {
			errs = append(errs, fmt.Errorf("auth.api_key_hashes: %q is not a tenant", tenant))
		}
		for _, h := range hashes {
			if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
				errs = append(errs, fmt.Errorf("auth.api_key_hashes.%s: %q is not a SHA-256 hex digest", tenant, h))
			}
		}
	}
	if j := c.Auth.JWT; j.Enabled() {
		if (len(j.HS256Secret) > 0 || j.HS256SecretFile != "") && j.RS256PublicKeyFile != "" {
			errs = append(errs, errors.New("auth.jwt: give an HS256 secret or an RS256 public key, not both"))
		}
		if len(c.Auth.APIKeys) == 0 && len(c.Auth.APIKeyHashes) == 0 && c.API.CursorKey == "" {
			errs = append(errs, errors.New("api.cursor_key: required when JWTs are the only credentials (it is derived from API keys otherwise)"))
		}
	}
	if c.Ingest.BatchSize < 0 {
		errs = append(errs, errors.New("ingest.batch_size: at least 0 (0 is the store's default)"))
	}
	if c.Ingest.BatchWait <= 0 {
		errs = append(errs, errors.New("ingest.batch_wait: must be positive"))
	}
	if c.Ingest.Workers < 0 {
		errs = append(errs, errors.New("ingest.workers: at least 0 (0 is the store's default)"))
	}
	if c.Ingest.BatchesInFlight < 0 {
		errs = append(errs, fmt.Errorf("ingest.batches_in_flight: at least 0 (0 is the store's default: %d on SQLite, %d on Elasticsearch)", SQLiteInFlight, ElasticsearchInFlight))
	}
	// The levels the logger takes (zapcore.ParseLevel), so that
	// --check-config refuses what the command would refuse.
	if _, err := zapcore.ParseLevel(c.Log.Level); err != nil {
		errs = append(errs, fmt.Errorf("log.level %q: must be debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		errs = append(errs, fmt.Errorf("log.format %q: must be json or console", c.Log.Format))
	}
	// Never quoted: the key is a credential.
	if k := c.Log.RefKey; k != "" && len(k) < idref.MinKeyBytes {
		errs = append(errs, fmt.Errorf("log.ref_key: at least %d bytes (%d given), or empty for a random key per process", idref.MinKeyBytes, len(k)))
	}
	return errors.Join(errs...)
}

// KeyHashes returns every API key's SHA-256 hash with its tenant, in a stable
// order.
func (c *Config) KeyHashes() []TenantKeyHash {
	var out []TenantKeyHash
	for tenant, key := range c.Auth.APIKeys {
		out = append(out, TenantKeyHash{tenant, sha256.Sum256([]byte(key))})
	}
	for tenant, hashes := range c.Auth.APIKeyHashes {
		for _, h := range hashes {
			var sum [sha256.Size]byte
			hex.Decode(sum[:], []byte(h)) //nolint:errcheck // Validate checked it
			out = append(out, TenantKeyHash{tenant, sum})
		}
	}
	slices.SortFunc(out, func(a, b TenantKeyHash) int { return bytes.Compare(a.Hash[:], b.Hash[:]) })
	return out
}

// TenantKeyHash is one API key, hashed.
type TenantKeyHash struct {
	Tenant string
	Hash   [sha256.Size]byte
}

// CursorKeyBytes is the configured cursor key, or one derived from the API
// key hashes, so instances with the same keys share it without more setup.
func (c *Config) CursorKeyBytes() []byte {
	if c.API.CursorKey != "" {
		return []byte(c.API.CursorKey)
	}
	h := sha256.New()
	h.Write([]byte("chatreport cursor key\x00"))
	for _, k := range c.KeyHashes() {
		h.Write(k.Hash[:])
	}
	return h.Sum(nil)
}
