"""Freight: Meta's Conversions API from Python — normalize, hash, validate and send events.

Events are plain dicts in the Conversions API JSON shape; customer information (``user_data``)
may be plain text: Freight normalizes and SHA-256-hashes it exactly as Meta requires.

>>> import freight
>>> freight.normalize("ph", "020 7946 0958", default_country="gb")
'442079460958'
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from . import _freight
from .errors import (
    ApiError,
    AuthError,
    ConfigError,
    FreightError,
    FreightWarning,
    TransportError,
    ValidationError,
)

__all__ = [
    "__version__",
    "normalize",
    "prepare",
    "request_body",
    "Prepared",
    "partner_agent",
    "event_id",
    "click_ids",
    "segment",
    "RequestBody",
    "Client",
    "Outbox",
    "Report",
    "ConnectionTest",
    "FreightError",
    "ValidationError",
    "ConfigError",
    "TransportError",
    "ApiError",
    "AuthError",
    "FreightWarning",
]

__version__: str = _freight.__version__

#: An event: a ``dict`` in the Conversions API's JSON shape (other mappings are refused, with
#: a :class:`ValidationError` naming the place).
Event = Dict[str, Any]


def _event_list(events: Iterable[Event]) -> Union[List[Event], Tuple[Event, ...]]:
    """Events as the native module reads them: a list or tuple as is, any other iterable
    (a generator, a ``UserList``) read into a list. One event on its own (a mapping) and text
    are refused: iterating them would give keys and characters, not events."""
    if isinstance(events, (list, tuple)):
        return events
    if not isinstance(events, (Mapping, str, bytes, bytearray)):
        try:
            return list(events)
        except TypeError:
            pass
    raise ValidationError(
        "events: must be a list of event dicts",
        [("invalid_type", "events", "must be a list of event dicts")],
    )
Problem = Dict[str, str]


def _text_problem(name: str, value: Any) -> Optional[str]:
    """Why ``value`` cannot be passed on as text (``None`` can: it means absent), or ``None``.
    It returns instead of raising: the caller raises from a frame that holds the value under
    its own name only (a token must not sit in a traceback's locals as ``value``, where
    error reporters that scrub ``*token*`` names miss it), and no exception holding it is
    chained."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return None
        except UnicodeEncodeError:
            pass
    return f"{name} must be text (a str without lone surrogates)"


def _destination_problem(access_token: Any, test_event_code: Any, app_secret: Any) -> Optional[str]:
    """What is wrong with the credentials of a send or a connection test, or ``None``."""
    if access_token is None:
        return "access_token must be text (a str without lone surrogates)"
    problem = (
        _text_problem("access_token", access_token)
        or _text_problem("test_event_code", test_event_code)
        or _text_problem("app_secret", app_secret)
    )
    if problem is None and test_event_code is not None and not test_event_code.strip():
        problem = "test_event_code must be a non-blank string; leave it out for production"
    return problem


def _flush_entry(d: Any) -> Union[str, Tuple[Optional[str], Any, Any, Any]]:
    """One destination of :meth:`Outbox.flush` as the native module takes it, or why it cannot
    be used (never its values)."""
    if not isinstance(d, Mapping):
        return "must be a mapping of pixel_id, access_token, test_event_code and app_secret"
    problem = (
        _text_problem("access_token", d.get("access_token"))
        or _text_problem("test_event_code", d.get("test_event_code"))
        or _text_problem("app_secret", d.get("app_secret"))
    )
    code = d.get("test_event_code")
    if problem is None and code is not None and not code.strip():
        # As in a send: a blank code would send test events as real ones.
        problem = "test_event_code must be a non-blank string; leave it out for production"
    if problem is not None:
        return problem
    pixel_id = d.get("pixel_id")
    return (
        None if pixel_id is None else str(pixel_id),
        d.get("access_token"),
        d.get("test_event_code"),
        d.get("app_secret"),
    )


_AUTH_KINDS = {"invalid_token", "no_permission", "pixel_not_found"}


def _options(
    default_country: Optional[str] = None,
    date_order: Optional[str] = None,
    hash_external_id: Optional[bool] = None,
    md5_passthrough: Optional[bool] = None,
) -> Optional[str]:
    opts: Dict[str, Any] = {}
    if default_country is not None:
        opts["default_country"] = default_country
    if date_order is not None:
        opts["date_order"] = date_order
    if hash_external_id is not None:
        opts["hash_external_id"] = hash_external_id
    if md5_passthrough is not None:
        opts["md5_passthrough"] = md5_passthrough
    return json.dumps(opts) if opts else None


