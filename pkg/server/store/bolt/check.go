package bolt

// The checks Open makes of a store file before and as it opens it, so that
// a damaged file is refused with one line instead of crashing the server
// (docs/RELIABILITY.md, findings 24 and 26).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// openChecked opens the file and checks every page of it (bbolt's
// Tx.Check) before anything reads it: a damaged page met later panicked in
// the middle of a login, killing every session (docs/RELIABILITY.md,
// finding 24), and a panic while opening one killed the server with a
// trace instead of one line. The check reads the whole file once: a
// second or two for millions of revocations.
func openChecked(path string, timeout time.Duration) (db *bbolt.DB, err error) {
	// bbolt.Open reads the meta and freelist pages in this goroutine: a
	// damaged freelist count faulted there too (from review).
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				db.Close()
			}
			db, err = nil, fmt.Errorf("store %s is corrupt (%v): %s", path, r, corruptAdvice)
		}
	}()
	if err := checkFreelist(path); err != nil {
		return nil, fmt.Errorf("store %s is corrupt (%v): %s", path, err, corruptAdvice)
	}
	db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: timeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: cannot open (corrupt or not a chatctl store?): %w", path, err)
	}
	var first error
	problems := 0
	err = db.View(func(tx *bbolt.Tx) error {
		if err := readAll(tx); err != nil {
			first, problems = err, 1
			return nil
		}
		for e := range tx.Check(bbolt.WithKVStringer(lengthsOnly{})) { // read to the end: the check runs until it closes
			if first == nil {
				first = e
			}
			problems++
		}
		return nil
	})
	if err == nil && first != nil {
		more := ""
		if problems > 1 {
			more = fmt.Sprintf(", and %d more", problems-1)
		}
		err = fmt.Errorf("store %s is corrupt (%v%s): %s", path, first, more, corruptAdvice)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// checkFreelist reads the freelist page's count the way bbolt lays the file
// out, and refuses a count its pages cannot hold: bbolt.Open allocates the
// count it reads before it looks at the page, and a damaged count is an
// out-of-memory crash that no recover catches (2^33 ids: 64 GiB). It finds
// the page size and the meta page in use as bbolt does; a file with no
// valid meta page is left to bbolt, which refuses it. It reads before
// bbolt takes the file's lock; a server holding it may reuse the page
// meanwhile, but no page bbolt writes counts more than it holds.
func checkFreelist(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil
	}
	const hdr = 16 // page header: id, flags, count (uint16), overflow (uint32)
	// meta is the meta page at off if it is valid: magic, version 2 and
	// the checksum (FNV-64a) of magic, version, page size, flags, root
	// bucket (16), freelist, high water mark and txid.
	meta := func(off int64) []byte {
		var m [64]byte
		if _, err := f.ReadAt(m[:], off+hdr); err != nil {
			return nil
		}
		sum := fnv.New64a()
		sum.Write(m[:56])
		if binary.LittleEndian.Uint32(m[0:]) != 0xED0CDAED || binary.LittleEndian.Uint32(m[4:]) != 2 || binary.LittleEndian.Uint64(m[56:]) != sum.Sum64() {
			return nil
		}
		return m[:]
	}
	pageSize := func(m []byte) int64 { return int64(binary.LittleEndian.Uint32(m[8:])) }
	txid := func(m []byte) uint64 { return binary.LittleEndian.Uint64(m[48:]) }
	// The page size: meta 0's, else that of the first valid meta page at
	// 1 KiB << i (bbolt's getPageSize).
	var size int64
	m0 := meta(0)
	if m0 != nil {
		size = pageSize(m0)
	} else {
		for i := range 15 {
			pos := int64(1024) << i
			if pos >= st.Size()-1024 {
				break
			}
			if m := meta(pos); m != nil {
				size = pageSize(m)
				break
			}
		}
	}
	if size < hdr+8 {
		return nil
	}
	// The meta in use: the valid one with the higher txid.
	var newer []byte
	for _, m := range [][]byte{m0, meta(size)} {
		if m != nil && (newer == nil || txid(m) > txid(newer)) {
			newer = m
		}
	}
	if newer == nil {
		return nil
	}
	free := binary.LittleEndian.Uint64(newer[32:])
	if free == 1<<64-1 { // not synced: bbolt rebuilds it by scanning
		return nil
	}
	if free >= uint64(st.Size()/size) {
		return fmt.Errorf("freelist page %d is past the end of the file", free)
	}
	var page [hdr + 8]byte
	if _, err := f.ReadAt(page[:], int64(free)*size); err != nil {
		return fmt.Errorf("freelist page %d: %v", free, err)
	}
	count, first := uint64(binary.LittleEndian.Uint16(page[10:])), uint64(0)
	if count == 0xFFFF { // the count is the first element
		count, first = binary.LittleEndian.Uint64(page[hdr:]), 1
	}
	room := (uint64(binary.LittleEndian.Uint32(page[12:])) + 1) * uint64(size)
	if count > (room-hdr)/8-first || room > uint64(st.Size()-int64(free)*size) {
		return fmt.Errorf("freelist page %d counts %d ids, more than its pages hold", free, count)
	}
	return nil
}

// readAll reads the ends of every key and value of every bucket, and seeks each key,
// in this goroutine, with faults as panics (debug.SetPanicOnFault) that it
// recovers: a page whose damage points a key outside the file faults on
// the first read, a fatal error in any other goroutine, Tx.Check's own
// included, which runs after this has found the pages readable.
func readAll(tx *bbolt.Tx) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("unreadable page: %v", r)
		}
	}()
	var sum byte
	var visit func(name []byte, b *bbolt.Bucket) error
	visit = func(name []byte, b *bbolt.Bucket) error {
		seek := b.Cursor()
		return b.ForEach(func(k, v []byte) error {
			if len(k) > bbolt.MaxKeySize || len(v) > bbolt.MaxValueSize {
				return fmt.Errorf("bucket %q: an entry of %d+%d bytes", name, len(k), len(v))
			}
			// The first and last byte of each: the file is mapped in one
			// piece, so a key or value that runs out of it faults at an
			// end. (Their order is Tx.Check's to check.)
			if len(k) > 0 {
				sum ^= k[0] ^ k[len(k)-1]
			}
			if len(v) > 0 {
				sum ^= v[0] ^ v[len(v)-1]
			}
			// A seek compares k with the branch keys above it, which a
			// walk of the leaves never reads: a damaged one faults here,
			// not in a login's lookup.
			if got, _ := seek.Seek(k); !bytes.Equal(got, k) {
				return fmt.Errorf("bucket %q: a key is not where the tree says", name)
			}
			if v == nil {
				if sub := b.Bucket(k); sub != nil {
					return visit(k, sub)
				}
			}
			return nil
		})
	}
	err = tx.ForEach(visit)
	readSink.Store(uint32(sum))
	return err
}

// lengthsOnly names a key or value in Tx.Check's errors by its length:
// bbolt's default hex-encodes it whole, and a damaged branch key's length
// (which no read of the leaves meets) made that read fault in Check's own
// goroutine, where nothing can recover it.
type lengthsOnly struct{}

func (lengthsOnly) KeyToString(k []byte) string   { return fmt.Sprintf("a key of %d bytes", len(k)) }
func (lengthsOnly) ValueToString(v []byte) string { return fmt.Sprintf("a value of %d bytes", len(v)) }

// readSink keeps readAll's reads from being optimised away.
var readSink atomic.Uint32

// corruptAdvice ends the error of a corrupt store.
const corruptAdvice = "restore a backup, or move it aside to start with an empty store"
