#!/usr/bin/env python3
"""Outbox enqueue latency from Python: one page event per call, p50/p99 over 5,000 calls.

    target/bench-venv/bin/python bench/python/enqueue.py   (after bash bench/python/run.sh)
"""
import os
import statistics
import tempfile
import time

import freight

with tempfile.TemporaryDirectory() as d:
    outbox = freight.Outbox(os.path.join(d, "outbox.db"))
    now = int(time.time())
    samples = []
    for i in range(5000):
        event = {"event_name": "Purchase", "event_time": now - 5, "action_source": "website",
                 "event_id": f"order-{i}", "event_source_url": "https://shop.example/t",
                 "user_data": {"em": f"c{i}@example.com", "ph": "+1 650 555 0100",
                               "client_user_agent": "Mozilla/5.0", "client_ip_address": "203.0.113.1",
                               "fbp": "fb.1.1795391000000.123456"},
                 "custom_data": {"value": 42.5, "currency": "EUR"}}
        t = time.perf_counter()
        outbox.enqueue("shop-1", [event])
        samples.append(time.perf_counter() - t)
    samples.sort()
    p = lambda q: samples[int((len(samples) - 1) * q)] * 1e6
    print(f"python enqueue: p50 {p(0.5):.0f} µs  p99 {p(0.99):.0f} µs  (n={len(samples)})")