def normalize(
    field: str,
    value: str,
    *,
    hash: bool = False,
    default_country: Optional[str] = None,
    date_order: Optional[str] = None,
    hash_external_id: Optional[bool] = None,
    md5_passthrough: Optional[bool] = None,
) -> Optional[str]:
    """Normalizes one value of a ``user_data`` key (``"em"``, ``"ph"``, ``"fn"``, …); with
    ``hash=True`` returns what goes on the wire (the SHA-256). ``None`` when the value is empty
    (it is dropped, never hashed). Raises :class:`ValidationError` for an unusable value, and
    warns (:class:`FreightWarning`, e.g. ``"ph: phone_missing_country_code"``) of a caveat."""
    normalized, wire, warning = _freight.normalize(
        field, value, _options(default_country, date_order, hash_external_id, md5_passthrough)
    )
    if warning is not None and normalized is not None:
        warnings.warn(f"{field}: {warning}", FreightWarning, stacklevel=2)
    return wire if hash else normalized


class Prepared:
    """The outcome of :func:`prepare`: every input index is in ``events``, ``rejected`` or
    ``skipped``."""

    __slots__ = ("events", "rejected", "skipped")

    def __init__(self, data: Mapping[str, Any]) -> None:
        #: ``[{"index", "event", "warnings"}]``: wire-ready events.
        self.events: List[Dict[str, Any]] = list(data["events"])
        #: ``[{"index", "errors", "warnings"}]``: events rejected locally, never sent.
        self.rejected: List[Dict[str, Any]] = list(data["rejected"])
        #: ``[{"index", "reason"}]``: events not to be sent (``"consent": "denied"``).
        self.skipped: List[Dict[str, Any]] = list(data.get("skipped", []))

    @property
    def warnings(self) -> List[Dict[str, Any]]:
        """``[{"index", "warnings"}]`` for every event with warnings, sent or not."""
        out = [{"index": e["index"], "warnings": e["warnings"]} for e in self.events if e["warnings"]]
        out += [{"index": r["index"], "warnings": r["warnings"]} for r in self.rejected if r["warnings"]]
        return sorted(out, key=lambda w: w["index"])

    def raise_for_rejections(self) -> None:
        """Raises :class:`ValidationError` listing every problem of every rejected event."""
        if self.rejected:
            errors = [p for r in self.rejected for p in r["errors"]]
            raise ValidationError(
                f"{len(self.rejected)} event(s) rejected: " + "; ".join(
                    f"{p['loc']}: {p['msg']} ({p['type']})" for p in errors[:5]
                ),
                errors,
            )

    def __repr__(self) -> str:
        return (
            f"<Prepared events={len(self.events)} rejected={len(self.rejected)} "
            f"skipped={len(self.skipped)}>"
        )


def prepare(
    events: Iterable[Event],
    *,
    now: Optional[int] = None,
    strict: bool = False,
    default_country: Optional[str] = None,
    date_order: Optional[str] = None,
    hash_external_id: Optional[bool] = None,
    md5_passthrough: Optional[bool] = None,
) -> Prepared:
    """Normalizes, hashes and validates events without sending them. ``now`` (Unix seconds)
    fixes the clock. With ``strict=True`` any rejected event raises :class:`ValidationError`."""
    prepared = Prepared(
        _freight.prepare(
            _event_list(events), _options(default_country, date_order, hash_external_id, md5_passthrough), now
        )
    )
    if strict:
        prepared.raise_for_rejections()
    return prepared


def partner_agent(partner: str, platform_version: str, app_version: str = "") -> str:
    """The documented ``partner_agent`` format ``pl<partner>-<platform version>-<app version>``
    (the partner name lowercased; without an app version, ``pl<partner>-<platform version>``)."""
    return _freight.partner_agent(partner, platform_version, app_version)


def event_id(
    key: Optional[str] = None,
    *,
    secret: Optional[bytes] = None,
    pixel_id: str = "",
    event_name: str = "",
) -> str:
    """An ``event_id`` shared by the browser pixel (``fbq('track', name, data, {eventID})``)
    and the server event, so Meta keeps one. Without ``key``: a random UUIDv4. With ``key``
    (an order id…) and the platform's ``secret``: a deterministic id, the same every time."""
    if key is None:
        return _freight.event_id_random()
    if not secret:
        msg = "a deterministic event_id needs the platform's secret"
        raise ValidationError(f"secret: {msg}", [("missing_secret", "secret", msg)])
    return _freight.event_id_for(secret, pixel_id, event_name, key)


