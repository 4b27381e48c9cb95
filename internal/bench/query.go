package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"github.com/chatreport/chatreport/internal/api"
	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/heappeak"
	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/store/sqlite"
)

// Targets of the read path (docs/performance.md).
const (
	targetQueryP95    = 50  // ms
	targetQueryP99    = 100 // ms
	targetFullTextP95 = 200 // ms
	targetExportRate  = 20_000
	// flatExportGrowth is how much more peak heap the full export may use
	// than one a tenth of its size, for memory to count as flat.
	flatExportGrowth = 1.5
)

// queryWarmup requests of each kind are sent before the timed ones (one
// when it takes over a second). A kind whose requests took queryKindBudget
// in all stops early, after at least minQueryRuns timed ones, or after three
// when they took three times the budget.
const (
	queryWarmup     = 2
	queryKindBudget = 20 * time.Second
	minQueryRuns    = 10
)

// readScenarios seeds (or reuses) the report database and measures the
// report API on it: filters, full text and the export, all through HTTP
// (api.New behind an httptest server, a keep-alive client) against the
// SQLite store, as `chatreport serve` answers.
func (r *run) readScenarios(ctx context.Context) error {
	r.progress("report database: %d conversations over 30 days (seeded once through session.Assembler → SQLite, then reused from %s)",
		r.cfg.Sessions, r.dataDir)
	path, meta, cached, err := r.reportDB(ctx)
	if err != nil {
		return fmt.Errorf("seed the report database: %w", err)
	}
	if cached {
		r.progress("reusing %s (seeded %s)", path, meta.SeededAt)
	}
	// The store merges its full-text index after it opens, and with the
	// export packs its settled sessions' events, in the background, as
	// the ingester's store does in production (a database of an older
	// schema, or one just seeded, has neither done): the scenarios measure
	// what serve reads once the ingester's passes have run. The waits say
	// what the first passes cost (the whole process's CPU, which does
	// little else meanwhile). Only the export reads packs: without it the
	// store runs no packer, as serve's does not, so a query run does not
	// pack (and grow) its copy; a merge rewrites the index in place, and a
	// merged copy's pass on open is one slice per table.
	opts := []sqlite.Option{sqlite.WithMerger()}
	if r.cfg.runs(ScenarioExport) {
		opts = append(opts, sqlite.WithPacker())
	}
	opened, openedCPU := time.Now(), cpuTime()
	st, err := sqlite.Open(ctx, path, opts...)
	if err != nil {
		return err
	}
	defer st.Close()
	if r.cfg.runs(ScenarioExport) {
		if err := st.WaitPacked(ctx); err != nil {
			return err
		}
		r.res.add(Figure{Scenario: ScenarioExport, Name: "event packs: first pass after opening", Unit: "s", Value: time.Since(opened).Seconds(),
			Note: fmt.Sprintf("%.1f s of CPU (the whole process) until the store's packer had swept every session once (sqlite.Store.WaitPacked)", (cpuTime() - openedCPU).Seconds())})
	}
	if err := st.WaitMerged(ctx); err != nil {
		return err
	}
	if r.cfg.runs(ScenarioFullText) {
		r.res.add(Figure{Scenario: ScenarioFullText, Name: "full-text index: first merge pass after opening", Unit: "s", Value: time.Since(opened).Seconds(),
			Note: fmt.Sprintf("%.1f s of CPU (the whole process) until the store's merger had merged both indexes once (sqlite.Store.WaitMerged)", (cpuTime() - openedCPU).Seconds())})
	}
	from := reportStart.Truncate(24 * time.Hour)
	to := from.Add(report.MaxInterval)
	// Counted exactly: the export's span is sized from it.
	all, err := st.Search(ctx, report.Filter{Tenant: reportTenant, From: from, To: to}, report.Page{Limit: 1, TotalBound: 1 << 30})
	if err != nil {
		return err
	}
	meta.Sessions = all.Total
	note := fmt.Sprintf("%d sessions, %d events, %d messages (%d conversations) over 30 days, one tenant", meta.Sessions, meta.Events, meta.Messages, meta.Conversations)
	if !cached && meta.SeedSeconds > 0 {
		r.res.add(Figure{Scenario: ScenarioQuery, Name: "seed rate (assembler → SQLite, no Kafka)", Unit: "events/s",
			Value: float64(meta.Events) / meta.SeedSeconds,
			Note:  fmt.Sprintf("session.Assembler.Ingest, %d events per call; %.0f ms CPU per 1,000 events; %s", seedBatch, meta.SeedCPUSeconds*1e6/float64(meta.Events), note)})
	}

	srv, key, err := newAPIServer(st)
	if err != nil {
		return err
	}
	defer srv.Close()
	c := &client{http: srv.Client(), base: srv.URL, key: key}

	sample, err := sampleReport(ctx, st, from)
	if err != nil {
		return fmt.Errorf("sample the report database: %w", err)
	}
	if r.cfg.runs(ScenarioQuery) {
		r.progress("report queries: %d kinds × %d requests on %s", len(filterKinds), r.cfg.QueryRuns, note)
		stop := r.profile(ScenarioQuery)
		err := r.queryKinds(ctx, c, ScenarioQuery, filterKinds, sample, from, note, atMost(targetQueryP95), atMost(targetQueryP99))
		stop()
		if err != nil {
			return err
		}
	}
	if r.cfg.runs(ScenarioFullText) {
		r.progress("full-text queries: %d kinds × %d requests", len(fullTextKinds), r.cfg.QueryRuns)
		stop := r.profile(ScenarioFullText)
		err := r.queryKinds(ctx, c, ScenarioFullText, fullTextKinds, sample, from, note, atMost(targetFullTextP95), nil)
		stop()
		if err != nil {
			return err
		}
	}
	if r.cfg.runs(ScenarioExport) {
		if err := r.export(ctx, c, from, meta.Sessions, note); err != nil {
			return err
		}
	}
	return nil
}

