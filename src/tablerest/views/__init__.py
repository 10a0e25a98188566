"""The HTTP routes of resources, one module a job: ``lists`` (a resource's list, queries,
creates, lists of your own), ``items`` (one item), ``relations`` (relation lists and
many-to-many links). ``register``, ``link`` and ``add_scoped_list`` wire a resource's
routes onto an app.

Reads select only the columns a response needs and serialize rows straight to JSON; no ORM
objects are built. Writes run in one transaction that commits only when the whole request
succeeded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import quote

from flask import Flask, Response, request

from ..http import json_response
from ..representations import negotiate
from ..resource import Resource
from ..serialization import dumps
from ..served import Served
from ..state import State
from .base import BODY_QUERY_METHODS, no_query_parameters
from .items import WRITE_METHODS, Items
from .lists import Lists, Scope, default_sort_of
from .relations import Relations

__all__ = ["BODY_QUERY_METHODS", "Scope", "add_scoped_list", "index_view", "link", "register"]

View = Callable[..., Response]


def register(app: Flask, state: State, resource: Resource) -> Served:
    """Serve ``resource`` on ``app``: its list, query and item routes."""
    engine = state.engine_for(resource.bind_)
    # Integer ranges and the like are the engine's (SQLite integers are all 64-bit).
    served = Served(resource.for_dialect(engine.dialect.name), engine, state.settings)
    lists, items = Lists(served, state), Items(served, state)
    base = f"/{served.name}"
    writes = served.resource.allows_writes
    methods = ["GET", "POST"] if writes else ["GET"]
    _add(app, state, served, base, "list", lists.collection, [*methods, *BODY_QUERY_METHODS])
    # Werkzeug prefers this static rule to /<key>, for POST only: an item whose key is
    # "query" is still read, changed and deleted at /things/query.
    _add(app, state, served, base + "/query", "query", lists.query_collection, ["POST"])
    if served.key_fields:  # a table or view without a key has no item routes
        item_methods = ["GET", *WRITE_METHODS] if writes else ["GET"]
        _add(app, state, served, base + "/<key>", "item", items.item, item_methods)
    return served


def link(app: Flask, state: State, served: Served) -> None:
    """Serve ``served``'s relations whose target is served on ``app`` too."""
    wanted = served.resource.options["relations"]
    views = Relations(served, state)
    for name, relation in served.info.relations.items():
        if name in served.relations or (wanted is not None and name not in wanted):
            continue
        target = state.by_table.get(relation.target)
        if target is None or target.engine is not served.engine:
            continue  # not served here, or in another database: no join reaches it
        served.relate(name, relation, target)
        base = f"/{served.name}/<key>/{name}"
        writes = served.resource.allows_writes and target.resource.allows_writes
        if relation.kind in ("to_many", "many_to_many"):
            creates = writes and relation.kind == "to_many"
            _add(app, state, served, base, f"rel_{name}", views.relation_view(name),
                 ["GET", "POST", *BODY_QUERY_METHODS] if creates
                 else ["GET", *BODY_QUERY_METHODS])
            _add(app, state, served, base + "/query", f"rel_{name}_query",
                 views.relation_view(name, body_route=True), ["POST"])
        if relation.kind == "many_to_many" and writes:
            _add(app, state, served, base + "/<other>", f"link_{name}", views.link_view(name),
                 ["PUT", "DELETE"])
    served.update_vocabulary()


def add_scoped_list(app: Flask, state: State, served: Served, rule: str, scope: Scope,
                    default_sort: Sequence[str]) -> None:
    """A list of ``served``'s rows narrowed by ``scope`` (see TableRest.list_route)."""
    lists = Lists(served, state)
    sort = default_sort_of(served, default_sort)
    number = len(state.routes)
    stem = f"{served.name}_scoped_{number}"
    _add(app, state, served, rule, f"scoped_{number}",
         lists.scoped_view(scope, sort, stem, body_route=False), ["GET", *BODY_QUERY_METHODS])
    _add(app, state, served, rule.rstrip("/") + "/query", f"scoped_{number}_query",
         lists.scoped_view(scope, sort, stem + "_query", body_route=True), ["POST"])


def _add(app: Flask, state: State, served: Served, rule: str, kind: str, view: View,
         methods: list[str]) -> None:
    app.add_url_rule(rule, f"tablerest.{served.name}.{kind}", view, methods=methods)
    state.routes.append((rule, tuple(methods), served.name))


def index_view(names: Callable[[], list[str]]) -> View:
    def index() -> Response:
        shown = negotiate(request, streamed=False)
        no_query_parameters(request)
        resources = [{"name": name, "url": "/" + quote(name, safe="")} for name in names()]
        body = dumps({"resources": resources})
        if shown.pages is not None:
            page: Response = shown.pages.index_page(resources, body)
            return page
        return json_response(body)

    return index