def click_ids(
    host: str,
    *,
    url: Optional[str] = None,
    referrer: Optional[str] = None,
    fbc_cookie: Optional[str] = None,
    fbp_cookie: Optional[str] = None,
    now_ms: Optional[int] = None,
    random: Optional[int] = None,
) -> Dict[str, Any]:
    """``fbc``/``fbp`` for a page request by the rules of Meta's parameter builder:
    ``{"fbc": …|None, "fbp": …, "cookies_to_set": [{"name", "value", "domain", "max_age"}]}``.
    Set the returned cookies on the response (90 days, on the registrable domain)."""
    return _freight.click_ids(host, url, referrer, fbc_cookie, fbp_cookie, now_ms, random)


def segment(
    call: Dict[str, Any],
    *,
    event_map: Optional[Mapping[str, str]] = None,
    category_map: Optional[Mapping[str, str]] = None,
    value_field: Optional[str] = None,
    external_id_field: Optional[str] = None,
    action_source: Optional[str] = None,
    default_currency: Optional[str] = None,
) -> Dict[str, Any]:
    """Maps a CDP (Segment) track call to a Conversions API event with plain-text customer
    data, ready for :func:`prepare` or :meth:`Client.send`. Raises :class:`ValidationError`
    (with ``errors()``) for a call that cannot be mapped."""
    opts: Dict[str, Any] = {}
    for key, value in (("event_map", event_map), ("category_map", category_map),
                       ("value_field", value_field), ("external_id_field", external_id_field),
                       ("action_source", action_source), ("default_currency", default_currency)):
        if value is not None:
            opts[key] = dict(value) if isinstance(value, Mapping) else value
    return _freight.segment(call, json.dumps(opts) if opts else None)


class RequestBody:
    """A ready JSON request body (``body``) for one request, for your own HTTP client: POST it
    to ``https://graph.facebook.com/{version}/{pixel_id}/events`` with the token in an
    ``Authorization: Bearer`` header. ``count`` events are in it; every other input event is in
    ``rejected`` (local problems) or ``skipped`` (``"consent": "denied"``: never sent). With
    ``count == 0`` there is nothing to send (Meta refuses an empty ``data``)."""

    __slots__ = ("body", "count", "rejected", "skipped")

    def __init__(self, body: bytes, count: int, rejected: List[Dict[str, Any]],
                 skipped: List[Dict[str, Any]]) -> None:
        self.body = body
        self.count = count
        self.rejected = rejected
        self.skipped = skipped

    def __repr__(self) -> str:
        return (f"<RequestBody {len(self.body)} bytes, {self.count} events, "
                f"{len(self.rejected)} rejected, {len(self.skipped)} skipped>")


def request_body(
    events: Iterable[Event],
    *,
    now: Optional[int] = None,
    test_event_code: Optional[str] = None,
    partner_agent: Optional[str] = None,
    default_country: Optional[str] = None,
    date_order: Optional[str] = None,
    hash_external_id: Optional[bool] = None,
    md5_passthrough: Optional[bool] = None,
) -> RequestBody:
    """Prepares up to 1000 events straight into the JSON body of one request."""
    fields: Dict[str, str] = {}
    if test_event_code is not None:
        fields["test_event_code"] = test_event_code
    if partner_agent is not None:
        fields["partner_agent"] = partner_agent
    body, count, rejected, skipped = _freight.request_body(
        _event_list(events),
        _options(default_country, date_order, hash_external_id, md5_passthrough),
        now,
        json.dumps(fields) if fields else None,
    )
    return RequestBody(body, count, rejected, skipped)


