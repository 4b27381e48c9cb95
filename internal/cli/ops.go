package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/idref"
	"github.com/chatreport/chatreport/internal/pipeline"
	"github.com/chatreport/chatreport/internal/replay"
	"github.com/chatreport/chatreport/internal/session"
	"github.com/chatreport/chatreport/internal/store"
	"github.com/chatreport/chatreport/internal/store/elastic"
	"github.com/chatreport/chatreport/internal/store/sqlite"
	"github.com/chatreport/chatreport/internal/versions"
)

// Replay rebuilds a version from the topics and keeps it up to date until a
// swap makes it current (see package replay).
type Replay struct {
	Brokers []string
	// Store is the store configuration: which kind, and where.
	Store  config.Store
	Def    *pipeline.Definition
	Target string
	From   time.Time
	To     time.Time
	// Grace is how long after the target became current the live offsets
	// are read: longer than any single store write of the live ingester
	// and than the registry's cache TTL.
	Grace time.Duration
	// Swap makes the target current once the replay is caught up, as
	// `index swap --to` does (comparing the versions first with Verify).
	Swap, Verify bool
	// CaughtUp is the lag per partition at or below which the replay is
	// caught up (replay.Config.CaughtUp).
	CaughtUp int64
	// Batch is the most events of a write; 0 is the ingester's default
	// for the store (config.Ingest.BatchSizeOf).
	Batch int
	// InFlight is the most batches stored at once; 0 is the ingester's
	// default for the store (config.Ingest.InFlightOf).
	InFlight int
	Log      *zap.Logger
	// Refs names identifiers in the replay's log lines and the store's
	// errors (log.ref_key).
	Refs idref.Key
	// Out receives what the swap prints (nothing when nil).
	Out io.Writer
	// Progress receives status lines; a terminal gets a progress bar.
	Progress io.Writer
	// Report, when set, receives the status instead of Progress.
	Report func(replay.Status)
}

// replayStore is a version's store as a replay writes it.
type replayStore interface {
	store.WritableStore
	LoadReplayState(ctx context.Context) ([]byte, error)
	SaveReplayState(ctx context.Context, state []byte) error
}

// replayTarget is the version being rebuilt.
type replayTarget struct {
	*session.Assembler
	replayStore
}

func (t replayTarget) Ingest(ctx context.Context, events []event.Event) error {
	return t.Assembler.Ingest(ctx, events)
}

// Do replays into the target (registering it first, unless it is current
// already: an interrupted replay whose target was swapped meanwhile) until
// it is current and complete, ctx ends, or it is abandoned.
func (r *Replay) Do(ctx context.Context) error {
	if !versions.Valid(r.Target) {
		return fmt.Errorf("version %q: use a short lowercase name such as v2", r.Target)
	}
	if r.Grace <= 0 {
		return fmt.Errorf("--grace %s: must be positive, longer than any single store write of the live ingester", r.Grace)
	}
	if r.Swap && !r.To.IsZero() {
		return errors.New("--swap with --to: a version that stops at --to lacks what came after it; swap it yourself if you mean to")
	}
	if r.Verify && !r.Swap {
		return errors.New("--verify goes with --swap")
	}
	// The store opened below: SQLite unless Elasticsearch is named.
	kind := config.StoreSQLite
	if r.Store.Kind == config.StoreElasticsearch {
		kind = config.StoreElasticsearch
	}
	if r.Batch == 0 {
		r.Batch = config.Ingest{}.BatchSizeOf(kind)
	}
	if r.InFlight == 0 {
		r.InFlight = config.Ingest{}.InFlightOf(kind)
	}
	if kind == config.StoreSQLite {
		vs, err := store.OpenSQLite(r.Store.SQLite.Dir, sqlite.WithRefKey(r.Refs))
		if err != nil {
			return err
		}
		defer vs.Close()
		return replayInto(ctx, r, vs.Set, vs, nil)
	}
	ev, err := store.OpenElastic(r.Store.Elasticsearch, r.Refs, nil, r.Log)
	if err != nil {
		return err
	}
	defer ev.Close()
	if ttl := ev.Base.Registry().TTL(); r.Grace <= ttl {
		return fmt.Errorf("--grace %s must be longer than store.elasticsearch.registry_ttl (%s): live ingesters may go on writing the old version for that long after a swap", r.Grace, ttl)
	}
	// The target's templates and first indices exist before anything
	// writes it.
	return replayInto(ctx, r, ev.Set, ev, (*elastic.Store).Init)
}

