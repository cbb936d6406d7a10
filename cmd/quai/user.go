package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/quai-ci/quai/webui"
)

// accountFlags are the flags that locate the config file, shared by
// "quai user" and "quai token".
type accountFlags struct {
	config string
	data   string
}

func (a *accountFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&a.config, "config", getenv("QUAI_CONFIG"), "YAML file of users and API tokens (env QUAI_CONFIG; default DATA/config.yml)")
	fs.StringVar(&a.data, "data", envOr(getenv, "QUAI_DATA", "./data"), "quai's data folder, for the default --config (env QUAI_DATA)")
}

func (a *accountFlags) path() string {
	if a.config != "" {
		return a.config
	}
	return filepath.Join(a.data, "config.yml")
}

// userCommand runs "quai user add NAME --role ROLE": it sets the user's
// bcrypt password hash and role in the config file.
func userCommand(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprint(stderr, "usage: quai user add NAME --role viewer|deployer [--password-file FILE] [--config FILE]\n")
		return exitError(2)
	}
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		loc          accountFlags
		role         string
		passwordFile string
	)
	loc.register(fs, getenv)
	fs.StringVar(&role, "role", "", "viewer (read) or deployer (read and start, redeploy, roll back, cancel runs)")
	fs.StringVar(&passwordFile, "password-file", "", "file whose first line is the password (default: read a line from standard input)")
	name, rest := splitName(args[1:])
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if name == "" && fs.NArg() == 1 {
		name = fs.Arg(0)
	} else if fs.NArg() > 0 || name == "" {
		return fmt.Errorf("user add takes one user name, got %q", append([]string{name}, fs.Args()...))
	}
	r, err := webui.ParseRole(role)
	if err != nil {
		return fmt.Errorf("invalid --role: %w", err)
	}

	password, err := readPassword(stdin, passwordFile)
	if err != nil {
		return err
	}
	path := loc.path()
	accounts, err := webui.LoadAccounts(path)
	if err != nil {
		return err
	}
	existed, err := accounts.AddUser(name, r, password)
	if err != nil {
		return err
	}
	if err := accounts.Save(path); err != nil {
		return err
	}
	verb := "added"
	if existed {
		verb = "updated"
	}
	fmt.Fprintf(stdout, "%s user %s with role %s in %s; restart quai serve to apply\n", verb, name, r, path)
	return nil
}

// tokenCommand runs "quai token create --role ROLE [--name N]": it stores
// the hash of a new token and prints the token once.
func tokenCommand(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprint(stderr, "usage: quai token create --role viewer|deployer [--name NAME] [--config FILE]\n")
		return exitError(2)
	}
	fs := flag.NewFlagSet("token create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		loc  accountFlags
		role string
		name string
	)
	loc.register(fs, getenv)
	fs.StringVar(&role, "role", "", "viewer (read) or deployer (read and start, redeploy, roll back, cancel runs)")
	fs.StringVar(&name, "name", "", "label shown in logs and the config file (default: token-TIME)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("token create takes no arguments, got %q", fs.Args())
	}
	r, err := webui.ParseRole(role)
	if err != nil {
		return fmt.Errorf("invalid --role: %w", err)
	}
	now := time.Now()
	if name == "" {
		name = "token-" + now.UTC().Format("20060102-150405")
	}

	path := loc.path()
	accounts, err := webui.LoadAccounts(path)
	if err != nil {
		return err
	}
	token, err := accounts.AddToken(name, r, now)
	if err != nil {
		return err
	}
	if err := accounts.Save(path); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "created token %s with role %s in %s; restart quai serve to apply. It is shown only now:\n", name, r, path)
	fmt.Fprintln(stdout, token)
	return nil
}

// splitName takes a leading positional NAME off args, because the flag
// package stops at the first non-flag and "user add NAME --role R" is the
// documented order.
func splitName(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

// readPassword reads the first line of file, or of stdin when file is "".
func readPassword(stdin io.Reader, file string) ([]byte, error) {
	src, what := stdin, "standard input"
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("reading password: %w", err)
		}
		defer f.Close()
		src, what = f, file
	}
	line, err := bufio.NewReader(src).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading password from %s: %w", what, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, fmt.Errorf("reading password from %s: it is empty; write the password on the first line", what)
	}
	return []byte(line), nil
}
