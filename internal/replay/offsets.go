package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// fetchStops reads the live group's committed offsets: the replay ends there.
func (r *run) fetchStops(ctx context.Context) error {
	req := &kafka.OffsetFetchRequest{GroupID: r.cfg.LiveGroup, Topics: map[string][]int{}}
	for _, k := range r.parts {
		req.Topics[k.topic] = append(req.Topics[k.topic], k.partition)
	}
	resp, err := r.client.OffsetFetch(ctx, req)
	if err != nil {
		return fmt.Errorf("replay: read the live group's offsets: %w", err)
	}
	if resp.Error != nil {
		return fmt.Errorf("replay: read the live group's offsets: %w", resp.Error)
	}
	stop := map[string]int64{}
	for topic, ps := range resp.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return fmt.Errorf("replay: live offset of %s/%d: %w", topic, p.Partition, p.Error)
			}
			// No committed offset: the live group will read this partition
			// from its start, writing the target as it goes.
			stop[partitionKey{topic, p.Partition}.String()] = max(p.CommittedOffset, 0)
		}
	}
	for _, k := range r.parts {
		if _, ok := stop[k.String()]; !ok {
			return fmt.Errorf("replay: the live group's offsets lack %s", k)
		}
	}
	r.p.Stop = stop
	r.log.Info("replay: live offsets read; the replay ends there", zap.Any("stop", stop))
	return r.save(ctx)
}

// Check reports whether brokers answer and hold topics with partitions: a
// replay asks it before it registers its target or prepares its store, so
// that a wrong address or topic leaves nothing behind.
func Check(ctx context.Context, brokers, topics []string) error {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: checkTimeout, Transport: &kafka.Transport{}}
	defer client.Transport.(*kafka.Transport).CloseIdleConnections()
	_, err := partitions(ctx, client, topics)
	return err
}

// checkTimeout bounds Check's request: an address that drops packets
// would otherwise hold it until the context ends.
const checkTimeout = 10 * time.Second

func partitions(ctx context.Context, client *kafka.Client, topics []string) ([]partitionKey, error) {
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("replay: kafka at %s does not answer (kafka.brokers of the configuration, or --brokers): %w", client.Addr, err)
	}
	var out []partitionKey
	for _, t := range meta.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("replay: topic %s (the pipeline's topics.events): %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			out = append(out, partitionKey{t.Name, p.ID})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("replay: the topics have no partitions")
	}
	return out, nil
}

// startOffsets sets where each partition not started yet begins.
func startOffsets(ctx context.Context, client *kafka.Client, cfg Config, parts []partitionKey, p *progress) error {
	var todo []partitionKey
	for _, k := range parts {
		if _, ok := p.Next[k.String()]; !ok {
			todo = append(todo, k)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	first, err := listOffsets(ctx, client, todo, kafka.FirstOffsetOf)
	if err != nil {
		return err
	}
	for _, k := range todo {
		p.Next[k.String()] = first[k].FirstOffset
	}
	if cfg.From.IsZero() {
		return nil
	}
	at, err := listOffsets(ctx, client, todo, func(partition int) kafka.OffsetRequest {
		return kafka.TimeOffsetOf(partition, cfg.From)
	})
	if err != nil {
		return err
	}
	last, err := listOffsets(ctx, client, todo, kafka.LastOffsetOf)
	if err != nil {
		return err
	}
	for _, k := range todo {
		off := last[k].LastOffset // nothing at or after From: start at the end
		for o := range at[k].Offsets {
			if o >= 0 {
				off = o
			}
		}
		p.Next[k.String()] = off
	}
	return nil
}

// listOffsets asks one kind of offset for every partition (one kind per
// request: brokers refuse a partition listed twice).
func listOffsets(ctx context.Context, client *kafka.Client, parts []partitionKey, kind func(partition int) kafka.OffsetRequest) (map[partitionKey]kafka.PartitionOffsets, error) {
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, k := range parts {
		req.Topics[k.topic] = append(req.Topics[k.topic], kind(k.partition))
	}
	resp, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("replay: list offsets: %w", err)
	}
	out := map[partitionKey]kafka.PartitionOffsets{}
	for topic, ps := range resp.Topics {
		for _, po := range ps {
			if po.Error != nil {
				return nil, fmt.Errorf("replay: offsets of %s/%d: %w", topic, po.Partition, po.Error)
			}
			out[partitionKey{topic, po.Partition}] = po
		}
	}
	return out, nil
}

func endOffsets(ctx context.Context, client *kafka.Client, parts []partitionKey) (map[partitionKey]int64, error) {
	last, err := listOffsets(ctx, client, parts, kafka.LastOffsetOf)
	if err != nil {
		return nil, err
	}
	out := make(map[partitionKey]int64, len(last))
	for k, po := range last {
		out[k] = po.LastOffset
	}
	return out, nil
}
