"""Checked by `mypy --strict` (not collected by pytest): the public API type-checks as used."""

from __future__ import annotations

from typing import List, Optional

import freight

maybe: Optional[str] = freight.normalize("em", "a@b.co", hash=True)
prepared: freight.Prepared = freight.prepare([{"event_name": "Lead"}], now=1, strict=False)
rejected: List[dict] = prepared.rejected  # type: ignore[type-arg]
body: bytes = freight.request_body([]).body
skipped: List[dict] = freight.request_body([]).skipped  # type: ignore[type-arg]
client = freight.Client(partner_agent="plx-1-2", timeout=1.5, max_retries=2)
report: freight.Report = client.send([], pixel_id="1", access_token="t")
ok: bool = report.ok
status: str = client.test_connection(pixel_id="1", access_token="t").status
try:
    report.raise_for_status()
except freight.AuthError as e:
    code: Optional[int] = e.code
except freight.FreightError:
    pass
