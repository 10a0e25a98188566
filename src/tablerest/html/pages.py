"""The pages: the index, lists, items and errors, drawn from what the JSON API answers.

The views hand over the envelope (or the item) they built and its exact JSON bytes; the
pages add only what a person needs around it: sort links, the filter form, paging, links
to related items and lists, export links, forms when signed in. Templates are looked up
as ``<resource>/list.html`` (``item.html``) in the app's template folder first, then
tablerest's defaults (``tablerest/list.html``), which they may extend.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from flask import Response, current_app, render_template, request
from markupsafe import Markup

from ..errors import Forbidden, ProblemError, Unauthorized
from ..openapi.document import api_title
from ..query.model import OPERATORS, Query
from ..query.parse import RESERVED
from ..representations import FORMAT_PARAMETER, prefers_html
from ..resource import RequestContext
from ..served import Served
from . import session
from .cells import Cell, cell, inert_json, table_rows, visible
from .forms import can_have_form, form_fields
from .urls import PAGE, export, path_of, sort_link, with_params

#: The list parameters the filter form keeps (the page itself starts again).
KEPT = ("sort", "fields", "limit", "count", "include")


def title_of(page: str) -> str:
    """A page's ``<title>``: what it shows, then the API's name."""
    return f"{page} · {api_title(current_app)}"


def render(templates: Sequence[str], status: int = 200, **context: Any) -> Response:
    """A page from the first of ``templates`` that exists, with what every page shows."""
    found = session.state()
    signed_in = session.principal()
    context.setdefault("alternate", export(request, "json"))
    context.setdefault("request_line", f"{request.method} {_full_path()}")
    html = render_template(
        list(templates),
        signed_in=signed_in,
        sign_in=session.can_sign_in(found),
        csrf=session.csrf_token() if signed_in is not None or context.get("csrf_needed")
        else "",
        csrf_field=session.CSRF_FIELD,
        crumbs=context.pop("crumbs", None) or crumbs(request.path),
        **context,
    )
    response = Response(html, status=status, mimetype="text/html")
    alternate = context["alternate"]
    if alternate:
        response.headers["Link"] = f'<{alternate}>; rel="alternate"; type="application/json"'
    return response


def _full_path() -> str:
    query = request.query_string.decode("latin-1")
    return path_of(request) + (f"?{query}" if query else "")


def crumbs(path: str) -> list[tuple[str, str]]:
    """Home, then one crumb per segment of ``path``; the last is the current page."""
    trail = [("Home", "/")]
    parts = [part for part in path.split("/") if part]
    for index, part in enumerate(parts):
        url = "/" + "/".join(quote(each, safe=",") for each in parts[:index + 1])
        trail.append((visible(part), url))
    return trail


# -- the index -------------------------------------------------------------------------------


def index_page(resources: list[dict[str, str]], body: bytes) -> Response:
    found = session.state()
    rows = []
    for entry in resources:
        served = found.served[entry["name"]]
        rows.append({"name": visible(entry["name"]), "url": entry["url"],
                     "fields": len(served.visible_names),
                     "writable": served.resource.allows_writes})
    return render(["tablerest/index.html"], resources=rows, json=inert_json(body),
                  title=title_of("Resources"), heading="Resources")


# -- lists -----------------------------------------------------------------------------------


def list_page(target: Served, query: Query, envelope: dict[str, Any], body: bytes) -> Response:
    items: list[dict[str, Any]] = envelope["items"]
    names = list(items[0]) if items else list(query.fields or target.visible_names)
    first = query.sort[0] if query.sort else None
    columns = []
    for name in names:
        sorted_here = first is not None and first.field.name == name
        ascending = sorted_here and first is not None and not first.descending
        columns.append({
            "name": visible(name),
            "sortable": name in target.vocabulary.fields,
            "href": sort_link(request, name, ascending),
            "sort": ("descending" if first is not None and first.descending else "ascending")
            if sorted_here else None,
        })
    links = to_one_links(target)
    key_names = [info.name for info in target.key_fields]

    def item_href(item: Mapping[str, Any]) -> str | None:
        has_key = bool(key_names) and all(name in item for name in key_names)
        return target.location(item) if has_key else None

    rows = table_rows(items, list(items[0]) if items else [], item_href,
                      lambda name, item: _link(links, name, item), links)
    path = request.path
    title = f"{visible(path.strip('/'))} (list)"
    signed_in = session.principal()
    create = None
    if signed_in is not None and can_have_form(target, "create") and \
            path == f"/{target.name}" and _allowed(target, "create", {}):
        create = {"action": f"/-/forms/{quote(target.name, safe='')}",
                  "fields": form_fields(target, "create")}
    count = envelope["count"]
    templates = [f"{target.name}/list.html", "tablerest/list.html"]
    return render(
        templates, title=title_of(title), heading=visible(path), resource=target.name,
        columns=columns, rows=rows, count=count, shown=len(items),
        estimated=envelope.get("count_kind") == "estimated",
        next=envelope["next"], first=with_params(request, drop=PAGE)
        if any(name in request.args for name in PAGE) else None,
        filters=_filters(target), kept=_kept(), list_path=path,
        operators=sorted(OPERATORS), field_names=list(target.vocabulary.fields),
        exports=[(label, export(request, fmt)) for label, fmt in
                 (("JSON", "json"), ("CSV", "csv"), ("NDJSON", "ndjson"))],
        json=inert_json(body), create=create, envelope=envelope,
    )


def to_one_links(served: Served) -> dict[str, tuple[Served, str]]:
    """Fields that hold a to-one relation's key: field -> (target, target's key field)."""
    links: dict[str, tuple[Served, str]] = {}
    for relation, target in served.relations.values():
        if relation.kind != "to_one" or len(relation.pairs) != 1 \
                or len(target.key_fields) != 1:
            continue
        local, remote = relation.pairs[0]
        mine = served.info.field_for_column(local)
        theirs = target.info.field_for_column(remote)
        if mine is not None and theirs is not None and theirs.name == target.key_fields[0].name:
            links.setdefault(mine.name, (target, theirs.name))
    return links


def _link(links: Mapping[str, tuple[Served, str]], name: str, item: Mapping[str, Any],
          ) -> str | None:
    found = links.get(name)
    value = item.get(name)
    if found is None or value is None:
        return None
    target, key = found
    return target.location({key: value})


def _filters(target: Served) -> list[dict[str, str]]:
    """The request's filters as form rows (``name__op=value``), then one empty row."""
    rows = []
    for name, value in request.args.items(multi=True):
        if name in RESERVED or name == FORMAT_PARAMETER:
            continue
        parts = name.split("__")
        op = parts.pop() if len(parts) > 1 and parts[-1] in OPERATORS else "eq"
        rows.append({"field": "__".join(parts), "op": op, "value": value})
    rows.append({"field": "", "op": "eq", "value": ""})
    return rows


