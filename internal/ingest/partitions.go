package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/segmentio/kafka-go"

	"github.com/chatreport/chatreport/internal/event"
)

// group is the messages of one partition number in a batch: every topic's
// partition of that number. Producers key events by contact with the murmur2
// partitioner, so a session key's events are all in one group (when keyed as
// the contract asks), and concurrent groups write different keys.
type group struct {
	partition int
	// msgs are the indices in the batch of the group's messages, in batch
	// order (offset order within each topic's partition).
	msgs []int
	// What decoded, the batch index of each event's message, and the dead
	// letters of what did not decode.
	events  []event.Event
	source  []int
	invalid []letterAt
	// rejected is what the store refused in the last successful attempt.
	rejected map[event.Ref]string
}

// prepared is a batch split by partition number, decoded, and its groups
// shared out among the sink calls that will store them.
type prepared struct {
	batch  []kafka.Message
	groups []*group
	calls  [][]*group
}

// groupByPartition splits a batch by partition number, in the order the
// numbers first appear.
func groupByPartition(batch []kafka.Message) []*group {
	var groups []*group
	byPartition := map[int]*group{}
	for i := range batch {
		g, ok := byPartition[batch[i].Partition]
		if !ok {
			g = &group{partition: batch[i].Partition}
			byPartition[g.partition] = g
			groups = append(groups, g)
		}
		g.msgs = append(g.msgs, i)
	}
	return groups
}

// prepare splits a batch by partition number, decodes the groups, at most
// Config.Workers at a time (a message that breaks the contract becomes a
// dead letter), and shares the groups out among the sink calls.
func (in *Ingester) prepare(batch []kafka.Message) prepared {
	groups := groupByPartition(batch)
	_ = in.parallel(len(groups), func(n int) error {
		g := groups[n]
		g.events = make([]event.Event, 0, len(g.msgs))
		g.source = make([]int, 0, len(g.msgs))
		for _, i := range g.msgs {
			e, err := event.Decode(batch[i].Value)
			if err != nil {
				g.invalid = append(g.invalid, newLetter(i, &batch[i], err.Error()))
				continue
			}
			g.events = append(g.events, e)
			g.source = append(g.source, i)
		}
		return nil
	})
	return prepared{batch: batch, groups: groups, calls: shareOut(groups, in.cfg.Workers)}
}

// shareOut shares whole groups out among at most n sink calls, balancing
// their events: the largest group first, each to the call with the fewest
// events so far. Groups without events need no call. More calls than
// workers would only queue, and each call costs the same whatever its size
// (a transaction, or a round of requests), so there are never more.
func shareOut(groups []*group, n int) [][]*group {
	var todo []*group
	for _, g := range groups {
		if len(g.events) > 0 {
			todo = append(todo, g)
		}
	}
	slices.SortStableFunc(todo, func(a, b *group) int { return cmp.Compare(len(b.events), len(a.events)) })
	calls := make([][]*group, min(n, len(todo)))
	sizes := make([]int, len(calls))
	for _, g := range todo {
		c := 0
		for i := range sizes {
			if sizes[i] < sizes[c] || (sizes[i] == sizes[c] && len(calls[i]) < len(calls[c])) {
				c = i
			}
		}
		calls[c] = append(calls[c], g)
		sizes[c] += len(g.events)
	}
	return calls
}

// parallel calls fn(0) to fn(n-1), at most Config.Workers at a time, and
// returns once every call has, with their errors.
func (in *Ingester) parallel(n int, fn func(i int) error) error {
	workers := min(in.cfg.Workers, n)
	errs := make([]error, n)
	if workers <= 1 {
		for i := range n {
			errs[i] = fn(i)
		}
		return errors.Join(errs...)
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				errs[i] = fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// storeAll makes the sink calls of a batch concurrently, each with the
// events of its groups (whole partition numbers), and returns once every
// call has, with the errors of those that failed. Events the sink rejects
// are noted in their group.
func (in *Ingester) storeAll(ctx context.Context, calls [][]*group) error {
	return in.parallel(len(calls), func(i int) error {
		groups := calls[i]
		events := groups[0].events
		if len(groups) > 1 {
			events = nil
			for _, g := range groups {
				events = append(events, g.events...)
			}
		}
		rejected, err := in.ingest(ctx, events)
		partitions := make([]int, len(groups))
		for j, g := range groups {
			g.rejected = rejected
			partitions[j] = g.partition
		}
		if err != nil {
			return fmt.Errorf("partitions %v: %w", partitions, err)
		}
		return nil
	})
}

// ingest hands events to the sink. A Rejecter error is success, with the
// events the sink refused for good.
func (in *Ingester) ingest(ctx context.Context, events []event.Event) (rejected map[event.Ref]string, err error) {
	err = in.sink.Ingest(ctx, events)
	var r Rejecter
	if errors.As(err, &r) {
		return r.Rejected(), nil
	}
	return nil, err
}
