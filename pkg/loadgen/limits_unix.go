//go:build unix

package loadgen

import "syscall"

// RaiseNoFile raises the soft RLIMIT_NOFILE to the hard limit and returns
// both (after the change).
func RaiseNoFile() (soft, hard uint64, err error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, 0, err
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
			return uint64(r.Cur), uint64(r.Max), err
		}
	}
	return uint64(r.Cur), uint64(r.Max), nil
}
