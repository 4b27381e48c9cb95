package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatreport/chatreport/internal/store/elastic/esfake"
)

// TestOperatorMistakes: a store setting that points where nothing of
// chatreport is — an empty or wrong SQLite folder, an Elasticsearch index
// prefix with no layout — makes forget fail, saying which settings to
// check, instead of reporting an erasure of nothing as done; index status
// on such a prefix says the prefix may be wrong before suggesting index
// init, and on such a SQLite folder that it holds no version (not an empty
// list, which reads as "all is well"). A tenant that is not one is named as
// such, not reported missing; serve without credentials says how to give
// them; dlq list on a Kafka that does not answer says so and lists no
// letters (it printed "0 dead letters"); simulate with a refused flag names
// it and reports no production. On an installed, empty layout index status
// says only what is missing.
func TestOperatorMistakes(t *testing.T) {
	es := esfake.New(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body+"\nlog: {level: warn}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sqliteEmpty := write("sqlite.yaml", fmt.Sprintf("store: {sqlite: {dir: %q}}", filepath.Join(dir, "nothing-here")))
	esWrong := write("es.yaml", fmt.Sprintf("store: {kind: elasticsearch, elasticsearch: {urls: [%q], index_prefix: wrong}}", es.URL()))
	esRight := write("es-right.yaml", fmt.Sprintf("store: {kind: elasticsearch, elasticsearch: {urls: [%q], index_prefix: right}}", es.URL()))
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := Execute(context.Background(), args, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	if _, err := run("index", "init", "--config", esRight); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"forget", "--tenant", "acme", "--contact", "5511987654321", "--config", sqliteEmpty}, "store.sqlite.dir"},
		{[]string{"forget", "--tenant", "acme", "--contact", "5511987654321", "--config", esWrong}, "index_prefix"},
		{[]string{"forget", "--tenant", "acme", "--contact", "5511987654321", "--config", esRight}, "nothing was erased"},
		{[]string{"forget", "--vacuum", "--tenant", "acme", "--contact", "5511987654321", "--config", esRight}, "--vacuum is for a SQLite store only"},
		{[]string{"index", "status", "--config", esWrong}, `nothing of the layout "wrong" is on this cluster: if the data is under another prefix, set store.elasticsearch.index_prefix`},
		{[]string{"index", "status", "--config", sqliteEmpty}, `no store version in the folder "` + filepath.Join(dir, "nothing-here") + `": if the data is elsewhere, set store.sqlite.dir`},
		{[]string{"forget", "--tenant", "ACME", "--contact", "5511987654321", "--config", sqliteEmpty}, `--tenant "ACME" is not a tenant: tenants are lowercase letters`},
		{[]string{"forget", "--tenant", "acme", "--config", sqliteEmpty}, "--tenant and --contact are required"},
		{[]string{"dlq", "list", "--brokers", "127.0.0.1:1", "--config", sqliteEmpty}, "kafka at 127.0.0.1:1 does not answer (kafka.brokers of the configuration, or --brokers)"},
		{[]string{"simulate", "--days", "-3", "--brokers", "127.0.0.1:1", "--config", sqliteEmpty}, "--days -3: must be 0 or more"},
		{[]string{"simulate", "--sessions", "-1", "--brokers", "127.0.0.1:1", "--config", sqliteEmpty}, "sessions -1: must be 0 or more"},
		{[]string{"serve", "--config", sqliteEmpty}, "set auth.api_keys or auth.api_key_hashes in the configuration, CHATREPORT_API_KEYS=tenant=key in the environment, or auth.jwt"},
	} {
		out, err := run(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("chatreport %v: %v (%s), want an error saying %q", c.args, err, out, c.want)
		}
		if strings.Contains(out, "removed") {
			t.Errorf("chatreport %v reported an erasure: %s", c.args, out)
		}
		if strings.Contains(out, "produced") {
			t.Errorf("chatreport %v reported a production it did not try: %s", c.args, out)
		}
		if strings.Contains(out, "dead letters\n") || strings.Contains(out, "PARTITION") {
			t.Errorf("chatreport %v printed a list of the letters it could not read: %s", c.args, out)
		}
		if err != nil && strings.Contains(err.Error(), "after 0 dead letters") {
			t.Errorf("chatreport %v counts letters it never read: %v", c.args, err)
		}
	}
	if out, err := run("index", "status", "--config", esRight); err != nil || !strings.Contains(out, "ready") {
		t.Errorf("index status of an installed layout: %v\n%s", err, out)
	}
}
