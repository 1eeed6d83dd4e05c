#!/usr/bin/env python3
"""`freight.request_body` alone, on bench.py's 1,000 Purchase events, called in a loop: the
quick look used to compare two builds of the binding (run each a few times, alternately).

Prints the best, 10th-percentile and median time per call. `--heap N` first fills the
process's heap with N small objects (half of them freed again, at random), as a program that
has been running a while has: the same call is slower there than in a fresh process.
`--sdk` runs the SDK's variants A, C and D (3 times each) before every 3 calls, as bench.py's
rounds do, and reports the first, second and third call of a round apart: how much of the
benchmark's cold figure is the caller's events evicted from the cache by the SDK's runs.

Run: target/bench-venv/bin/python bench/python/loop.py [--calls 400] [--heap 200000] [--sdk]
(after bench/python/run.sh has created that environment).
"""

from __future__ import annotations

import argparse
import random
import time

import bench
import freight
from facebook_business.api import FacebookAdsApi


def report(label: str, times: list[float]) -> None:
    times = sorted(times)
    best, p10, median = times[0], times[len(times) // 10], times[len(times) // 2]
    print(f"{label}: best {best * 1e3:.3f} ms, p10 {p10 * 1e3:.3f} ms, "
          f"median {median * 1e3:.3f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("--heap", type=int, default=0, help="small objects to allocate first")
    ap.add_argument("--sdk", action="store_true", help="the SDK's runs between rounds of 3")
    args = ap.parse_args()
    if args.calls < (3 if args.sdk else 1):
        ap.error("--calls must be at least 1, and at least 3 with --sdk")
    rng = random.Random(1)
    heap = [{f"k{j}": "v" * rng.randint(1, 40) for j in range(rng.randint(1, 12))}
            for _ in range(args.heap)]
    rng.shuffle(heap)
    del heap[::2]
    now = int(time.time())
    vals = bench.values(1000, now)
    events = bench.freight_events(vals)
    sdk = []
    if args.sdk:
        api = FacebookAdsApi.init(access_token="unused", crash_log=False)
        api._session.requests.mount("https://", bench.CAPTURE)
        sdk = [bench.sdk_a, bench.sdk_c, bench.sdk_d]
    times: list[list[float]] = [[], [], []] if args.sdk else [[]]
    for call in range(args.calls):
        turn = call % len(times)
        if turn == 0:
            for fn in sdk:
                for _ in range(3):
                    fn(vals)
        t = time.perf_counter()
        body = freight.request_body(events, now=now)
        times[turn].append(time.perf_counter() - t)
        if body.count != len(events):
            raise SystemExit(f"freight rejected events: {body.rejected[:1]}")
    head = f"request_body, 1,000 events, {args.calls} calls, heap {args.heap}"
    if args.sdk:
        for turn, label in enumerate(["first", "second", "third"]):
            report(f"{head}, the SDK's runs before each 3, {label} of 3", times[turn])
    else:
        report(head, times[0])


if __name__ == "__main__":
    main()
