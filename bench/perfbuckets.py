#!/usr/bin/env python3
"""Sorts the samples of `perf script` into the rows of docs/BENCHMARKS.md's
table "Where serve's extra µs per login go" (bench/profile-logins.sh runs
it). Each sample goes to the first row one of whose patterns matches a
frame of its stack (kernel frames included), so the rows add up to 100%:
the rows above take what they name wherever it runs (GC assists inside a
login are GC, a reply's socket write is the reply), the ones below sort
the rest by the goroutine it ran on.

    perf script -i perf.data | bench/perfbuckets.py CPU_US_PER_LOGIN
"""
import re
import sys

ROWS = [
    ("GC (background marking, assists, sweeping)", r"runtime\.gcBgMarkWorker|runtime\.gcAssistAlloc|runtime\.bgsweep|runtime\.bgscavenge|runtime\.gcStart|runtime\.markroot"),
    ("stack growth (morestack, copystack)", r"runtime\.morestack|runtime\.newstack"),
    ("sysmon (the runtime's monitor thread)", r"runtime\.sysmon"),
    ("UserSig verify (pkg/sig)", r"^chatctl/pkg/sig\."),
    ("A2Key and tinyID (HMAC-SHA256 each)", r"server\.a2Claims\.encode|server\.tinyID$"),
    ("store: bbolt group commit (page writes, fdatasync)", r"bbolt\.\(\*batch\)\.run|bbolt\.\(\*DB\)\.Update"),
    ("store: reads and instance id (watermark, account exists)", r"store/bolt\.\(\*Store\)"),
    ("presence, hub, kick holds, page feed (attach, detach)", r"server\.\(\*Server\)\.attach$|MemoryPresence|server\.\(\*hub\)|server\.\(\*Server\)\.detach$|loginReplied|noteLogin|server\.\(\*Server\)\.kick$|ui\.\(\*Feed\)"),
    ("logging (slog: the socket's logger, lines below the level)", r"^log/slog\."),
    ("login reply JSON (json.Marshal)", r"^encoding/json\.Marshal$"),
    ("frame decode (wire.Unmarshal: segmentio/encoding/json)", r"^github\.com/segmentio/encoding/json\.Unmarshal$"),
    ("reply write (frame, gorilla write, write(2))", r"server\.\(\*conn\)\.reply$|server\.\(\*conn\)\.writeOut$|websocket\.\(\*Conn\)\.WriteMessage$"),
    ("the rest of the login's handling (onLogin, handle, context)", r"server\.\(\*conn\)\.handle$"),
    ("socket close (close(2), poller, gorilla, the reader's end)", r"server\.\(\*conn\)\.end$|^net\.\(\*conn\)\.Close$|^net\.\(\*netFD\)\.Close$|websocket\.\(\*Conn\)\.Close$"),
    ("goroutine hand-off (onWorker, runFrame, the frame worker, its wake-up)", r"server\.onWorker|server\.runFrame|server\.frameWorker"),
    ("frame read (gorilla NextReader, io.ReadAll, pacing, read deadline, read(2))", r"websocket\.\(\*Conn\)\.NextReader$|websocket\.\(\*Conn\)\.ReadMessage$|server\.\(\*conn\)\.read$"),
    ("upgrade (request read and parsed, Upgrade, 101, socket setup)", r"server\.\(\*wsListener\)\.upgrade$|websocket\.\(\*Upgrader\)\.Upgrade$|net/http\.\(\*conn\)\.serve$|server\.\(\*wsListener\)\.serveConn$"),
    ("accept (accept4, new goroutine)", r"server\.\(\*wsListener\)\.acceptLoop$|net/http\.\(\*Server\)\.Serve$|net\.\(\*TCPListener\)\.Accept"),
    ("scheduler (idle Ps looking for work, parking)", r"runtime\.mcall|runtime\.schedule$|runtime\.findRunnable|runtime\.park_m|runtime\.mstart"),
]
PATS = [(label, re.compile(p)) for label, p in ROWS]


def samples(f):
    stack = []
    for line in f:
        line = line.rstrip("\n")
        if not line.strip():
            if stack:
                yield stack
            stack = []
            continue
        if line.startswith("\t") or line.startswith(" "):
            parts = line.split(None, 1)
            if len(parts) == 2:
                sym = parts[1].rsplit(" (", 1)[0]
                sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
                stack.append(sym)
        else:
            stack = []
    if stack:
        yield stack


def main():
    cpu = float(sys.argv[1]) if len(sys.argv) > 1 else 0
    counts = {label: 0 for label, _ in ROWS}
    counts["other"] = 0
    total = 0
    for st in samples(sys.stdin):
        total += 1
        for label, pat in PATS:
            if any(pat.search(s) for s in st):
                counts[label] += 1
                break
        else:
            counts["other"] += 1
    if total == 0:
        sys.exit("perfbuckets: no samples")
    for label, n in counts.items():
        share = n / total
        us = f"{share * cpu:6.1f} µs" if cpu else ""
        print(f"{share * 100:5.1f}%  {us}  {label}")
    print(f"({total} samples)")


main()