// newAPIServer serves the report API of st on a loopback port, with one API
// key for the report tenant.
func newAPIServer(st api.Store) (*httptest.Server, string, error) {
	keys := api.NewKeys()
	key := "bench-" + rand.Text()
	if err := keys.AddKey(reportTenant, key); err != nil {
		return nil, "", err
	}
	server, err := api.New(api.Config{Keys: keys, CursorKey: []byte(rand.Text())}, st, nil)
	if err != nil {
		return nil, "", err
	}
	return httptest.NewServer(server), key, nil
}

type client struct {
	http *http.Client
	base string
	key  string
}

// get requests path?q and reads the whole answer; it returns how long that
// took and the body (unless discard is set, when only lines are counted).
func (c *client) get(ctx context.Context, path string, q url.Values, discard bool) (time.Duration, []byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path+"?"+q.Encode(), nil)
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	start := time.Now()
	res, err := c.http.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer res.Body.Close()
	var body []byte
	lines := 0
	if discard {
		br := bufio.NewReaderSize(res.Body, 64<<10)
		buf := make([]byte, 64<<10)
		for {
			n, err := br.Read(buf)
			lines += bytes.Count(buf[:n], []byte{'\n'})
			if err == io.EOF {
				break
			}
			if err != nil {
				return 0, nil, 0, err
			}
		}
	} else {
		body, err = io.ReadAll(res.Body)
		if err != nil {
			return 0, nil, 0, err
		}
	}
	took := time.Since(start)
	if res.StatusCode != http.StatusOK {
		return took, body, lines, fmt.Errorf("GET %s: HTTP %d: %.300s", path, res.StatusCode, body)
	}
	return took, body, lines, nil
}

// sample holds real values of the report database to filter by.
type sample struct {
	sessions  []string
	protocols []string
	contacts  []string // ids
	phones    []string // the last 9 digits
	names     []string // a first name, lowercased
	tags      []string // by frequency, most common first
	tagPairs  [][2]string
	info      []infoValue
	words     struct{ common, medium, rare, accented []string }
}

type infoValue struct{ key, value string }

