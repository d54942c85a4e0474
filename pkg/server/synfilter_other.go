//go:build !linux

package server

import (
	"errors"
	"net"
	"net/netip"
)

// kernelFilter: only Linux has the listener's filter synfilter.go needs.
func kernelFilter(net.Listener) (func([]netip.Addr) error, error) {
	return nil, errors.New("not on Linux")
}
