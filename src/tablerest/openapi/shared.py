"""The parts every document shares: the problem responses (one per error status), the
problem and token schemas, and the ETag and paging parameters.

A document holds only those its operations refer to (``Components._shared`` adds them), so
that it has no unused component.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

JsonObject = dict[str, Any]

PROBLEM = "application/problem+json"

ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "The query or the body is malformed, or a URL that takes no query "
                        "parameters got one; `errors` names the parameter."),
    401: ("Unauthorized", "No credentials where they are needed, or bad ones."),
    403: ("Forbidden", "The caller may not do this."),
    404: ("NotFound", "No such item (a malformed key is no such item too)."),
    406: ("NotAcceptable", "The client accepts nothing this URL can answer with."),
    409: ("Conflict", "A unique or foreign-key constraint refused the change; `errors` names "
                      "the field."),
    412: ("PreconditionFailed", "`If-Match` does not match the item's current ETag, or "
                                "`If-None-Match: *` asks to write an item that exists."),
    413: ("PayloadTooLarge", "The body is over the server's limit."),
    415: ("UnsupportedMediaType", "The body is not sent as JSON."),
    422: ("ValidationFailed", "The body does not fit the resource; `errors` names each field."),
    429: ("TooManyRequests", "Too many failed logins; `Retry-After` says when to try again."),
    500: ("ServerError", "The server failed; the problem carries only a request id, also "
                         "logged. Nothing was changed."),
    503: ("ServiceUnavailable", "The database is busy, locked, timed out or away, or every "
                                "password-hashing slot is taken; `Retry-After` says when to "
                                "try again."),
}


def schema_ref(name: str) -> JsonObject:
    return {"$ref": f"#/components/schemas/{name}"}


def _problem_response(status: int, description: str) -> JsonObject:
    response: JsonObject = {"description": description,
                            "content": {PROBLEM: {"schema": schema_ref("Problem")}}}
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"required": True,
                                                    "schema": {"type": "string"}}}
    if status in (429, 503):
        response["headers"] = {"Retry-After": {"required": True, "schema": {"type": "string"}}}
    return response


#: Components that operations share: each is in a document once something refers to it.
SHARED: dict[str, dict[str, JsonObject]] = {
    "schemas": {
        "Problem": {
            "type": "object", "required": ["type", "title", "status", "detail"],
            "description": "An RFC 9457 problem.",
            "properties": {
                "type": {"type": "string"}, "title": {"type": "string"},
                "status": {"type": "integer"}, "detail": {"type": "string"},
                "errors": {"type": "array", "items": schema_ref("FieldError")},
                "request_id": {"type": "string"},
            },
        },
        "FieldError": {
            "type": "object", "required": ["field", "message"], "additionalProperties": False,
            "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
        },
        "Token": {
            "type": "object", "required": ["access_token", "token_type", "expires_in"],
            "additionalProperties": False,
            "properties": {"access_token": {"type": "string"},
                           "token_type": {"type": "string", "enum": ["bearer"]},
                           "expires_in": {"type": "integer"}},
        },
        "Credentials": {
            "type": "object",
            "description": "The credentials the app's login accepts, e.g. a name or an email "
                           "and a password.",
            "properties": {"name": {"type": "string"}, "email": {"type": "string"},
                           "password": {"type": "string"}},
        },
        "Index": {
            "type": "object", "required": ["resources"], "additionalProperties": False,
            "properties": {"resources": {"type": "array", "items": schema_ref("IndexEntry")}},
        },
        "IndexEntry": {
            "type": "object", "required": ["name", "url"], "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "url": {"type": "string"}},
        },
    },
    "responses": {name: _problem_response(status, description)
                  for status, (name, description) in ERRORS.items()},
    "parameters": {
        "If-None-Match": {"name": "If-None-Match", "in": "header",
                          "description": "An ETag: 304 when the item still has it.",
                          "schema": {"type": "string"}},
        "If-Match": {"name": "If-Match", "in": "header",
                     "description": "An ETag (or `*`): 412 unless the item still has it.",
                     "schema": {"type": "string"}},
        "If-None-Match.write": {"name": "If-None-Match", "in": "header",
                                "description": "`*` asks to write only if the item does not "
                                               "exist: it does, so 412.",
                                "schema": {"type": "string"}},
        "offset": {"name": "offset", "in": "query",
                   "description": "Skip this many items (offset paging). Without it, paging "
                                  "is keyset: follow `next`.",
                   "schema": {"type": "integer", "minimum": 0, "maximum": 2**62}},
        "cursor": {"name": "cursor", "in": "query",
                   "description": "Resume after a page: the `cursor` it returned (not with "
                                  "offset). A query token (`q.`, in the `next` of a body "
                                  "query) carries the whole query and its page: send it "
                                  "alone.",
                   "schema": {"type": "string"}},
        "cursor.query": {"name": "cursor", "in": "query",
                         "description": "Resume after a page: the `cursor` it returned (not "
                                        "with offset), or the query token (`q.`) of its "
                                        "`next` URL, with the same body.",
                         "schema": {"type": "string"}},
        "count": {"name": "count", "in": "query",
                  "description": "How to count the matching items: `exact`, `estimated` "
                                 "(exact up to a threshold, else the database's estimate) "
                                 "or `none`; `true` and `false` mean `exact` and `none`. "
                                 "Without it, the resource's default. The envelope's "
                                 "`count_kind` says which kind of number answered.",
                  "schema": {"type": "string",
                             "enum": ["exact", "estimated", "none", "true", "false"]}},
    },
}
SHARED_SCHEMAS = tuple(SHARED["schemas"])


def schema_refs(node: Any) -> Iterator[str]:
    """The names of the schemas ``node`` refers to."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            yield ref.rpartition("/")[2]
        for value in node.values():
            yield from schema_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from schema_refs(item)
