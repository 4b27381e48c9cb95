package elastic

import (
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"

	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/store/storetest"
)

// TestConformance runs the suite every store passes against a real cluster:
// ES_URL=http://127.0.0.1:9200 go test ./internal/store/elastic/ -run Conformance
// Each scenario gets its own index prefix, removed afterwards.
func TestConformance(t *testing.T) {
	url := os.Getenv("ES_URL")
	if url == "" {
		t.Skip("ES_URL is not set: the conformance suite needs an Elasticsearch 8 cluster " +
			"(e.g. docker compose up elasticsearch; ES_URL=http://127.0.0.1:9200)")
	}
	storetest.Run(t, func(t *testing.T) storetest.Store {
		var suffix [4]byte
		rand.Read(suffix[:])
		s, err := New(Config{
			Addresses:   strings.Split(url, ","),
			Username:    os.Getenv("ES_USERNAME"),
			Password:    os.Getenv("ES_PASSWORD"),
			IndexPrefix: "chatreport-test-" + hex.EncodeToString(suffix[:]),
		}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Init(ctx); err != nil {
			t.Fatalf("init: %v", err)
		}
		t.Cleanup(func() { drop(t, s); s.Close() })
		return s
	})
}

// TestConformanceFake runs the same suite against the in-memory fake: the
// store's logic (write path, query composition, paging, export, facets)
// against the fake's model of Elasticsearch.
func TestConformanceFake(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return fakeStore(t, esfake.New(t))
	})
}

// drop deletes what Init and the writes created, by name: clusters refuse
// wildcard deletes by default (action.destructive_requires_name).
func drop(t *testing.T, s *Store) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := s.Status(ctx)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	var indices []string
	for _, ix := range st.Indices {
		indices = append(indices, ix.Name)
	}
	if err := s.getOrMissing(ctx, esapi.IndicesDeleteRequest{Index: []string{s.names.versionsIndex()}}, nil); err != nil {
		t.Errorf("cleanup: delete the versions index: %v", err)
	}
	if len(indices) > 0 {
		if err := s.do(ctx, esapi.IndicesDeleteRequest{Index: indices}, nil); err != nil {
			t.Errorf("cleanup: delete indices: %v", err)
		}
	}
	for _, tmpl := range st.Templates {
		var req esapi.Request = esapi.ClusterDeleteComponentTemplateRequest{Name: tmpl.Name}
		if tmpl.Kind == "index" {
			req = esapi.IndicesDeleteIndexTemplateRequest{Name: tmpl.Name}
		}
		if err := s.getOrMissing(ctx, req, nil); err != nil {
			t.Errorf("cleanup: delete template %s: %v", tmpl.Name, err)
		}
	}
}