// replayInto checks that Kafka answers, prepares the target's store (when
// prepare is set), registers it and replays into it; vs swaps when r.Swap.
func replayInto[S replayStore](ctx context.Context, r *Replay, set *versions.Set[S], vs store.Versions, prepare func(S, context.Context) error) error {
	// Kafka first: a replay that cannot read the topics must not create
	// its target's store (a SQLite file, Elasticsearch indices) nor
	// register it.
	if err := replay.Check(ctx, r.Brokers, r.Def.Topics.Events); err != nil {
		return fmt.Errorf("%w; nothing was registered", err)
	}
	st, err := set.Get(ctx, r.Target)
	if err != nil {
		return err
	}
	if prepare != nil {
		if err := prepare(st, ctx); err != nil {
			return fmt.Errorf("prepare version %s: %w", r.Target, err)
		}
	}
	reg := set.Registry()
	state, err := reg.State(ctx)
	if err != nil {
		return err
	}
	if state.Current == r.Target {
		// Swapped while the replay was not running: it resumes, waits for
		// the grace and ends at the live offsets.
		saved, err := st.LoadReplayState(ctx)
		if err != nil {
			return err
		}
		if len(saved) == 0 {
			return fmt.Errorf("version %s is the current version; replay into a new one", r.Target)
		}
		r.Log.Info("the target is current already: the replay ends at the live offsets", zap.String("target", r.Target))
	} else {
		if state, err = reg.Register(ctx, r.Target, time.Now()); err != nil {
			return err
		}
		r.Log.Info("replaying", zap.String("target", r.Target), zap.Time("registered", state.Building[r.Target]),
			zap.Strings("topics", r.Def.Topics.Events), zap.Bool("swap", r.Swap), refsField(r.Refs))
	}
	report := r.Report
	if report == nil {
		report = progressPrinter(r.Progress, r.Log, r.Target, r.Swap)
	}
	cfg := replay.Config{
		Brokers: r.Brokers, Topics: r.Def.Topics.Events, LiveGroup: r.Def.ConsumerGroup, Version: r.Target, Registry: reg,
		From: r.From, To: r.To, Grace: r.Grace, CaughtUp: r.CaughtUp, BatchSize: r.Batch, InFlight: r.InFlight,
		Refs: r.Refs,
	}
	if r.Swap {
		out := r.Out
		if out == nil {
			out = io.Discard
		}
		cfg.Swap = func(ctx context.Context) error {
			_, err := swapTo(ctx, vs, r.Target, r.Verify, false, out)
			return err
		}
	}
	return replay.Run(ctx, cfg, replayTarget{session.NewAssembler(r.Def, st), st}, report, r.Log)
}

