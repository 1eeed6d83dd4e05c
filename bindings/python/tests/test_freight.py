"""The Python module: shared fixtures, validation, sends to the sandbox, errors, threads."""

from __future__ import annotations

import collections
import copy
import datetime
import gc
import decimal
import enum
import hashlib
import json
import os
import pickle
import subprocess
import threading
import warnings
import time
from typing import Any, Dict, Iterator, List

import pytest

import freight
from freight import _freight
from conftest import ROOT, TOKEN, Sandbox, fixture


def sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def events(n: int, prefix: str = "py") -> List[Dict[str, Any]]:
    now = int(time.time())
    return [
        {
            "event_name": "Purchase",
            "event_time": now - 60,
            "action_source": "website",
            "event_id": f"{prefix}-order-{i}",
            "event_source_url": "https://shop.example/thanks",
            "user_data": {"em": f"Customer{i}@Example.com", "client_user_agent": "UA/1",
                          "client_ip_address": "203.0.113.5"},
            "custom_data": {"value": 10.5, "currency": "usd"},
        }
        for i in range(n)
    ]


@pytest.fixture(params=["borrowed", "copied"])
def string_reading(request: Any) -> Iterator[str]:
    """Both ways the binding reads the caller's strings: in place (Python 3.10 and later) and
    copied (Python 3.9, which lacks `PyUnicode_AsUTF8AndSize` in its stable ABI); the suite
    runs on a later Python, so the copying is asked for."""
    previous = _freight._copy_strings(request.param == "copied")
    try:
        yield str(request.param)
    finally:
        _freight._copy_strings(previous)


def client(sandbox: Sandbox, **kw: Any) -> freight.Client:
    return freight.Client(graph_url=sandbox.url, timeout=3, max_retries=1,
                          retry={"base_delay_ms": 1, "max_delay_ms": 2, "throttle_delay_ms": 5,
                                 "max_throttle_delay_ms": 10}, **kw)


# Shared fixtures


@pytest.mark.parametrize("case", fixture("normalization.jsonl"), ids=lambda c: f"{c['field']}:{c['input']}")
def test_normalization_fixture(case: Dict[str, Any]) -> None:
    opts = case.get("options", {})
    if "error" in case:
        with pytest.raises(freight.ValidationError) as e:
            freight.normalize(case["field"], case["input"], **opts)
        assert e.value.errors()[0]["type"] == case["error"]
        assert case["input"] not in str(e.value) or len(case["input"]) < 3
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert freight.normalize(case["field"], case["input"], **opts) == case["normalized"]
        assert freight.normalize(case["field"], case["input"], hash=True, **opts) == case["wire"]
    said = [str(w.message) for w in caught if issubclass(w.category, freight.FreightWarning)]
    want = [f"{case['field']}: {case['warning']}"] * 2 if "warning" in case else []
    assert said == want


@pytest.mark.parametrize("case", fixture("events.jsonl"), ids=lambda c: c["name"])
def test_events_fixture(case: Dict[str, Any], string_reading: str) -> None:
    out = freight.prepare([case["event"]], now=case["now"], **case.get("options", {}))
    errors = sorted([p["type"], p["loc"]] for r in out.rejected for p in r["errors"])
    warnings = sorted([p["type"], p["loc"]] for w in out.warnings for p in w["warnings"])
    assert errors == sorted(case["errors"])
    assert warnings == sorted(case["warnings"])
    if "wire" in case:
        def contains(actual: Any, expected: Any) -> bool:
            if isinstance(expected, dict):
                return isinstance(actual, dict) and all(k in actual and contains(actual[k], v) for k, v in expected.items())
            return bool(actual == expected)
        assert contains(out.events[0]["event"], case["wire"])


# Validation


def test_wrong_types_in_each_field_raise_a_clear_validation_error() -> None:
    base = events(1)[0]
    wrong: List[Any] = [[1], {"a": 1}, 3.5, True, None, "x", -1]
    for key in ["event_name", "event_time", "action_source", "event_id", "event_source_url",
                "user_data", "custom_data", "opt_out", "data_processing_options"]:
        for bad in wrong:
            event = dict(base)
            event[key] = bad
            prepared = freight.prepare([event])
            if not prepared.rejected:
                continue  # some values are valid for some keys (e.g. a str event_id)
            with pytest.raises(freight.ValidationError) as e:
                freight.prepare([event], strict=True)
            assert isinstance(e.value, ValueError)
            assert any(p["loc"].startswith("data[0]") for p in e.value.errors())
    for key in ["em", "ph", "fn", "ct", "country", "client_ip_address", "fbc", "lead_id"]:
        event = dict(base)
        event["user_data"] = dict(base["user_data"], **{key: {"nested": 1}})
        with pytest.raises(freight.ValidationError) as e:
            freight.prepare([event], strict=True)
        assert e.value.errors()[0]["loc"] == f"data[0].user_data.{key}"


def test_non_json_values_are_refused_or_converted() -> None:
    e = events(1)[0]
    e["custom_data"] = {"value": decimal.Decimal("19.90"), "currency": "EUR"}
    e["event_time"] = datetime.datetime.now(datetime.timezone.utc)
    out = freight.prepare([e], strict=True)
    assert out.events[0]["event"]["custom_data"]["value"] == 19.9
    e["event_time"] = datetime.datetime.now()
    with pytest.raises(freight.ValidationError, match="timezone-naive"):
        freight.prepare([e])
    e["event_time"] = object()
    with pytest.raises(freight.ValidationError, match="event_time"):
        freight.prepare([e])
    with pytest.raises(freight.ValidationError):
        freight.prepare("not a list")  # type: ignore[arg-type]
    with pytest.raises(freight.ValidationError):
        freight.normalize("zz", "x")
    with pytest.raises(freight.ConfigError):
        freight.normalize("ph", "1", default_country="Atlantis")


