"""The self-contained HTML page of `charrnn viz`: template, style and script (charrnn/data/viz.*) inlined
with the payload of `viz.to_payload`, so the file opens from disk with no network at all (its Content
Security Policy forbids every fetch).

    from charrnn.viz_page import build_page
    html = build_page(payload)
"""

from __future__ import annotations

import html
import json
import re
from functools import cache
from importlib import resources
from pathlib import Path

from .atomic import write_bytes_atomic

DEFAULT_MAX_MB = 5.0
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@cache
def _asset(name: str) -> str:
    return resources.files("charrnn").joinpath("data", name).read_text(encoding="utf-8")


def page_overhead() -> int:
    """Bytes of the page around the payload (template, style, script, title)."""
    return sum(len(_asset(name).encode()) for name in ("viz.html", "viz.css", "viz.js")) + 1000


def payload_budget(max_mb: float) -> int | None:
    """Bytes left for the payload in a page of at most `max_mb` megabytes (0: no limit)."""
    return None if max_mb <= 0 else int(max_mb * 1e6) - page_overhead()


def payload_json(payload: dict) -> str:
    """The payload as compact JSON (what `--json` prints)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def build_page(payload: dict) -> str:
    """The page as one string. The JSON goes inside a <script type="application/json"> block, so every
    "<" is escaped (no "</script>" or "<!--" can end it early)."""
    title = f"charrnn viz: {payload['source']} under {payload['model']['name']}"
    parts = {
        "title": html.escape(title),
        "style": _asset("viz.css"),
        "script": _asset("viz.js"),
        "payload": payload_json(payload).replace("<", "\\u003c"),
    }
    # one pass over the template only: text inserted for one placeholder is never scanned for another
    return PLACEHOLDER.sub(lambda match: parts[match.group(1)], _asset("viz.html"))


def write_page(path: str | Path, payload: dict) -> int:
    """Write the page atomically; returns its size in bytes."""
    data = build_page(payload).encode("utf-8")
    write_bytes_atomic(path, data)
    return len(data)
