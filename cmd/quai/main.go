// Command quai is a CI/CD daemon: GitHub pushes build Docker images and
// deploy them, with Vault credentials injected.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

const usage = `quai: a CI/CD daemon for one Docker host.

Usage:
  quai serve [flags]          run the daemon (webhooks, runs, web UI)
  quai validate [--online] [DIR]  check every pipeline file in DIR (default ./pipelines.d)
  quai push [flags] REPO_DIR  send a signed push webhook for a local git repository
  quai haproxy [DIR]          print the haproxy.cfg lines the pipelines in DIR need
  quai run [flags] NAME       run a pipeline's steps and build once, without deploying
  quai user add NAME --role viewer|deployer [--password-file FILE]
                              add a web UI user, or set its password and role;
                              reads the password from standard input by default
  quai token create --role viewer|deployer [--name NAME]
                              create an API token for Authorization: Bearer and
                              print it once
  quai version                print the version

Users and tokens are kept in DATA/config.yml (--config or QUAI_CONFIG);
quai serve reads them at start.

Run "quai COMMAND -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	var exit exitError
	switch {
	case errors.As(err, &exit):
		os.Exit(int(exit))
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "quai:", err)
		os.Exit(1)
	}
}

// exitError ends the program with a status after the command has already
// printed what went wrong.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError(2)
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr, getenv)
	case "validate":
		return validate(ctx, args[1:], stdout, stderr)
	case "haproxy":
		return haproxyLines(args[1:], stdout, stderr)
	case "run":
		return runOnce(ctx, args[1:], stdout, stderr, getenv)
	case "push":
		return push(ctx, args[1:], stdout, stderr, getenv)
	case "user":
		return userCommand(args[1:], os.Stdin, stdout, stderr, getenv)
	case "token":
		return tokenCommand(args[1:], stdout, stderr, getenv)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "quai", versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "quai: unknown command %q\n\n%s", args[0], usage)
		return exitError(2)
	}
}

// versionString returns the version set at build time, else the module
// version or VCS revision recorded by the Go toolchain.
func versionString() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "dev-" + s.Value[:12]
		}
	}
	return "dev"
}