// sampleReport reads sessions of several days of the database, and the
// messages of some of them, to filter by values that exist.
func sampleReport(ctx context.Context, st *sqlite.Store, from time.Time) (*sample, error) {
	s := &sample{}
	tagCount := map[string]int{}
	pairCount := map[[2]string]int{}
	infoSeen := map[infoValue]bool{}
	words := map[string]int{}
	for day := 0; day < 30; day += 3 {
		dayFrom := from.Add(time.Duration(day) * 24 * time.Hour)
		res, err := st.Search(ctx, report.Filter{Tenant: reportTenant, From: dayFrom, To: dayFrom.Add(24 * time.Hour)}, report.Page{Limit: 100})
		if err != nil {
			return nil, err
		}
		for i, ss := range res.Items {
			s.sessions = append(s.sessions, ss.ID)
			s.protocols = append(s.protocols, ss.Protocols...)
			s.contacts = append(s.contacts, ss.Contact.ID)
			if d := report.PhoneDigits(ss.Contact.Phone); len(d) >= 9 {
				s.phones = append(s.phones, d[len(d)-9:])
			}
			if first, _, _ := strings.Cut(ss.Contact.Name, " "); len(first) >= 3 {
				s.names = append(s.names, strings.ToLower(first))
			}
			for j, t := range ss.Tags {
				tagCount[t]++
				for _, u := range ss.Tags[j+1:] {
					pairCount[[2]string{t, u}]++
				}
			}
			for k, v := range ss.Info {
				if v != "" && !infoSeen[infoValue{k, v}] {
					infoSeen[infoValue{k, v}] = true
					s.info = append(s.info, infoValue{k, v})
				}
			}
			if i%10 == 0 {
				d, err := st.Session(ctx, reportTenant, ss.ID)
				if err != nil {
					return nil, err
				}
				for _, e := range d.Events {
					if e.Type == event.TypeMessage {
						for _, w := range strings.FieldsFunc(e.Text, func(r rune) bool { return !unicode.IsLetter(r) }) {
							if len([]rune(w)) >= 5 {
								words[strings.ToLower(w)]++
							}
						}
					}
				}
			}
		}
	}
	if len(s.sessions) == 0 {
		return nil, fmt.Errorf("no sessions in the database")
	}
	s.tags = sortedByCount(tagCount)
	for _, p := range sortedByCount(pairCount) {
		if len(s.tagPairs) < 8 {
			s.tagPairs = append(s.tagPairs, p)
		}
	}
	byFreq := sortedByCount(words)
	third := max(len(byFreq)/3, 1)
	s.words.common = byFreq[:min(8, len(byFreq))]
	s.words.medium = byFreq[min(third, len(byFreq)-1):min(third+8, len(byFreq))]
	s.words.rare = byFreq[max(len(byFreq)-8, 0):]
	for _, w := range byFreq {
		if folded := fold(w); folded != w && len(s.words.accented) < 8 {
			s.words.accented = append(s.words.accented, folded)
		}
	}
	for _, l := range []*[]string{&s.protocols, &s.phones, &s.names, &s.words.accented} {
		if len(*l) == 0 {
			*l = []string{"0"}
		}
	}
	return s, nil
}

func sortedByCount[K cmp.Ordered | [2]string](m map[K]int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortStableFunc(keys, func(a, b K) int {
		if c := cmp.Compare(m[b], m[a]); c != 0 {
			return c
		}
		return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
	})
	return keys
}

// fold removes diacritics: the full-text filter must find "não" by "nao".
func fold(s string) string {
	out, _, err := transform.String(transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC), s)
	if err != nil {
		return s
	}
	return out
}

// queryKind builds the i-th request of one kind of report query.
type queryKind struct {
	name  string
	build func(s *sample, i int, q url.Values)
}

func pickN[T any](xs []T, i int) T { return xs[(i*7919)%len(xs)] }

func infoOf(s *sample, i int, keys ...string) infoValue {
	var cands []infoValue
	for _, v := range s.info {
		if len(keys) == 0 || slices.Contains(keys, v.key) {
			cands = append(cands, v)
		}
	}
	if len(cands) == 0 {
		cands = s.info
	}
	return pickN(cands, i)
}

