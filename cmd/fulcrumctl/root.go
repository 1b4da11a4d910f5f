package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/fulcrum-ml/fulcrum/admin/client"
)

type streams struct {
	out, err io.Writer
	getenv   func(string) string
}

// options are the global flags.
type options struct {
	streams
	server, token, namespace, output, caFile string
	insecure                                 bool
	timeout                                  time.Duration
}

func newRootCmd(s *streams) *cobra.Command {
	o := &options{streams: *s}
	root := &cobra.Command{
		Use:   "fulcrumctl",
		Short: "Drive Fulcrum model rollouts through the admin API",
		Long: `fulcrumctl lists, watches and steers Fulcrum ModelRollouts through the admin API.

Server and token come from --server/--token or FULCRUM_SERVER/FULCRUM_TOKEN.
Exit codes: 0 success (with --wait: promoted, or an arm beat the control),
1 refused by the server or rolled back/failed, 2 --wait timed out, 3 usage or
connection error; experiment start --wait: 4 no difference, 5 inconclusive,
6 stopped, 7 the control won.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if o.server == "" {
				o.server = o.getenv("FULCRUM_SERVER")
			}
			if o.token == "" {
				o.token = o.getenv("FULCRUM_TOKEN")
			}
			if o.namespace == "" {
				o.namespace = o.getenv("FULCRUM_NAMESPACE")
			}
			switch o.output {
			case "", "text", "json":
			default:
				return &exitError{code: exitUsageErr, err: fmt.Errorf("--output %q: use text or json", o.output)}
			}
			if o.server == "" && needsServer(cmd) {
				return &exitError{code: exitUsageErr, err: errors.New("no server: pass --server URL or set FULCRUM_SERVER")}
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsageErr, err: err}
	})
	f := root.PersistentFlags()
	// The environment variables are not flag defaults: help would print them
	// as if they were the literal default.
	f.StringVar(&o.server, "server", "", "admin API base URL, e.g. http://fulcrum.fulcrum-system (or $FULCRUM_SERVER)")
	f.StringVar(&o.token, "token", "", "bearer token (or $FULCRUM_TOKEN)")
	f.StringVarP(&o.namespace, "namespace", "n", "", "namespace of the rollout (or $FULCRUM_NAMESPACE; list and watch: all namespaces when empty)")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	f.StringVar(&o.caFile, "certificate-authority", "", "PEM file of the CA that signed the server's certificate")
	f.BoolVar(&o.insecure, "insecure-skip-tls-verify", false, "do not verify the server's certificate (testing only)")
	f.DurationVar(&o.timeout, "request-timeout", 30*time.Second, "timeout of each request (not of streams)")

	root.AddCommand(
		newListCmd(o), newGetCmd(o), newHistoryCmd(o), newWhoAmICmd(o), newWatchCmd(o),
		newStartCmd(o), newSplitCmd(o),
		newSimpleActionCmd(o, "promote", "Promote the candidate now", true),
		newSimpleActionCmd(o, "rollback", "Send all traffic back to the stable version now", false),
		newSimpleActionCmd(o, "pause", "Stop automatic progression", false),
		newSimpleActionCmd(o, "resume", "Resume automatic progression after pause or split", true),
		newApproveCmd(o),
		newExperimentCmd(o), newVersionCmd(o),
	)
	return root
}

// needsServer is false for the commands that do not call the admin API:
// version (which handles a missing server itself), help, completion and
// command groups.
func needsServer(cmd *cobra.Command) bool {
	if cmd.HasSubCommands() {
		// A group such as experiment only says which subcommand to use.
		return false
	}
	for c := cmd; c != nil; c = c.Parent() {
		switch {
		case c.Annotations[serverOptional] != "",
			c.Name() == "help", c.Name() == "completion",
			c.Name() == cobra.ShellCompRequestCmd, c.Name() == cobra.ShellCompNoDescRequestCmd:
			return false
		}
	}
	return true
}

func (o *options) client() (*client.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.caFile != "" || o.insecure {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.insecure} //nolint:gosec // opt-in flag
		if o.caFile != "" {
			pem, err := os.ReadFile(o.caFile)
			if err != nil {
				return nil, &exitError{code: exitUsageErr, err: fmt.Errorf("--certificate-authority: %w", err)}
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, &exitError{code: exitUsageErr, err: fmt.Errorf("--certificate-authority %s holds no PEM certificate", o.caFile)}
			}
			cfg.RootCAs = pool
		}
		tr.TLSClientConfig = cfg
	}
	return &client.Client{
		Server:    o.server,
		Token:     o.token,
		HTTP:      &http.Client{Timeout: o.timeout, Transport: tr},
		UserAgent: "fulcrumctl",
	}, nil
}

// isTerminal reports whether w is a terminal, for live progress.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// requireNamespace returns the namespace for commands about one rollout.
func (o *options) requireNamespace() (string, error) {
	if o.namespace == "" {
		return "", &exitError{code: exitUsageErr, err: errors.New("no namespace: pass -n NAMESPACE")}
	}
	return o.namespace, nil
}
