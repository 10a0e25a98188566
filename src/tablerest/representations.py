"""Content negotiation for lists, and the streamed representations: CSV and NDJSON.

JSON is the default (no ``Accept``, ``*/*``, ``application/json``); a list also answers
``text/csv`` and ``application/x-ndjson``, streamed: rows are fetched in batches as the
client reads, so memory stays flat whatever the size of the export, and a streamed list
without ``limit`` returns every matching row. An ``Accept`` header that matches none of
these is a 406.

HTML (``tablerest.html`` registers it with :func:`offer_pages`) is chosen only when the
client prefers ``text/html`` strictly over JSON, as browsers do; ``*/*``, ties and no
``Accept`` get JSON. ``?__as__=html|json|csv|ndjson`` overrides ``Accept``: no filter can be
named so (a filter follows at most one relation, ``a__b__op``), so it never shadows a field.

CSV follows RFC 4180 (the ``csv`` module's quoting, CRLF line ends): a header row of field
names, then one row per item; null is an empty field, booleans are ``true``/``false``, and
datetimes, dates, UUIDs and decimals are written as in JSON. NDJSON is one JSON object per
line, exactly the items of the JSON list.

Spreadsheets run a cell that starts with ``=``, ``+``, ``-``, ``@``, tab or CR as a formula
(CSV injection). By default such a text cell, the header included, is written with a leading
``'``, as OWASP recommends; numbers (integers, floats, decimals) are never changed: ``-5``
is a number, not a formula. ``TABLEREST_CSV_ESCAPE_FORMULAS=false`` turns this off for
machine consumers, who then get every text exactly as stored.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Request, current_app, has_app_context

from .errors import BadRequest, FieldError, NotAcceptable
from .serialization import dumps

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"

#: Renders the rows of a list, given its field names, as chunks of bytes.
Render = Callable[[Sequence[str], Iterable[list[tuple[Any, ...]]]], Iterator[bytes]]


HTML = "text/html"
#: The query parameter that overrides ``Accept`` (see the module docstring).
FORMAT_PARAMETER = "__as__"
FORMATS = {"json": JSON, "html": HTML, "csv": "text/csv", "ndjson": "application/x-ndjson"}


@dataclass(frozen=True)
class Representation:
    mimetype: str
    render: Render | None = None  # None: the JSON envelope, built by the views
    #: HTML: the page renderer the views hand the envelope or the item to.
    pages: Any = None

    @property
    def streamed(self) -> bool:
        return self.render is not None


JSON_LIST = Representation(JSON)
STREAMED: dict[str, Representation] = {}
#: The HTML representation, once ``tablerest.html`` registered its pages.
PAGES: list[Representation] = []


def offer_pages(pages: Any) -> None:
    """Offer HTML pages rendered by ``pages``; a second registration is refused."""
    if PAGES:
        raise ValueError("HTML pages are already registered.")
    PAGES.append(Representation(HTML, pages=pages))


def requested_format(req: Request) -> str | None:
    """The media type ``?__as__=`` asks for, or None; 400 for an unknown one."""
    if FORMAT_PARAMETER not in req.environ.get("QUERY_STRING", ""):
        return None  # the common case, without parsing the query string
    values = req.args.getlist(FORMAT_PARAMETER)
    if not values:
        return None
    if len(values) > 1 or values[0] not in FORMATS:
        raise BadRequest(
            f"The query parameter {FORMAT_PARAMETER!r} takes one of "
            f"{', '.join(FORMATS)}; got {', '.join(map(repr, values))}.",
            [FieldError(FORMAT_PARAMETER, "Expected one of " + ", ".join(FORMATS) + ".")])
    return FORMATS[values[0]]


def prefers_html(req: Request) -> bool:
    """Whether ``req`` asks for HTML: by ``?__as__=html``, or by an ``Accept`` that ranks
    ``text/html`` strictly above JSON and above every other type the server offers."""
    if not PAGES:
        return False
    try:
        forced = requested_format(req)
    except BadRequest:
        forced = None
    if forced is not None:
        return forced == HTML
    if not req.headers.get("Accept"):
        return False
    accept = req.accept_mimetypes
    html = accept.quality(HTML)
    others = [accept.quality(JSON), accept.quality(PROBLEM_JSON),
              *(accept.quality(mimetype) for mimetype in STREAMED)]
    return html > 0 and all(html > other for other in others)


def representation(mimetype: str) -> Callable[[Render], Render]:
    """Register a streamed representation of lists; a second one for ``mimetype`` is refused."""

    def register(render: Render) -> Render:
        if mimetype in STREAMED or mimetype == JSON:
            raise ValueError(f"A representation of {mimetype!r} is already registered.")
        STREAMED[mimetype] = Representation(mimetype, render)
        return render

    return register


def negotiate(request: Request, streamed: bool = True) -> Representation:
    """The representation ``request`` prefers among JSON, HTML pages and, for lists
    (``streamed``), the registered streamed ones; 406 when it accepts none of them."""
    forced = requested_format(request)
    if forced is not None:
        return _forced(forced, streamed)
    accept = request.headers.get("Accept")
    if not accept or accept == "*/*" or accept == JSON:
        return JSON_LIST
    if prefers_html(request):
        return PAGES[0]
    offered = [JSON, *STREAMED] if streamed else [JSON]
    best = request.accept_mimetypes.best_match(offered)
    if best is not None:
        return STREAMED.get(best, JSON_LIST)
    if request.accept_mimetypes.best_match([PROBLEM_JSON]) is not None:
        return JSON_LIST
    raise NotAcceptable(
        f"This URL answers with {', '.join(offered)}; the request accepts only {accept!r}."
    )


def _forced(mimetype: str, streamed: bool) -> Representation:
    if mimetype == JSON:
        return JSON_LIST
    if mimetype == HTML and PAGES:
        return PAGES[0]
    if streamed and mimetype in STREAMED:
        return STREAMED[mimetype]
    raise NotAcceptable(f"This URL does not answer with {mimetype}, which "
                        f"{FORMAT_PARAMETER}= asks for.")


@representation("application/x-ndjson")
def ndjson(names: Sequence[str], batches: Iterable[list[tuple[Any, ...]]]) -> Iterator[bytes]:
    for rows in batches:
        yield b"".join([dumps(dict(zip(names, row, strict=False))) + b"\n" for row in rows])


#: First characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection).
FORMULA_STARTS = frozenset("=+-@\t\r")


def neutralise(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would run it as a formula."""
    return "'" + text if text[:1] in FORMULA_STARTS else text