def _kept() -> list[tuple[str, str]]:
    return [(name, value) for name in KEPT for value in request.args.getlist(name)]


def _allowed(served: Served, method: str, current: Mapping[str, Any]) -> bool:
    """Whether the row policy lets the caller use a form: asked as the write would ask it,
    in a read-only connection of its own (the page's reader is given back already)."""
    policy = served.resource.policy_
    with served.engine.connect() as connection:
        ctx = RequestContext(connection, {"create": "POST", "update": "PATCH",
                                          "delete": "DELETE"}[method],
                             session.state().principal(request))
        try:
            if method == "create":
                policy.can_create(ctx, dict(current))
            elif method == "update":
                policy.can_update(ctx, current, {})
            else:
                policy.can_delete(ctx, current)
        except (Unauthorized, Forbidden):
            return False
        except ProblemError:
            return True  # refused for its values, not for who asks
        finally:
            connection.rollback()
    return True


# -- items -----------------------------------------------------------------------------------


def item_page(served: Served, item: dict[str, Any], body: bytes) -> Response:
    links = to_one_links(served)
    fields = [{"name": visible(name),
               "cell": cell(value, limit=None, href=_link(links, name, item))}
              for name, value in item.items()]
    location = served.location(item)
    related = [{"name": visible(name), "href": location + "/" + quote(name, safe="")}
               for name in list_routes_of(served)]
    to_one = [{"name": visible(name), "href": href} for name, href in
              _to_one_targets(served, item)]
    key = location.rsplit("/", 1)[-1]
    shown_key = ",".join(str(item[info.name]) for info in served.key_fields)
    signed_in = session.principal()
    edit = delete = None
    if signed_in is not None and served.resource.allows_writes:
        if can_have_form(served, "update") and _allowed(served, "update", item):
            edit = {"action": f"/-/forms/{quote(served.name, safe='')}/{key}/edit",
                    "fields": form_fields(served, "update", item)}
        if _allowed(served, "delete", item):
            delete = {"action": f"/-/forms/{quote(served.name, safe='')}/{key}/delete"}
    title = f"{visible(served.name)} {visible(shown_key)}"
    return render([f"{served.name}/item.html", "tablerest/item.html"],
                  title=title_of(title), heading=title, resource=served.name, item=item,
                  fields=fields, related=related, to_one=to_one, json=inert_json(body),
                  edit=edit, delete=delete)


