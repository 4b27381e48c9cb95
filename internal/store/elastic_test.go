package store

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/idref"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/store/elastic"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// TestOpenElasticExportKeepAlive: store.elasticsearch.export_keep_alive is
// the keep-alive of the export's points in time. The fake's clock moves 10
// minutes while the client reads the first page: past the default 2m, so
// the second page is read only if the configured hour reached the store.
func TestOpenElasticExportKeepAlive(t *testing.T) {
	var (
		mu  sync.Mutex
		now = time.Now()
	)
	f := esfake.New(t, esfake.WithClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now }))
	e, err := OpenElastic(config.Elasticsearch{URLs: []string{f.URL()}, IndexPrefix: "it", ExportKeepAlive: time.Hour}, idref.Key{}, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Init(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	n := report.ExportChunk + 1
	storetest.Ingest(t, e.Base, storetest.ManySessions(n)...)
	got := 0
	err = storetest.ExportDetails(t.Context(), e.Base, storetest.ExportFilter, func(report.Detail) error {
		if got == 0 {
			mu.Lock()
			now = now.Add(10 * time.Minute)
			mu.Unlock()
		}
		got++
		return nil
	})
	if err != nil || got != n {
		t.Fatalf("export: %v after %d sessions, want %d", err, got, n)
	}
}

// TestOpenElasticSessionTextMaxBytes: store.elasticsearch.session_text_max_bytes
// reaches every version's store: a message past it is rejected.
func TestOpenElasticSessionTextMaxBytes(t *testing.T) {
	f := esfake.New(t)
	c := config.Default().Store.Elasticsearch
	c.URLs, c.SessionTextMaxBytes = []string{f.URL()}, 10
	e, err := OpenElastic(c, idref.Key{}, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Init(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	b := storetest.B{Contact: "5511900000001"}
	err = NewSink(e.Set, pipeline.MustDefault()).Ingest(t.Context(), []event.Event{
		b.Msg("fits", 0, event.RoleCustomer, "oi"), b.Msg("over", 1, event.RoleCustomer, strings.Repeat("x", 9))})
	var rej *elastic.RejectedError
	if !errors.As(err, &rej) || len(rej.Events) != 1 || rej.Events[0].Ref.EventID != "over" {
		t.Fatalf("err %v, want the second message rejected", err)
	}
}
