// Package broker runs an embedded, in-memory Kafka broker that speaks the
// Kafka wire protocol over TCP, so the service and its tests can run without
// an external cluster. It wraps franz-go's kfake with a single node.
package broker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Config says where the broker listens and which topics exist from the start.
type Config struct {
	// Addr is the host:port to listen on, e.g. "127.0.0.1:9092". Port 0
	// picks a free port; Broker.Addr reports the one chosen.
	Addr string
	// Topics are created at start. None is fine: clients can still create
	// topics with CreateTopics.
	Topics []string
	// Partitions is the partition count of every topic in Topics.
	Partitions int
}

// maxTopicNameLen is Kafka's limit on topic name length.
const maxTopicNameLen = 249

// Validate reports a config the broker cannot start with.
func (c Config) Validate() error {
	if c.Addr == "" {
		return errors.New("addr: must be host:port")
	}
	_, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("addr %q: %w", c.Addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("addr %q: port must be a number from 0 to 65535", c.Addr)
	}
	if c.Partitions < 1 || c.Partitions > math.MaxInt32 {
		return fmt.Errorf("partitions %d: must be from 1 to %d", c.Partitions, math.MaxInt32)
	}
	for i, t := range c.Topics {
		if err := validateTopic(t); err != nil {
			return fmt.Errorf("topics[%d]: %w", i, err)
		}
		if slices.Contains(c.Topics[:i], t) {
			return fmt.Errorf("topics[%d] %q: listed twice", i, t)
		}
	}
	return nil
}

// validateTopic applies Kafka's own topic name rules, so a name the broker
// accepts here is one a real cluster would accept too.
func validateTopic(t string) error {
	switch {
	case t == "":
		return errors.New("topic name is empty")
	case t == "." || t == "..":
		return fmt.Errorf("topic name %q is reserved", t)
	case len(t) > maxTopicNameLen:
		return fmt.Errorf("topic name %q: longer than %d characters", t, maxTopicNameLen)
	}
	for _, r := range t {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '.' || r == '_' || r == '-'
		if !ok {
			return fmt.Errorf("topic name %q: only ASCII letters, digits, '.', '_' and '-' are allowed", t)
		}
	}
	return nil
}

// Broker is a running single-node Kafka cluster.
type Broker struct {
	cluster   *kfake.Cluster
	addr      string
	log       *zap.Logger
	closeOnce sync.Once
}

// Start listens on cfg.Addr and serves Kafka requests until Close. ctx bounds
// only the start itself, as with net.ListenConfig.Listen: cancelling it later
// does not stop the broker.
func Start(ctx context.Context, cfg Config, log *zap.Logger) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("broker config: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start broker: %w", err)
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("start broker: %w", err)
	}
	advAddr, err := advertisedAddr(ln.Addr())
	if err != nil {
		_ = ln.Close() // the error that matters is the one we return
		return nil, fmt.Errorf("start broker: %w", err)
	}
	adv := advertisedListener{Listener: ln, addr: advAddr}

	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		// kfake always asks to listen on 127.0.0.1; we hand it the
		// listener bound above so the configured host is honoured.
		kfake.ListenFn(handOver(adv)),
		kfake.WithLogger(kfakeLogger{log: log.WithOptions(zap.AddCallerSkip(1))}),
	}
	if len(cfg.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(cfg.Partitions), cfg.Topics...))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		// kfake closes the listener itself if it got that far; a
		// second close only returns an error we have no use for.
		_ = ln.Close()
		return nil, fmt.Errorf("start broker: %w", err)
	}

	b := &Broker{
		cluster: cluster,
		addr:    adv.addr.String(),
		log:     log.With(zap.String("addr", adv.addr.String())),
	}
	b.log.Info("kafka broker listening",
		zap.String("bound", ln.Addr().String()),
		zap.Strings("topics", cfg.Topics),
		zap.Int("partitions", cfg.Partitions))
	return b, nil
}

// Addr is the host:port clients should dial. It is also the address the
// broker advertises in metadata, so clients that bootstrap from it reconnect
// to the same place.
func (b *Broker) Addr() string { return b.addr }

// Cluster is the kfake cluster behind the broker, for tests that make it
// fail requests on purpose (kfake.Cluster.Fault) or change how it answers.
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// Close stops listening and drops all data. Open client connections are
// closed shortly after it returns. It is safe to call more than once.
func (b *Broker) Close() {
	b.closeOnce.Do(func() {
		b.cluster.Close()
		b.log.Info("kafka broker stopped")
	})
}

// handOver returns a kfake.ListenFn that hands out ln once. kfake calls it once
// per broker and we run one, so a second call means kfake changed under us.
func handOver(ln net.Listener) func(network, address string) (net.Listener, error) {
	var mu sync.Mutex
	given := false
	return func(string, string) (net.Listener, error) {
		mu.Lock()
		defer mu.Unlock()
		if given {
			return nil, errors.New("broker: kfake asked for a second listener")
		}
		given = true
		return ln, nil
	}
}

// advertisedListener reports addr instead of the bound address. kfake puts
// the listener's address into Metadata and FindCoordinator responses, and a
// client told to connect to 0.0.0.0 or :: may not reach us.
type advertisedListener struct {
	net.Listener
	addr *net.TCPAddr
}

func (l advertisedListener) Addr() net.Addr { return l.addr }

// advertisedAddr is the bound address with a wildcard host replaced by the
// IPv4 loopback. Go's wildcard "tcp" listeners are dual-stack, so the IPv4
// loopback reaches them even when bound to ::, and librdkafka copes with it
// better than a bare IPv6 host.
func advertisedAddr(bound net.Addr) (*net.TCPAddr, error) {
	tcp, ok := bound.(*net.TCPAddr)
	if !ok {
		return nil, fmt.Errorf("listener address %v is not TCP", bound)
	}
	adv := *tcp
	if adv.IP == nil || adv.IP.IsUnspecified() {
		adv.IP = net.IPv4(127, 0, 0, 1)
		adv.Zone = ""
	}
	return &adv, nil
}

// kfakeLogger sends kfake's logs to zap. kfake logs every group join and
// failed request at its info level, which is debugging detail for us, so
// only its warnings and errors keep their level.
type kfakeLogger struct {
	log *zap.Logger
}

func (l kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	lvl := zapcore.DebugLevel
	switch level {
	case kfake.LogLevelError:
		lvl = zapcore.ErrorLevel
	case kfake.LogLevelWarn:
		lvl = zapcore.WarnLevel
	}
	if !l.log.Level().Enabled(lvl) {
		return
	}
	l.log.Log(lvl, fmt.Sprintf(format, args...))
}
