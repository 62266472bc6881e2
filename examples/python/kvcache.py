#!/usr/bin/env python3
"""kvcache.py: the Python twin of examples/kvcache.c, a worker with a
realistic bug.  It counts requests and keeps every response in a cache that
is never evicted, so it leaks --leak-mib-per-s.  Its state (the request
counter and the generation) survives memsup's restarts through the SDK:
restore at start, a helper thread for memsup's requests, gauges, and a
checkpoint every 2 s.  It runs without memsup too.

  memsup --limit 64M -- python3 examples/python/kvcache.py --leak-mib-per-s 16
"""
import argparse
import json
import os
import sys
import threading
import time

try:
    import memsup
except ImportError:  # run from a source tree: use the SDK next door
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "..", "child-sdk", "python"))
    import memsup

MIB = 1024 * 1024
TICK = 0.1
REQUESTS_PER_TICK = 64

lock = threading.Lock()  # main thread vs. the save callback (SDK thread)
state = {"requests": 0, "gen": 0}


@memsup.on_save
def save():
    with lock:
        return json.dumps(state).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--leak-mib-per-s", type=float, default=16)
    ap.add_argument("--run-for", type=float, default=0)
    args = ap.parse_args()
    pid = os.getpid()

    memsup.init()
    data = memsup.restore()
    restored = 0
    if data is not None:
        state.update(json.loads(data))
        restored = state["requests"]
        print("pykv[pid %d]: restored state: requests=%d" % (pid, restored),
              flush=True)
    else:
        print("pykv[pid %d]: no saved state (%s), starting fresh"
              % (pid, memsup.restore_status()), flush=True)
    state["gen"] += 1
    memsup.ready()
    memsup.start_thread()

    cache = {}  # the leak: responses kept forever
    leak = int(args.leak_mib_per_s * MIB * TICK)
    start = next_tick = time.monotonic()
    tick = 0
    while not args.run_for or time.monotonic() - start < args.run_for:
        tick += 1
        with lock:
            state["requests"] += REQUESTS_PER_TICK
            requests = state["requests"]
        if leak:
            cache[requests] = b"r" * leak  # touched, so really resident
        memsup.gauge_set("requests", requests)
        memsup.gauge_set("cache.entries", len(cache))
        if tick % 10 == 0:
            print("pykv[pid %d] gen %d: requests=%d (%s)" % (
                pid, state["gen"], requests,
                "restored %d from previous worker" % restored if restored
                else "fresh start"), flush=True)
        if tick % 20 == 0:
            memsup.checkpoint()
        next_tick += TICK
        time.sleep(max(0.0, next_tick - time.monotonic()))
    print("pykv[pid %d]: done" % pid, flush=True)


if __name__ == "__main__":
    main()
