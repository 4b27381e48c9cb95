package elastic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
	"github.com/chatreport/chatreport/internal/store/storetest"
	"github.com/chatreport/chatreport/internal/versions"
)

func TestOpsRequestsGolden(t *testing.T) {
	n := names{prefix: "chatreport", version: "v1"}
	for name, body := range map[string]any{
		"aliases_swap_to_v2.json":        aliasSwap(n, "v2"),
		"forget_events.json":             map[string]any{"query": contactQueries("acme", "5511987654321", "session", []string{"s1", "s2"})[0]},
		"forget_sessions_no_events.json": map[string]any{"query": contactQueries("acme", "5511987654321", "session_id", nil)[0]},
	} {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, name, raw)
	}
	if n := len(contactQueries("acme", "c", "session", make([]string, 2*forgetChunk+1))); n != 3 {
		t.Errorf("%d queries for %d session ids, want 3", n, 2*forgetChunk+1)
	}
}

// aliasesOf returns the aliases of every index of f matching pattern.
func aliasesOf(f *esfake.Server, t *testing.T, pattern string) map[string][]string {
	t.Helper()
	s := fakeStore(t, f)
	got := map[string]struct {
		Aliases map[string]json.RawMessage `json:"aliases"`
	}{}
	if err := s.getOrMissing(t.Context(), esapi.IndicesGetAliasRequest{Index: []string{pattern}}, &got); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for ix, a := range got {
		for name := range a.Aliases {
			out[ix] = append(out[ix], name)
		}
		slices.Sort(out[ix])
	}
	return out
}

