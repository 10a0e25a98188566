"""Forms generated from a resource's validation schema, and form posts -> JSON bodies.

A form shows the fields the method may set (``writable_fields`` to create,
``updatable_fields`` to edit): hidden (write-only) and read-only fields are never inputs.
Inputs follow the column type (number, checkbox, date, datetime-local, email, textarea),
enums are selects, and required fields are marked. A posted form becomes the JSON body the
API would get, typed by column, and goes through the same validation and policy.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from ..errors import FieldError
from ..schema import FieldInfo
from ..served import Served
from .cells import utc, visible

_INTEGER = re.compile(r"-?\d{1,30}")


@dataclass(frozen=True)
class FormField:
    name: str
    input: str  # text, number, checkbox, date, datetime-local, email, textarea, select
    required: bool
    value: str
    checked: bool = False
    options: tuple[str, ...] = ()
    error: str | None = None
    step: str | None = None
    maxlength: int | None = None


def fields_of(served: Served, method: str) -> dict[str, FieldInfo]:
    """The fields a form of ``method`` (``create`` or ``update``) shows."""
    resource = served.resource
    fields = resource.writable_fields if method == "create" else resource.updatable_fields
    return {name: info for name, info in fields.items() if name not in resource.hidden_fields}


def can_have_form(served: Served, method: str) -> bool:
    """A create form needs every required field to be an input (a hidden one cannot be)."""
    resource = served.resource
    if not resource.allows_writes:
        return False
    if method != "create":
        return bool(fields_of(served, method))
    return not any(info.required_on_create and name in resource.hidden_fields
                   for name, info in resource.writable_fields.items())


def _schema_of(served: Served, method: str) -> Mapping[str, Any]:
    """The JSON Schema override of ``method``, if the resource has one."""
    overrides = served.resource.schema_overrides
    override = overrides.get(method, overrides.get("*"))
    return override if isinstance(override, Mapping) else {}


def _enum(info: FieldInfo, schema: Mapping[str, Any]) -> tuple[str, ...]:
    declared = schema.get("properties", {}).get(info.name, {}).get("enum")
    if isinstance(declared, list):
        return tuple(str(value) for value in declared if value is not None)
    if isinstance(info.column.type, sa.Enum):
        return tuple(str(value) for value in info.column.type.enums)
    return ()


def _input(info: FieldInfo) -> tuple[str, str | None]:
    kind = info.python_type
    if kind is bool:
        return "checkbox", None
    if kind is int:
        return "number", "1"
    if kind in (float, decimal.Decimal):
        return "number", "any"
    if kind is dt.datetime:
        return "datetime-local", "1"
    if kind is dt.date:
        return "date", None
    if info.format == "email":
        return "email", None
    if kind is str and info.max_length is None:
        return "textarea", None
    return "text", None


def _shown(info: FieldInfo, value: Any) -> str:
    """A stored value as its input shows it."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return utc(value).replace(tzinfo=None).isoformat(timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def form_fields(served: Served, method: str, values: Mapping[str, Any] | None = None,
                submitted: MultiDict[str, str] | None = None,
                errors: Sequence[FieldError] = ()) -> list[FormField]:
    """The inputs of a form: values from ``submitted`` (a re-shown form) or ``values``."""
    schema = _schema_of(served, method)
    required = set(schema.get("required", ())) if schema else None
    messages: dict[str, str] = {}
    for error in errors:
        messages.setdefault(error.field, error.message)
    shown = []
    for name, info in fields_of(served, method).items():
        kind, step = _input(info)
        options = _enum(info, schema)
        if options:
            kind = "select"
        if submitted is not None:
            text = submitted.getlist(name)[-1] if name in submitted else ""
        else:
            text = _shown(info, (values or {}).get(name))
        needed = (name in required) if required is not None else (
            info.required_on_create if method == "create" else not info.nullable)
        checked = text == "true" if kind == "checkbox" else False
        shown.append(FormField(name, kind, needed and kind != "checkbox", text, checked,
                               options, messages.get(name), step, info.max_length))
    return shown


def form_body(served: Served, method: str, form: MultiDict[str, str]) -> dict[str, Any]:
    """The JSON body a posted form stands for: values typed by column; an empty input is
    null (left out on create, so that defaults apply); unknown names are ignored."""
    body: dict[str, Any] = {}
    for name, info in fields_of(served, method).items():
        kind, _ = _input(info)
        if kind == "checkbox":
            body[name] = form.getlist(name)[-1:] == ["true"] if name in form else False
            continue
        if name not in form:
            continue
        text = form.getlist(name)[-1]
        if text == "" and (info.nullable or info.python_type is not str):
            if method != "create":
                body[name] = None
            continue
        body[name] = _typed(info, text, kind)
    return body


def _typed(info: FieldInfo, text: str, kind: str) -> Any:
    """JSON's type for ``text``; text that does not fit stays text, for the validator to
    refuse with its own message."""
    if info.python_type is int and _INTEGER.fullmatch(text.strip()):
        return int(text)
    if info.python_type is float:
        try:
            return float(text)
        except ValueError:
            return text
    if kind == "datetime-local" and text:
        return text + ("Z" if len(text) > 16 else ":00Z")
    return text


def message_of(error: FieldError) -> str:
    return visible(error.message)
