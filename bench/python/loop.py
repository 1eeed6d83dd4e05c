#!/usr/bin/env python3
"""`freight.request_body` alone, on bench.py's 1,000 Purchase events, called in a loop: the
quick look used to compare two builds of the binding (run each a few times, alternately).

Prints the best, 10th-percentile and median time per call. `--heap N` first fills the
process's heap with N small objects (half of them freed again, at random), as a program that
has been running a while has: the same call is slower there than in a fresh process.

Run: target/bench-venv/bin/python bench/python/loop.py [--calls 400] [--heap 200000]
(after bench/python/run.sh has created that environment).
"""

from __future__ import annotations

import argparse
import random
import time

import bench
import freight


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("--heap", type=int, default=0, help="small objects to allocate first")
    args = ap.parse_args()
    rng = random.Random(1)
    heap = [{f"k{j}": "v" * rng.randint(1, 40) for j in range(rng.randint(1, 12))}
            for _ in range(args.heap)]
    rng.shuffle(heap)
    del heap[::2]
    now = int(time.time())
    events = bench.freight_events(bench.values(1000, now))
    times = []
    for _ in range(args.calls):
        t = time.perf_counter()
        body = freight.request_body(events, now=now)
        times.append(time.perf_counter() - t)
        if body.count != len(events):
            raise SystemExit(f"freight rejected events: {body.rejected[:1]}")
    times.sort()
    best, p10, median = times[0], times[len(times) // 10], times[len(times) // 2]
    print(f"request_body, 1,000 events, {args.calls} calls, heap {args.heap}: "
          f"best {best * 1e3:.3f} ms, p10 {p10 * 1e3:.3f} ms, median {median * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