def test_values_without_json_meaning_name_their_place(string_reading: str) -> None:
    """Events are read in place; a value JSON has no form for is refused with its place, at
    any depth, whatever the other events hold."""
    deep: Any = "x"
    for _ in range(70):
        deep = [deep]
    cases: List[Any] = [
        (("user_data", "em"), 2 ** 70, "integer out of range"),
        (("custom_data", "value"), float("nan"), "not a finite number"),
        (("custom_data", "value"), float("inf"), "not a finite number"),
        (("custom_data", "tags"), {1, 2}, "tags: set values cannot be sent"),
        (("custom_data", "nested"), {"a": [object()]}, r"custom_data\.nested\.a\[0\]: object"),
        (("custom_data", "deep"), deep, "nested too deeply"),
        (("user_data", "em"), "\ud800@example.com", "surrogate"),
        (("user_data", 7), "x", "keys must be strings"),
        (("event_time",), datetime.datetime(2026, 11, 23), "timezone-naive"),
    ]
    for path, bad, message in cases:
        good = events(3)
        target: Any = good[1]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = bad
        for call in (lambda: freight.prepare(good), lambda: freight.request_body(good)):
            with pytest.raises(freight.ValidationError, match=message) as e:
                call()
            # Named as the validation names places: `data[<index>].<field>`.
            assert str(e.value).startswith("data[1].")


def test_values_without_json_meaning_raise_in_events_not_sent_too() -> None:
    """The pipeline stops reading an event it rejects or skips; a bad value in it still raises,
    as it does in an event that is sent."""
    denied = dict(events(1)[0], consent="denied")
    denied["custom_data"] = {"tags": {1, 2}}
    ldu = dict(events(1)[0], data_processing_options=["LDU", float("nan")])
    not_an_event: Any = [{"x": object()}]
    for bad in (denied, ldu, not_an_event):
        for call in (freight.prepare, freight.request_body):
            with pytest.raises(freight.ValidationError, match=r"^data\[1\]"):
                call(events(1) + [bad])


def test_nesting_limit_is_the_strict_converters() -> None:
    def deep_event(n: int) -> Dict[str, Any]:
        value: Any = "x"
        for _ in range(n):
            value = [value]
        return dict(events(1)[0], custom_data={"value": 1, "currency": "usd", "x": value})

    bad = dict(events(1)[0], custom_data={"tags": {1}})
    limits = set()
    for n in range(58, 66):
        try:
            freight.prepare([deep_event(n)])
            fast_refuses = False
        except freight.ValidationError:
            fast_refuses = True
        with pytest.raises(freight.ValidationError) as e:
            freight.prepare([deep_event(n), bad])  # the strict converter names the first place
        assert fast_refuses == ("nested too deeply" in str(e.value)), n
        limits.add(fast_refuses)
    assert limits == {True, False}


def test_subclasses_and_tuples_read_like_their_base_types(string_reading: str) -> None:
    class Text(str):
        pass

    class Level(enum.IntEnum):
        TWO = 2

    plain = events(1)[0]
    plain["custom_data"]["contents"] = [{"id": "SKU-1", "quantity": 2, "item_price": 5.0}]
    fancy = collections.OrderedDict(plain)
    fancy["user_data"] = collections.OrderedDict(
        (k, Text(v)) for k, v in plain["user_data"].items())
    fancy["custom_data"] = dict(plain["custom_data"], contents=(
        collections.OrderedDict(id=Text("SKU-1"), quantity=Level.TWO, item_price=5.0),))
    now = plain["event_time"] + 60
    a = freight.request_body([plain], now=now)
    b = freight.request_body((fancy,), now=now)
    assert a.body == b.body and b.count == 1


def test_reading_runs_no_code_of_the_callers_objects(string_reading: str) -> None:
    """Events are read with borrowed references, which is sound only if none of the caller's
    Python code runs meanwhile: no __eq__/__hash__ of keys, no __getitem__/__iter__/keys() of
    dict subclasses, no __index__/__float__/__str__ of value subclasses."""
    calls: list[str] = []

    class Key(str):
        def __eq__(self, other: object) -> bool:
            calls.append("eq")
            return str.__eq__(self, other)

        def __hash__(self) -> int:
            calls.append("hash")
            return hash("consent")  # collides with the key the pipeline looks up

    class Mapping(dict):  # type: ignore[type-arg]
        def __getitem__(self, k: object) -> object:
            calls.append("getitem")
            return dict.__getitem__(self, k)

        def __iter__(self):  # type: ignore[no-untyped-def]
            calls.append("iter")
            return dict.__iter__(self)

        def keys(self):  # type: ignore[no-untyped-def]
            calls.append("keys")
            return dict.keys(self)

    class Count(int):
        def __index__(self) -> int:
            calls.append("index")
            return int(self)

    class Price(float):
        def __float__(self) -> float:
            calls.append("float")
            return float.__float__(self)

    class Text(str):
        def __str__(self) -> str:
            calls.append("str")
            return str.__str__(self)

    e = events(1)[0]
    now = e["event_time"] + 60
    plain = freight.request_body([e], now=now)
    fancy = Mapping(e)
    fancy["user_data"] = Mapping({Text(k): Text(v) for k, v in e["user_data"].items()})
    fancy["custom_data"] = Mapping(e["custom_data"], value=Price(e["custom_data"]["value"]),
                                   contents=[Mapping(id="SKU-1", quantity=Count(2))])
    plain_e = dict(e, custom_data=dict(e["custom_data"], contents=[{"id": "SKU-1", "quantity": 2}]))
    expected = freight.request_body([plain_e], now=now)
    calls.clear()
    got = freight.request_body([fancy], now=now)
    assert calls == []
    assert got.body == expected.body and got.count == plain.count == 1
    odd = dict(e)
    odd[Key("x_custom")] = 1  # an unknown key: the event is rejected, its keys still read
    calls.clear()
    out = freight.request_body([odd], now=now)
    assert out.count == 0 and "x_custom" in out.rejected[0]["errors"][0]["loc"]
    assert calls == []