// progressPrinter draws a progress bar on a terminal and logs a line every
// five seconds, and at every change of phase, otherwise.
func progressPrinter(w io.Writer, log *zap.Logger, target string, swap bool) func(replay.Status) {
	f, ok := w.(*os.File)
	terminal := ok && isatty.IsTerminal(f.Fd())
	var last time.Time
	lastPhase := replay.Phase(-1)
	return func(s replay.Status) {
		note := phaseNote(s, target, swap)
		if !terminal {
			if time.Since(last) < 5*time.Second && s.Phase == lastPhase {
				return
			}
			last, lastPhase = time.Now(), s.Phase
			fields := []zap.Field{zap.Stringer("phase", s.Phase), zap.Int64("events", s.Events), zap.Int64("rejected", s.Rejected),
				zap.Float64("events_per_second", s.Rate), zap.Int64("remaining", s.Remaining), zap.Duration("eta", s.ETA)}
			for _, p := range s.Partitions {
				fields = append(fields, zap.String(fmt.Sprintf("%s/%d", p.Topic, p.Partition), fmt.Sprintf("%d/%d lag %d", p.Next, p.End, p.Lag)))
			}
			log.Info("replay progress: "+note, fields...)
			return
		}
		done := s.Events
		total := done + s.Remaining
		frac := 1.0
		if total > 0 {
			frac = float64(done) / float64(total)
		}
		const width = 30
		bar := strings.Repeat("=", int(frac*width)) + strings.Repeat(" ", width-int(frac*width))
		rejected := ""
		if s.Rejected > 0 {
			rejected = fmt.Sprintf("  %d rejected", s.Rejected)
		}
		fmt.Fprintf(w, "\r[%s] %3.0f%%  %d events%s  %.0f/s  %s   ", bar, frac*100, s.Events, rejected, s.Rate, note)
		if s.Phase == replay.Done {
			fmt.Fprintln(w)
		}
	}
}

// phaseNote says where a replay is, for people.
func phaseNote(s replay.Status, target string, swap bool) string {
	switch s.Phase {
	case replay.Following:
		var maxLag int64
		for _, p := range s.Partitions {
			maxLag = max(maxLag, p.Lag)
		}
		if swap {
			return fmt.Sprintf("caught up (lag ≤ %d); swapping to %s", maxLag, target)
		}
		return fmt.Sprintf("caught up, following; swap when ready (lag ≤ %d)", maxLag)
	case replay.Swapped:
		return fmt.Sprintf("%s is current; reading the live offsets in %s", target, s.GraceLeft.Round(time.Second))
	case replay.Finishing:
		return fmt.Sprintf("replaying up to the live offsets, %d messages left", s.Remaining)
	case replay.Done:
		return "done"
	}
	return fmt.Sprintf("catching up, ETA %s", s.ETA.Round(time.Second))
}

func newReplayCommand(g *globals) *cobra.Command {
	r := &Replay{}
	var from, to string
	var brokers []string
	cmd := &cobra.Command{
		Use:   "replay --from earliest|TIME --target VERSION [--swap [--verify]]",
		Short: "Rebuild a new store version from the Kafka topics while live ingest goes on, and keep it up to date until the swap; resumable",
		Long: "Registers VERSION as being built and reads every partition from --from with its own readers (never the\n" +
			"live group's offsets), writing VERSION alone: the live ingester writes only the current version. Once it\n" +
			"has caught up it follows new messages until VERSION becomes current (`chatreport index swap --to VERSION`,\n" +
			"or --swap), then waits --grace, replays up to the offsets the live group has committed and exits.\n" +
			"With --to it ends each partition at its first message after that time instead, and never swaps.\n" +
			"Interrupted (SIGINT), it saves its progress and exits 0: run it again to resume.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, def, log, done, err := g.start(nil)
			if err != nil || done {
				return err
			}
			if r.From, err = parseReplayTime("from", from, true); err != nil {
				return err
			}
			if r.To, err = parseReplayTime("to", to, false); err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
			if len(brokers) == 0 {
				brokers = cfg.Kafka.Brokers
			}
			r.Brokers, r.Store, r.Def, r.Log, r.Progress, r.Out = brokers, cfg.Store, def, log.Named("replay"), g.stderr, g.stdout
			r.Batch, r.InFlight, r.Refs = cfg.Ingest.BatchSizeOf(cfg.Store.Kind), cfg.Ingest.InFlightOf(cfg.Store.Kind), cfg.Log.Refs()
			err = r.Do(cmd.Context())
			if err != nil && errors.Is(err, context.Canceled) && cmd.Context().Err() != nil {
				fmt.Fprintf(g.stderr, "\nreplay into %s interrupted; its progress is saved: run the same command again to resume\n", r.Target)
				return nil
			}
			return err
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "earliest, or an RFC 3339 time: where each partition starts (required)")
	cmd.Flags().StringVar(&to, "to", "", "an RFC 3339 time: stop each partition at its first message after it; no following, no swap")
	cmd.Flags().StringVar(&r.Target, "target", "", "the version to build, e.g. v2 (required)")
	cmd.Flags().BoolVar(&r.Swap, "swap", false, "once caught up, make the target current (as index swap does), then finish")
	cmd.Flags().BoolVar(&r.Verify, "verify", false, "with --swap: compare the versions first, and swap only when they are equal (tried again every 30 s)")
	cmd.Flags().Int64Var(&r.CaughtUp, "caught-up", 100, "the lag per partition, in messages, at or below which the replay is caught up")
	cmd.Flags().DurationVar(&r.Grace, "grace", time.Minute, "how long after the target became current the live offsets are read; longer than any single store write of the live ingester (and than store.elasticsearch.registry_ttl)")
	cmd.Flags().StringSliceVar(&brokers, "brokers", nil, "Kafka bootstrap brokers (default: kafka.brokers of the configuration)")
	cmd.MarkFlagRequired("from")   //nolint:errcheck // the flag exists
	cmd.MarkFlagRequired("target") //nolint:errcheck // the flag exists
	return cmd
}

