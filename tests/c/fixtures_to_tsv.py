#!/usr/bin/env python3
"""Flattens the shared JSON fixtures into tab-separated lines the C suite can read without a
JSON parser. Values stay JSON text where the C side hands them to freight as JSON.

    python3 tests/c/fixtures_to_tsv.py normalization > norm.tsv
    python3 tests/c/fixtures_to_tsv.py events > events.tsv
"""
import json
import pathlib
import sys

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"


def clean(s):
    if "\t" in s or "\n" in s:
        raise SystemExit(f"a fixture value holds a tab or newline: {s!r}")
    return s


kind = sys.argv[1]
if kind == "normalization":
    # field, input, options JSON ("" for none), expected wire hash or "" when dropped,
    # expected error type or "".
    for line in (FIXTURES / "normalization.jsonl").read_text(encoding="utf-8").splitlines():
        c = json.loads(line)
        opts = json.dumps(c["options"]) if "options" in c else ""
        print("\t".join(clean(x) for x in [c["field"], c["input"], opts, c.get("wire") or "",
                                            c.get("error", "")]))
elif kind == "events":
    # name, now, events JSON array, options JSON, accepted (1/0), comma-separated error types.
    for line in (FIXTURES / "events.jsonl").read_text(encoding="utf-8").splitlines():
        c = json.loads(line)
        opts = json.dumps(c.get("options", {}))
        errors = ",".join(e[0] for e in c["errors"])
        print("\t".join(clean(x) for x in [c["name"], str(c["now"]),
                                            json.dumps([c["event"]], ensure_ascii=False), opts,
                                            "0" if c["errors"] else "1", errors]))
elif kind == "segment":
    # name, call JSON, options JSON, expected event_name ("" when errors), error types.
    for line in (FIXTURES / "segment.jsonl").read_text(encoding="utf-8").splitlines():
        c = json.loads(line)
        name = c["event"]["event_name"] if "event" in c else ""
        errors = ",".join(e[0] for e in c.get("errors", []))
        print("\t".join(clean(x) for x in [c["name"], json.dumps(c["call"], ensure_ascii=False),
                                            json.dumps(c.get("options", {})), name, errors]))
elif kind == "click_ids":
    # context JSON, expected fbc ("" for none), expected fbp.
    for line in (FIXTURES / "click_ids.jsonl").read_text(encoding="utf-8").splitlines():
        c = json.loads(line)
        ctx = {k: c[k] for k in ["host", "url", "referrer", "fbc_cookie", "fbp_cookie", "now_ms",
                                 "random"]}
        print("\t".join(clean(x) for x in [json.dumps(ctx), c["expect"]["fbc"] or "",
                                            c["expect"]["fbp"]]))
else:
    raise SystemExit("usage: fixtures_to_tsv.py normalization|events|segment|click_ids")
