"""Values -> what a page shows: plain text (escaped by the templates), links only for
``http(s)`` values and the app's own items, times in UTC with their ISO value.

Nothing here returns markup: templates escape every string, so a value such as
``<script>`` or ``"><img onerror=...>`` is text wherever it lands. Bidi and other control
characters are shown as ``<U+202E>``, so that no value can reorder the text around it.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from markupsafe import Markup, escape

#: Characters of a list cell shown before it is cut (the item page shows every one).
TRUNCATE = 120
#: Bidi controls (embeddings, overrides, isolates, marks) and C0/C1 controls but tab and
#: newline: shown by their code point.
_INVISIBLE = re.compile("[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f"
                        "\u202a-\u202e\u2066-\u2069]")
_WEB_LINK = re.compile(r"https?://[^\s<>\"'`]+", re.ASCII)


@dataclass(frozen=True)
class Cell:
    """One value as a page shows it; ``href`` only for a safe link."""

    text: str
    href: str | None = None
    external: bool = False
    datetime: str | None = None
    null: bool = False
    truncated: bool = False
    numeric: bool = False


def visible(text: str) -> str:
    """``text`` with control and bidi characters spelt out, so none acts on the page."""
    return _INVISIBLE.sub(lambda match: f"<U+{ord(match.group()):04X}>", text)


def inert_json(body: bytes) -> str:
    """JSON text with control and bidi characters as ``\\uXXXX`` escapes: the same JSON
    value (they occur only inside strings), which cannot reorder the page around it."""
    return _INVISIBLE.sub(lambda match: f"\\u{ord(match.group()):04x}", body.decode())


def web_link(value: str) -> str | None:
    """``value`` when it is one absolute ``http(s)`` URL, else None (``javascript:`` etc.)."""
    return value if _WEB_LINK.fullmatch(value) else None


def utc(value: dt.datetime) -> dt.datetime:
    """Naive datetimes are stored in UTC (tablerest's rule); aware ones are converted."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def cell(value: Any, limit: int | None = TRUNCATE, href: str | None = None) -> Cell:
    """The cell of ``value``; ``href`` links it to an item of this API."""
    if value is None:
        return Cell("null", null=True)
    if isinstance(value, bool):
        return Cell("true" if value else "false")
    if isinstance(value, dt.datetime):
        moment = utc(value)
        return Cell(moment.strftime("%Y-%m-%d %H:%M:%S UTC"), datetime=moment.isoformat())
    if isinstance(value, dt.date):
        return Cell(value.isoformat(), datetime=value.isoformat())
    if isinstance(value, bytes | memoryview):
        value = base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict | list):
        text = orjson.dumps(value, default=str).decode()
    else:
        text = str(value)
    numeric = isinstance(value, int | float) or type(value).__name__ == "Decimal"
    external = False
    if href is None and isinstance(value, str):
        href = web_link(value)
        external = href is not None
    truncated = limit is not None and len(text) > limit
    if truncated:
        text = text[:limit]
    return Cell(visible(text), href, external, truncated=truncated, numeric=numeric)


def cell_html(shown: Cell) -> Markup:
    """A list cell as markup, built here rather than by a macro per cell (a page of 100 rows
    has hundreds): every value goes through ``escape``, as the templates would do."""
    text = escape(shown.text)
    if shown.href is not None:
        rel = ' rel="nofollow noopener noreferrer"' if shown.external else ""
        inner = f'<a href="{escape(shown.href)}"{rel}>{text}</a>'
    elif shown.datetime is not None:
        inner = f'<time datetime="{escape(shown.datetime)}">{text}</time>'
    elif shown.null:
        inner = '<span class="null">null</span>'
    else:
        inner = str(text)
    cut = ('<span class="cut" title="Cut here; the item page shows all of it">…</span>'
           if shown.truncated else "")
    return Markup(f"<bdi>{inner}</bdi>{cut}")  # every part is escaped above


_NULL = '<td><bdi><span class="null">null</span></bdi></td>'
_CUT = '<span class="cut" title="Cut here; the item page shows all of it">…</span>'


def table_rows(items: Sequence[Mapping[str, Any]], names: Sequence[str],
               item_href: Callable[[Mapping[str, Any]], str | None],
               link_href: Callable[[str, Mapping[str, Any]], str | None],
               linked: Collection[str] = ()) -> Markup:
    """The ``<tr>`` rows of a list page, as one piece of markup.

    A page of 100 rows has hundreds of cells: building them here in one pass costs a fraction
    of a template loop (which yields every fragment). The markup is the same as ``cell`` and
    ``cell_html`` give, and every value goes through ``escape``. ``linked`` names the
    fields whose values link to an item (``link_href``).
    """
    rows: list[str] = []
    for item in items:
        href = item_href(item)
        parts = ["<tr>"]
        for index, name in enumerate(names):
            value = item.get(name)
            if index == 0 and href is not None:
                text = str(value) if type(value) is int else cell(value).text
                parts.append(f'<th scope="row"><a href="{escape(href)}">'
                             f"{escape(text)}</a></th>")
            elif value is None:
                parts.append(_NULL)
            elif isinstance(value, int) and not isinstance(value, bool):
                link = link_href(name, item)
                text = str(value)
                inner = text if link is None else f'<a href="{escape(link)}">{text}</a>'
                parts.append(f'<td class="num"><bdi>{inner}</bdi></td>')
            elif type(value) is str and not value.startswith(("http://", "https://")) \
                    and name not in linked:
                text = visible(value[:TRUNCATE])
                cut = _CUT if len(value) > TRUNCATE else ""
                parts.append(f"<td><bdi>{escape(text)}</bdi>{cut}</td>")
            elif isinstance(value, dt.datetime):
                if value.tzinfo is None:  # stored in UTC (tablerest's rule)
                    text, iso = value.isoformat(" ", "seconds"), value.isoformat() + "+00:00"
                else:
                    moment = value.astimezone(dt.UTC)
                    text, iso = moment.isoformat(" ", "seconds")[:19], moment.isoformat()
                parts.append(f'<td><bdi><time datetime="{iso}">{text} UTC</time></bdi></td>')
            else:
                shown = cell(value, href=link_href(name, item))
                numeric = ' class="num"' if shown.numeric else ""
                parts.append(f"<td{numeric}>{cell_html(shown)}</td>")
        parts.append("</tr>")
        rows.append("".join(parts))
    return Markup("\n".join(rows))  # every part is escaped above
