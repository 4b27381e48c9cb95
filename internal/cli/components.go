package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"gopkg.in/yaml.v3"

	"github.com/chatreport/chatreport/internal/api"
	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/health"
	"github.com/chatreport/chatreport/internal/idref"
	"github.com/chatreport/chatreport/internal/ingest"
	"github.com/chatreport/chatreport/internal/metrics"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/store"
	"github.com/chatreport/chatreport/internal/store/elastic"
	"github.com/chatreport/chatreport/internal/web"
)

// loadConfig reads and validates the configuration, then runs require
// (when set: what the command needs beyond a valid configuration), so that
// --check-config refuses what the command would refuse; with --check-config
// it prints it and reports done=true.
func (g *globals) loadConfig(adjust func(*config.Config), require func(config.Config) error) (cfg config.Config, def *pipeline.Definition, done bool, err error) {
	cfg, err = config.Load(g.configPath)
	if err != nil {
		return cfg, nil, false, err
	}
	if adjust != nil {
		adjust(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, nil, false, fmt.Errorf("invalid configuration: %w", err)
	}
	if require != nil {
		if err := require(cfg); err != nil {
			return cfg, nil, false, err
		}
	}
	def, err = pipeline.Load(cfg.Pipeline)
	if err != nil {
		return cfg, nil, false, err
	}
	note, err := g.checkPrivileges(cfg)
	if err != nil {
		return cfg, nil, false, err
	}
	if g.checkConfig {
		// Credentials are config.Secret values, which marshal redacted.
		out, _ := yaml.Marshal(struct {
			Config   config.Config        `yaml:"config"`
			Pipeline *pipeline.Definition `yaml:"pipeline"`
		}{cfg, def})
		fmt.Fprintf(g.stdout, "# configuration is valid (secrets not shown)\n%s%s", out, note)
		return cfg, def, true, nil
	}
	return cfg, def, false, nil
}

// privilegesTimeout bounds the start-up check of privileges: an address
// that drops packets would otherwise hold a command for minutes.
const privilegesTimeout = 10 * time.Second

// checkPrivileges checks, for a command that uses Elasticsearch, that the
// cluster's user holds the privileges of the command's role, so that a
// command refuses to start rather than fail at its first request it may
// not make. With --check-config a cluster that does not answer is not an
// error (the configuration can be checked where the cluster is out of
// reach): note says so, as a comment of the printed configuration.
func (g *globals) checkPrivileges(cfg config.Config) (note string, err error) {
	if g.esRole == "" || cfg.Store.Kind != config.StoreElasticsearch {
		return "", nil
	}
	log, err := newLogger(cfg.Log, g.stderr)
	if err != nil {
		return "", err
	}
	ctx := g.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, privilegesTimeout)
	defer cancel()
	err = store.CheckElasticPrivileges(ctx, cfg.Store.Elasticsearch, g.esRole, log)
	if errors.Is(err, elastic.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		// A cluster out of reach is not a reason to refuse: the command
		// does what it did before the check (serve starts unready and
		// waits for the cluster; a command that needs it fails at its
		// first request), and a missing privilege still refuses.
		if g.checkConfig {
			return fmt.Sprintf("# Elasticsearch did not answer: the privileges of the %s role were not checked (%v)\n", g.esRole, err), nil
		}
		log.Warn("privileges not checked: Elasticsearch did not answer", zap.String("role", string(g.esRole)), zap.Error(err))
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if g.checkConfig {
		return fmt.Sprintf("# Elasticsearch privileges of the %s role: granted, or security disabled\n", g.esRole), nil
	}
	return "", nil
}

// start loads the configuration (see loadConfig for require) and makes the
// logger: the prologue of the commands that run something. done is set after
// --check-config.
func (g *globals) start(require func(config.Config) error) (cfg config.Config, def *pipeline.Definition, log *zap.Logger, done bool, err error) {
	cfg, def, done, err = g.loadConfig(nil, require)
	if err != nil || done {
		return cfg, def, nil, done, err
	}
	log, err = newLogger(cfg.Log, g.stderr)
	return cfg, def, log, false, err
}

func newLogger(c config.Log, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if c.Format == "console" {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	// Locked: the kafka-go readers, the ingester's concurrent writes and
	// the HTTP handlers log from many goroutines, and w may be any writer.
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)), nil
}

// refsField says in a command's first log line how it names ids
// (log.ref_key): keyed references match across processes that share the
// key; without one each process draws its own, which nothing else can
// reproduce (docs/operations.md, "References in logs").
func refsField(k idref.Key) zap.Field {
	if k.Configured() {
		return zap.String("references", "keyed by log.ref_key")
	}
	return zap.String("references", "per process: log.ref_key is not set")
}

