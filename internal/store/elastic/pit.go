package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/typedapi/core/search"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types"
	"go.uber.org/zap"
)

// pointInTime is a point in time an export reads through: a snapshot of
// the indices its alias named when it was opened.
// https://www.elastic.co/guide/en/elasticsearch/reference/8.17/point-in-time-api.html
// Each search through it answers the id to use next, which may differ from
// the one sent ("always use the most recently received ID"); the keeper
// searches it from a goroutine of its own while the export searches it
// too, which Elasticsearch allows (of the ids concurrent searches answer,
// any may be used, the latest preferably), hence the lock.
type pointInTime struct {
	mu sync.Mutex
	id string
}

// ref is the pit member of a search through p: the id and the keep-alive
// that search extends p's life by.
func (p *pointInTime) ref(keepAlive string) *types.PointInTimeReference {
	p.mu.Lock()
	defer p.mu.Unlock()
	return &types.PointInTimeReference{Id: p.id, KeepAlive: keepAlive}
}

// answered records the id a search through p answered.
func (p *pointInTime) answered(id string) {
	if id == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.id = id
}

// exportKeepAlive is Config.ExportKeepAlive as an Elasticsearch time value.
func (s *Store) exportKeepAlive() string {
	return strconv.FormatInt(s.cfg.ExportKeepAlive.Milliseconds(), 10) + "ms"
}

// openPointInTime opens a point in time on index for an export; nil when
// nothing is indexed yet.
func (s *Store) openPointInTime(ctx context.Context, index string) (*pointInTime, error) {
	var opened struct {
		ID string `json:"id"`
	}
	yes := true
	err := s.do(ctx, esapi.OpenPointInTimeRequest{
		Index: []string{index}, KeepAlive: s.exportKeepAlive(), IgnoreUnavailable: &yes,
	}, &opened)
	var re *ResponseError
	if errors.As(err, &re) && re.Type == "index_not_found_exception" {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open point in time: %w", err)
	}
	return &pointInTime{id: opened.ID}, nil
}

// closePointInTime closes p, on a context of its own: a cancelled export
// still frees its point in time early instead of holding it for its
// keep-alive.
func (s *Store) closePointInTime(ctx context.Context, p *pointInTime) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"id": p.ref("").Id})
	if err := s.do(cctx, esapi.ClosePointInTimeRequest{Body: bytes.NewReader(body)}, nil); err != nil {
		s.log.Warn("closing a point in time failed; it expires by itself")
	}
}

// pitSearch runs req through p (p's indices: the search names none),
// extending p's life by the export's keep-alive.
func (s *Store) pitSearch(ctx context.Context, p *pointInTime, req *search.Request) (*searchResponse, error) {
	req.Pit = p.ref(s.exportKeepAlive())
	res, err := s.search(ctx, "", req)
	if err != nil {
		return nil, err
	}
	p.answered(res.PitID)
	return res, nil
}

// keepPointsInTime renews pits every third of the keep-alive until ctx
// ends, so that they outlive an export that waits for its client longer
// than the keep-alive between two of its own searches: a point in time not
// searched for its keep-alive is freed, and the export's next search
// through it would fail with 404 search_context_missing_exception. A
// search with the pit's keep_alive extends its life from then ("The
// keep_alive parameter, which is passed to a open point in time request
// and search request, extends the time to live of the corresponding point
// in time",
// https://www.elastic.co/guide/en/elasticsearch/reference/8.17/point-in-time-api.html#point-in-time-keep-alive;
// esfake expires them the same way). The renewal matches everything and
// returns nothing (size 0, no total): no query Elasticsearch could rewrite
// to match_none and skip shards for, whose contexts would then not be
// touched. A renewal that fails is logged; the export's next search
// through that point in time reports it.
func (s *Store) keepPointsInTime(ctx context.Context, pits ...*pointInTime) {
	t := time.NewTicker(s.cfg.ExportKeepAlive / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range pits {
			zero := 0
			_, err := s.pitSearch(ctx, p, &search.Request{Size: &zero, TrackTotalHits: false})
			if err != nil && ctx.Err() == nil {
				s.log.Warn("renewing an export's point in time failed", zap.Error(err))
			}
		}
	}
}