func parseReplayTime(flag, s string, earliestOK bool) (time.Time, error) {
	if s == "" || (earliestOK && s == "earliest") {
		return time.Time{}, nil
	}
	t, err := event.ParseTime(s)
	if err != nil {
		want := "an RFC 3339 time"
		if earliestOK {
			want = "earliest or " + want
		}
		return time.Time{}, fmt.Errorf("--%s %q: want %s", flag, s, want)
	}
	return t, nil
}

func newIndexCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "index", Short: "Install and inspect the store's indices; list store versions and swap the current one"}
	initCmd := &cobra.Command{
		Use: "init", Short: "Install the Elasticsearch templates, first indices and aliases of the current version and those being built (idempotent)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			vs, err := g.openVersions()
			if err != nil || vs == nil {
				return err
			}
			defer vs.Close()
			ev, ok := vs.(*store.Elastic)
			if !ok {
				fmt.Fprintln(g.stdout, "the SQLite store creates its schema when it opens: nothing to install")
				return nil
			}
			if err := ev.Init(cmd.Context(), true); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, "templates, indices and aliases installed")
			return nil
		},
	}
	status := &cobra.Command{
		Use: "status", Short: "Show the versions and what each holds (and the templates and indices of Elasticsearch)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			vs, err := g.openVersions()
			if err != nil || vs == nil {
				return err
			}
			defer vs.Close()
			n, err := printVersions(cmd.Context(), g.stdout, vs)
			if err != nil {
				return err
			}
			switch vs := vs.(type) {
			case *store.Elastic:
				return printElasticStatus(cmd.Context(), g.stdout, vs)
			case *store.SQLite:
				if n == 0 {
					// An empty answer would read as "all is well".
					return fmt.Errorf("no store version in the folder %q: if the data is elsewhere, set store.sqlite.dir (chatreport up: --data-dir); chatreport up or ingest creates the first version there", vs.Dir())
				}
			}
			return nil
		},
	}
	var to string
	var verify, force bool
	swap := &cobra.Command{
		Use: "swap --to VERSION [--verify]", Short: "Make VERSION, a version being built, current, atomically: the API reads it and the live ingester writes it (alone) from the next request and batch; a replay into it then finishes (never back to a retired version: docs/operations.md)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			vs, err := g.openVersions()
			if err != nil || vs == nil {
				return err
			}
			defer vs.Close()
			_, err = swapTo(cmd.Context(), vs, to, verify, force, g.stdout)
			return err
		},
	}
	swap.Flags().StringVar(&to, "to", "", "the version to make current (required)")
	swap.Flags().BoolVar(&verify, "verify", false, "first compare counts and every session document with the current version")
	swap.Flags().BoolVar(&force, "force", false, "with --verify: swap even if the versions differ")
	swap.MarkFlagRequired("to") //nolint:errcheck // the flag exists
	var version string
	abandon := &cobra.Command{
		Use: "abandon --version VERSION", Short: "Stop building VERSION: a replay into it stops with an error (Elasticsearch: its indices are deleted)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			vs, err := g.openVersions()
			if err != nil || vs == nil {
				return err
			}
			defer vs.Close()
			if _, err := vs.Registry().Abandon(cmd.Context(), version); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "version %s abandoned\n", version)
			return nil
		},
	}
	abandon.Flags().StringVar(&version, "version", "", "the version to abandon (required)")
	abandon.MarkFlagRequired("version") //nolint:errcheck // the flag exists
	cmd.AddCommand(initCmd, status, swap, abandon)
	return cmd
}

