//go:build !unix

package cmd

import "context"

// watchHangup does nothing without poll(2): a reader that goes away is
// noticed at the next write.
func watchHangup(ctx context.Context, gone func(stderr bool)) {}
