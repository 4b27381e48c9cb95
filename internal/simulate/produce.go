package simulate

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
)

// Config configures Run.
type Config struct {
	Brokers []string
	// Topics are the event topics, in order bot, handoff, agent (see TopicFor).
	Topics []string
	// Rate is conversations per second; 0 means as fast as possible.
	Rate float64
	// Live writes each event when its occurred_at comes on the wall clock,
	// as a live platform would (Rate is then ignored): for demos.
	Live bool
	Options
}

// maxTenantLen is the contract's limit on tenant tokens.
const maxTenantLen = 63

// Validate reports every problem of the config at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one host:port"))
	}
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New("topics: at least one topic"))
	}
	for i, t := range c.Topics {
		if t == "" {
			errs = append(errs, fmt.Errorf("topics[%d]: empty topic name", i))
		}
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		errs = append(errs, fmt.Errorf("rate %v: must be a finite number, 0 or more", c.Rate))
	}
	if c.Sessions < 0 {
		errs = append(errs, fmt.Errorf("sessions %d: must be 0 or more", c.Sessions))
	}
	if c.Spread < 0 {
		errs = append(errs, fmt.Errorf("spread %s: must be 0 or more", c.Spread))
	}
	for i, t := range c.Tenants {
		if !event.IsToken(t, maxTenantLen, false) {
			errs = append(errs, fmt.Errorf("tenants[%d] %q: must match [a-z0-9][a-z0-9_-]{0,62}", i, t))
		}
	}
	return errors.Join(errs...)
}

// Tuning of the writes. A WriteMessages call returns only when every partition
// batch it made was acknowledged, and a partition batch that is not full waits
// BatchTimeout; so calls carry thousands of messages, and partition batches are
// small enough that most of them fill and go out at once.
const (
	maxPending     = 4096 // messages per WriteMessages call
	partitionBatch = 256  // messages per produce request to one partition
	batchTimeout   = 5 * time.Millisecond
	progressEvery  = 10 * time.Second
)

// Run generates cfg.Sessions conversations and produces every event to its
// topic (TopicFor), keyed by RecommendedKey so that the murmur2 partitioner —
// Kafka's Java default — puts a contact's events in the same partition number
// of every topic. It returns the number of events the brokers acknowledged.
//
// Cancelling ctx stops Run. When that happens between writes (while pacing or
// building the next batch) it is a clean stop: Run returns the exact count and
// ctx.Err() itself, unwrapped, so callers can treat errors.Is(err,
// context.Canceled) as a normal end. When it interrupts a write, some messages
// of that write may have reached Kafka without being counted; Run then wraps
// the error to say so, and the count is a lower bound.
//
// Only counts are logged: never message text, names or phone numbers.
func Run(ctx context.Context, cfg Config, log *zap.Logger) (n int, err error) {
	if err := cfg.Validate(); err != nil {
		return 0, fmt.Errorf("simulate config: %w", err)
	}
	// A transport of our own, not kafka.DefaultTransport, so that Run leaves
	// no connection or goroutine behind when it returns.
	transport := &kafka.Transport{}
	w := &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Transport:    transport,
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    partitionBatch,
		BatchTimeout: batchTimeout,
	}
	defer func() {
		// Writes are synchronous, so Close has nothing left to flush.
		if cerr := w.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("simulate: close writer: %w", cerr)
		}
		transport.CloseIdleConnections()
	}()
	p := &producer{w: w, topics: cfg.Topics, log: log, msgs: make([]kafka.Message, 0, maxPending+64)}
	log.Info("simulate: producing",
		zap.Int("conversations", cfg.Sessions),
		zap.Float64("rate", cfg.Rate),
		zap.Strings("topics", cfg.Topics),
		zap.Int("tenants", max(len(cfg.Tenants), 1)))
	began := time.Now()
	if cfg.Live {
		err = p.live(ctx, NewGenerator(cfg.Options), time.Now)
	} else {
		err = p.run(ctx, NewGenerator(cfg.Options), cfg.Rate, began)
	}
	elapsed := time.Since(began)
	if err == nil {
		log.Info("simulate: done",
			zap.Int("conversations", p.convs),
			zap.Int("events", p.written),
			zap.Duration("elapsed", elapsed),
			zap.Float64("events_per_second", float64(p.written)/max(elapsed.Seconds(), 1e-9)))
	}
	return p.written, err
}