def test_what_the_walk_cannot_read_fails_like_the_strict_converter() -> None:
    """A key that is no str is refused even when its value is None; a list that contains
    itself is refused at the nesting limit without being walked along every path."""
    e = events(1)[0]
    e["user_data"][5] = None
    with pytest.raises(freight.ValidationError):
        freight.request_body([e])
    e = events(1)[0]
    e["custom_data"]["contents"] = [{"id": "SKU-1", "quantity": 1, "\ud800": None}]
    with pytest.raises(freight.ValidationError):
        freight.request_body([e])
    loop: list[object] = []
    loop += [loop, loop]  # 2**64 paths to the nesting limit
    e = events(1)[0]
    e["custom_data"]["tags"] = loop
    started = time.monotonic()
    with pytest.raises(freight.ValidationError, match="nested too deeply"):
        freight.request_body([e])
    assert time.monotonic() - started < 10
    big = events(1)[0]
    big["custom_data"]["order_id"] = 2**64 - 1  # above i64: read as an unsigned integer
    assert freight.request_body([big]).count == 1
    big["custom_data"]["order_id"] = 2**64
    with pytest.raises(freight.ValidationError):
        freight.request_body([big])


def test_the_garbage_collector_is_left_as_it_was() -> None:
    """The cyclic collector is paused while events are read (see input.rs) and restored after,
    on success, on the strict converter's error and on bad arguments."""
    good = events(2)
    bad = events(1)
    bad[0]["custom_data"]["value"] = float("nan")
    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            freight.request_body(good)
            freight.prepare(good)
            assert gc.isenabled() is enabled
            with pytest.raises(freight.ValidationError):
                freight.prepare(bad)
            assert gc.isenabled() is enabled
            with pytest.raises(freight.ValidationError):
                freight.prepare("not a list")  # type: ignore[arg-type]
            assert gc.isenabled() is enabled
        finally:
            gc.enable()


def test_in_place_reading_matches_the_json_path(string_reading: str) -> None:
    """The same events through Python dicts and through `freight prepare` (JSON text, the path
    of C, PHP and the CLI) give the same wire events and the same problems."""
    binary = os.environ.get("FREIGHT_BIN", str(ROOT / "target" / "debug" / "freight"))
    cases = [c for c in fixture("events.jsonl") if not c.get("options")]
    now = cases[0]["now"]
    evs = [c["event"] for c in cases if c["now"] == now] + events(5)
    lines = "".join(json.dumps(e) + "\n" for e in evs)
    cli = subprocess.run([binary, "prepare", "--now", str(now), "-"], input=lines,
                         capture_output=True, text=True, check=False)
    by_index = {r["index"]: r for r in map(json.loads, cli.stdout.splitlines())}
    assert len(by_index) == len(evs) > 20
    out = freight.prepare(evs, now=now)
    for e in out.events:
        assert by_index[e["index"]]["event"] == e["event"]
        assert by_index[e["index"]].get("warnings", []) == e["warnings"]
    for r in out.rejected:
        assert by_index[r["index"]]["rejected"] == r["errors"]
    assert len(out.events) + len(out.rejected) + len(out.skipped) == len(evs)


def test_copied_strings_read_as_borrowed_ones() -> None:
    """The Python 3.9 way of reading strings (copies) gives the same body, byte for byte, as
    reading them in place, for ASCII and non-ASCII text in every place a string can be."""
    evs = events(30)
    for i, e in enumerate(evs):
        e["user_data"].update(fn=f"Zoë{i}", ct="São Paulo", external_id=f"ключ-{i}")
        e["custom_data"].update(note="ü" * i, tags=["東京", "x"], **{f"prix_é_{i % 3}": i})
    now = evs[0]["event_time"] + 60
    assert _freight._copy_strings(False) is False
    borrowed = freight.request_body(evs, now=now)
    assert _freight._copy_strings(True) is False
    try:
        copied = freight.request_body(evs, now=now)
    finally:
        assert _freight._copy_strings(False) is True
    assert copied.count == borrowed.count == 30
    assert copied.body == borrowed.body