class Report:
    """What happened to every event of a send: each input index is in exactly one of
    ``delivered``, ``rejected`` (local problems), ``failed`` (with ``error`` and the wire
    ``event`` to store and send again) or ``skipped``."""

    __slots__ = ("data",)

    def __init__(self, data: Dict[str, Any]) -> None:
        self.data = data

    @property
    def counts(self) -> Dict[str, int]:
        return dict(self.data["counts"])

    @property
    def delivered(self) -> List[Dict[str, Any]]:
        return list(self.data["delivered"])

    @property
    def rejected(self) -> List[Dict[str, Any]]:
        return list(self.data["rejected"])

    @property
    def failed(self) -> List[Dict[str, Any]]:
        return list(self.data["failed"])

    @property
    def skipped(self) -> List[Dict[str, Any]]:
        return list(self.data["skipped"])

    @property
    def warnings(self) -> List[Dict[str, Any]]:
        return list(self.data["warnings"])

    @property
    def requests(self) -> List[Dict[str, Any]]:
        return list(self.data["requests"])

    @property
    def ok(self) -> bool:
        """True when nothing was rejected or failed: every event was delivered, or skipped as
        asked (consent denied). :meth:`raise_for_status` raises exactly when this is false."""
        c = self.data["counts"]
        return bool(c["delivered"] + c["skipped"] == c["input"])

    def to_dict(self) -> Dict[str, Any]:
        copy: Dict[str, Any] = json.loads(json.dumps(self.data))  # a deep copy
        return copy

    def raise_for_status(self) -> None:
        """Raises for the first problem: :class:`ValidationError` for rejected events,
        :class:`AuthError` for token/permission/pixel errors, :class:`TransportError` when Meta
        was not reached, :class:`ApiError` for any other error Meta returned (``kind``
        ``"config"``: the request itself is wrong, e.g. its API version or appsecret_proof)."""
        if self.data["rejected"]:
            errors = [p for r in self.data["rejected"] for p in r["errors"]]
            raise ValidationError(f"{len(self.data['rejected'])} event(s) rejected", errors)
        if self.data["failed"]:
            error = self.data["failed"][0]["error"]
            kind = error.get("kind")
            if kind == "network":
                raise TransportError(f"Meta could not be reached: {error.get('message', '')}")
            if kind in _AUTH_KINDS:
                raise AuthError(error)
            raise ApiError(error)

    def __repr__(self) -> str:
        c = self.data["counts"]
        return (
            f"<Report pixel_id={self.data['pixel_id']!r} input={c['input']} "
            f"delivered={c['delivered']} rejected={c['rejected']} failed={c['failed']} "
            f"skipped={c['skipped']}>"
        )


class ConnectionTest:
    """The answer of :meth:`Client.test_connection`."""

    __slots__ = ("status", "error", "fbtrace_id")

    def __init__(self, data: Mapping[str, Any]) -> None:
        #: ``ok``, ``invalid_token``, ``no_permission``, ``pixel_not_found``, ``throttled``
        #: or ``unreachable``.
        self.status: str = data["status"]
        self.error: Optional[Dict[str, Any]] = data.get("error")
        self.fbtrace_id: Optional[str] = data.get("fbtrace_id")

    def __repr__(self) -> str:
        return f"<ConnectionTest status={self.status!r}>"