type producer struct {
	w      *kafka.Writer
	topics []string
	log    *zap.Logger

	msgs     []kafka.Message // generated, not yet written
	convs    int             // conversations generated
	written  int             // events acknowledged
	lastLog  time.Time
	lastConv int
}

func (p *producer) run(ctx context.Context, g *Generator, rate float64, began time.Time) error {
	p.lastLog = began
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		evs, ok := g.Next()
		if !ok {
			return p.flush(ctx)
		}
		if rate > 0 {
			// Conversation k is due k/rate seconds after the start. Waiting
			// for that deadline, rather than ticking once per conversation,
			// keeps the rate exact at thousands per second; whatever is
			// pending goes out before the wait so nothing lingers.
			due := began.Add(time.Duration(float64(p.convs) / rate * float64(time.Second)))
			if time.Until(due) > 0 {
				if err := p.flush(ctx); err != nil {
					return err
				}
				if err := sleep(ctx, time.Until(due)); err != nil {
					return err
				}
			}
		}
		p.convs++
		for i := range evs {
			if err := p.add(&evs[i]); err != nil {
				return err
			}
		}
		if len(p.msgs) >= maxPending {
			if err := p.flush(ctx); err != nil {
				return err
			}
		}
	}
}

// live writes every event when its time comes: conversations are generated
// in start order a little ahead, their events wait in a queue ordered by
// occurred_at.
func (p *producer) live(ctx context.Context, g *Generator, now func() time.Time) error {
	const ahead = time.Minute
	p.lastLog = now()
	var queue eventQueue
	var next []event.Event // the next conversation, not yet due
	more := true
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		for more && (next == nil || next[0].OccurredAt.Before(now().Add(ahead))) {
			if next != nil {
				for i := range next {
					heap.Push(&queue, next[i])
				}
				p.convs++
			}
			next, more = g.Next()
			if !more {
				next = nil
			}
		}
		for queue.Len() > 0 && !queue[0].OccurredAt.After(now()) {
			e := heap.Pop(&queue).(event.Event)
			if err := p.add(&e); err != nil {
				return err
			}
		}
		if err := p.flush(ctx); err != nil {
			return err
		}
		if queue.Len() == 0 && !more {
			return nil
		}
		wait := time.Second
		if queue.Len() > 0 {
			wait = min(wait, time.Until(queue[0].OccurredAt))
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// eventQueue is a min-heap of events by (occurred_at, event_id).
type eventQueue []event.Event

func (q eventQueue) Len() int           { return len(q) }
func (q eventQueue) Less(i, j int) bool { return q[i].Before(&q[j]) }
func (q eventQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)        { *q = append(*q, x.(event.Event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

func (p *producer) add(e *event.Event) error {
	value, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("simulate: encode event: %w", err)
	}
	key := make([]byte, 0, len(e.Tenant)+len(e.Channel)+len(e.Contact.ID)+2)
	key = append(append(append(append(append(key, e.Tenant...), '/'), e.Channel...), '/'), e.Contact.ID...)
	p.msgs = append(p.msgs, kafka.Message{Topic: TopicFor(*e, p.topics), Key: key, Value: value})
	return nil
}

// flush writes the pending messages and counts the acknowledged ones.
func (p *producer) flush(ctx context.Context) error {
	if len(p.msgs) == 0 {
		return nil
	}
	err := p.w.WriteMessages(ctx, p.msgs...)
	var werrs kafka.WriteErrors
	switch {
	case err == nil:
		p.written += len(p.msgs)
	case errors.As(err, &werrs):
		p.written += len(werrs) - werrs.Count()
		err = fmt.Errorf("simulate: %d of %d events not written: %w", werrs.Count(), len(p.msgs), err)
	case ctx.Err() != nil:
		err = fmt.Errorf("simulate: write of %d events interrupted, %d written before it: %w", len(p.msgs), p.written, err)
	default:
		err = fmt.Errorf("simulate: write %d events: %w", len(p.msgs), err)
	}
	clear(p.msgs) // drop references to the written values
	p.msgs = p.msgs[:0]
	if err != nil {
		return err
	}
	if now := time.Now(); now.Sub(p.lastLog) >= progressEvery {
		p.log.Info("simulate: progress",
			zap.Int("conversations", p.convs),
			zap.Int("events", p.written),
			zap.Float64("conversations_per_second", float64(p.convs-p.lastConv)/now.Sub(p.lastLog).Seconds()))
		p.lastLog, p.lastConv = now, p.convs
	}
	return nil
}

// sleep waits for d or until ctx ends, returning ctx.Err() unwrapped then.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