def test_each_key_object_reads_as_its_own_text(string_reading: str) -> None:
    """The binding remembers the text of each key object it has read in a call (by address):
    key objects shared by many dicts (read again from the table), distinct objects with equal
    texts, non-ASCII and str-subclass keys, more keys than the table holds, and fresh objects
    in later calls (at addresses freed by earlier ones) all keep their own text in the body."""

    class Key(str):
        pass

    def run_time(*parts: str) -> str:
        return "".join(parts)  # a new object each time, never interned

    now = int(time.time())
    for call in range(5):
        # Built at run time and shared by every event of the call, as a dict display's keys are.
        shared = [run_time("shared_", str(call), "_", str(j)) for j in range(40)]
        accented = run_time("prix_é_", str(call))
        sub = Key(run_time("sub_", str(call)))
        evs = events(40)
        for i, e in enumerate(evs):
            e["custom_data"].update({k: j for j, k in enumerate(shared)})
            e["custom_data"][accented] = "ü"
            e["custom_data"][sub] = i
            # Distinct objects with texts equal across events.
            e["custom_data"].update({run_time("own_", str(i % 7), "_", str(j)): j
                                     for j in range(30)})
            e["user_data"] = {run_time("e", "m"): e["user_data"]["em"],
                              run_time("client_", "user_agent"): "UA/1"}
        sent = json.loads(freight.request_body(evs, now=now).body)["data"]
        assert len(sent) == len(evs)
        for e, s in zip(evs, sent):
            for k, v in e["custom_data"].items():
                if k not in ("value", "currency"):
                    assert s["custom_data"][k] == v, (call, k)
            assert s["user_data"] == {"em": [sha(e["user_data"]["em"].lower())],
                                      "client_user_agent": "UA/1"}
        del evs, shared, accented, sub


def test_request_body_for_your_own_http_client() -> None:
    for bad in ["", " ", "pl\nx", "x" * 257]:
        with pytest.raises(freight.ConfigError):
            freight.request_body(events(1), partner_agent=bad)
    body = freight.request_body(events(3) + [{"event_name": "x"}], partner_agent="plx-1-2")
    assert body.count == 3 and len(body.rejected) == 1
    import json
    parsed = json.loads(body.body)
    assert parsed["partner_agent"] == "plx-1-2" and len(parsed["data"]) == 3
    assert parsed["data"][0]["user_data"]["em"] == [sha("customer0@example.com")]


# Sending


def test_send_reports_every_event(sandbox: Sandbox) -> None:
    evs = events(3) + [{"event_name": "Lead", "event_time": int(time.time()), "action_source": "email",
                        "user_data": {"em": "nope"}}]
    report = client(sandbox, partner_agent="plfreight-py-1").send(
        evs, pixel_id="1234567890", access_token=TOKEN, test_event_code="TEST_PY")
    assert report.counts == {"input": 4, "delivered": 3, "rejected": 1, "failed": 0, "skipped": 0}
    assert report.rejected[0]["errors"][0]["type"] == "invalid_email"
    reqs = sandbox.get("/__sandbox/requests")
    assert reqs[0]["test_event_code"] == "TEST_PY"
    assert reqs[0]["partner_agent"] == "plfreight-py-1"
    assert reqs[0]["events"][0]["user_data"]["em"] == [sha("customer0@example.com")]
    with pytest.raises(freight.ValidationError) as e:
        report.raise_for_status()
    assert e.value.errors()[0]["type"] == "invalid_email"


def test_error_classes(sandbox: Sandbox) -> None:
    c = client(sandbox)
    report = c.send(events(1), pixel_id="1234567890", access_token="EAAB-wrong-token-py")
    assert not report.ok
    with pytest.raises(freight.AuthError) as auth:
        report.raise_for_status()
    assert (auth.value.kind, auth.value.code) == ("invalid_token", 190)
    assert isinstance(auth.value, freight.ApiError)
    for obj in [auth.value, report, c]:
        assert "EAAB-wrong-token-py" not in repr(obj) + str(obj)

    sandbox.post("/__sandbox/faults", {"kind": "throttle", "code": 17, "times": 0})
    with pytest.raises(freight.ApiError) as api:
        c.send(events(1), pixel_id="1234567890", access_token=TOKEN).raise_for_status()
    assert api.value.kind == "throttled" and not isinstance(api.value, freight.AuthError)
    sandbox.post("/__sandbox/reset")
    sandbox.post("/__sandbox/faults", {"kind": "reset", "times": 0})
    with pytest.raises(freight.TransportError):
        c.send(events(1), pixel_id="1234567890", access_token=TOKEN).raise_for_status()
    sandbox.post("/__sandbox/reset")
    with pytest.raises(freight.ConfigError):
        freight.Client(graph_url="http://example.com")
    with pytest.raises(freight.ConfigError) as cfg:
        c.send(events(1), pixel_id="not-digits", access_token="secret-token-py")
    assert "secret-token-py" not in str(cfg.value)
    assert c.test_connection(pixel_id="1", access_token=TOKEN).status == "ok"
    assert c.test_connection(pixel_id="1", access_token="nope").status == "invalid_token"
    # A request Meta cannot serve (an API version it does not know) is no credential problem.
    old = freight.Client(graph_url=sandbox.url, api_version="v2.0", max_retries=0)
    with pytest.raises(freight.ApiError) as cfg_api:
        old.send(events(1), pixel_id="1234567890", access_token=TOKEN).raise_for_status()
    assert cfg_api.value.kind == "config" and not isinstance(cfg_api.value, freight.AuthError)
    # Exceptions survive copying and pickling (multiprocessing, error reporters) whole.
    for exc in [auth.value, api.value, cfg_api.value]:
        for twin in [copy.copy(exc), pickle.loads(pickle.dumps(exc))]:
            assert type(twin) is type(exc)
            assert (twin.kind, twin.code, twin.subcode, twin.fbtrace_id, str(twin)) == (
                exc.kind, exc.code, exc.subcode, exc.fbtrace_id, str(exc))
    invalid = freight.ValidationError("x: y", [("invalid_type", "x", "y")])
    assert pickle.loads(pickle.dumps(invalid)).errors() == invalid.errors()


