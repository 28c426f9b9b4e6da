// Command syncd is Haven's relay: desktops sync care records through it over
// websockets (automerge-repo's protocol), and it keeps an encrypted copy of
// every document it may hold.
//
//	syncd [serve] [flags]   run the relay (default)
//	syncd admin COMMAND     organisations, devices, audit (see syncd admin help)
//	syncd demo              create the demo organisation in the data folder
//	syncd worker            internal: a CRDT worker process
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	tuneGC(os.Args[1:])
	startProfiles()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "syncd:", err)
		os.Exit(1)
	}
}