// Every filter of the report alone (with the default 31-day interval of the
// data), and combined.
var filterKinds = []queryKind{
	{"interval 31 days", func(*sample, int, url.Values) {}},
	{"interval 1 day", nil}, // the interval is set by queryKinds
	{"session id", func(s *sample, i int, q url.Values) { q.Set("session", pickN(s.sessions, i)) }},
	{"protocol", func(s *sample, i int, q url.Values) { q.Set("protocol", pickN(s.protocols, i)) }},
	{"tag", func(s *sample, i int, q url.Values) { q.Set("tag", pickN(s.tags, i)) }},
	{"tags all of two", func(s *sample, i int, q url.Values) {
		p := pickN(s.tagPairs, i)
		q["tag"] = []string{p[0], p[1]}
		q.Set("tag_mode", "all")
	}},
	{"info equals", func(s *sample, i int, q url.Values) {
		v := infoOf(s, i)
		q.Set("info", v.key+":equals:"+v.value)
	}},
	{"info not_equals", func(s *sample, i int, q url.Values) {
		v := infoOf(s, i)
		q.Set("info", v.key+":not_equals:"+v.value)
	}},
	{"info contains", func(s *sample, i int, q url.Values) {
		v := infoOf(s, i, "CIDADE", "PLANO", "VALOR_FATURA", "VALOR_DIVIDA")
		q.Set("info", v.key+":contains:"+middle(v.value))
	}},
	{"info not_contains", func(s *sample, i int, q url.Values) {
		v := infoOf(s, i, "CIDADE", "PLANO")
		q.Set("info", v.key+":not_contains:"+middle(v.value))
	}},
	{"info starts_with", func(s *sample, i int, q url.Values) {
		v := infoOf(s, i, "CIDADE", "PLANO", "VALOR_FATURA")
		q.Set("info", v.key+":starts_with:"+prefix(v.value))
	}},
	{"info exists", func(s *sample, i int, q url.Values) { q.Set("info", infoOf(s, i).key+":exists") }},
	{"info not_exists", func(s *sample, i int, q url.Values) { q.Set("info", infoOf(s, i).key+":not_exists") }},
	{"channel", func(_ *sample, i int, q url.Values) {
		q.Set("channel", pickN([]string{"webchat", "telegram", "whatsapp"}, i))
	}},
	{"contact id", func(s *sample, i int, q url.Values) { q.Set("contact", pickN(s.contacts, i)) }},
	{"contact phone suffix", func(s *sample, i int, q url.Values) { q.Set("contact", pickN(s.phones, i)) }},
	{"contact name part", func(s *sample, i int, q url.Values) { q.Set("contact", pickN(s.names, i)) }},
	{"handed off", func(_ *sample, i int, q url.Values) { q.Set("handed_off", pickN([]string{"true", "false"}, i)) }},
	{"combined: tag, info, channel, handed off", func(s *sample, i int, q url.Values) {
		q.Set("tag", pickN(s.tags, i))
		q.Set("info", infoOf(s, i).key+":exists")
		q.Set("channel", pickN([]string{"whatsapp", "webchat"}, i))
		q.Set("handed_off", pickN([]string{"true", "false"}, i))
	}},
	{"combined: every filter", func(s *sample, i int, q url.Values) {
		v := infoOf(s, i)
		q.Set("tag", pickN(s.tags, i))
		q.Set("info", v.key+":equals:"+v.value)
		q.Set("channel", "whatsapp")
		q.Set("contact", pickN(s.names, i))
		q.Set("handed_off", "false")
	}},
}

var fullTextKinds = []queryKind{
	{"q common word", func(s *sample, i int, q url.Values) { q.Set("q", pickN(s.words.common, i)) }},
	{"q medium word", func(s *sample, i int, q url.Values) { q.Set("q", pickN(s.words.medium, i)) }},
	{"q rare word", func(s *sample, i int, q url.Values) { q.Set("q", pickN(s.words.rare, i)) }},
	{"q two words", func(s *sample, i int, q url.Values) {
		q.Set("q", pickN(s.words.common, i)+" "+pickN(s.words.medium, i+1))
	}},
	{"q without accents", func(s *sample, i int, q url.Values) { q.Set("q", pickN(s.words.accented, i)) }},
	{"q common word, 1 day", nil},
	{"q with tag and channel", func(s *sample, i int, q url.Values) {
		q.Set("q", pickN(s.words.common, i))
		q.Set("tag", pickN(s.tags, i))
		q.Set("channel", "whatsapp")
	}},
}