def test_credentials_are_checked_up_front_and_never_echoed(sandbox: Sandbox) -> None:
    c = client(sandbox)
    secret = "EAAB-SECRET-py"
    for kwargs in [
        {"access_token": secret + "\ud800"},  # a lone surrogate: no UTF-8 form
        {"access_token": secret + "\u00e9"},  # not ASCII: no HTTP header can carry it
        {"access_token": "\u201c" + secret + "\u201d"},  # typographic quotes, pasted
        {"access_token": TOKEN, "app_secret": secret + "\ud800"},
        {"access_token": TOKEN, "app_secret": secret + "\u0430"},  # a Cyrillic look-alike
        {"access_token": 12345},
        {"access_token": TOKEN, "test_event_code": " "},
    ]:
        for call in (lambda: c.send(events(1), pixel_id="1", **kwargs),
                     lambda: c.test_connection(pixel_id="1", **kwargs)):
            with pytest.raises(freight.ConfigError) as e:
                call()
            chained = [e.value.__cause__, e.value.__context__]
            shown = repr(e.value) + str(e.value) + repr(e.value.args) + repr(chained)
            assert "SECRET" not in shown, shown
    assert sandbox.get("/__sandbox/requests") == [], "nothing was sent"


def test_ctrl_c_stops_a_send_that_waits(sandbox: Sandbox) -> None:
    """A throttled batch may wait minutes for its retry: Ctrl-C (SIGINT) raises
    KeyboardInterrupt within a moment, and nothing more is sent."""
    import signal
    sandbox.post("/__sandbox/faults", {"kind": "http429", "retry_after": 30, "graph_body": True,
                                       "times": 0})
    c = freight.Client(graph_url=sandbox.url, batch_size=1,
                       retry={"throttle_delay_ms": 30_000, "max_throttle_delay_ms": 60_000,
                              "max_elapsed_ms": 600_000})
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            c.send(events(3), pixel_id="1234567890", access_token=TOKEN)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 5
    assert len(sandbox.get("/__sandbox/requests")) == 1, "nothing is sent after Ctrl-C"


def test_a_long_timeout_still_sends(sandbox: Sandbox) -> None:
    # Seconds as long as the batch's budget (15 min): the batch still gets its attempt.
    for timeout in (900, 3600):
        r = freight.Client(graph_url=sandbox.url, timeout=timeout).send(
            events(1), pixel_id="1", access_token=TOKEN)
        assert r.counts["delivered"] == 1, r.failed


def test_report_ok_means_nothing_rejected_or_failed(sandbox: Sandbox) -> None:
    c = client(sandbox)
    denied = events(2)
    denied[1]["consent"] = "denied"
    r = c.send(denied, pixel_id="1", access_token=TOKEN)
    assert r.counts["skipped"] == 1 and r.ok
    r.raise_for_status()
    bad = events(1) + [{"event_name": "Lead", "event_time": int(time.time()),
                        "action_source": "email", "user_data": {"em": "nope"}}]
    r = c.send(bad, pixel_id="1", access_token=TOKEN)
    assert not r.ok
    with pytest.raises(freight.ValidationError):
        r.raise_for_status()


def test_every_validation_error_lists_its_problems() -> None:
    """`errors()` is never empty: each ValidationError names its place and problem in data,
    not only in its message; none shows the value."""
    class Money(decimal.Decimal):
        pass

    def gen() -> Iterator[Dict[str, Any]]:
        yield from events(2)

    bad_set = events(2)
    bad_set[1]["custom_data"]["tags"] = {"a"}
    secret_value = "jane.doe.private\ud800@example.com"
    cases: List[Any] = [
        (lambda: freight.prepare(bad_set), "invalid_type", "data[1].custom_data.tags"),
        (lambda: freight.prepare([{"event_time": float("nan")}]), "invalid_value",
         "data[0].event_time"),
        (lambda: freight.prepare({"event_name": "Lead"}), "invalid_type", "events"),
        (lambda: freight.prepare("events"), "invalid_type", "events"),
        (lambda: freight.prepare(42), "invalid_type", "events"),  # type: ignore[arg-type]
        (lambda: freight.request_body(events(1001)), "too_many_events", "events"),
        (lambda: freight.normalize("zz", "x"), "unknown_field", "field"),
        (lambda: freight.normalize("em", 3.5), "invalid_type", "em"),  # type: ignore[arg-type]
        (lambda: freight.normalize("em", secret_value), "invalid_value", "em"),
        (lambda: freight.normalize("em", "nope"), "invalid_email", "em"),
        (lambda: freight.partner_agent("a b", "1", "2"), "invalid_partner_agent",
         "partner_agent"),
        (lambda: freight.event_id("order-1"), "missing_secret", "secret"),
        (lambda: freight.event_id(" ", secret=b"s"), "invalid_event_id", "event_id"),
        (lambda: freight.event_id("B", secret=b"s", event_name="Custom|A"), "invalid_event_id",
         "event_id"),
        (lambda: freight.click_ids("a.example", random=-1), "invalid_value", "random"),
        (lambda: freight.click_ids("a.example", random=2**32), "invalid_value", "random"),
        (lambda: freight.click_ids("a.example", random=True), "invalid_value", "random"),
        (lambda: freight.click_ids("a.example", now_ms=2**70), "invalid_value", "now_ms"),
        (lambda: freight.click_ids("a.example", now_ms=1.5),  # type: ignore[arg-type]
         "invalid_value", "now_ms"),
        (lambda: freight.segment({"event": "Order Completed", "properties": {"x": {1}}}),
         "invalid_type", "properties.x"),
        (lambda: freight.segment("Order Completed"),  # type: ignore[arg-type]
         "not_an_object", ""),
        (lambda: freight.prepare(events(1), now=-1), "invalid_value", "now"),
        (lambda: freight.prepare(events(1), now=10**30), "invalid_value", "now"),
        (lambda: freight.request_body(events(1), now=1.5),  # type: ignore[arg-type]
         "invalid_value", "now"),
        (lambda: freight.prepare(events(1), now=True), "invalid_value", "now"),
    ]
    for call, kind, loc in cases:
        with pytest.raises(freight.ValidationError) as e:
            call()
        assert [(p["type"], p["loc"]) for p in e.value.errors()][:1] == [(kind, loc)], str(e.value)
        assert all(p["msg"] for p in e.value.errors())
        assert "private" not in repr(e.value.args) + str(e.value.errors())
    # Any iterable of events is read, not only a list.
    now = events(1)[0]["event_time"] + 60
    expected = freight.request_body(events(2), now=now).body
    assert freight.request_body(gen(), now=now).body == expected
    assert freight.request_body(collections.UserList(events(2)), now=now).body == expected
    assert freight.prepare(iter(events(2)), now=now).events == freight.prepare(
        events(2), now=now).events
    # Decimal subclasses are money too; the real Decimal type decides, not the class name.
    e = events(1)[0]
    e["custom_data"]["value"] = Money("12.5")
    assert freight.prepare([e]).events[0]["event"]["custom_data"]["value"] == 12.5

    class Decimal:  # a look-alike by name only: refused, its methods never called
        def __float__(self) -> float:
            raise AssertionError("called")

    e["custom_data"]["value"] = Decimal()
    with pytest.raises(freight.ValidationError, match="Decimal values cannot be sent"):
        freight.prepare([e])


