"""Type stubs of the native module. Use the typed wrappers of ``freight`` instead."""

from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

# The native functions read a list or a tuple (freight.__init__ turns other iterables into one).
_Events = Union[List[Dict[str, Any]], Tuple[Dict[str, Any], ...]]

__version__: str

def normalize(
    field: str, value: str, options_json: Optional[str] = None
) -> Tuple[Optional[str], Optional[str], Optional[str]]: ...
def prepare(
    events: _Events,
    options_json: Optional[str] = None,
    now: Optional[int] = None,
) -> Dict[str, Any]: ...
def request_body(
    events: _Events,
    options_json: Optional[str] = None,
    now: Optional[int] = None,
    fields_json: Optional[str] = None,
) -> Tuple[bytes, int, List[Dict[str, Any]], List[Dict[str, Any]]]: ...

def partner_agent(partner: str, platform_version: str, app_version: str) -> str: ...
def event_id_for(secret: bytes, pixel_id: str, event_name: str, key: str) -> str: ...
def event_id_random() -> str: ...
def click_ids(
    host: str,
    url: Optional[str] = None,
    referrer: Optional[str] = None,
    fbc_cookie: Optional[str] = None,
    fbp_cookie: Optional[str] = None,
    now_ms: Optional[int] = None,
    random: Optional[int] = None,
) -> Dict[str, Any]: ...

def segment(call: Dict[str, Any], options_json: Optional[str] = None) -> Dict[str, Any]: ...
def _copy_strings(on: bool) -> bool: ...  # tests: read strings as on Python 3.9

class _Client:
    def __init__(self, config_json: str) -> None: ...
    def send(
        self,
        events: _Events,
        pixel_id: str,
        access_token: str,
        test_event_code: Optional[str] = None,
        app_secret: Optional[str] = None,
    ) -> Dict[str, Any]: ...
    def test_connection(
        self,
        pixel_id: str,
        access_token: str,
        test_event_code: Optional[str] = None,
        app_secret: Optional[str] = None,
    ) -> Dict[str, Any]: ...

class _Outbox:
    def __init__(self, path: str, options_json: Optional[str] = None) -> None: ...
    def enqueue(self, key: str, events: _Events) -> Dict[str, Any]: ...
    def flush(
        self,
        client: _Client,
        destinations: Mapping[
            str,
            Union[str, Tuple[Optional[str], Optional[str], Optional[str], Optional[str]]],
        ],
    ) -> Dict[str, Any]: ...
    def stats(self) -> Dict[str, Any]: ...
    def resume(self, key: str) -> bool: ...
    def requeue(self, key: Optional[str] = None, expired: bool = False) -> int: ...
    def list(self, state: str, limit: int) -> List[Dict[str, Any]]: ...
