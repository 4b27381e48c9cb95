// Command chatreport consumes chat events from Kafka, assembles sessions,
// indexes them and serves the Conversations Report API.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // the report time zone must load on minimal images

	"github.com/chatreport/chatreport/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chatreport:", err)
		os.Exit(1)
	}
}