func middle(v string) string {
	r := []rune(v)
	if len(r) <= 3 {
		return v
	}
	return string(r[1:min(len(r), 4)])
}

func prefix(v string) string {
	r := []rune(v)
	return string(r[:min(len(r), 3)])
}

// queryKinds times QueryRuns requests of each kind and adds p50 (in the
// note), p95 and p99 per kind, and the worst of each over the kinds.
func (r *run) queryKinds(ctx context.Context, c *client, scenario string, kinds []queryKind, s *sample, from time.Time,
	note string, p95Target, p99Target *Target) error {
	var worst95, worst99 struct {
		v    time.Duration
		kind string
	}
	for _, k := range kinds {
		if len(r.cfg.QueryKinds) > 0 && !slices.ContainsFunc(r.cfg.QueryKinds, func(part string) bool { return strings.Contains(k.name, part) }) {
			continue
		}
		var lat []time.Duration
		var totals []int
		var cpu time.Duration
		began := time.Now()
		for i := -queryWarmup; i < r.cfg.QueryRuns; i++ {
			if el := time.Since(began); len(lat) >= minQueryRuns && el > queryKindBudget || len(lat) >= 3 && el > 3*queryKindBudget {
				break // slow enough that more requests would not change the verdict
			}
			if i == -1 && time.Since(began) > time.Second {
				continue // one slow warm-up is enough
			}
			q := url.Values{}
			f, t := from, from.Add(report.MaxInterval)
			if k.build == nil { // one day of the month
				f = from.Add(time.Duration(1+(i+queryWarmup)%29) * 24 * time.Hour)
				t = f.Add(24 * time.Hour)
				if scenario == ScenarioFullText {
					q.Set("q", pickN(s.words.common, i+queryWarmup))
				}
			} else {
				k.build(s, i+queryWarmup, q)
			}
			q.Set("from", f.Format(time.RFC3339))
			q.Set("to", t.Format(time.RFC3339))
			before := snapshot()
			took, body, _, err := c.get(ctx, "/api/v1/sessions", q, false)
			if err != nil {
				return fmt.Errorf("%s: %w", k.name, err)
			}
			if i >= 0 {
				cpu += before.until(snapshot()).cpu
				lat = append(lat, took)
				totals = append(totals, totalOf(body))
			}
		}
		slices.Sort(lat)
		slices.Sort(totals)
		p50, p95, p99 := percentile(lat, 50), percentile(lat, 95), percentile(lat, 99)
		kn := fmt.Sprintf("p50 %.1f ms, max %.1f ms over %d requests; %.1f ms CPU per request (server and client); matches per query: median %d, max %d",
			ms(p50), ms(lat[len(lat)-1]), len(lat), ms(cpu)/float64(len(lat)), totals[len(totals)/2], totals[len(totals)-1])
		r.res.add(Figure{Scenario: scenario, Name: "p95 " + k.name, Unit: "ms", Value: ms(p95), Target: p95Target, Note: kn})
		if p99Target != nil {
			r.res.add(Figure{Scenario: scenario, Name: "p99 " + k.name, Unit: "ms", Value: ms(p99), Target: p99Target})
		}
		if p95 > worst95.v {
			worst95.v, worst95.kind = p95, k.name
		}
		if p99 > worst99.v {
			worst99.v, worst99.kind = p99, k.name
		}
	}
	r.res.add(Figure{Scenario: scenario, Name: "p95, worst kind", Unit: "ms", Value: ms(worst95.v), Target: p95Target,
		Note: fmt.Sprintf("%s; GET /api/v1/sessions (limit 20) through api.Server over loopback HTTP, %d requests per kind after %d warm-up (at least %d when a kind takes over %s, 3 over three times that); %s",
			worst95.kind, r.cfg.QueryRuns, queryWarmup, minQueryRuns, queryKindBudget, note)})
	if p99Target != nil {
		r.res.add(Figure{Scenario: scenario, Name: "p99, worst kind", Unit: "ms", Value: ms(worst99.v), Target: p99Target, Note: worst99.kind})
	}
	return nil
}

