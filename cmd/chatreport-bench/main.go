// Command chatreport-bench measures chatreport on this machine: ingest into
// SQLite and a stand-in Elasticsearch, report queries, full text, export and
// memory, each beside its target (docs/performance.md). It is not part of
// the production binary.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // the report time zone must load on minimal images

	"github.com/chatreport/chatreport/internal/bench/benchcmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := benchcmd.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chatreport-bench:", err)
		os.Exit(1)
	}
}