def test_python_code_run_by_the_strict_converter_cannot_break_it() -> None:
    """The strict converter calls a Decimal's `__float__`; one that changes the dict being
    read, or raises, gives an ordinary outcome or exception, never a PanicException."""
    class Sneaky(decimal.Decimal):
        target: Dict[str, Any] = {}

        def __float__(self) -> float:
            self.target.clear()
            self.target.update({f"k{i}": i for i in range(50)})
            return 12.5

    class Raising(decimal.Decimal):
        def __float__(self) -> float:
            raise RuntimeError("from __float__")

    class NoOffset(datetime.tzinfo):
        def utcoffset(self, dt: Any) -> None:
            return None

    class BadOffset(datetime.tzinfo):
        def utcoffset(self, dt: Any) -> Any:
            return "one hour"

    e = events(1)[0]
    Sneaky.target = e["custom_data"]
    e["custom_data"]["value"] = Sneaky("1")
    out = freight.prepare([e])
    assert len(out.events) + len(out.rejected) == 1
    e = events(1)[0]
    e["custom_data"]["value"] = Raising("1")
    with pytest.raises(RuntimeError, match="from __float__"):
        freight.prepare([e])
    # A value that Python itself cannot convert is refused where it is, like any other.
    for path, value in [
        (("custom_data", "value"), decimal.Decimal("sNaN")),
        (("event_time",), datetime.datetime(2026, 1, 1, tzinfo=NoOffset())),
        (("event_time",), datetime.datetime(2026, 1, 1, tzinfo=BadOffset())),
    ]:
        e = events(1)[0]
        target = e
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(freight.ValidationError) as err:
            freight.prepare([e])
        assert err.value.errors()[0]["loc"] == "data[0]." + ".".join(path), err.value.errors()


def test_the_length_checked_is_the_length_read() -> None:
    class Short(list):  # type: ignore[type-arg]
        def __len__(self) -> int:
            return 0

    with pytest.raises(freight.ValidationError, match="at most 1000 events"):
        freight.request_body(Short(events(1001)))


def test_normalize_warns_of_its_caveats() -> None:
    with pytest.warns(freight.FreightWarning, match="^ph: phone_missing_country_code$"):
        assert freight.normalize("ph", "020 7946 0958") == "2079460958"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert freight.normalize("ph", "020 7946 0958", default_country="gb") == "442079460958"
        assert freight.normalize("em", "   ") is None  # dropped: the None says it
    with pytest.raises(freight.ValidationError, match="sent as given"):
        freight.normalize("client_ip_address", "203.0.113.7")


def test_normalize_reads_ints_as_numbers() -> None:
    class Level(enum.IntEnum):
        TWO = 2

    assert freight.normalize("external_id", Level.TWO) == freight.normalize("external_id", 2)
    assert freight.normalize("zp", 94025) == "94025"


def test_client_arguments_are_checked() -> None:
    for bad in [{"timeout": float("nan")}, {"timeout": float("inf")}, {"timeout": "1"},
                {"timeout": True}, {"timeout": 0}, {"max_retries": 1.5}, {"max_retries": -1}]:
        with pytest.raises(freight.ConfigError):
            freight.Client(**bad)


def test_module_docs() -> None:
    assert _freight.__doc__ == "The native module."
    assert (_freight._copy_strings.__doc__ or "").startswith("_copy_strings(on) -> bool")


