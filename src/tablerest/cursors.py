"""Keyset cursors: opaque, signed tokens that say where a page of one list ended.

A cursor is ``base64url(payload) "." base64url(tag)``: the payload is JSON naming the list
it was made for (its path), the sort (each column's name and direction, ended by the primary
key) and the last row's values of those columns; the tag is HMAC-SHA256 over the payload,
cut to 128 bits. A cursor that was altered, comes from another list or was made for another
sort is refused (400), so a client can only resume where a page really ended.

A body query (``QUERY``, ``FETCH``, ``POST .../query``) cannot be repeated by a GET of its
``next`` link unless the link carries the query: its ``next`` holds a *query token*, ``q.``
then the signed, compressed query body with its next page (a keyset cursor or an offset).
A GET of that link runs the same query again, so following ``next`` never changes the
result set. Tokens too are bound to their list.

Cursors are signed, not encrypted: their values are those of the last row the client was
sent (and, for a list ordered by a link table, when the link was made).

The key derives from the app's secret key (``TABLEREST_SECRET_KEY``). Without one, it is
random, made once per process: cursors then do not survive a restart and are not understood
by another process (another gunicorn worker), so set a secret key to serve more than one.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import enum
import hashlib
import hmac
import math
import secrets
import uuid
import zlib
from collections.abc import Sequence
from typing import Any

import orjson

from .errors import BadRequest, FieldError

VERSION = 1
#: Longer strings are not cursors this server made; refused before any decoding.
MAX_LENGTH = 4096
#: Query tokens carry a whole query body; longer ones are refused before decoding.
MAX_QUERY_LENGTH = 16384
QUERY_PREFIX = "q."
_PROCESS_KEY = secrets.token_bytes(32)
_TAMPERED = ("The cursor is not one this server issued: it was altered or truncated, or "
             "signed with another key (cursors do not outlive a server without a secret key).")

Sort = Sequence[tuple[str, bool]]


def _refuse(message: str) -> BadRequest:
    return BadRequest(message, [FieldError("cursor", message)])


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _encode(value: Any) -> Any:
    """A row value as JSON that decodes to the same Python value (plain values stay plain;
    the others become ``[tag, text]``)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else ["f", repr(value)]
    if isinstance(value, dt.datetime):
        return ["dt", value.isoformat()]
    if isinstance(value, dt.date):
        return ["d", value.isoformat()]
    if isinstance(value, dt.time):
        return ["t", value.isoformat()]
    if isinstance(value, decimal.Decimal):
        return ["n", str(value)]
    if isinstance(value, uuid.UUID):
        return ["u", str(value)]
    if isinstance(value, bytes | memoryview):
        return ["b", _b64(bytes(value))]
    if isinstance(value, dt.timedelta):
        return ["td", value.total_seconds()]
    if isinstance(value, enum.Enum):
        return ["e", value.name]
    raise TypeError(f"a cursor cannot hold a {type(value).__name__} value")


_DECODERS: dict[str, Any] = {
    "f": float, "dt": dt.datetime.fromisoformat, "d": dt.date.fromisoformat,
    "t": dt.time.fromisoformat, "n": decimal.Decimal, "u": uuid.UUID, "b": _unb64,
    "td": lambda seconds: dt.timedelta(seconds=seconds), "e": str,
}


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        tag, text = value
        return _DECODERS[tag](text)
    return value


def _shown(sort: Sort) -> str:
    return ", ".join(f"-{name}" if descending else name for name, descending in sort)


class Cursors:
    """Makes and reads the cursors of one app."""

    def __init__(self, secret_key: str | None) -> None:
        secret = _PROCESS_KEY if secret_key is None else secret_key.encode()
        self._key = hmac.new(secret, b"tablerest.cursor", hashlib.sha256).digest()

    def _tag(self, payload: bytes) -> bytes:
        return hmac.digest(self._key, payload, "sha256")[:16]

    def dump(self, list_id: str, sort: Sort, values: Sequence[Any]) -> str:
        """The cursor after the row whose sort columns hold ``values``."""
        body = orjson.dumps([VERSION, list_id, [_shown([key]) for key in sort],
                             [_encode(value) for value in values]])
        payload = _b64(body).encode("ascii")
        return f"{payload.decode('ascii')}.{_b64(self._tag(payload))}"

    def dump_query(self, list_id: str, body: dict[str, Any]) -> str:
        """A query token: ``body`` (a query body with its next page) for the list ``list_id``."""
        payload = _b64(zlib.compress(orjson.dumps([VERSION, list_id, body]), 6))
        return f"{QUERY_PREFIX}{payload}.{_b64(self._tag(payload.encode('ascii')))}"

    def load_query(self, token: str, list_id: str) -> dict[str, Any]:
        """The query body a query token carries; 400 unless made here for ``list_id``."""
        payload, dot, tag = token.removeprefix(QUERY_PREFIX).partition(".")
        if not dot or len(token) > MAX_QUERY_LENGTH:
            raise _refuse(_TAMPERED)
        try:
            valid = hmac.compare_digest(_unb64(tag), self._tag(payload.encode("ascii")))
            version, made_for, body = orjson.loads(zlib.decompress(_unb64(payload))) \
                if valid else (None, None, None)
        except (binascii.Error, UnicodeEncodeError, ValueError, TypeError, zlib.error):
            raise _refuse(_TAMPERED) from None
        if version != VERSION or not isinstance(body, dict):
            raise _refuse(_TAMPERED)
        if made_for != list_id:
            raise _refuse(f"The cursor belongs to another list ({made_for!r}), not to "
                          f"{list_id!r}.")
        return body

    def load(self, cursor: str, list_id: str, sort: Sort) -> list[Any]:
        """The values ``cursor`` holds; 400 unless this app made it, for this list and sort."""
        payload, dot, tag = cursor.partition(".")
        if not dot or len(cursor) > MAX_LENGTH:
            raise _refuse(_TAMPERED)
        try:
            given = _unb64(tag)
            expected = self._tag(payload.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise _refuse(_TAMPERED) from None
        if not hmac.compare_digest(given, expected):
            raise _refuse(_TAMPERED)
        try:
            version, made_for, made_sort, raw = orjson.loads(_unb64(payload))
            values = [_decode(value) for value in raw]
        except (ValueError, TypeError, KeyError, binascii.Error):
            raise _refuse(_TAMPERED) from None
        if version != VERSION:
            raise _refuse(_TAMPERED)
        if made_for != list_id:
            raise _refuse(f"The cursor belongs to another list ({made_for!r}), not to "
                          f"{list_id!r}.")
        wanted = [_shown([key]) for key in sort]
        if made_sort != wanted or len(values) != len(wanted):
            raise _refuse(f"The cursor was made for the sort {', '.join(made_sort)!r}; this "
                          f"request sorts by {', '.join(wanted)!r}. Keep the sort of the request "
                          "that returned the cursor.")
        return values
