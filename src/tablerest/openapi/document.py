"""The OpenAPI 3.1 document of an app: its tablerest routes, walked from the URL map.

Every route whose endpoint tablerest registered becomes operations, found by the endpoint
(``tablerest.<resource>.<kind>``); ``QUERY`` and ``FETCH`` on a list appear only as the
``POST <list>/query`` route that takes the same body, as OpenAPI 3.1 has no such verbs, and
``HEAD`` (GET without a body, on every GET route) is said once in ``info`` rather than listed.

The document is written for client generators as much as for validators: every body is a
named component, literals are ``enum`` (never ``const``), and each operation has a tag (its
resource) and an ``operationId`` that reads as a method name (``list_users``,
``create_users_messages``), unique even once a generator has snake-cased it.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask
from werkzeug.routing import Rule

from ..representations import STREAMED
from ..resource import Policy, Resource
from ..served import Served
from ..views import BODY_QUERY_METHODS
from .schemas import Components, component_name, key_schema
from .shared import ERRORS, JsonObject

if TYPE_CHECKING:
    from ..state import State

#: The routes of the documentation itself, which the document leaves out (as FastAPI does).
DOC_ENDPOINTS = frozenset({"tablerest.openapi", "tablerest.docs", "tablerest.docs_static"})
_BODY_QUERY_METHODS = frozenset(BODY_QUERY_METHODS)
_IGNORED_METHODS = frozenset({"HEAD", "OPTIONS"})
_RULE_ARGUMENT = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
_NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9]+")
_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_DESCRIPTION = (
    "Served by tablerest. Errors are RFC 9457 problem details "
    "(`application/problem+json`); 429 and 503 carry `Retry-After`. Every GET route also "
    "answers HEAD with the same status and headers and no body (not listed). `QUERY` and "
    "`FETCH` on a list URL take the same body as `POST {list}/query`. Items and writes take "
    "no query parameters: one sent is a 400.")


def openapi_document(app: Flask) -> JsonObject:
    """The OpenAPI 3.1 document of ``app``'s tablerest routes, as JSON-ready data."""
    from ..extension import state_of  # the extension imports this package to register it

    document: JsonObject = _plain(_Document(app, state_of(app)).build())
    return document


def api_title(app: Flask) -> str:
    """The API's title, in the document and on the docs page: ``TABLEREST_API_TITLE``; else,
    for an app tablerest builds itself (``tablerest serve --db``), the database's name; else
    the app's package, readable (``microblog.app`` gives ``Microblog``)."""
    configured = app.config.get("TABLEREST_API_TITLE")
    if isinstance(configured, str) and configured.strip():
        return configured.strip()
    package = app.name.partition(".")[0]
    if package == "tablerest":
        from ..extension import state_of

        database = state_of(app).engine.url.database
        if database and database != ":memory:":
            return Path(database).name
    readable = " ".join(package.replace("_", " ").replace("-", " ").split())
    return readable[:1].upper() + readable[1:] if readable else app.name


def _snake(name: str) -> str:
    """``name`` as generators spell a method: ``list_PlaylistTrack`` -> ``list_playlist_track``."""
    return _NOT_IDENTIFIER.sub("_", _WORD_BREAK.sub("_", name)).strip("_").lower()


def _identifier(word: str) -> str:
    return _NOT_IDENTIFIER.sub("_", word).strip("_") or "x"


def _policy_overrides(resource: Resource, *names: str) -> bool:
    policy = type(resource.policy_)
    return any(getattr(policy, name) is not getattr(Policy, name) for name in names)