def test_threads_share_a_client(sandbox: Sandbox) -> None:
    c = client(sandbox)
    results: List[freight.Report] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        for r in range(3):
            rep = c.send(events(20, f"t{t}r{r}"), pixel_id=str(5000 + t), access_token=TOKEN)
            with lock:
                results.append(rep)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 18
    assert all(r.counts["delivered"] == 20 for r in results)
    accepted = sandbox.get("/__sandbox/events")
    assert len(accepted) == 6 * 3 * 20
    assert {e["dataset"] for e in accepted} == {str(5000 + t) for t in range(6)}


def test_send_releases_the_gil(sandbox: Sandbox) -> None:
    # While one thread waits on a slow sandbox, another keeps running Python.
    sandbox.post("/__sandbox/faults", {"kind": "delay", "ms": 600})
    c = client(sandbox)
    done = threading.Event()
    ticks = 0

    def sender() -> None:
        c.send(events(1), pixel_id="1", access_token=TOKEN)
        done.set()

    t = threading.Thread(target=sender)
    t.start()
    while not done.is_set():
        ticks += 1
        time.sleep(0.01)
    t.join()
    assert ticks >= 20


# Platform features


@pytest.mark.parametrize("case", fixture("click_ids.jsonl"), ids=lambda c: c["name"])
def test_click_ids_fixture(case: Dict[str, Any]) -> None:
    ids = freight.click_ids(case["host"], url=case["url"], referrer=case["referrer"],
                            fbc_cookie=case["fbc_cookie"], fbp_cookie=case["fbp_cookie"],
                            now_ms=case["now_ms"], random=case["random"])
    assert ids["fbc"] == case["expect"]["fbc"]
    assert ids["fbp"] == case["expect"]["fbp"]
    assert [[c["name"], c["value"], c["domain"]] for c in ids["cookies_to_set"]] == case["expect"]["cookies_to_set"]


def test_partner_agent_and_event_ids() -> None:
    assert freight.partner_agent("shopbuilder", "4.2", "1.0.3") == "plshopbuilder-4.2-1.0.3"
    assert freight.partner_agent("DataPartner", "1.0") == "pldatapartner-1.0"
    with pytest.raises(freight.ValidationError):
        freight.partner_agent("shop builder", "4", "1")
    a = freight.event_id("order-1", secret=b"s", pixel_id="1", event_name="Purchase")
    assert a == freight.event_id("order-1", secret=b"s", pixel_id="1", event_name="Purchase")
    assert a != freight.event_id("order-2", secret=b"s", pixel_id="1", event_name="Purchase")
    r1, r2 = freight.event_id(), freight.event_id()
    assert r1 != r2 and r1[14] == "4" and len(r1) == 36
    # click_ids' numbers: whole, in range, never cut to fit (as the C ABI checks them).
    assert freight.click_ids("a.example", now_ms=5, random=2**32 - 1)["fbp"] == "fb.1.5.4294967295"
    before = int(time.time() * 1000)
    fbp = freight.click_ids("a.example")["fbp"]
    assert before <= int(fbp.split(".")[2]) <= int(time.time() * 1000) + 1


def test_denied_consent_never_reaches_the_sandbox(sandbox: Sandbox) -> None:
    evs = events(2)
    evs[0]["consent"] = "denied"
    evs[1]["consent"] = "granted"
    report = client(sandbox).send(evs, pixel_id="1", access_token=TOKEN)
    assert report.counts["skipped"] == 1 and report.counts["delivered"] == 1
    assert report.skipped == [{"index": 0, "reason": "consent_denied"}]
    accepted = sandbox.get("/__sandbox/events")
    assert [e["event"]["event_id"] for e in accepted] == [evs[1]["event_id"]]
    assert freight.prepare(evs).skipped == [{"index": 0, "reason": "consent_denied"}]
    body = freight.request_body(evs)
    assert body.count == 1 and body.skipped == [{"index": 0, "reason": "consent_denied"}]
    assert [e["event_id"] for e in json.loads(body.body)["data"]] == [evs[1]["event_id"]]


@pytest.mark.parametrize("case", fixture("segment.jsonl"), ids=lambda c: c["name"])
def test_segment_fixture(case: Dict[str, Any]) -> None:
    call = case["call"]
    if not isinstance(call, dict):
        with pytest.raises(freight.ValidationError):
            freight.segment(call)  # type: ignore[arg-type]
        return
    if "errors" in case:
        with pytest.raises(freight.ValidationError) as e:
            freight.segment(call, **case.get("options", {}))
        assert [[p["type"], p["loc"]] for p in e.value.errors()] == case["errors"]
    else:
        assert freight.segment(call, **case.get("options", {})) == case["event"]


