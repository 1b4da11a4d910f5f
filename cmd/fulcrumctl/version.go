package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fulcrum-ml/fulcrum/admin/client"
	"github.com/fulcrum-ml/fulcrum/cmd/internal/version"
)

// serverOptional marks a command that runs without --server.
const serverOptional = "fulcrumctl.serverOptional"

// versions is what `version -o json` prints.
type versions struct {
	Client version.Info  `json:"client"`
	Server *version.Info `json:"server,omitempty"`
}

func newVersionCmd(o *options) *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client's version and the server's (GET /api/v1/version, no token needed)",
		Long: `Print fulcrumctl's own version and, unless --client is given, the version of
the admin API server (GET /api/v1/version, which needs no token).`,
		Args:        usageArgs(cobra.NoArgs),
		Annotations: map[string]string{serverOptional: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := versions{Client: version.Get()}
			if clientOnly {
				return o.printVersions(out)
			}
			if o.server == "" {
				// The client's version is known; say it before the error.
				if err := o.printVersions(out); err != nil {
					return err
				}
				return &exitError{code: exitUsageErr, err: errors.New("no server: pass --server URL or set FULCRUM_SERVER, or --client for the client's version only")}
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			sv, err := c.Version(cmd.Context())
			if err != nil {
				_ = o.printVersions(out)
				if client.IsStatus(err, 404) {
					return fmt.Errorf("the server at %s has no GET /api/v1/version: it is not a Fulcrum admin API, or one older than this client: %w", o.server, err)
				}
				return err
			}
			server := version.Info(*sv)
			out.Server = &server
			return o.printVersions(out)
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "print only the client's version; do not contact the server")
	return cmd
}

func (o *options) printVersions(v versions) error {
	if o.output == "json" {
		return o.printJSON(v)
	}
	fmt.Fprintln(o.out, "Client:", describeBuild(v.Client))
	if v.Server != nil {
		fmt.Fprintln(o.out, "Server:", describeBuild(*v.Server))
	}
	return nil
}

// describeBuild is the one-line form of a build; a server that was not
// given its build answers only a version ("unknown").
func describeBuild(i version.Info) string {
	if i.GoVersion == "" {
		return i.Version
	}
	return i.String()
}