// totalOf reads "total" from a list answer without decoding the items.
func totalOf(body []byte) int {
	i := bytes.LastIndex(body, []byte(`"total":`))
	if i < 0 {
		return -1
	}
	n := 0
	for _, c := range body[i+len(`"total":`):] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
		if n > math.MaxInt32 {
			break
		}
	}
	return n
}

// export streams JSON lines of about ExportSessions sessions, then of a
// tenth of them, and compares the peak heaps: flat memory means the big one
// needs little more than the small one.
func (r *run) export(ctx context.Context, c *client, from time.Time, stored int, note string) error {
	want := min(r.cfg.ExportSessions, stored)
	// Sessions are spread evenly over the month: an interval of the right
	// length holds about want of them.
	span := time.Duration(float64(report.MaxInterval) * math.Min(1, float64(want)/float64(max(stored, 1))*31/30))
	r.progress("export: JSON lines of about %d sessions with their events", want)
	small := func() (int, heapUse, time.Duration, error) {
		return r.exportOnce(ctx, c, from, span/10)
	}
	if _, _, _, err := small(); err != nil { // warm-up: caches, connections
		return err
	}
	nSmall, heapSmall, _, err := small()
	if err != nil {
		return err
	}
	stop := r.profile(ScenarioExport)
	before := snapshot()
	n, heap, took, err := r.exportOnce(ctx, c, from, span)
	sp := before.until(snapshot())
	stop()
	if err != nil {
		return err
	}
	growth := float64(heap.added()) / float64(max(heapSmall.added(), 1))
	r.res.add(Figure{Scenario: ScenarioExport, Name: "export rate", Unit: "sessions/s", Value: float64(n) / took.Seconds(),
		Target: atLeast(targetExportRate),
		Note: fmt.Sprintf("GET /api/v1/export?format=jsonl through api.Server over loopback HTTP, body read and discarded; %d sessions in %.2f s; %.0f ms CPU per 1,000 sessions (server and client); %s",
			n, took.Seconds(), ms(sp.cpu)*1000/float64(max(n, 1)), note)})
	r.res.add(Figure{Scenario: ScenarioExport, Name: "peak heap, full export", Unit: "MiB", Value: float64(heap.added()) / mib,
		Note: fmt.Sprintf("%d sessions; heap objects sampled every 2 ms (garbage not yet collected included), above the %.1f MiB the process held when the export began (the server, the bench and what earlier scenarios left, e.g. the broker's records)",
			n, float64(heap.base)/mib)})
	r.res.add(Figure{Scenario: ScenarioExport, Name: "peak heap growth over a tenth-size export", Unit: "×", Value: growth,
		Target: atMost(flatExportGrowth), Note: fmt.Sprintf("%.1f MiB added for %d sessions vs %.1f MiB for %d", float64(heap.added())/mib, n, float64(heapSmall.added())/mib, nSmall)})
	r.res.add(Figure{Scenario: ScenarioExport, Name: "allocations per exported session", Unit: "allocs", Value: float64(sp.allocs) / float64(max(n, 1)),
		Note: fmt.Sprintf("%.0f bytes allocated per session", float64(sp.bytes)/float64(max(n, 1)))})
	return nil
}

// heapUse is the heap an export reached at its peak and the heap the
// process held when it began, right after a collection.
type heapUse struct{ peak, base uint64 }

// added is what the export added to the heap at its peak.
func (h heapUse) added() uint64 {
	if h.peak < h.base {
		return 0
	}
	return h.peak - h.base
}

func (r *run) exportOnce(ctx context.Context, c *client, from time.Time, span time.Duration) (int, heapUse, time.Duration, error) {
	q := url.Values{}
	q.Set("format", "jsonl")
	q.Set("from", from.Format(time.RFC3339))
	q.Set("to", from.Add(span).Format(time.RFC3339))
	collectGarbage()
	sampler := heappeak.Start(2 * time.Millisecond)
	took, _, lines, err := c.get(ctx, "/api/v1/export", q, true)
	peak := sampler.Stop()
	return lines, heapUse{peak: peak, base: sampler.Base()}, took, err
}