_LIST_RULE = re.compile(r"/(?P<name>[^/<]+)/<key>/(?P<list>[^/<]+)")


def list_routes_of(served: Served) -> list[str]:
    """The lists under an item (``/users/<key>/messages``, ``/users/<key>/timeline``)."""
    names = []
    for rule, methods, _resource in session.state().routes:
        match = _LIST_RULE.fullmatch(rule)
        if match and "GET" in methods and match["name"] == served.name \
                and match["list"] not in names:
            names.append(match["list"])
    return names


def _to_one_targets(served: Served, item: Mapping[str, Any]) -> list[tuple[str, str]]:
    found = []
    for name, (relation, target) in served.relations.items():
        if relation.kind != "to_one":
            continue
        values = {}
        for local, remote in relation.pairs:
            mine = served.info.field_for_column(local)
            theirs = target.info.field_for_column(remote)
            if mine is None or theirs is None or item.get(mine.name) is None:
                break
            values[theirs.name] = item[mine.name]
        else:
            if set(values) == {info.name for info in target.key_fields}:
                found.append((name, target.location(values)))
    return found


# -- errors ----------------------------------------------------------------------------------


def error_page(problem: dict[str, Any], body: bytes) -> Response | None:
    """The problem as a page, when the request asks for HTML; else None (problem+json)."""
    if not prefers_html(request):
        return None
    status = int(problem.get("status", 500))
    errors = [{"field": visible(str(error.get("field", ""))),
               "message": visible(str(error.get("message", "")))}
              for error in problem.get("errors", []) if isinstance(error, dict)]
    title = f"{status} {visible(str(problem.get('title', 'Error')))}"
    return render(["tablerest/error.html"], status=status, title=title_of(title),
                  heading=title, detail=visible(str(problem.get("detail", ""))),
                  errors=errors, json=inert_json(body), status_code=status, alternate=None)


def form_page(heading: str, action: str, fields: list[Any], status: int, detail: str,
              body: bytes, submit: str) -> Response:
    """A form shown again with the problems beside its fields."""
    return render(["tablerest/form.html"], status=status, title=title_of(heading),
                  heading=heading, action=action, fields=fields, detail=detail,
                  json=inert_json(body), status_code=status, alternate=None, submit=submit)


__all__ = ["Cell", "Markup", "error_page", "form_page", "index_page", "item_page",
           "list_page", "render"]