class Client:
    """A Conversions API client: one connection pool for any number of pixels, safe to share
    between threads (sends release the GIL). Each request carries only its own token.

    ``timeout`` is the wait for Meta's answer once a request is sent, in seconds (Meta advises
    1.5; uploading the batch is not counted, connecting may take up to 10 s, and a batch with
    its retries ends within 15 minutes); ``max_retries`` the retries after the first
    attempt."""

    __slots__ = ("_native",)

    def __init__(
        self,
        *,
        partner_agent: Optional[str] = None,
        graph_url: str = "https://graph.facebook.com",
        api_version: str = "v25.0",
        timeout: float = 1.5,
        max_retries: int = 4,
        batch_size: int = 1000,
        bisect: bool = True,
        default_country: Optional[str] = None,
        date_order: Optional[str] = None,
        hash_external_id: Optional[bool] = None,
        retry: Optional[Mapping[str, int]] = None,
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise ConfigError("timeout must be a number of seconds")
        if not math.isfinite(timeout) or timeout <= 0:
            raise ConfigError("timeout must be a positive, finite number of seconds")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError("max_retries must be an int, 0 or more")
        config: Dict[str, Any] = {
            "graph_url": graph_url,
            "api_version": api_version,
            "partner_agent": partner_agent,
            "timeout_ms": max(1, int(timeout * 1000)),
            "batch_size": batch_size,
            "bisect": bisect,
            "retry": {"max_attempts": max_retries + 1, **(retry or {})},
        }
        opts = _options(default_country, date_order, hash_external_id)
        if opts:
            config["normalize"] = json.loads(opts)
        self._native = _freight._Client(json.dumps(config))

    def send(
        self,
        events: Iterable[Event],
        *,
        pixel_id: str,
        access_token: str,
        test_event_code: Optional[str] = None,
        app_secret: Optional[str] = None,
    ) -> Report:
        """Prepares and sends ``events`` to one pixel; blocks until every event is delivered,
        rejected, failed or skipped, and says which in the :class:`Report`."""
        # The credentials are passed on as they are: no copy of them in this frame's locals.
        problem = _destination_problem(access_token, test_event_code, app_secret)
        if problem is not None:
            raise ConfigError(problem)
        return Report(
            self._native.send(
                _event_list(events), str(pixel_id), access_token, test_event_code, app_secret
            )
        )

    def test_connection(
        self,
        *,
        pixel_id: str,
        access_token: str,
        test_event_code: Optional[str] = None,
        app_secret: Optional[str] = None,
    ) -> ConnectionTest:
        """Sends one test event and says whether the connection works."""
        problem = _destination_problem(access_token, test_event_code, app_secret)
        if problem is not None:
            raise ConfigError(problem)
        return ConnectionTest(
            self._native.test_connection(str(pixel_id), access_token, test_event_code, app_secret)
        )

    def __repr__(self) -> str:
        return repr(self._native)


class Outbox:
    """A durable local outbox (one SQLite file): :meth:`enqueue` in a request handler (it
    validates and stores, well under a millisecond), :meth:`flush` from a worker. Tokens are
    never stored: :meth:`flush` receives them per destination key."""

    __slots__ = ("_native",)

    def __init__(self, path: str, *, default_country: Optional[str] = None,
                 date_order: Optional[str] = None) -> None:
        self._native = _freight._Outbox(str(path), _options(default_country, date_order))

    def enqueue(self, key: str, events: Iterable[Event]) -> Dict[str, Any]:
        """Stores events for a destination key: ``{"stored", "duplicates", "rejected",
        "skipped", "warnings"}``; rejected events come back at once and are never stored. An
        event without ``event_id`` is given one derived from its content."""
        return self._native.enqueue(key, _event_list(events))

    def flush(self, client: Client, destinations: Mapping[str, Mapping[str, str]]) -> Dict[str, Any]:
        """Sends due events. ``destinations`` maps keys to ``{"pixel_id", "access_token",
        "test_event_code"?, "app_secret"?}``; other keys stay pending (``unresolved``). A key
        whose credentials cannot be used (missing, an empty token, not text…) holds back only
        its own events: it is listed in ``unresolved`` too, and in ``invalid`` with the reason
        (never the value). The report: ``{"requests",
        "delivered", "failed", "retried", "expired", "pruned", "paused", "unresolved",
        "invalid", "stopped", "interrupted"}``: ``stopped`` is the storage error that ended
        the flush early, if one did (the counts are what it did before). Ctrl-C
        (``KeyboardInterrupt``, raised once the request in flight is answered and recorded)
        stops the flush between requests and ends a retry wait; the events not delivered
        stay pending."""
        # Built in the call: no local of this frame but the caller's own `destinations` holds
        # the tokens (see _text_problem).
        return self._native.flush(
            client._native, {key: _flush_entry(d) for key, d in destinations.items()}
        )

    def stats(self) -> Dict[str, Any]:
        """``{"pending", "delivered", "failed", "expired", "paused"}``."""
        return self._native.stats()

    def resume(self, key: str) -> bool:
        """Lifts the circuit breaker (a pause) or a throttle of a destination key; ``False``
        when it had neither (a mistyped key)."""
        return self._native.resume(key)

    def requeue(self, key: Optional[str] = None, *, expired: bool = False) -> int:
        """Re-queues failed (and with ``expired=True`` expired) events; returns how many."""
        return self._native.requeue(key, expired)

    def list(self, state: str, limit: int = 100) -> List[Dict[str, Any]]:
        """Stored events in ``state`` (``"pending"``, ``"delivered"``, ``"failed"``,
        ``"expired"``), oldest first: ``{"id", "dest_key", "state", "attempts", "last_error",
        "event"}`` (``event`` is ``None`` when the stored event cannot be read)."""
        return self._native.list(state, limit)

    def __repr__(self) -> str:
        s = self.stats()
        return f"<Outbox pending={s['pending']} delivered={s['delivered']} failed={s['failed']}>"
