// Command secretscan scans files (the test suite's saved output) for
// UserSigs and A2Keys and exits 1 when it finds any: `make test` runs it
// last. Usage: go run ./internal/secretscan/cmd FILE...
package main

import (
	"fmt"
	"os"

	"chatctl/internal/secretscan"
)

func main() {
	found := 0
	for _, name := range os.Args[1:] {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "secretscan:", err)
			os.Exit(2)
		}
		fs, err := secretscan.Scan(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "secretscan: %s: %v\n", name, err)
			os.Exit(2)
		}
		for _, x := range fs {
			fmt.Fprintf(os.Stderr, "secretscan: %s: %v\n", name, x)
		}
		found += len(fs)
	}
	if found > 0 {
		fmt.Fprintf(os.Stderr, "secretscan: %d secret(s) in the test output\n", found)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "secretscan: no UserSig or A2Key in %d file(s)\n", len(os.Args)-1)
}