// newIngester consumes into sink.
func newIngester(cfg config.Config, def *pipeline.Definition, brokers []string, sink assemblingSink, reg *metrics.Registry, log *zap.Logger) (*ingest.Ingester, error) {
	reg.WatchAssembler(sink)
	return ingest.New(ingest.Config{
		Brokers:    brokers,
		Topics:     def.Topics.Events,
		Group:      def.ConsumerGroup,
		DeadLetter: def.Topics.DeadLetter,
		BatchSize:  cfg.Ingest.BatchSizeOf(cfg.Store.Kind),
		BatchWait:  cfg.Ingest.BatchWait,
		Workers:    cfg.Ingest.WorkersOf(cfg.Store.Kind),
		InFlight:   cfg.Ingest.InFlightOf(cfg.Store.Kind),
		Observer:   reg,
	}, sink, log.Named("ingest"))
}

// handler is the HTTP surface of a process: metrics, health and, when given,
// the report API with the report screen in the report time zone.
func handler(reg *metrics.Registry, checks health.Checks, apiHandler http.Handler, timeZone string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", reg.Handler())
	health.Register(mux, checks)
	if apiHandler != nil {
		mux.Handle("/api/", apiHandler)
		mux.Handle("/", web.HandlerIn(timeZone))
	}
	return mux
}

func newAPI(cfg config.Config, store api.Store, reg *metrics.Registry, log *zap.Logger) (*api.Server, error) {
	keys, jwt, err := apiCredentials(cfg)
	if err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(cfg.API.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("api.time_zone: %w", err)
	}
	return api.New(api.Config{
		Keys: keys, JWT: jwt, Location: loc, CursorKey: cfg.CursorKeyBytes(), Observe: reg.ObserveRequest,
	}, store, log.Named("api"))
}

// apiCredentials are the API keys and JWT keys the report API accepts; an
// error when there are none (api.New refuses that too; this says how to
// give one), a JWT key file cannot be read, or api.New would refuse the
// JWT keys (a secret too short, a public key that does not parse).
func apiCredentials(cfg config.Config) (*api.Keys, *api.JWTConfig, error) {
	keys := api.NewKeys()
	for _, k := range cfg.KeyHashes() {
		if err := keys.Add(k.Tenant, k.Hash); err != nil {
			return nil, nil, err
		}
	}
	jwt, err := jwtConfig(cfg.Auth.JWT)
	if err != nil {
		return nil, nil, err
	}
	if jwt != nil {
		if err := jwt.Check(); err != nil {
			return nil, nil, err
		}
	}
	if keys.Len() == 0 && jwt == nil {
		return nil, nil, fmt.Errorf("the report API has no credentials to accept: set auth.api_keys or auth.api_key_hashes in the configuration, %s=tenant=key in the environment, or auth.jwt (chatreport up --demo makes a demo key)", config.EnvAPIKeys)
	}
	return keys, jwt, nil
}

// servesAPI is the requirement (loadConfig) of the commands that serve the
// report API: credentials it can accept.
func servesAPI(cfg config.Config) error {
	_, _, err := apiCredentials(cfg)
	return err
}

// jwtConfig reads the JWT keys the configuration names; nil when JWTs are off.
func jwtConfig(j config.JWT) (*api.JWTConfig, error) {
	if !j.Enabled() {
		return nil, nil
	}
	out := &api.JWTConfig{HS256Secret: []byte(j.HS256Secret), TenantClaim: j.TenantClaim, Issuer: j.Issuer, Audience: j.Audience, Leeway: j.Leeway}
	if j.HS256SecretFile != "" {
		secret, err := os.ReadFile(j.HS256SecretFile)
		if err != nil {
			return nil, fmt.Errorf("auth.jwt.hs256_secret_file: %w", err)
		}
		out.HS256Secret = bytes.TrimSpace(secret)
	}
	if j.RS256PublicKeyFile != "" {
		pem, err := os.ReadFile(j.RS256PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("auth.jwt.rs256_public_key_file: %w", err)
		}
		out.RS256PublicKeyPEM = pem
	}
	return out, nil
}

// serveHTTP serves h on ln until ctx ends, then shuts down gracefully. The
// request limits are the API's, and what Go's server refuses on its own is
// answered as a problem document (api.ProblemListener).
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := api.NewHTTPServer(h)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(api.ProblemListener(ln)) }()
	select {
	case err := <-done:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http: %w", err)
	}
	return nil
}
