package store

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/store/elastic"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
	"github.com/chatreport/chatreport/internal/store/storetest"
)

// TestOpenElasticSessionTextMaxBytes: store.elasticsearch.session_text_max_bytes
// reaches every version's store: a message past it is rejected.
func TestOpenElasticSessionTextMaxBytes(t *testing.T) {
	f := esfake.New(t)
	c := config.Default().Store.Elasticsearch
	c.URLs, c.SessionTextMaxBytes = []string{f.URL()}, 10
	e, err := OpenElastic(c, nil, zap.NewNop())
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
