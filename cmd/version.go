package cmd

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version and Commit are set at build time with -ldflags "-X
// chatctl/cmd.Version=... -X chatctl/cmd.Commit=..." (make build); without
// Commit, the commit is Go's own stamp of the build, if any.
var (
	Version = "dev"
	Commit  = ""
)

func init() { register("version", newVersionCmd) }

func newVersionCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print chatctl's version",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			commit := Commit
			if bi, ok := debug.ReadBuildInfo(); ok && commit == "" {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						commit = s.Value
					}
				}
			}
			if app.JSON() {
				return app.printJSON(map[string]string{"version": Version, "commit": commit, "go": runtime.Version()})
			}
			_, err := fmt.Fprintf(app.Out, "chatctl %s %s\n", Version, runtime.Version())
			return err
		},
	}
}
