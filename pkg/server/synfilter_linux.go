package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// The blocklist of synfilter.go as a classic BPF socket filter on the
// listening socket (SO_ATTACH_FILTER). The kernel runs a TCP listener's
// filter (tcp_filter) on each SYN and on each handshake's final ACK
// before a connection exists; a packet the program returns 0 for is
// dropped, so a blocked source's SYN goes unanswered and its client
// retransmits it later, and a handshake it had begun never completes.
//
// The program looks at the IP header (SKF_NET_OFF: the offset from the
// network header, whatever the socket's family): version 4, the source
// address (offset 12) against the IPv4 keys (an IPv4-mapped peer of a
// dual-stack [::] listener arrives as an IPv4 packet); version 6, the
// source's first 64 bits (offsets 8 and 12) against the /64 keys. Each key
// is a compare and a return, a linear scan: at most synFilterMax entries,
// run only for packets of this listener and of its connections (below),
// and only while the list is not empty (the filter is detached then).
//
// SO_ATTACH_FILTER replaces the program atomically. A connection the
// listener accepts is cloned with the listener's filter of that moment and
// keeps it: its packets run that snapshot, never a later list. Harmless:
// they all come from its peer, which was admitted, and only new
// connections matter to the list, which all meet the listener's current
// filter.
//
// The program is assembled with golang.org/x/sys/unix's opcodes (already a
// dependency) rather than golang.org/x/net/bpf, which would add a module
// (and move golang.org/x/text from v0.28 to v0.40) for the seven kinds of
// instruction used here.

const (
	skfNetOff = 0xfff00000 // SKF_NET_OFF (-0x100000) as the uint32 offset of a load
	bpfAccept = 0xffffffff // keep the whole packet
	bpfDrop   = 0
)

// kernelFilter returns the setter of ln's blocklist, after checking that
// the kernel takes a filter on ln at all (Go's default listener is
// Multipath TCP, which refuses SO_ATTACH_FILTER with EOPNOTSUPP).
func kernelFilter(ln net.Listener) (func([]netip.Addr) error, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, fmt.Errorf("a %T, not a TCP listener", ln)
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return nil, err
	}
	set := func(keys []netip.Addr) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if len(keys) > 0 {
				prog := synProgram(keys)
				if serr = attachFilter(fd, prog); serr == nil {
					return
				}
				// A replacement is charged against net.core.optmem_max
				// while the old program is still held (20 KiB on many
				// kernels: two programs of 256 /64 keys do not fit).
				// Without the old one it may fit; its sources go to the
				// accept loop's reset meanwhile.
				if detachFilter(fd) == nil {
					if serr = attachFilter(fd, prog); serr == nil {
						return
					}
				}
			}
			// No list, or the kernel refused it: no filter at all. Never
			// the old list kept, which nothing would shorten again: its
			// sources would be dropped until the server restarts.
			if derr := detachFilter(fd); serr == nil {
				serr = derr
			}
		})
		return errors.Join(err, serr)
	}
	// The probe: the program without keys (every load and jump of a real
	// one, accepting everything), then none.
	var serr error
	err = rc.Control(func(fd uintptr) { serr = attachFilter(fd, synProgram(nil)) })
	if err = errors.Join(err, serr); err != nil {
		return nil, fmt.Errorf("SO_ATTACH_FILTER: %w", err)
	}
	if err := set(nil); err != nil {
		return nil, fmt.Errorf("SO_DETACH_FILTER: %w", err)
	}
	return set, nil
}

func attachFilter(fd uintptr, prog []unix.SockFilter) error {
	fp := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	return unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fp)
}

// detachFilter removes fd's filter; none attached is no error.
func detachFilter(fd uintptr) error {
	err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

func bpfStmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }

func bpfJeq(k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: jt, Jf: jf, K: k}
}

// synProgram is the filter dropping packets from keys (sourceKey's: IPv4
// addresses and IPv6 /64 prefixes). Every conditional jump is short (the
// 8-bit offsets of classic BPF); the two blocks are reached by ja.
func synProgram(keys []netip.Addr) []unix.SockFilter {
	var v4, v6 []unix.SockFilter
	for _, k := range keys {
		if k.Is4() {
			a := k.As4()
			v4 = append(v4,
				bpfJeq(binary.BigEndian.Uint32(a[:]), 0, 1),
				bpfStmt(unix.BPF_RET|unix.BPF_K, bpfDrop))
			continue
		}
		a := k.As16()
		v6 = append(v6,
			bpfStmt(unix.BPF_LD|unix.BPF_MEM, 0),
			bpfJeq(binary.BigEndian.Uint32(a[0:4]), 0, 3),
			bpfStmt(unix.BPF_LD|unix.BPF_MEM, 1),
			bpfJeq(binary.BigEndian.Uint32(a[4:8]), 0, 1),
			bpfStmt(unix.BPF_RET|unix.BPF_K, bpfDrop))
	}
	accept := bpfStmt(unix.BPF_RET|unix.BPF_K, bpfAccept)
	// 0 A = version<<4; 2-3 IPv4: to v4Block; 4-5 IPv6: to v6Block; 6 other: accept.
	prog := []unix.SockFilter{
		bpfStmt(unix.BPF_LD|unix.BPF_B|unix.BPF_ABS, skfNetOff),
		bpfStmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, 0xf0),
		bpfJeq(0x40, 0, 1),
		bpfStmt(unix.BPF_JMP|unix.BPF_JA, 3),
		bpfJeq(0x60, 0, 1),
		bpfStmt(unix.BPF_JMP|unix.BPF_JA, uint32(len(v4))+3),
		accept,
	}
	// v4Block: A = source address; each key a jeq and a drop; accept.
	prog = append(prog, bpfStmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, skfNetOff+12))
	prog = append(prog, v4...)
	prog = append(prog, accept)
	// v6Block: M[0], M[1] = the source's first two words; per key: both
	// compared, drop; accept.
	prog = append(prog,
		bpfStmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, skfNetOff+8),
		bpfStmt(unix.BPF_ST, 0),
		bpfStmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, skfNetOff+12),
		bpfStmt(unix.BPF_ST, 1))
	prog = append(prog, v6...)
	return append(prog, accept)
}