// swapTo makes version current (`index swap`, `replay --swap`); with
// verify, only when every session document equals the current version's,
// unless force.
func swapTo(ctx context.Context, vs store.Versions, version string, verify, force bool, w io.Writer) (versions.State, error) {
	if verify {
		state, err := vs.Registry().State(ctx)
		if err != nil {
			return state, err
		}
		diff, err := versions.Compare(ctx, vs, state.Current, version, w)
		if err != nil {
			return state, err
		}
		if diff > 0 && !force {
			return state, fmt.Errorf("versions %s and %s differ in %d sessions; not swapped (a replay still running, or live writes in flight: try again, or --force)", state.Current, version, diff)
		}
	}
	state, err := vs.Registry().Swap(ctx, version)
	if err != nil {
		return state, err
	}
	fmt.Fprintf(w, "current version: %s\n", state.Current)
	return state, nil
}

// printElasticStatus shows the templates and indices of the current version.
func printElasticStatus(ctx context.Context, w io.Writer, ev *store.Elastic) error {
	cur, err := ev.Current(ctx)
	if err != nil {
		return err
	}
	st, err := cur.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "layout %s, schema %s, current version %s\n", st.Prefix, st.Schema, st.Version)
	for _, t := range st.Templates {
		state := "current"
		switch {
		case t.Have == 0:
			state = "missing"
		case !t.Current():
			state = fmt.Sprintf("version %d installed, %d wanted", t.Have, t.Want)
		}
		fmt.Fprintf(w, "%-9s template %-40s %s\n", t.Kind, t.Name, state)
	}
	for _, ix := range st.Indices {
		docs := strconv.FormatInt(ix.Docs, 10)
		if ix.DocsUnknown != "" {
			docs = "? (" + ix.DocsUnknown + ")"
		}
		fmt.Fprintf(w, "index %-45s %-7s %-6s %s docs  aliases %s\n", ix.Name, ix.Health, ix.State, docs, strings.Join(ix.Aliases, ","))
	}
	if !st.Ready() {
		if len(st.Indices) == 0 && !slices.ContainsFunc(st.Templates, func(t elastic.TemplateStatus) bool { return t.Have != 0 }) {
			// Nothing at all: a new cluster, or another prefix.
			return fmt.Errorf("nothing of the layout %q is on this cluster: if the data is under another prefix, set store.elasticsearch.index_prefix; on a new cluster run `chatreport index init`", st.Prefix)
		}
		return errors.New("not ready: run `chatreport index init`")
	}
	fmt.Fprintln(w, "ready")
	return nil
}

