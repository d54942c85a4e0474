// Package sigbench holds the randomized equivalence tests and side-by-side
// benchmarks of chatctl/pkg/sig against the official Go library v1.4.0.
package sigbench
