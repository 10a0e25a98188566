"""JSON schemas for the OpenAPI document: field types, bodies, list parameters, shared parts.

``Components`` collects what the operations refer to (``#/components/...``): each resource's
item, list row and list envelope, the bodies its validators accept, its list parameters (one
per field and operator) and its query body, and the problem responses.

Every request and response body is a named schema, and so is every list of names (a
resource's fields, sort keys and relations): generators make one type of each, where inline
schemas would give one per operation, named after it, that can clash. Names stay distinct
once a generator has PascalCased them (``artist names`` and ``artist_names`` would not).
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import re
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from ..query.model import MAX_INCLUDE_DEPTH, OPERATORS
from ..query.parse import MAX_DEPTH, MAX_LIST_VALUES
from ..resource import Resource
from ..schema import FieldInfo
from ..served import Served
from ..validation import ColumnValidator, JsonSchemaOverride, PydanticOverride
from .shared import SHARED, SHARED_SCHEMAS, JsonObject, schema_ref, schema_refs

_COMPONENT_NAME = re.compile(r"[^A-Za-z0-9._-]")
_NOT_ALPHANUMERIC = re.compile(r"[^a-z0-9]")

_OPERATOR_TEXT = {
    "eq": "Equal to.", "ne": "Not equal to.", "lt": "Less than.", "lte": "At most.",
    "gt": "Greater than.", "gte": "At least.",
    "in": "One of these values (comma-separated).",
    "like": "Matches this SQL LIKE pattern (case-sensitive; `%` and `_` are wildcards).",
    "ilike": "Matches this SQL LIKE pattern, ignoring case.",
    "isnull": "true: the field is null; false: it is not.",
}


def field_schema(info: FieldInfo, *, output: bool) -> JsonObject:
    """The JSON schema of a field's values: as serialized (``output``) or as URL text."""
    kind = info.python_type
    schema: JsonObject
    if kind is bool:
        schema = {"type": "boolean"}
    elif kind is int:
        schema = {"type": "integer"}
        if info.int_range is not None:
            schema["minimum"], schema["maximum"] = info.int_range
    elif kind is float:
        schema = {"type": "number"}
    elif kind is decimal.Decimal:
        schema = {"type": "string", "description": "A decimal number, as a string."} \
            if output else {"type": "number"}
    elif kind is uuid.UUID or info.format == "uuid":
        schema = {"type": "string", "format": "uuid"}
    elif kind is dt.datetime:
        schema = {"type": "string", "format": "date-time"}
    elif kind is dt.date:
        schema = {"type": "string", "format": "date"}
    elif kind is dt.time:
        schema = {"type": "string", "description": "An ISO 8601 time."}
    elif kind is str:
        schema = {"type": "string"}
    elif kind is bytes:
        schema = {"type": "string", "contentEncoding": "base64"}
    elif kind is dt.timedelta:
        schema = {"type": "number", "description": "Seconds."}
    else:
        schema = {}
    if output and info.nullable and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    return schema


def key_schema(endpoints: Served) -> JsonObject:
    fields = endpoints.key_fields
    if len(fields) == 1:
        schema = field_schema(fields[0], output=False)
        if schema.get("type") == "string" and "format" not in schema:
            schema["pattern"] = "^[^/]+$"
        return schema
    names = ",".join(info.name for info in fields)
    part = "[^,/]+"
    return {"type": "string", "pattern": f"^{part}(,{part}){{{len(fields) - 1}}}$",
            "description": f"The key values in column order, comma-separated: {names}."}


def component_name(name: str) -> str:
    return _COMPONENT_NAME.sub("_", name)


def _folded(name: str) -> str:
    """What is left of a name once a generator has changed its case and dropped separators."""
    return _NOT_ALPHANUMERIC.sub("", name.lower())


