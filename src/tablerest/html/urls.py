"""The URLs a page links to, made from the request's own parameters: sort links that keep
the filters and drop the page, export links of the same query, the filter form's target."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import quote, urlencode

from flask import Request

from ..representations import FORMAT_PARAMETER

#: Parameters that say where a page starts: a new sort or filter starts at the first page.
PAGE = frozenset({"cursor", "offset"})


def path_of(req: Request) -> str:
    return quote(req.path, safe="/,")


def with_params(req: Request, drop: Iterable[str] = (),
                add: Mapping[str, str] | None = None) -> str:
    """The request's URL without the parameters in ``drop``, with ``add`` appended."""
    dropped = set(drop) | set(add or {})
    params = [(key, value) for key, value in req.args.items(multi=True) if key not in dropped]
    params += list((add or {}).items())
    query = urlencode(params)
    return path_of(req) + (f"?{query}" if query else "")


def export(req: Request, fmt: str) -> str:
    """This query in another format (``json``, ``csv``, ``ndjson``), whatever ``Accept``."""
    return with_params(req, add={FORMAT_PARAMETER: fmt})


def sort_link(req: Request, name: str, ascending_now: bool) -> str:
    """Sort by ``name`` (descending when it is the ascending sort now); filters kept."""
    return with_params(req, drop=PAGE, add={"sort": f"-{name}" if ascending_now else name})


def local_path(value: str | None) -> str | None:
    """``value`` when it is a path on this site (never ``//host`` or a scheme)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return None
    if any(ord(char) < 0x21 for char in value):
        return None
    return value
