"""Response shaping: rows in the shape ``select`` asked for, the media types PostgREST
answers with, CSV as PostgREST writes it, and ``Content-Range``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from flask import Request, current_app

from ..representations import neutralise
from ..serialization import dumps
from .errors import PostgrestError
from .parse import Shape

JSON = "application/json"
OBJECT = "application/vnd.pgrst.object+json"
ARRAY = "application/vnd.pgrst.array+json"
CSV = "text/csv"
#: What each media type is answered as.
OFFERED = {JSON: "json", ARRAY: "json", OBJECT: "object", CSV: "csv"}
#: Characters that make PostgREST quote a CSV field.
_CSV_SPECIAL = frozenset(',"()\\')


def project(item: dict[str, Any], shape: Shape) -> dict[str, Any]:
    """``item`` (a row with its includes) as ``shape`` shows it: output keys, in order."""
    out = {key: item[name] for key, name in shape.columns}
    for embed in shape.embeds:
        value = item.get(embed.slot)
        if embed.spread:
            for key, name in embed.shape.columns:
                out[key] = None if value is None else value[name]
            continue
        if embed.key is None:
            continue  # rel(): filtering only, no key
        if isinstance(value, list):
            out[embed.key] = [project(each, embed.shape) for each in value]
        else:
            out[embed.key] = None if value is None else project(value, embed.shape)
    return out


def keys_of(shape: Shape) -> list[str]:
    """The output keys of ``shape``, in order (CSV's header)."""
    keys = [key for key, _ in shape.columns]
    for embed in shape.embeds:
        if embed.spread:
            keys += [key for key, _ in embed.shape.columns]
        elif embed.key is not None:
            keys.append(embed.key)
    return list(dict.fromkeys(keys))


def media_type(request: Request) -> str:
    """``json``, ``object`` or ``csv``: what the request accepts; 406 ``PGRST107``."""
    accept = request.headers.get("Accept", "").strip()
    if not accept or accept in ("*/*", JSON):
        return "json"
    best = request.accept_mimetypes.best_match(list(OFFERED))
    if best is None:
        raise PostgrestError(406, "PGRST107", "None of these media types are available: "
                                              + accept)
    return OFFERED[best]


def content_type(kind: str) -> str:
    mimetype = {"json": JSON, "object": OBJECT, "csv": CSV}[kind]
    return f"{mimetype}; charset=utf-8"


def singular(items: Sequence[Any], count: int | None = None) -> Any:
    """The one item of ``items``; 406 ``PGRST116`` when there are more or none."""
    if len(items) == 1:
        return items[0]
    total = len(items) if count is None else count
    raise PostgrestError(406, "PGRST116", "Cannot coerce the result to a single JSON object",
                         f"The result contains {total} rows")


def content_range(lower: int, rows: int, total: int | None) -> str:
    """``lower-upper/total``: ``*`` for an empty range, and for a total not counted."""
    upper = lower + rows - 1
    shown = f"{lower}-{upper}" if total != 0 and lower <= upper else "*"
    return f"{shown}/{'*' if total is None else total}"


def csv_text(keys: Sequence[str], items: Sequence[dict[str, Any]]) -> bytes:
    """CSV as PostgREST writes it: a header line and ``\\n``-joined rows, no final newline;
    NULL is an empty field; a field that is empty or holds ``,"()\\`` or white space is
    quoted. Text a spreadsheet would run as a formula is neutralised as tablerest's own
    CSV does (``TABLEREST_CSV_ESCAPE_FORMULAS``)."""
    escape = bool(current_app.extensions["tablerest"].settings.csv_escape_formulas)
    lines = [",".join(_csv_field(key, escape) for key in keys)]
    lines += [",".join(_csv_field(item.get(key), escape) for key in keys) for item in items]
    return "\n".join(lines).encode("utf-8")


def _csv_field(value: Any, escape: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        text = neutralise(value) if escape else value
    else:
        encoded = dumps(value).decode("utf-8")
        # Datetimes, UUIDs and decimals as JSON shows them; numbers are never formulas.
        text = orjson.loads(encoded) if encoded.startswith('"') else encoded
    if text == "" or any(char in _CSV_SPECIAL or char.isspace() for char in text):
        return '"' + text.replace('"', '""') + '"'
    return text
