package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// progress is the saved state of a replay.
type progress struct {
	// Next is the next offset to read, per "topic/partition".
	Next map[string]int64 `json:"next"`
	// Stop is where each partition ends: the live group's offsets, read
	// the grace after the target became current.
	Stop map[string]int64 `json:"stop,omitempty"`
	// ToReached lists partitions that passed Config.To.
	ToReached map[string]bool `json:"to_reached,omitempty"`
	// ToEnd is each partition's end once Config.To had passed.
	ToEnd    map[string]int64 `json:"to_end,omitempty"`
	Events   int64            `json:"events"`
	Invalid  int64            `json:"invalid"`
	Rejected int64            `json:"rejected,omitempty"`
}

// done reports whether partition k reached its end in what was stored.
func (r *run) done(k partitionKey) bool {
	key := k.String()
	return r.p.ended(key, r.p.Next[key], r.p.ToReached[key])
}

// doneReading reports whether partition k reaches its end once the batches
// in flight are stored: nothing more of it is read.
func (r *run) doneReading(k partitionKey) bool {
	key := k.String()
	return r.p.ended(key, r.plannedNext(key), r.p.ToReached[key] || r.planned.toReached[key])
}

// plannedNext is the next offset of a partition once the batches in flight
// are stored.
func (r *run) plannedNext(key string) int64 {
	return max(r.p.Next[key], r.planned.next[key])
}

// ended reports whether a partition whose next offset is next (and which
// passed To, when toReached) reached its end.
func (p *progress) ended(key string, next int64, toReached bool) bool {
	if toReached {
		return true
	}
	if end, ok := p.ToEnd[key]; ok && next >= end {
		return true
	}
	stop, ok := p.Stop[key]
	return ok && next >= stop
}

func (r *run) allDone() bool {
	for _, k := range r.parts {
		if !r.done(k) {
			return false
		}
	}
	return true
}

func (r *run) status() Status {
	st := Status{Phase: r.phase, Events: r.p.Events, Invalid: r.p.Invalid, Rejected: r.p.Rejected}
	if secs := time.Since(r.started).Seconds(); secs > 0 {
		st.Rate = float64(r.readEvt) / secs
	}
	if r.phase == Swapped {
		st.GraceLeft = max(r.swappedAt.Add(r.cfg.Grace).Sub(r.cfg.Now()), 0)
	}
	for _, k := range r.parts {
		key := k.String()
		ps := PartitionStatus{Topic: k.topic, Partition: k.partition, Next: r.p.Next[key], End: r.ends[k], Done: r.done(k)}
		if end, ok := r.p.ToEnd[key]; ok {
			ps.End = end
		}
		if stop, ok := r.p.Stop[key]; ok {
			ps.End = stop
		}
		if !ps.Done && ps.End > ps.Next {
			ps.Lag = ps.End - ps.Next
			st.Remaining += ps.Lag
		}
		st.Partitions = append(st.Partitions, ps)
	}
	if st.Rate > 0 {
		st.ETA = time.Duration(float64(st.Remaining) / st.Rate * float64(time.Second))
	}
	return st
}

func loadProgress(ctx context.Context, t Target) (*progress, error) {
	data, err := t.LoadReplayState(ctx)
	if err != nil {
		return nil, fmt.Errorf("replay: load progress: %w", err)
	}
	p := &progress{Next: map[string]int64{}}
	if len(data) > 0 {
		if err := json.Unmarshal(data, p); err != nil {
			return nil, fmt.Errorf("replay: saved progress is not readable: %w", err)
		}
		if p.Next == nil {
			p.Next = map[string]int64{}
		}
	}
	return p, nil
}

// errSave marks a failed save of the progress: the progress the target
// holds is behind what was stored (see run.stop).
var errSave = errors.New("replay: save progress")

// save saves r's progress, even when ctx ended meanwhile: what was stored,
// and the ends read, are saved, and an interrupted replay resumes after
// them.
func (r *run) save(ctx context.Context) error {
	save, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return saveProgress(save, r.target, r.p)
}

func saveProgress(ctx context.Context, t Target, p *progress) error {
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if err := t.SaveReplayState(ctx, data); err != nil {
		return fmt.Errorf("%w: %w", errSave, err)
	}
	return nil
}
