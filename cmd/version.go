package cmd

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X chatctl/cmd.Version=...".
var Version = "dev"

func init() { register("version", newVersionCmd) }

func newVersionCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print chatctl's version",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			commit := ""
			if bi, ok := debug.ReadBuildInfo(); ok {
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
