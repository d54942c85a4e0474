// Command benchfloor serves one floor of package benchfloor until SIGINT
// or SIGTERM: `benchfloor ws|tcp [-listen ADDR]`. When ready it prints its
// endpoint on stdout, ws://ADDR, one line, for `chatctl bench --protocol
// ws|tcp --endpoint` (mk/benchcmp.mk): chatctl's --endpoint takes ws://
// and http:// ones only (pkg/client's NormalizeEndpoint), and --protocol
// tcp uses its host and port.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"chatctl/internal/benchfloor"
	"chatctl/pkg/loadgen"
)

func main() {
	fs := flag.NewFlagSet("benchfloor", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	fs.Usage = func() { fmt.Fprintln(os.Stderr, "usage: benchfloor ws|tcp [-listen ADDR]") }
	if len(os.Args) < 2 || fs.Parse(os.Args[2:]) != nil || fs.NArg() != 0 {
		fs.Usage()
		os.Exit(2)
	}
	mode := os.Args[1]
	if mode != "ws" && mode != "tcp" {
		fs.Usage()
		os.Exit(2)
	}
	loadgen.RaiseNoFile() // as `chatctl serve` does: thousands of held sockets
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchfloor:", err)
		os.Exit(1)
	}
	var s *benchfloor.Server
	if mode == "ws" {
		s = benchfloor.ServeWS(ln)
	} else {
		s = benchfloor.ServeTCP(ln)
	}
	fmt.Printf("ws://%s\n", s.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	s.Close()
}