// printVersions prints a line per version and returns how many there are.
func printVersions(ctx context.Context, w io.Writer, vs store.Versions) (int, error) {
	state, err := vs.Registry().State(ctx)
	if err != nil {
		return 0, err
	}
	all, err := vs.Versions(ctx)
	if err != nil {
		return 0, err
	}
	for _, v := range all {
		c, err := vs.Counts(ctx, v)
		if err != nil {
			return 0, err
		}
		fmt.Fprintf(w, "%-12s %-40s %d sessions, %d events\n", v, state.Role(v), c.Sessions, c.Events)
	}
	return len(all), nil
}

// holdsSessions fails when no version of vs holds a session: an erasure
// there erases nothing, and that is almost always a store setting that
// points elsewhere (another SQLite folder, another Elasticsearch cluster or
// index prefix), which an erasure must not report as done.
func holdsSessions(ctx context.Context, vs store.Versions, all []string) error {
	for _, v := range all {
		c, err := vs.Counts(ctx, v)
		if err != nil {
			return fmt.Errorf("version %s: %w", v, err)
		}
		if c.Sessions > 0 || c.Events > 0 {
			return nil
		}
	}
	return fmt.Errorf("no version of the store holds a session (versions %v): check the store settings (store.sqlite.dir, or store.elasticsearch.urls and index_prefix; `chatreport index status`); nothing was erased", all)
}

// vacuumer is a store whose versions' files can be rebuilt (SQLite).
type vacuumer interface {
	Vacuum(ctx context.Context, version string) error
}

var _ vacuumer = (*store.SQLite)(nil)

func newForgetCommand(g *globals) *cobra.Command {
	var tenant, contact string
	var vacuum bool
	cmd := &cobra.Command{
		Use:   "forget --tenant T --contact ID",
		Short: "Erase a contact (LGPD): its sessions and events, from every store version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case tenant == "" || contact == "":
				return errors.New("--tenant and --contact are required")
			case !event.IsToken(tenant, 63, false):
				return fmt.Errorf("--tenant %q is not a tenant: tenants are lowercase letters, digits, - and _ (as in the events and auth.api_keys)", tenant)
			}
			vs, err := g.openVersions()
			if err != nil || vs == nil {
				return err
			}
			defer vs.Close()
			vac, canVacuum := vs.(vacuumer)
			if vacuum && !canVacuum {
				return errors.New("--vacuum is for a SQLite store only (Elasticsearch: POST <index>/_forcemerge?only_expunge_deletes=true; docs/operations.md, \"Erasure (LGPD)\")")
			}
			all, err := vs.Versions(cmd.Context())
			if err != nil {
				return err
			}
			if err := holdsSessions(cmd.Context(), vs, all); err != nil {
				return err
			}
			var kept []string
			for _, v := range all {
				f, err := vs.Forget(cmd.Context(), v, tenant, contact)
				if (err == nil || errors.Is(err, sqlite.ErrWALKept)) && vacuum {
					// The rows are deleted: the vacuum needs the write
					// lock, not an empty WAL (it truncates it again).
					err = vac.Vacuum(cmd.Context(), v)
				}
				if errors.Is(err, sqlite.ErrWALKept) {
					kept = append(kept, v)
					fmt.Fprintf(g.stdout, "version %s: removed %d sessions and %d events, but %v\n", v, f.Sessions, f.Events, err)
					continue
				}
				if err != nil {
					return fmt.Errorf("version %s: %w", v, err)
				}
				fmt.Fprintf(g.stdout, "version %s: removed %d sessions and %d events\n", v, f.Sessions, f.Events)
			}
			if len(kept) > 0 {
				return fmt.Errorf("versions %v: the contact's rows are deleted, but %w", kept, sqlite.ErrWALKept)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "the contact's tenant (required)")
	cmd.Flags().BoolVar(&vacuum, "vacuum", false, "SQLite: rebuild each version's file after the erasure (VACUUM), so that no unused space keeps older bytes of the contact; holds the write lock while it runs")
	cmd.Flags().StringVar(&contact, "contact", "", "the contact id (required)")
	return cmd
}