// TestVersionLifecycle: a version being built gets no read aliases, has its
// own replay progress, counts and documents; a swap moves the read aliases
// and the templates' aliases to it; abandon deletes what a version has and
// refuses the current one.
func TestVersionLifecycle(t *testing.T) {
	f := esfake.New(t)
	ctx := t.Context()
	v1 := fakeStore(t, f)
	reg := v1.Registry()
	if err := assembler(v1).Ingest(ctx, mariaEvents()); err != nil {
		t.Fatal(err)
	}
	v2 := fakeStore(t, f, func(c *Config) { c.Version = "v2" })
	for ix, as := range aliasesOf(f, t, "test-*-v2-*") {
		if len(as) != 1 || !strings.HasSuffix(as[0], "-v2") {
			t.Errorf("index %s of a version being built has aliases %v", ix, as)
		}
	}
	if _, err := reg.Register(ctx, "v2", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Register(ctx, "v2-fix", time.Now()); err == nil {
		t.Error("a version with '-' registered")
	}
	if st, err := v2.LoadReplayState(ctx); err != nil || st != nil {
		t.Fatalf("fresh replay state %q %v", st, err)
	}
	if err := v2.SaveReplayState(ctx, []byte(`{"next":{}}`)); err != nil {
		t.Fatal(err)
	}
	if st, err := v2.LoadReplayState(ctx); err != nil || string(st) != `{"next":{}}` {
		t.Fatalf("replay state %q %v", st, err)
	}
	if st, _ := v1.LoadReplayState(ctx); st != nil {
		t.Fatalf("v1 sees v2's replay state %q", st)
	}
	if err := assembler(v2).Ingest(ctx, mariaEvents()); err != nil {
		t.Fatal(err)
	}
	c1, err := v1.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c2, err := v2.Counts(ctx); err != nil || c1 != c2 || c1.Events != int64(len(mariaEvents())) || c1.Sessions != 1 {
		t.Fatalf("counts v1 %+v, v2 %+v %v", c1, c2, err)
	}
	docs := func(s *Store) (out []string) {
		if err := s.SessionDocs(ctx, func(tenant, id string, doc []byte) error {
			out = append(out, tenant+"/"+id+" "+string(doc))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if d1, d2 := docs(v1), docs(v2); len(d1) != 1 || !slices.Equal(d1, d2) {
		t.Fatalf("session documents differ:\n%v\n%v", d1, d2)
	}

	if _, err := reg.Swap(ctx, "v3"); err == nil {
		t.Fatal("swap to a version not being built accepted")
	}
	st, err := reg.Swap(ctx, "v2")
	if err != nil || st.Current != "v2" || len(st.Building) != 0 {
		t.Fatalf("swap: %+v %v", st, err)
	}
	for ix, as := range aliasesOf(f, t, "test-sessions-*,test-events-*") {
		read := slices.Contains(as, "test-sessions") || slices.Contains(as, "test-events")
		if read != strings.Contains(ix, "-v2-") {
			t.Errorf("after the swap index %s has aliases %v", ix, as)
		}
	}
	if _, err := reg.Swap(ctx, "v2"); err == nil {
		t.Fatal("a second swap to the current version accepted")
	}
	// A new month of v2 joins the read aliases, one of v1 does not.
	later := time.Now().AddDate(0, 2, 0)
	for _, s := range []*Store{v1, v2} {
		if err := s.do(ctx, esapi.IndicesCreateRequest{Index: s.names.sessionsIndex(later)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	months := aliasesOf(f, t, "test-sessions-*"+later.UTC().Format("2006.01"))
	if !slices.Contains(months[v2.names.sessionsIndex(later)], "test-sessions") || slices.Contains(months[v1.names.sessionsIndex(later)], "test-sessions") {
		t.Fatalf("new months after the swap: %v", months)
	}
	// The report reads v2 now: still Maria's session.
	if got := snapshot(t, v1); len(got) != 1 {
		t.Fatalf("report after the swap: %v", got)
	}

	if _, err := reg.Abandon(ctx, "v2"); err == nil {
		t.Fatal("abandoning the current version accepted")
	}
	v3 := fakeStore(t, f, func(c *Config) { c.Version = "v3" })
	if _, err := reg.Register(ctx, "v3", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := v3.SaveReplayState(ctx, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if vs, err := reg.Versions(ctx); err != nil || !slices.Equal(vs, []string{"v1", "v2", "v3"}) {
		t.Fatalf("versions %v %v", vs, err)
	}
	if st, err := reg.Abandon(ctx, "v3"); err != nil || len(st.Building) != 0 {
		t.Fatalf("abandon: %+v %v", st, err)
	}
	if left := f.Docs("test-*-v3*"); len(left) != 0 || len(aliasesOf(f, t, "test-*-v3*")) != 0 {
		t.Fatalf("abandoned version left %v", left)
	}
	if st, _ := v3.LoadReplayState(ctx); st != nil {
		t.Fatal("abandoned version left its replay state")
	}
	if _, err := reg.Abandon(ctx, "v3"); err == nil {
		t.Fatal("abandoning twice accepted")
	}
	if got := snapshot(t, v1); len(got) != 1 {
		t.Fatalf("report after abandon: %v", got)
	}
}

// TestForget: the contact's sessions, events and key documents go; another
// contact's documents stay byte for byte; a document changed meanwhile
// (a version conflict) is deleted by a further pass.
func TestForget(t *testing.T) {
	f := esfake.New(t)
	ctx := t.Context()
	s := fakeStore(t, f)
	other := storetest.B{Contact: "5511900000000", Name: "Outro"}
	batch := append(mariaEvents(),
		other.Msg("o1", 0, event.RoleCustomer, "oi"),
		ana.Msg("a1", time.Minute, event.RoleCustomer, "olá"))
	if err := assembler(s).Ingest(ctx, batch); err != nil {
		t.Fatal(err)
	}
	before := f.Docs("test-*-v1*")
	conflicted := map[string]bool{}
	f.ConflictHook = func(index, id string) bool {
		if strings.HasPrefix(index, "test-events-") && !conflicted[id] {
			conflicted[id] = true
			return true
		}
		return false
	}
	got, err := s.Forget(ctx, "acme", maria.Contact)
	if err != nil {
		t.Fatal(err)
	}
	if got.Sessions != 1 || got.Events != int64(len(mariaEvents())) || got.Keys != 1 {
		t.Fatalf("forgot %+v", got)
	}
	after := f.Docs("test-*-v1*")
	for id, doc := range before {
		raw, _ := json.Marshal(doc)
		mine := bytes.Contains(raw, []byte(maria.Contact)) || bytes.Contains(raw, []byte(maria.SessionID))
		now, kept := after[id]
		nowRaw, _ := json.Marshal(now)
		switch {
		case mine && kept:
			t.Errorf("%s remains: %s", id, raw)
		case !mine && !kept:
			t.Errorf("%s of another contact was removed", id)
		case !mine && !bytes.Equal(raw, nowRaw):
			t.Errorf("%s of another contact changed", id)
		}
	}
	if again, err := s.Forget(ctx, "acme", maria.Contact); err != nil || again != (Forgotten{}) {
		t.Fatalf("second forget %+v %v", again, err)
	}
}

// TestAbandonFencesWriters: a writer of v3 ingests without pause while an
// operator abandons v3. Its fence sees v3 abandoned before the indices are
// deleted, so it stops with ErrNotWritable and no index of v3 comes back.
func TestAbandonFencesWriters(t *testing.T) {
	margin := fenceMargin
	fenceMargin = 20 * time.Millisecond
	t.Cleanup(func() { fenceMargin = margin })
	ctx := t.Context()
	f := esfake.New(t)
	ttl := func(c *Config) { c.RegistryTTL = 50 * time.Millisecond }
	reg := fakeStore(t, f, ttl).Registry() // the ingester's, cached
	w := fakeStore(t, f, ttl, func(c *Config) { c.Version = "v3"; c.Fence = versions.Fence(reg, "v3") })
	if _, err := reg.Register(ctx, "v3", time.Now()); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() {
		c := storetest.B{Contact: "5511900000001"}
		for i := 0; ; i++ {
			e := c.Msg(fmt.Sprintf("w%d", i), time.Duration(i)*time.Minute, event.RoleCustomer, "oi")
			if err := assembler(w).Ingest(ctx, []event.Event{e}); err != nil {
				stopped <- err
				return
			}
		}
	}()
	for len(f.Docs("test-events-v3-*")) < 5 {
		select {
		case err := <-stopped:
			t.Fatalf("the writer stopped before the abandon: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	operator := fakeStore(t, f, ttl).Registry()
	if _, err := operator.Abandon(ctx, "v3"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-stopped:
		if !errors.Is(err, versions.ErrNotWritable) {
			t.Fatalf("the writer stopped with %v, want ErrNotWritable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the writer of the abandoned version is still writing")
	}
	if left, err := w.catIndices(ctx, w.names.indexPatterns()); err != nil || len(left) != 0 {
		t.Fatalf("indices of the abandoned version: %v %v", left, err)
	}
}

// TestRegistryKeepsRetiredAndAbandoned: the registry records which version a
// swap retired and which was abandoned, and when, also in a versions index
// created before it kept them (its strict mapping lacked the fields, and the
// registry's writes failed); a swap back to the retired version is refused.
func TestRegistryKeepsRetiredAndAbandoned(t *testing.T) {
	f := esfake.New(t)
	ctx := t.Context()
	body, err := templateFiles.ReadFile(versionsDir)
	if err != nil {
		t.Fatal(err)
	}
	var old map[string]any
	if err := json.Unmarshal(body, &old); err != nil {
		t.Fatal(err)
	}
	props := old["mappings"].(map[string]any)["properties"].(map[string]any)
	delete(props, "retired")
	delete(props, "abandoned")
	oldBody, _ := json.Marshal(old)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, f.URL()+"/test-versions", bytes.NewReader(oldBody))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("create the versions index of an earlier layout: HTTP %d", res.StatusCode)
	}

	reg := fakeStore(t, f).Registry()
	for _, v := range []string{"v2", "v3"} {
		fakeStore(t, f, func(c *Config) { c.Version = v })
		if _, err := reg.Register(ctx, v, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reg.Swap(ctx, "v2"); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Abandon(ctx, "v3"); err != nil {
		t.Fatal(err)
	}
	st, err := fakeStore(t, f).Registry().State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for v, want := range map[string]string{"v1": "old, current until ", "v2": "current", "v3": "abandoned at "} {
		if got := st.Role(v); !strings.HasPrefix(got, want) {
			t.Errorf("version %s: %q, want %q", v, got, want)
		}
	}
	if _, err := reg.Swap(ctx, "v1"); err == nil || !strings.Contains(err.Error(), "was current until") {
		t.Errorf("a swap back to the retired v1: %v", err)
	}
}
