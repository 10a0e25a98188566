"""Reading requests and building responses: JSON bodies, content negotiation, ETags."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from flask import Request, Response

from .errors import BadRequest, NotAcceptable, PayloadTooLarge, UnsupportedMediaType

JSON = "application/json"
#: The charsets a JSON body may declare: JSON is UTF-8 (RFC 8259), and ASCII is UTF-8.
JSON_CHARSETS = frozenset({"utf-8", "us-ascii"})


def read_json(request: Request, max_bytes: int) -> Any:
    """The request's JSON body: 415 if it is not JSON in UTF-8, 413 if too large, 400 if
    malformed."""
    mimetype = request.mimetype
    if mimetype != JSON and not (mimetype.startswith("application/") and
                                 mimetype.endswith("+json")):
        shown = mimetype or "no content type"
        raise UnsupportedMediaType(
            f"The body must be JSON sent as 'Content-Type: application/json', got {shown!r}."
        )
    charset = request.mimetype_params.get("charset")
    if charset is not None and charset.strip().lower() not in JSON_CHARSETS:
        raise UnsupportedMediaType(
            f"The body must be JSON in UTF-8, as RFC 8259 requires; the request declares the "
            f"charset {charset!r}. Send it encoded as UTF-8, with 'charset=utf-8' or no charset."
        )
    length = request.content_length
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"The body is {length} bytes; the limit is {max_bytes} bytes.")
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"The body is over the limit of {max_bytes} bytes.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.") from None


def wants_json(request: Request) -> None:
    """406 unless the client accepts JSON (no Accept header means anything goes)."""
    accept = request.headers.get("Accept")
    if not accept or "*/*" in accept or "application/json" in accept:
        return
    if request.accept_mimetypes.best_match([JSON, "application/problem+json"]) is None:
        raise NotAcceptable(
            f"This URL answers with application/json; the request accepts only {accept!r}."
        )


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def json_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None,
                  ) -> Response:
    response = Response(body, status=status, mimetype=JSON)
    if headers:
        response.headers.update(headers)
    return response