def test_ctrl_c_stops_an_outbox_flush_that_waits(sandbox: Sandbox, tmp_path: Any) -> None:
    """Ctrl-C during a flush's retry wait raises KeyboardInterrupt within a moment; the
    events not delivered stay pending (none lost, no attempt counted against them)."""
    import signal
    outbox = freight.Outbox(str(tmp_path / "outbox.db"))
    assert outbox.enqueue("shop", events(3, "flush-int"))["stored"] == 3
    sandbox.post("/__sandbox/faults", {"kind": "http429", "retry_after": 30, "graph_body": True,
                                       "times": 0})
    c = freight.Client(graph_url=sandbox.url,
                       retry={"throttle_delay_ms": 30_000, "max_throttle_delay_ms": 60_000,
                              "max_elapsed_ms": 600_000})
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            outbox.flush(c, {"shop": {"pixel_id": "888", "access_token": TOKEN}})
    finally:
        timer.cancel()
    assert time.monotonic() - started < 5
    assert len(sandbox.get("/__sandbox/requests")) == 1, "nothing is sent after Ctrl-C"
    assert outbox.stats()["pending"] == 3
    assert all(e["attempts"] == 0 for e in outbox.list("pending"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc (Linux)")
def test_no_thread_to_be_had_is_not_a_panic(tmp_path: Any) -> None:
    """A send or flush runs on a worker thread (to hear Ctrl-C); when the process may not
    start one (a memory or process limit), it runs on the caller's thread instead of raising
    a PanicException, which `except Exception` would not catch."""
    import sys
    script = """
import freight, re, resource, sys
client = freight.Client(graph_url="http://127.0.0.1:9")
outbox = freight.Outbox(sys.argv[1])
size = int(re.search(r"VmSize:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024
# Room for this script, not for a thread's stack.
resource.setrlimit(resource.RLIMIT_AS, (size + 1536 * 1024, resource.RLIM_INFINITY))
import threading
try:
    threading.Thread(target=lambda: None).start()
    print("a thread started: the limit does not hold here")
except RuntimeError:
    report = client.send([], pixel_id="1", access_token="T")
    flushed = outbox.flush(client, {})
    print("ok", report.counts["input"], flushed["requests"])
"""
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "outbox.db")],
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok 0 0", out.stderr
    assert "panicked" not in out.stderr, out.stderr


def test_credentials_stay_out_of_traceback_locals(sandbox: Sandbox, tmp_path: Any) -> None:
    """Error reporters record the locals of a traceback's frames, scrubbing the names that
    say token or secret: Freight's own frames hold the credentials under those names only."""
    import traceback
    secret_names = {"access_token", "app_secret", "destinations"}

    def leaked(e: BaseException) -> List[str]:
        found = []
        tb = traceback.TracebackException.from_exception(e, capture_locals=True)
        for frame in tb.stack:
            for name, value in (frame.locals or {}).items():
                if "SECRET" in value and name not in secret_names:
                    found.append(f"{frame.name}: {name}")
        return found

    c = client(sandbox)
    bad_event = [{"event_name": "Lead", "event_time": object(), "action_source": "email"}]
    calls = [
        lambda: c.send(events(1), pixel_id="1", access_token="EAAB-SECRET-tok\ud800"),
        lambda: c.send(events(1), pixel_id="1", access_token=TOKEN, app_secret="SECRET\ud800"),
        lambda: c.send(bad_event, pixel_id="1", access_token="EAAB-SECRET-token"),
        lambda: c.test_connection(pixel_id="1", access_token="EAAB-SECRET", test_event_code=" "),
        # Raised by the native flush, once the table of credentials is built.
        lambda: freight.Outbox(str(tmp_path / "o.db")).flush(
            c, {5: {"pixel_id": "1", "access_token": "EAAB-SECRET"}}),  # type: ignore[dict-item]
    ]
    for call in calls:
        with pytest.raises(Exception) as e:
            call()
        assert leaked(e.value) == [], e.value


def test_outbox(sandbox: Sandbox, tmp_path: Any) -> None:
    outbox = freight.Outbox(str(tmp_path / "outbox.db"))
    evs = events(3, "outbox-py") + [{"event_name": "Lead", "event_time": int(time.time()),
                                     "action_source": "email", "user_data": {"em": "bad"}}]
    r = outbox.enqueue("shop", evs)
    assert (r["stored"], len(r["rejected"])) == (3, 1)
    assert outbox.enqueue("shop", evs)["duplicates"] == 3
    # A second advertiser whose credentials cannot be used holds back only its own events.
    assert outbox.enqueue("other", evs[:2])["stored"] == 2
    f = outbox.flush(client(sandbox), {"shop": {"pixel_id": "888", "access_token": TOKEN},
                                       "other": {"pixel_id": "888", "access_token": ""}})
    assert f["delivered"] == 3
    assert f["unresolved"] == ["other"] and [k for k, _ in f["invalid"]] == ["other"]
    f = outbox.flush(client(sandbox), {"other": {"access_token": "x"}})
    assert f["invalid"] == [["other", "pixel_id and access_token are required"]]
    # Entries that are not text, or not a mapping, are that key's problem alone.
    for bad in [{"pixel_id": "1", "access_token": 123}, ("1", "token"),
                {"pixel_id": "1", "access_token": "EAAB-SECRET\ud800"},
                {"pixel_id": "1", "access_token": TOKEN, "test_event_code": 5},
                {"pixel_id": "1", "access_token": TOKEN, "test_event_code": " "}]:
        assert outbox.enqueue("more", events(1, f"more-{len(repr(bad))}"))["stored"] == 1
        f = outbox.flush(client(sandbox), {"more": {"pixel_id": "888", "access_token": TOKEN},
                                           "other": bad})
        assert f["delivered"] == 1, f
        assert [k for k, _ in f["invalid"]] == ["other"], f
        assert "SECRET" not in repr(f)
    with pytest.raises(freight.ValidationError):
        outbox.list("failed", -1)
    assert outbox.stats()["pending"] == 2
    held = outbox.list("pending")
    assert [e["dest_key"] for e in held] == ["other", "other"]
    assert all(e["event"]["event_id"] and e["last_error"] is None for e in held)
    assert len(outbox.list("delivered", 1)) == 1
    assert outbox.requeue() == 0
    assert outbox.resume("shop") is False, "neither paused nor throttled"
    with pytest.raises(freight.FreightError, match="key is empty"):
        outbox.requeue("")
    with pytest.raises(freight.ValidationError):
        outbox.list("lost")
    assert len(sandbox.get("/__sandbox/events")) == 8
    assert "sandbox-token" not in repr(outbox)
