package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/chatreport/chatreport/internal/deadletter"
)

func newDLQCommand(g *globals) *cobra.Command {
	var brokers []string
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect the dead-letter topic and send fixed events back",
	}
	cmd.PersistentFlags().StringSliceVar(&brokers, "brokers", nil, "Kafka bootstrap brokers (default: kafka.brokers of the configuration)")
	// read loads the configuration and every letter (no consumer group).
	read := func(cmd *cobra.Command, fn func(deadletter.Letter) error) ([]string, error) {
		cfg, def, done, err := g.loadConfig(nil, nil)
		if err != nil || done {
			return nil, err
		}
		if len(brokers) == 0 {
			brokers = cfg.Kafka.Brokers
		}
		if fn == nil {
			return brokers, nil
		}
		log, err := newLogger(cfg.Log, g.stderr)
		if err != nil {
			return nil, err
		}
		defer func() { _ = log.Sync() }()
		return brokers, deadletter.Read(cmd.Context(), brokers, def.Topics.DeadLetter, log, fn)
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "One line per dead letter: where it is, where it came from, its event id and why it was rejected",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PARTITION/OFFSET\tTIME\tSOURCE\tEVENT ID\tREASON")
			n := 0
			_, err := read(cmd, func(l deadletter.Letter) error {
				n++
				fmt.Fprintf(tw, "%d/%d\t%s\t%s/%d/%d\t%s\t%s\n", l.Partition, l.Offset, l.Time.Format("2006-01-02T15:04:05Z"),
					l.SourceTopic, l.SourcePartition, l.SourceOffset, l.EventID, l.Reason)
				return nil
			})
			if err != nil {
				// No count: it would read as the topic's. No header over
				// nothing.
				if n == 0 {
					return err
				}
				tw.Flush()
				return fmt.Errorf("after %d dead letters: %w", n, err)
			}
			tw.Flush()
			fmt.Fprintf(g.stdout, "%d dead letters\n", n)
			return nil
		},
	}

	var partition int
	var offset int64
	show := &cobra.Command{
		Use:   "show [--partition P --offset O]",
		Short: "Print dead letters in full as JSON lines (all, or the one at --partition/--offset), ready to fix and redrive",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			one := cmd.Flags().Changed("offset")
			if one != cmd.Flags().Changed("partition") {
				return errors.New("--partition and --offset go together")
			}
			enc := json.NewEncoder(g.stdout)
			found := false
			_, err := read(cmd, func(l deadletter.Letter) error {
				if one && (l.Partition != partition || l.Offset != offset) {
					return nil
				}
				found = true
				return enc.Encode(l)
			})
			if err == nil && one && !found {
				return fmt.Errorf("no dead letter at partition %d offset %d", partition, offset)
			}
			return err
		},
	}
	show.Flags().IntVar(&partition, "partition", 0, "partition of the dead letter")
	show.Flags().Int64Var(&offset, "offset", 0, "offset of the dead letter")

	var (
		all    bool
		file   string
		dryRun bool
	)
	redrive := &cobra.Command{
		Use:   "redrive (--all | --file FIXED.jsonl)",
		Short: "Send dead letters back to their source topics: all of them, or the fixed ones in a file written by `dlq show`",
		Long: "Each event is validated first; those that still break the contract are listed and not sent.\n" +
			"Ingestion is idempotent by (tenant, event_id), so sending an event twice is harmless.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all == (file != "") {
				return errors.New("give exactly one of --all and --file")
			}
			var letters []deadletter.Letter
			collect := func(l deadletter.Letter) error { letters = append(letters, l); return nil }
			if file == "" {
				if _, err := read(cmd, collect); err != nil {
					return err
				}
			} else {
				if _, err := read(cmd, nil); err != nil {
					return err
				}
				text, err := readFile(file)
				if err != nil {
					return err
				}
				if letters, err = deadletter.ParseLetters(text); err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
			}
			outcomes, err := deadletter.Redrive(cmd.Context(), brokers, letters, dryRun)
			sent, failed := 0, 0
			for _, o := range outcomes {
				if o.Err != nil {
					failed++
					fmt.Fprintf(g.stdout, "not sent %d/%d (event %s): %v\n", o.Letter.Partition, o.Letter.Offset, o.Letter.EventID, o.Err)
					continue
				}
				sent++
			}
			verb := "sent"
			if dryRun {
				verb = "would send"
			}
			fmt.Fprintf(g.stdout, "%s %d, not sent %d\n", verb, sent, failed)
			return err
		},
	}
	redrive.Flags().BoolVar(&all, "all", false, "send every dead letter back as it is (after fixing the cause, e.g. a store outage or a contract change)")
	redrive.Flags().StringVar(&file, "file", "", "JSON lines of letters (from `dlq show`) with fixed values; - for standard input")
	redrive.Flags().BoolVar(&dryRun, "dry-run", false, "validate and report, send nothing")

	cmd.AddCommand(list, show, redrive)
	return cmd
}

func readFile(path string) (string, error) {
	if path == "-" {
		b, err := io.ReadAll(os.Stdin)
		return string(b), err
	}
	b, err := os.ReadFile(path)
	return string(b), err
}
