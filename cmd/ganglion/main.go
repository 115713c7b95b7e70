// Command ganglion is the Ganglion homeserver: `serve` runs one node,
// `dev` a local cluster, `generate-config` prints a default config, and
// `bench` measures a running server.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ganglion/ganglion/bench"
	"github.com/ganglion/ganglion/config"
)

const usage = `usage: ganglion <command> [flags]

commands:
  serve --config FILE        run one node
  dev [--dir DIR] [--nodes N] [--server-name NAME] [--port P] [--restart]
                             run a local cluster (3 nodes, each a process)
  remove-node --config FILE [--url URL] NODE_ID
                             remove a node from the cluster for good
  generate-config            print a commented default configuration
  bench --hs URL [...]       benchmark a running homeserver
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "serve":
		err = runServe(ctx, os.Args[2:])
	case "dev":
		err = runDev(ctx, os.Args[2:])
	case "remove-node":
		err = runRemoveNode(ctx, os.Args[2:])
	case "generate-config":
		fmt.Print(config.GenerateDefault())
	case "bench":
		err = bench.Run(ctx, os.Args[2:], os.Stdout)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ganglion:", err)
		os.Exit(1)
	}
}