def _rebase_refs(schema: Any, base: str) -> Any:
    """Point a schema's local ``$ref``s (``#/$defs/X``) at where it now lives (``base``)."""
    if isinstance(schema, dict):
        out = {key: _rebase_refs(value, base) for key, value in schema.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            out["$ref"] = base + ref[1:]
        return out
    if isinstance(schema, list):
        return [_rebase_refs(item, base) for item in schema]
    return schema


def _tidy_pydantic(schema: JsonObject) -> JsonObject:
    """Drop the titles and the ``default: null`` pydantic adds to every property."""
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for prop in properties.values():
            if isinstance(prop, dict):
                prop.pop("title", None)
                if "default" in prop and prop["default"] is None:
                    del prop["default"]
    return schema


class Components:
    """The ``components`` of one document, filled as operations ask for them."""

    def __init__(self) -> None:
        self.schemas: JsonObject = {}
        self.parameters: JsonObject = {}
        self.responses: JsonObject = {}
        self.names: dict[str, str] = {}  # resource name -> component name

    def as_dict(self) -> JsonObject:
        return {"schemas": dict(sorted(self.schemas.items())),
                "parameters": dict(sorted(self.parameters.items())),
                "responses": dict(sorted(self.responses.items()))}

    # -- parameters ----------------------------------------------------------------------

    def _list_parameters(self, endpoints: Served) -> list[JsonObject]:
        vocabulary = endpoints.vocabulary
        prefix = self._name(endpoints)
        refs: list[JsonObject] = []
        for parameter in self._filters(vocabulary.fields, ""):
            refs.append(self._parameter(f"{prefix}.{parameter['name']}", parameter))
        for relation, (_, fields) in sorted(vocabulary.relations.items()):
            for parameter in self._filters(fields, f"{relation}__"):
                refs.append(self._parameter(f"{prefix}.{parameter['name']}", parameter))
        array = {"style": "form", "explode": False}
        refs.append(self._parameter(f"{prefix}.sort", {
            "name": "sort", "in": "query", **array,
            "description": "Sort keys, comma-separated (or the parameter repeated); `-` sorts "
                           "descending. The key ends every sort.",
            "schema": {"type": "array", "items": self._names_enum(endpoints, "sort_key")},
        }))
        refs.append(self._parameter(f"{prefix}.limit", {
            "name": "limit", "in": "query",
            "description": f"The page size, clamped to {vocabulary.max_limit}.",
            "schema": {"type": "integer", "minimum": 1, "maximum": 2**62,
                       "default": vocabulary.default_limit},
        }))
        refs.append(self._parameter(f"{prefix}.fields", {
            "name": "fields", "in": "query", **array,
            "description": "Only these fields (comma-separated, or the parameter repeated).",
            "schema": {"type": "array", "items": self._names_enum(endpoints, "field")},
        }))
        if vocabulary.relations:
            refs.append(self._parameter(f"{prefix}.include", {
                "name": "include", "in": "query", **array,
                "description": "Embed these relations: to-one as an object, to-many as a list. "
                               "A dotted path (`messages.author`, at most "
                               f"{MAX_INCLUDE_DEPTH} relations) embeds the relations of "
                               "embedded items too.",
                "schema": {"type": "array", "items": self._names_enum(endpoints, "relation")},
            }))
        refs += [self._shared("parameters", name) for name in ("offset", "cursor", "count")]
        return refs

    def _filters(self, fields: Mapping[str, FieldInfo], prefix: str) -> Iterator[JsonObject]:
        for name, info in fields.items():
            value = field_schema(info, output=False)
            text = info.python_type is str
            yield {"name": f"{prefix}{name}", "in": "query", "schema": value,
                   "description": f"`{prefix}{name}` equals this."}
            for op in OPERATORS.values():
                if op.kind == "pattern" and not text:
                    continue
                schema: JsonObject = value
                extra: JsonObject = {}
                if op.kind == "list":
                    schema = {"type": "array", "items": value, "minItems": 1,
                              "maxItems": MAX_LIST_VALUES}
                    extra = {"style": "form", "explode": False}
                elif op.kind == "bool":
                    schema = {"type": "boolean"}
                elif op.kind == "pattern":
                    schema = {"type": "string"}
                yield {"name": f"{prefix}{name}__{op.name}", "in": "query", "schema": schema,
                       **extra, "description": _OPERATOR_TEXT.get(op.name, op.name)}

    def _shared(self, section: str, name: str) -> JsonObject:
        """A reference to a shared component (``SHARED``), added on first use with the
        schemas it refers to."""
        found = {"schemas": self.schemas, "parameters": self.parameters,
                 "responses": self.responses}[section]
        if name not in found:
            component = copy.deepcopy(SHARED[section][name])
            found[name] = component
            for schema in schema_refs(component):
                self._shared("schemas", schema)
        return {"$ref": f"#/components/{section}/{name}"}

    def _parameter(self, key: str, parameter: JsonObject) -> JsonObject:
        self.parameters[key] = parameter
        return {"$ref": f"#/components/parameters/{key}"}

    # -- schemas -------------------------------------------------------------------------

    def _ref(self, name: str) -> JsonObject:
        return schema_ref(name)

    def _name(self, endpoints: Served) -> str:
        found = self.names.get(endpoints.name)
        if found is None:
            stem = found = component_name(endpoints.name)
            taken = {_folded(name) for name in [*self.names.values(), *SHARED_SCHEMAS]}
            number = 1
            while _folded(found) in taken:
                number += 1
                found = f"{stem}_{number}"
            self.names[endpoints.name] = found
        return found

    def _one_or_many(self, name: str) -> str:
        """A body (or a result) that is one ``name`` or a non-empty array of them."""
        many = f"{name}.one_or_many"
        if many not in self.schemas:
            one = self._ref(name)
            self.schemas[many] = {"oneOf": [one, {"type": "array", "items": one,
                                                  "minItems": 1}]}
        return many

    def _names_enum(self, endpoints: Served, kind: str) -> JsonObject:
        """A reference to the enum of a resource's field names (``field``), sort keys
        (``sort_key``: a name, or ``-`` and a name) or relations (``relation``)."""
        name = f"{self._name(endpoints)}.{kind}"
        if name not in self.schemas:
            vocabulary = endpoints.vocabulary
            fields = list(vocabulary.fields)
            values = {"field": fields,
                      "sort_key": [sign + key for key in fields for sign in ("", "-")],
                      "relation": sorted(vocabulary.relations)}[kind]
            self.schemas[name] = {"type": "string", "enum": values}
        return self._ref(name)

    def _item_schema(self, endpoints: Served) -> str:
        name = self._name(endpoints)
        if name not in self.schemas:
            fields = endpoints.resource.visible
            self.schemas[name] = {
                "type": "object",
                "properties": {key: field_schema(info, output=True)
                               for key, info in fields.items()},
                "required": list(fields),
                **self._closed(endpoints),
            }
        return name

    def _closed(self, endpoints: Served) -> JsonObject:
        # A render hook may change what an item holds; without one, nothing else can appear.
        if type(endpoints.resource).render is Resource.render:
            return {"additionalProperties": False}
        return {}

    def _row_schema(self, endpoints: Served) -> str:
        """A list item: ``fields`` may leave fields out, ``include`` adds relations."""
        name = f"{self._name(endpoints)}.row"
        if name not in self.schemas:
            self.schemas[name] = {}  # reserved first: relations may lead back here
            properties = {key: field_schema(info, output=True)
                          for key, info in endpoints.resource.visible.items()}
            properties.update(self._included_relations(endpoints))
            self.schemas[name] = {"type": "object", "properties": properties,
                                  **self._closed(endpoints)}
        return name

    def _included_relations(self, endpoints: Served) -> dict[str, JsonObject]:
        """The relations an include may add to an item of ``endpoints``."""
        properties: dict[str, JsonObject] = {}
        for relation, (info, target) in sorted(endpoints.relations.items()):
            item = self._ref(self._included_schema(target))
            properties[relation] = {"oneOf": [item, {"type": "null"}]} \
                if info.kind == "to_one" else {"type": "array", "items": item}
        return properties

    def _included_schema(self, endpoints: Served) -> str:
        """An included item: every visible field, and what a nested include
        (``messages.author``) adds to it."""
        if not endpoints.relations:
            return self._item_schema(endpoints)
        name = f"{self._name(endpoints)}.included"
        if name not in self.schemas:
            self.schemas[name] = {}  # reserved first: relations may lead back here
            fields = endpoints.resource.visible
            properties = {key: field_schema(info, output=True) for key, info in fields.items()}
            properties.update(self._included_relations(endpoints))
            self.schemas[name] = {"type": "object", "properties": properties,
                                  "required": list(fields), **self._closed(endpoints)}
        return name

    def _envelope(self, endpoints: Served) -> str:
        name = f"{self._name(endpoints)}.list"
        if name not in self.schemas:
            self.schemas[name] = {
                "type": "object",
                "required": ["items", "count", "count_kind", "limit", "offset", "cursor",
                             "next"],
                "additionalProperties": False,
                "properties": {
                    "items": {"type": "array", "items": self._ref(self._row_schema(endpoints))},
                    "count": {"type": ["integer", "null"], "minimum": 0,
                              "description": "How many items match; null with count=none."},
                    "count_kind": {"type": ["string", "null"],
                                   "enum": ["exact", "estimated", None],
                                   "description": "Whether `count` is `exact` or "
                                                  "`estimated`; null with count=none."},
                    "limit": {"type": "integer", "minimum": 1},
                    "offset": {"type": ["integer", "null"], "minimum": 0},
                    "cursor": {"type": ["string", "null"],
                               "description": "Resumes after the last item of this page "
                                              "(null with offset paging)."},
                    "next": {"type": ["string", "null"],
                             "description": "The next page's URL; null on the last page. "
                                            "After a body query it carries the query as a "
                                            "`cursor` token (`q.`), so that it continues "
                                            "the same query."},
                },
            }
        return name

    def _body(self, endpoints: Served, method: str) -> str:
        fields = endpoints.resource.writable_fields if method == "create" \
            else endpoints.resource.updatable_fields
        return self._validator_schema(f"{self._name(endpoints)}.{method}",
                                      endpoints.validators[method], fields)

    def _validator_schema(self, name: str, validator: object,
                          writable: Mapping[str, FieldInfo]) -> str:
        if name in self.schemas:
            return name
        base = f"#/components/schemas/{name}"
        schema: JsonObject
        if isinstance(validator, ColumnValidator | PydanticOverride):
            schema = _tidy_pydantic(_rebase_refs(validator.model.model_json_schema(), base))
            if isinstance(validator, ColumnValidator):
                schema["additionalProperties"] = False
        elif isinstance(validator, JsonSchemaOverride):
            given = validator.validator.schema
            schema = _rebase_refs(dict(given), base) if isinstance(given, Mapping) else {}
        else:
            schema = {"type": "object"}
        schema.pop("title", None)
        # Whatever the validator, a key that is not a writable field is refused (422).
        properties = schema.get("properties")
        closed = schema.get("additionalProperties") is False and isinstance(properties, dict) \
            and set(properties) <= set(writable)
        if not closed:
            schema["propertyNames"] = {"enum": list(writable)}
        self.schemas[name] = schema
        return name

    def _query_body(self, endpoints: Served) -> str:
        prefix = self._name(endpoints)
        name, where = f"{prefix}.query", f"{prefix}.where"
        if name in self.schemas:
            return name
        vocabulary = endpoints.vocabulary
        fields = list(vocabulary.fields.items()) + [
            (f"{relation}.{field}", info)
            for relation, (_, target) in sorted(vocabulary.relations.items())
            for field, info in target.items()]
        properties: JsonObject = {}
        for field, info in fields:
            value = field_schema(info, output=False)
            if info.python_type is decimal.Decimal:
                value = {"type": ["number", "string"]}
            operators: JsonObject = {}
            for op in OPERATORS.values():
                if op.kind == "pattern":
                    if info.python_type is str:
                        operators[op.name] = {"type": "string"}
                elif op.kind == "list":
                    operators[op.name] = {"type": "array", "items": value, "minItems": 1,
                                          "maxItems": MAX_LIST_VALUES}
                elif op.kind == "bool":
                    operators[op.name] = {"type": "boolean"}
                elif op.name in ("eq", "ne"):
                    operators[op.name] = {"anyOf": [value, {"type": "null"}]}
                else:
                    operators[op.name] = value
            properties[field] = {"anyOf": [
                value, {"type": "null"},
                {"type": "object", "properties": operators, "additionalProperties": False,
                 "minProperties": 1}]}
        # The logical keys win over fields of the same name, as in the parser.
        properties["and"] = {"type": "array", "minItems": 1, "items": self._ref(where)}
        properties["or"] = {"type": "array", "minItems": 1, "items": self._ref(where)}
        properties["not"] = self._ref(where)
        self.schemas[where] = {
            "type": "object", "minProperties": 1, "additionalProperties": False,
            "description": f"Conditions, ANDed, nesting at most {MAX_DEPTH} levels: a field "
                           "(or `relation.field`: some related item matches) equal to a "
                           "value (null: is null), or an object of operators; `and` and `or` "
                           "take lists of conditions, `not` one.",
            "properties": properties,
        }
        null = {"type": "null"}
        relations: JsonObject = {"type": "array", "items": {"type": "string"}, "maxItems": 0}
        if vocabulary.relations:
            relations = {"type": "array", "items": self._names_enum(endpoints, "relation")}
        self.schemas[name] = {
            "type": "object", "additionalProperties": False,
            "description": "A list query. `orderby` (text such as `email desc, name`) may "
                           "stand for `order_by`; an empty `where` (`{}`) is no condition, "
                           "as null is.",
            "properties": {
                "where": {"anyOf": [self._ref(where), null]},
                "order_by": {"anyOf": [{"type": "array", "items": self._names_enum(
                    endpoints, "sort_key")}, null]},
                "orderby": {"type": ["string", "null"]},
                "limit": {"type": ["integer", "null"], "minimum": 1, "maximum": 2**62},
                "offset": {"type": ["integer", "null"], "minimum": 0, "maximum": 2**62},
                "cursor": {"type": ["string", "null"]},
                "fields": {"anyOf": [{"type": "array", "items": self._names_enum(
                    endpoints, "field")}, null]},
                "include": {"anyOf": [relations, null]},
                "count": {"anyOf": [{"type": "boolean"},
                                    {"type": "string", "enum": ["exact", "estimated", "none"]},
                                    null]},
            },
        }
        return name