class _Document(Components):
    def __init__(self, app: Flask, state: State) -> None:
        super().__init__()
        self.app, self.state = app, state
        self.paths: JsonObject = {}
        self.auth = state.authenticator is not None
        self.operation_ids: set[str] = set()  # snake-cased, as generators compare them

    def build(self) -> JsonObject:
        # A resource's own routes first, so that their operationIds win over a relation's
        # that snake-cases the same (``PlaylistTrack`` and ``Playlist``'s ``Track``).
        for rule in sorted(self.app.url_map.iter_rules(),
                           key=lambda rule: (rule.rule.count("/"), rule.rule)):
            if rule.endpoint.startswith("tablerest.") and rule.endpoint not in DOC_ENDPOINTS:
                self._route(rule)
        components = self.as_dict()
        document: JsonObject = {
            "openapi": "3.1.0",
            "info": {"title": api_title(self.app), "version": _version(),
                     "description": _DESCRIPTION},
            "servers": [{"url": "/", "description": "The server that serves this document."}],
            "security": [],
            "tags": self._tags(),
            "paths": dict(sorted(self.paths.items())),
            "components": components,
        }
        if self.state.token_signer is not None:
            components["securitySchemes"] = {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "A token from the token route; it lasts "
                               f"{self.state.settings.token_ttl} seconds."}}
            # Optional everywhere: the policies say which calls need a caller (401, 403).
            document["security"] = [{}, {"bearerAuth": []}]
        return document

    def _tags(self) -> list[JsonObject]:
        used = {tag for item in self.paths.values() for operation in item.values()
                if isinstance(operation, dict) for tag in operation.get("tags", ())}
        described = {name: f"The {name} resource: its list, items and relations."
                     for name in self.state.served}
        described.setdefault("auth", "Bearer tokens for the credentials of an account.")
        described.setdefault("index", "The resources this API serves.")
        return [{"name": tag, "description": text} for tag, text in described.items()
                if tag in used]

    def _operation_id(self, verb: str, *names: str) -> str:
        """``verb_name_...``, unique among the document's operations once snake-cased."""
        stem = "_".join([verb, *(_identifier(name) for name in names)])
        found, number = stem, 1
        while _snake(found) in self.operation_ids:
            number += 1
            found = f"{stem}_{number}"
        self.operation_ids.add(_snake(found))
        return found

    # -- routes --------------------------------------------------------------------------

    def _route(self, rule: Rule) -> None:
        endpoint = rule.endpoint.removeprefix("tablerest.")
        if endpoint == "index":
            self._add(rule, "get", self._index())
            return
        if endpoint == "auth_token":
            self._add(rule, "post", self._token())
            return
        name, _, kind = endpoint.rpartition(".")
        endpoints = self.state.served.get(name)
        if endpoints is None:
            return
        for method in sorted(set(rule.methods or ()) - _IGNORED_METHODS):
            found = self._operation(rule, endpoints, kind, method)
            if found is not None:
                operation, keys = found
                self._add(rule, method.lower(), operation, keys)

    def _operation(self, rule: Rule, endpoints: Served, kind: str, method: str,
                   ) -> tuple[JsonObject, dict[str, Served]] | None:
        """The operation for one method of a route, and whose key each path argument is."""
        name = endpoints.name
        own = {"key": endpoints}
        if method in _BODY_QUERY_METHODS:
            return None  # documented as POST {list}/query: OpenAPI 3.1 has no such verbs
        if kind == "list":
            if method == "GET":
                return self._list(endpoints, self._operation_id("list", name),
                                  f"List {name}."), {}
            return self._create(endpoints), {}
        if kind == "query":
            return self._query(endpoints, self._operation_id("query", name), f"/{name}"), {}
        if kind == "item":
            return self._item(endpoints, method), own
        relation = kind.partition("_")[2]
        if kind.startswith("rel_") and relation in endpoints.relations:
            target = endpoints.relations[relation][1]
            if method == "GET":
                return self._list(target, self._operation_id("list", name, relation),
                                  f"The {relation} of one {name} item.", parent=endpoints), own
            return self._create_child(endpoints, relation, target), own
        relation = relation.removesuffix("_query")
        if kind.startswith("rel_") and kind.endswith("_query") \
                and relation in endpoints.relations:
            target = endpoints.relations[relation][1]
            return self._query(target, self._operation_id("query", name, relation),
                               f"/{name}/{{key}}/{relation}", parent=endpoints), own
        if kind.startswith("link_") and relation in endpoints.relations:
            target = endpoints.relations[relation][1]
            return self._link(endpoints, relation, method), {**own, "other": target}
        if kind.startswith("scoped_"):
            return self._scoped(rule, endpoints, kind.endswith("_query"))
        return None

    def _scoped(self, rule: Rule, endpoints: Served, body_route: bool,
                ) -> tuple[JsonObject, dict[str, Served]]:
        """A list of your own (``TableRest.list_route``), named after its URL's words:
        ``/users/<key>/timeline`` is ``list_users_timeline`` (``query_...`` for its body)."""
        shown = rule.rule.removesuffix("/query") if body_route else rule.rule
        words = [segment for segment in shown.split("/")
                 if segment and not _RULE_ARGUMENT.fullmatch(segment)]
        owners = self._owners_by_segment(rule)
        tag = words[0] if words and words[0] in self.state.served else endpoints.name
        if body_route:
            operation = self._query(endpoints, self._operation_id("query", *words),
                                    _RULE_ARGUMENT.sub(r"{\g<name>}", shown), scoped=True)
        else:
            operation = self._list(endpoints, self._operation_id("list", *words),
                                   f"A list of {endpoints.name}: {shown}.", scoped=True)
        operation["tags"] = [tag]
        return operation, owners

    def _add(self, rule: Rule, method: str, operation: JsonObject,
             keys: Mapping[str, Served] | None = None) -> None:
        path = _RULE_ARGUMENT.sub(lambda match: "{" + match["name"] + "}", rule.rule)
        item = self.paths.setdefault(path, {})
        parameters = [self._path_parameter(match["name"], match["converter"], keys or {})
                      for match in _RULE_ARGUMENT.finditer(rule.rule)]
        if parameters:
            item["parameters"] = parameters
        item[method] = operation

    def _path_parameter(self, name: str, converter: str | None,
                        keys: Mapping[str, Served]) -> JsonObject:
        owner = keys.get(name)
        parameter: JsonObject = {"name": name, "in": "path", "required": True}
        if converter == "int":
            parameter["schema"] = {"type": "integer"}
        elif converter == "float":
            parameter["schema"] = {"type": "number"}
        elif converter == "uuid":
            parameter["schema"] = {"type": "string", "format": "uuid"}
        elif converter == "path":
            parameter["schema"] = {"type": "string"}
        elif owner is not None and owner.key_fields:
            parameter["schema"] = key_schema(owner)
            parameter["description"] = f"The key of a {owner.name} item."
        else:
            parameter["schema"] = {"type": "string", "pattern": "^[^/]+$"}
        return parameter

    def _owners_by_segment(self, rule: Rule) -> dict[str, Served]:
        """A custom route's arguments that follow a resource's name are its keys:
        ``/users/<key>/timeline``."""
        owners: dict[str, Served] = {}
        segments = rule.rule.split("/")
        for before, segment in itertools.pairwise(segments):
            match = _RULE_ARGUMENT.fullmatch(segment)
            endpoints = self.state.served.get(before)
            if match is not None and endpoints is not None:
                owners[match["name"]] = endpoints
        return owners

    # -- operations ----------------------------------------------------------------------

    def _responses(self, endpoints: Served | None, statuses: Sequence[int],
                   success: JsonObject) -> JsonObject:
        """``success`` and the problem responses: ``statuses``, and what any request of a
        resource may meet (406, 500, 503 when the database is busy or away, 401 for a bad
        token)."""
        wanted = set(statuses) | {406, 500}
        if endpoints is not None:
            wanted.add(503)
            if self.auth:
                wanted.add(401)
        responses = dict(success)
        for status in sorted(wanted):
            responses[str(status)] = self._shared("responses", ERRORS[status][0])
        return responses

    def _policy_errors(self, endpoints: Served, *hooks: str) -> list[int]:
        """401 and 403 when the resource's policy has its own ``hooks``: they may refuse."""
        return [401, 403] if _policy_overrides(endpoints.resource, *hooks) else []

    def _list_statuses(self, endpoints: Served, parent: Served | None, scoped: bool,
                       own: list[int]) -> list[int]:
        """``own`` errors, the policies' refusals, and 404 for a list under a key."""
        statuses = [*own, *self._policy_errors(endpoints, "visible")]
        if parent is not None:
            statuses += self._policy_errors(parent, "visible")
        if parent is not None or scoped:
            statuses.append(404)
        return statuses

    def _list(self, endpoints: Served, operation_id: str, summary: str,
              parent: Served | None = None, scoped: bool = False) -> JsonObject:
        statuses = self._list_statuses(endpoints, parent, scoped, [400])
        return {
            "tags": [(parent or endpoints).name],
            "operationId": operation_id,
            "summary": summary,
            "description": "Filters, sort, sparse fields, includes and paging in the URL. "
                           "`next` continues the same query; a `cursor` that is a query "
                           "token (`q.`, from the `next` of a body query) carries the whole "
                           "query and takes no other parameter.",
            "parameters": self._list_parameters(endpoints),
            "responses": self._responses(endpoints, statuses, {"200": self._page(endpoints)}),
        }

    def _create(self, endpoints: Served) -> JsonObject:
        body = self._body(endpoints, "create")
        return {
            "tags": [endpoints.name],
            "operationId": self._operation_id("create", endpoints.name),
            "summary": f"Create one {endpoints.name} item, or many in one transaction.",
            "description": "An array creates every item or none. The URL takes no query "
                           "parameters.",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": self._ref(self._one_or_many(body))}}},
            "responses": self._responses(
                endpoints, [400, 409, 413, 415, 422,
                            *self._policy_errors(endpoints, "can_create")],
                {"201": self._created(endpoints)}),
        }

    def _created(self, target: Served) -> JsonObject:
        return {
            "description": "Created: the item (with `Location`), or the array of items when "
                           "the body was an array.",
            "headers": {"Location": {"description": "The new item's URL (single creates).",
                                     "schema": {"type": "string"}}},
            "content": {"application/json": {
                "schema": self._ref(self._one_or_many(self._item_schema(target)))}},
        }

    def _item(self, endpoints: Served, method: str) -> JsonObject:
        name = endpoints.name
        item = self._ref(self._item_schema(endpoints))
        etag = {"ETag": {"description": "The item's strong entity tag.", "required": True,
                         "schema": {"type": "string"}}}
        ok = {"description": "The item.", "headers": etag,
              "content": {"application/json": {"schema": item}}}
        hook = {"GET": "visible", "DELETE": "can_delete"}.get(method, "can_update")
        policy = self._policy_errors(endpoints, "visible", hook)
        conditions = [self._shared("parameters", "If-Match"),
                      self._shared("parameters", "If-None-Match.write")]
        operation: JsonObject
        if method == "GET":
            operation = {
                "operationId": self._operation_id("read", name),
                "summary": f"One {name} item.",
                "parameters": [self._shared("parameters", "If-None-Match")],
                "responses": self._responses(endpoints, [400, 404, *policy], {
                    "200": ok, "304": {"description": "Not modified: the ETag still matches.",
                                       "headers": etag}}),
            }
        elif method in ("PATCH", "PUT"):
            kind = "update" if method == "PATCH" else "replace"
            operation = {
                "operationId": self._operation_id(kind, name),
                "summary": f"Change some fields of one {name} item." if kind == "update"
                else f"Replace one {name} item: omitted nullable fields become null.",
                "parameters": conditions,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": self._ref(self._body(endpoints, kind))}}},
                "responses": self._responses(
                    endpoints, [400, 404, 409, 412, 413, 415, 422, *policy], {"200": ok}),
            }
        else:
            operation = {
                "operationId": self._operation_id("delete", name),
                "summary": f"Delete one {name} item.",
                "parameters": conditions,
                "responses": self._responses(endpoints, [400, 404, 409, 412, *policy],
                                             {"204": {"description": "Deleted."}}),
            }
        operation["tags"] = [name]
        operation["description"] = "The URL takes no query parameters."
        return operation

    def _create_child(self, endpoints: Served, relation: str, target: Served,
                      ) -> JsonObject:
        fields, validator = endpoints.child_validators[relation]
        body = self._validator_schema(
            f"{self._name(endpoints)}.{component_name(relation)}.create", validator, fields)
        policy = self._policy_errors(target, "can_create") + \
            self._policy_errors(endpoints, "visible")
        return {
            "tags": [endpoints.name],
            "operationId": self._operation_id("create", endpoints.name, relation),
            "summary": f"Create one of a {endpoints.name} item's {relation}, or many in one "
                       "transaction; the URL sets the foreign key.",
            "description": "An array creates every item or none. The URL takes no query "
                           "parameters.",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": self._ref(self._one_or_many(body))}}},
            "responses": self._responses(
                endpoints, [400, 404, 409, 413, 415, 422, *policy],
                {"201": self._created(target)}),
        }

    def _link(self, endpoints: Served, relation: str, method: str) -> JsonObject:
        target = endpoints.relations[relation][1]
        link = method == "PUT"
        policy = self._policy_errors(endpoints, "visible", "can_update") + \
            self._policy_errors(target, "visible")
        return {
            "tags": [endpoints.name],
            "operationId": self._operation_id("link" if link else "unlink", endpoints.name,
                                              relation),
            "summary": (f"Link a {target.name} item to the {relation} of a {endpoints.name} "
                        "item (idempotent)." if link else
                        f"Unlink a {target.name} item from the {relation} of a "
                        f"{endpoints.name} item (idempotent)."),
            "description": "The URL takes no query parameters.",
            "responses": self._responses(endpoints, [400, 404, 409, 422, *policy], {
                "204": {"description": "Linked." if link else "Unlinked."}}),
        }

    def _query(self, endpoints: Served, operation_id: str, shown: str,
               parent: Served | None = None, scoped: bool = False) -> JsonObject:
        statuses = self._list_statuses(endpoints, parent, scoped, [400, 413, 415])
        return {
            "tags": [(parent or endpoints).name],
            "operationId": operation_id,
            "summary": f"Query {shown} with a JSON body (also `QUERY` or `FETCH` {shown}).",
            "description": "The URL may carry only the page (`cursor` or `offset`), as the "
                           "`next` URL of a page does; the rest is in the body. `next` "
                           "carries the query as a `cursor` token (`q.`): POST it with the "
                           "same body (or send `QUERY` or `FETCH`, or GET the list's URL, "
                           "with that token) to continue the same query.",
            "parameters": [self._shared("parameters", "cursor.query"),
                           self._shared("parameters", "offset")],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": self._ref(self._query_body(endpoints))}}},
            "responses": self._responses(endpoints, statuses, {
                "200": self._page(endpoints)}),
        }

    def _page(self, endpoints: Served) -> JsonObject:
        """A list's 200: the JSON envelope, or every row streamed as CSV or NDJSON."""
        content: JsonObject = {
            "application/json": {"schema": self._ref(self._envelope(endpoints))}}
        for mimetype in STREAMED:
            content[mimetype] = {"schema": {"type": "string"}}
        return {"description": "A page of items as JSON; streamed formats hold every "
                               "matching row unless the request gives a limit.",
                "content": content}

    def _index(self) -> JsonObject:
        return {
            "tags": ["index"],
            "operationId": self._operation_id("list", "resources"),
            "summary": "The resources and their URLs.",
            "responses": self._responses(None, [], {"200": {
                "description": "The resources.",
                "content": {"application/json": {"schema": self._shared("schemas", "Index")}}}}),
        }

    def _token(self) -> JsonObject:
        ttl = self.state.settings.token_ttl
        return {
            "tags": ["auth"],
            "operationId": self._operation_id("create", "token"),
            "summary": "Exchange credentials for a bearer token.",
            "security": [],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": self._shared("schemas", "Credentials")}}},
            "responses": self._responses(None, [400, 401, 413, 415, 422, 429, 503], {"200": {
                "description": f"A token, valid for {ttl} seconds.",
                "headers": {"Cache-Control": {"schema": {"type": "string",
                                                         "enum": ["no-store"]}}},
                "content": {"application/json": {"schema": self._shared("schemas", "Token")}},
            }}),
        }


def _plain(value: Any) -> Any:
    """Plain ``str`` for SQLAlchemy's ``quoted_name`` (orjson refuses it as a key)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, str):
        return str(value)
    return value


def _version() -> str:
    try:
        return importlib.metadata.version("tablerest")
    except importlib.metadata.PackageNotFoundError:
        return "0"