def _text(value: Any, escape: bool) -> Any:
    """A value as its CSV field: the text JSON would show, without quotes; a text that a
    spreadsheet would run is neutralised when ``escape``, a number never is."""
    if isinstance(value, str):
        return neutralise(value) if escape else value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # tablerest stores naive datetimes in UTC
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        text = base64.b64encode(bytes(value)).decode("ascii")  # may start with "+"
    else:
        text = str(value)  # UUIDs, anything else with a text form
    return neutralise(text) if escape else text


def _escape_formulas() -> bool:
    """``TABLEREST_CSV_ESCAPE_FORMULAS`` of the current app (on outside any app)."""
    if not has_app_context():
        return True
    state = current_app.extensions.get("tablerest")
    return True if state is None else bool(state.settings.csv_escape_formulas)


@representation("text/csv")
def csv_rows(names: Sequence[str], batches: Iterable[list[tuple[Any, ...]]]) -> Iterator[bytes]:
    # Not a generator: the setting is read now, while the request is current; the chunks
    # are made later, as the server sends them, when no app context may be left.
    return _csv_chunks(names, batches, _escape_formulas())


def _csv_chunks(names: Sequence[str], batches: Iterable[list[tuple[Any, ...]]],
                escape: bool) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_text(name, escape) for name in names])
    width = len(names)
    for rows in batches:
        writer.writerows([[_text(value, escape) for value in row[:width]] for row in rows])
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():  # the header of an empty list
        yield buffer.getvalue().encode("utf-8")


class Stream:
    """A response body that calls ``release`` once, when it is sent or abandoned (WSGI
    servers call ``close`` in both cases, also when the client disconnects)."""

    def __init__(self, chunks: Iterator[bytes], release: Callable[[], None]) -> None:
        self._chunks = chunks
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        release, self._release = self._release, None
        if release is None:
            return
        try:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        finally:
            release()
