package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/chatreport/chatreport/internal/config"
	"github.com/chatreport/chatreport/internal/event"
)

// errNoRefKey: without log.ref_key every process names identifiers with a
// random key of its own, which nothing can reproduce.
var errNoRefKey = fmt.Errorf("log.ref_key is not set (nor %s): each process names identifiers with a random key of its own, whose references no command can reproduce; give every process the same key (docs/operations.md, \"References in logs\")", config.EnvLogRefKey)

// newRefCommand prints the references ("id#…") that log lines, errors and
// dead-letter reasons give identifiers, under the configured key, so that
// an operator who knows a contact's or an event's id finds its lines.
func newRefCommand(g *globals) *cobra.Command {
	var index, tenant string
	cmd := &cobra.Command{
		Use:   "ref [--tenant T] [--index NAME] ID...",
		Short: "Print the reference (id#…) that logs and errors give each ID under log.ref_key, one a line",
		Long: "Logs, errors and dead-letter reasons name documents and events by a keyed reference of their id, never by\n" +
			"the id (which may hold a phone number). With the log.ref_key of the processes that logged, this prints\n" +
			"each ID's reference, in order, one a line. An ID is an Elasticsearch document id (<tenant>/<event_id> for\n" +
			"an event, <tenant>/<session key> for a key document); with --tenant, IDs are that tenant's event_ids or\n" +
			"session keys. With --index, the reference is prefixed by the index, as errors print it.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, ids []string) error {
			if tenant != "" && !event.IsToken(tenant, 63, false) {
				return fmt.Errorf("--tenant %q is not a tenant: tenants are lowercase letters, digits, - and _", tenant)
			}
			cfg, _, done, err := g.loadConfig(nil, nil)
			if err != nil || done {
				return err
			}
			refs := cfg.Log.Refs()
			if !refs.Configured() {
				return errNoRefKey
			}
			for _, id := range ids {
				if id == "" {
					return errors.New("an empty ID")
				}
				if tenant != "" {
					id = tenant + "/" + id
				}
				fmt.Fprintln(g.stdout, refs.Doc(index, id))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "the IDs are this tenant's event_ids or session keys")
	cmd.Flags().StringVar(&index, "index", "", "the document's index, as errors name it (e.g. chatreport-keys-v1)")
	return cmd
}
