"""Freight's exceptions. Messages never contain an access token, an app secret or a
customer's data: they name the field and the fix."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

__all__ = [
    "FreightError",
    "ValidationError",
    "ConfigError",
    "TransportError",
    "ApiError",
    "AuthError",
    "FreightWarning",
]

Problem = Dict[str, str]


class FreightError(Exception):
    """The root of Freight's exceptions."""


class ValidationError(FreightError, ValueError):
    """Bad input: an unusable value, or events Freight rejected. ``errors()`` lists every
    problem as ``{"type", "loc", "msg"}``: a stable slug, where, and how to fix it."""

    def __init__(
        self,
        message: str,
        errors: Iterable[Union[Problem, Tuple[str, str, str]]] = (),
    ) -> None:
        super().__init__(message)
        self._errors: List[Problem] = [
            e if isinstance(e, dict) else {"type": e[0], "loc": e[1], "msg": e[2]} for e in errors
        ]

    def errors(self) -> List[Problem]:
        return [dict(e) for e in self._errors]


class ConfigError(FreightError, ValueError):
    """An invalid client configuration or destination (URL, version, pixel id, token)."""


class TransportError(FreightError):
    """Meta could not be reached: network errors, timeouts, unreadable responses."""


class ApiError(FreightError):
    """Meta answered with an error. Decide on ``kind``, ``code`` and ``subcode``, never on
    the message, which Meta localizes."""

    def __init__(self, error: Dict[str, Any]) -> None:
        self.error = dict(error)
        self.kind: str = str(error.get("kind", ""))
        self.http_status: Optional[int] = error.get("http_status")
        self.code: Optional[int] = error.get("code")
        self.subcode: Optional[int] = error.get("subcode")
        self.fbtrace_id: Optional[str] = error.get("fbtrace_id")
        detail = f"code {self.code}" + (f"/{self.subcode}" if self.subcode is not None else "")
        message = error.get("message")
        super().__init__(
            f"{self.kind} (HTTP {self.http_status}, {detail})" + (f": {message}" if message else "")
        )

    def __reduce__(self) -> Tuple[Any, Tuple[Dict[str, Any]]]:
        # Copied and pickled (multiprocessing, error reporters) from the error itself, which
        # is what the constructor takes; the message is derived from it.
        return (type(self), (self.error,))


class AuthError(ApiError):
    """The token is invalid or expired, lacks permission, or cannot see the pixel."""


class FreightWarning(UserWarning):
    """A value was used with a caveat, e.g. a phone number without a country code, sent as
    its digits (:func:`freight.normalize`; events carry theirs in ``warnings``)."""
