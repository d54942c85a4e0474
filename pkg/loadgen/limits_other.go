//go:build !unix

package loadgen

// RaiseNoFile does nothing where there is no RLIMIT_NOFILE.
func RaiseNoFile() (soft, hard uint64, err error) { return 0, 0, nil }
