#!/usr/bin/env python3
"""Freight vs Meta's official Python SDK (facebook-business), side by side in one run, on the
same 1,000 standard Purchase events given as plain values (messy plain-text customer data).

Variants, each timed per 1,000 events (median of --runs, the variants' runs interleaved):
  A  facebook_business: Event objects built from the values + EventRequest.normalize() + json.dumps
  C  facebook_business: A + the exact form-encoded wire body (get_params → json encode → urlencode)
  D  facebook_business: EventRequest.execute() itself, up to the body it hands to `requests`
     (a transport adapter takes the request and answers without any network); its body is
     checked to be byte for byte C's
  F  freight.request_body(): from event dicts holding the same plain values (built once, as a
     caller has them) to the exact JSON request body (normalize + hash + validate + serialize)
It also checks that both hash every customer value identically (for the inputs the SDK accepts).

Run: bash bench/python/run.sh    (creates its own environment with facebook-business)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
import urllib.parse

import freight
import requests
from facebook_business.adobjects.serverside.content import Content
from facebook_business.adobjects.serverside.custom_data import CustomData
from facebook_business.adobjects.serverside.event import Event
from facebook_business.adobjects.serverside.event_request import EventRequest
from facebook_business.adobjects.serverside.action_source import ActionSource
from facebook_business.adobjects.serverside.user_data import UserData
from facebook_business.api import FacebookAdsApi

UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/130.0.0.0 Safari/537.36")


def values(n: int, now: int) -> list[dict]:
    """Plain values, as a shop has them."""
    return [
        {
            "i": i, "now": now,
            "em": f"  Customer.{i}@Example.com ", "ph": f"+1 650 555 {i % 10000:04d}",
            "fn": "Jane", "ln": "Doe", "ct": "Menlo Park", "st": "CA", "zp": "94025",
            "country": "us", "external_id": f"cust-{i}",
        }
        for i in range(n)
    ]


def freight_events(vals: list[dict]) -> list[dict]:
    return [
        {
            "event_name": "Purchase", "event_time": v["now"] - 60, "action_source": "website",
            "event_id": f"order-{v['i']}", "event_source_url": "https://shop.example.com/thanks",
            "user_data": {
                "em": v["em"], "ph": v["ph"], "fn": v["fn"], "ln": v["ln"], "ct": v["ct"],
                "st": v["st"], "zp": v["zp"], "country": v["country"],
                "external_id": v["external_id"], "client_ip_address": "203.0.113.24",
                "client_user_agent": UA,
                "fbc": "fb.1.1795300000000.IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB_qa2ofrHyiLjcbCRxTDMgk",
                "fbp": f"fb.1.1795200000000.{1000000000 + v['i']}",
            },
            "custom_data": {"value": 129.9, "currency": "usd", "contents": [
                {"id": "SKU-1001", "quantity": 1, "item_price": 79.9},
                {"id": "SKU-2040", "quantity": 2, "item_price": 20.0},
                {"id": "SKU-3300", "quantity": 1, "item_price": 10.0}]},
        }
        for v in vals
    ]


def sdk_events(vals: list[dict]) -> list[Event]:
    out = []
    for v in vals:
        ud = UserData(
            emails=[v["em"]], phones=[v["ph"]], first_names=[v["fn"]], last_names=[v["ln"]],
            cities=[v["ct"]], states=[v["st"]], zip_codes=[v["zp"]],
            country_codes=[v["country"]], external_ids=[v["external_id"]],
            client_ip_address="203.0.113.24", client_user_agent=UA,
            fbc="fb.1.1795300000000.IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB_qa2ofrHyiLjcbCRxTDMgk",
            fbp=f"fb.1.1795200000000.{1000000000 + v['i']}",
        )
        cd = CustomData(value=129.9, currency="usd", contents=[
            Content(product_id="SKU-1001", quantity=1, item_price=79.9),
            Content(product_id="SKU-2040", quantity=2, item_price=20.0),
            Content(product_id="SKU-3300", quantity=1, item_price=10.0)])
        out.append(Event(event_name="Purchase", event_time=v["now"] - 60, user_data=ud,
                         custom_data=cd, event_id=f"order-{v['i']}",
                         event_source_url="https://shop.example.com/thanks",
                         action_source=ActionSource.WEBSITE))
    return out


def sdk_a(vals: list[dict]) -> bytes:
    req = EventRequest(pixel_id="1234567890", events=sdk_events(vals))
    return json.dumps({"data": req.normalize()}).encode()


def sdk_c(vals: list[dict]) -> bytes:
    req = EventRequest(pixel_id="1234567890", events=sdk_events(vals))
    params = req.get_params()
    encoded = {k: (json.dumps(v, sort_keys=True, separators=(",", ":"))
                   if isinstance(v, (list, dict)) else v) for k, v in params.items()}
    return urllib.parse.urlencode(encoded).encode()


class Capture(requests.adapters.BaseAdapter):
    """Takes the request the SDK would send and answers as the Graph API does; nothing is
    sent anywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.body: bytes = b""

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        body = request.body
        self.body = body.encode() if isinstance(body, str) else body
        response = requests.Response()
        response.status_code = 200
        response._content = b'{"events_received":1000,"messages":[],"fbtrace_id":"A"}'
        response.headers["Content-Type"] = "application/json"
        response.request = request
        return response

    def close(self) -> None:
        pass


CAPTURE = Capture()


def sdk_d(vals: list[dict]) -> bytes:
    EventRequest(pixel_id="1234567890", events=sdk_events(vals)).execute()
    return CAPTURE.body


def freight_f(events: list[dict]) -> bytes:
    body = freight.request_body(events)
    if body.count != len(events):
        raise SystemExit(f"freight rejected events: {body.rejected[:1]}")
    return body.body


def timed(variants, runs: int, repeat: int) -> list[tuple[float, float]]:
    """(cold, warm) median seconds of each (fn, arg) variant. The rounds interleave the
    variants (A, C, F, A, C, F, ...) so that the machine's slow and fast moments fall on every
    variant alike: on a shared VM a variant timed alone can see a different machine than the
    next one. Within a round each variant runs `repeat` times back to back: its first run
    finds its data evicted by the other variants (cold), the others find it in cache (warm),
    as a caller that has just built its events does."""
    cold: list[list[float]] = [[] for _ in variants]
    warm: list[list[float]] = [[] for _ in variants]
    for _ in range(runs):
        for i, (fn, arg) in enumerate(variants):
            for r in range(repeat):
                t = time.perf_counter()
                fn(arg)
                (warm if r else cold)[i].append(time.perf_counter() - t)
    return [(statistics.median(c), statistics.median(w)) for c, w in zip(cold, warm)]


def same_hashes(vals: list[dict]) -> None:
    sdk = [json.loads(e) if isinstance(e, str) else e
           for e in EventRequest(pixel_id="1", events=sdk_events(vals)).normalize()]
    ours = json.loads(freight_f(freight_events(vals)))["data"]
    keys = ["em", "ph", "fn", "ln", "ct", "st", "zp", "country"]
    for a, b in zip(sdk, ours):
        for k in keys:
            assert a["user_data"][k] == b["user_data"][k], (k, a["user_data"][k], b["user_data"][k])
        # The SDK sends external_id raw; Freight hashes it (docs/normalization.md).
        assert b["user_data"]["external_id"] == [
            hashlib.sha256(a["user_data"]["external_id"][0].strip().lower().encode()).hexdigest()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each variant per round")
    args = ap.parse_args()
    api = FacebookAdsApi.init(access_token="unused", crash_log=False)
    api._session.requests.mount("https://", CAPTURE)
    vals = values(args.events, int(time.time()))
    same_hashes(vals)
    if sdk_d(vals) != sdk_c(vals):
        raise SystemExit("C is not the body EventRequest.execute() sends")
    # Freight's input is the event dicts themselves (the CAPI JSON shape, plain-text values):
    # built once, outside the timing, like the SDK's plain values.
    events = freight_events(vals)
    variants = [(sdk_a, vals), (sdk_c, vals), (sdk_d, vals), (freight_f, events)]
    for fn, arg in variants:  # warm up
        fn(arg)
    (a, wa), (c, wc), (d, wd), (f, wf) = timed(variants, args.runs, args.repeat)
    n = args.events
    print(f"{n} events, medians of {args.runs} interleaved rounds, each variant run "
          f"{args.repeat} times a round (same hashes checked: yes; C's body is the one "
          f"EventRequest.execute() sends: yes)")
    print("                                                          cold (first of a round) "
          "| warm (the others)")
    for name, cold, warm in (
        ("A facebook_business objects + normalize() + json.dumps", a, wa),
        ("C facebook_business exact wire body (form, urlencoded)", c, wc),
        ("D facebook_business EventRequest.execute(), no network", d, wd),
        ("F freight.request_body (exact wire body)              ", f, wf),
    ):
        print(f"{name} : {cold * 1e3:7.2f} ms {n / cold:8.0f}/s | "
              f"{warm * 1e3:7.2f} ms {n / warm:8.0f}/s")
    print(f"cold: freight vs A {a / f:5.1f}x, vs C {c / f:5.1f}x, vs D {d / f:5.1f}x;  "
          f"warm: freight vs A {wa / wf:5.1f}x, vs C {wc / wf:5.1f}x, vs D {wd / wf:5.1f}x")


if __name__ == "__main__":
    main()
