"""Request bodies -> column values: pydantic models derived from the columns, or overrides.

A body is checked in two steps. First its keys: a key that is not a writable field is a 422
naming it, whatever validates the values. Then its values: by default a pydantic model built
from the columns (types, nullability, lengths, email/uuid/date formats) in strict JSON mode,
so ``"12"`` is not an integer; a resource may override that per method with its own pydantic
model or a JSON Schema.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal, Protocol

import jsonschema
import orjson
import pydantic
from pydantic import AfterValidator, BeforeValidator, EmailStr, StringConstraints

from .coerce import check_places, coerce
from .errors import ConfigurationError, FieldError, ValidationFailed
from .schema import FieldInfo

Method = Literal["create", "update", "replace"]
METHODS: tuple[Method, ...] = ("create", "update", "replace")


class BodyValidator(Protocol):
    """Validates one JSON object (already parsed) into column values."""

    def __call__(self, item: Mapping[str, Any], where: str) -> dict[str, Any]: ...


def _label(where: str, name: str) -> str:
    return f"{where}{name}" if where else name


def check_keys(
    item: Mapping[str, Any], writable: Mapping[str, FieldInfo],
    known: Iterable[str], hidden: Iterable[str], where: str = "",
) -> None:
    """Refuse the whole body when it names a field the client may not set."""
    known_set, hidden_set = set(known), set(hidden)
    errors = []
    for key in item:
        if key in writable:
            continue
        if key in known_set and key not in hidden_set:
            errors.append(FieldError(_label(where, key), "This field is read-only."))
        else:
            errors.append(FieldError(_label(where, key), "This field is unknown."))
    if errors:
        names = ", ".join(repr(error.field) for error in errors)
        raise ValidationFailed(f"The body sets fields that cannot be set: {names}.", errors)


_PLAIN_TYPES = (int, float, bool, decimal.Decimal, dt.datetime, dt.date, dt.time, uuid.UUID)


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("Text cannot contain NUL characters.")
    return value


def _digits_check(info: FieldInfo) -> Any:
    digits = info.integer_digits

    def check(value: decimal.Decimal) -> decimal.Decimal:
        if digits is not None and value != 0 and value.adjusted() + 1 > digits:
            raise ValueError(f"At most {digits} digits are allowed before the point.")
        _follow_rules(info, value)
        return value

    return AfterValidator(check)


def _normalizing(normalize: Callable[[str], str]) -> Any:
    """Normalize text before its other checks, so lengths and formats see what is stored."""
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            return value  # the type check that follows refuses it
        try:
            return normalize(value)
        except ValueError as exc:
            raise ValueError(f"The text {exc}.") from None

    return BeforeValidator(check)


def _length_check(max_length: int | None) -> Any:
    def check(value: str) -> str:
        if max_length is not None and len(value) > max_length:
            raise ValueError(f"At most {max_length} characters are allowed.")
        return value

    return AfterValidator(check)


def _annotation(info: FieldInfo) -> Any:
    kind: Any = info.python_type
    # Text is normalized first (Email, Name): lengths and formats see what is stored.
    normalize = () if info.normalize is None else (_normalizing(info.normalize),)
    if info.format == "email":
        kind = Annotated[(EmailStr, *normalize, AfterValidator(_no_nul),
                          _length_check(info.max_length))]
    elif info.format == "uuid" and kind is str:
        kind = uuid.UUID
    elif kind is str:
        kind = Annotated[(str, *normalize, StringConstraints(max_length=info.max_length,
                                                             min_length=info.min_length),
                          AfterValidator(_no_nul))]
    elif kind is int and info.int_range is not None:
        kind = Annotated[int, pydantic.Field(ge=info.int_range[0], le=info.int_range[1])]
    elif kind is decimal.Decimal and (info.integer_digits is not None
                                      or info.decimal_places is not None):
        kind = Annotated[decimal.Decimal, _digits_check(info)]
    elif kind not in _PLAIN_TYPES:
        kind = Any
    return kind | None if info.nullable else kind


def column_rules(fields: Mapping[str, FieldInfo], values: Mapping[str, Any],
                 where: str) -> dict[str, Any]:
    """What an override's values go through too (the default validator has them built in):
    text in its stored spelling, at least its minimum length (a password is never empty),
    decimals within their column's places. The column types would refuse or round them."""
    out: dict[str, Any] = {}
    errors: list[FieldError] = []
    for name, value in values.items():
        info = fields.get(name)
        if info is not None and value is not None:
            try:
                value = _follow_rules(info, value)
            except ValueError as exc:
                errors.append(FieldError(_label(where, name), str(exc)))
        out[name] = value
    if errors:
        names = ", ".join(sorted({repr(error.field) for error in errors}))
        raise ValidationFailed(f"The body is invalid in {names}.", errors)
    return out


def _follow_rules(info: FieldInfo, value: Any) -> Any:
    if isinstance(value, str) and info.normalize is not None:
        try:
            value = info.normalize(value)
        except ValueError as exc:
            raise ValueError(f"The text {exc}.") from None
    if isinstance(value, str) and info.min_length is not None and len(value) < info.min_length:
        raise ValueError(f"At least {info.min_length} characters are required.")
    try:
        check_places(info, value)
    except ValueError:
        raise ValueError(f"At most {info.decimal_places} digits are allowed after the point; "
                         "the column would round the value.") from None
    return value


def _to_column_value(info: FieldInfo, value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
        if not getattr(info.column.type, "timezone", False):
            value = value.replace(tzinfo=None)
    elif isinstance(value, uuid.UUID) and info.python_type is str:
        value = str(value)
    return value


class ColumnValidator:
    """The default: a pydantic model built from the writable columns."""

    def __init__(self, name: str, fields: Mapping[str, FieldInfo], method: Method) -> None:
        self.fields = dict(fields)
        self._aliases = {f"f{i}": field for i, field in enumerate(self.fields)}
        definitions: dict[str, Any] = {}
        for alias, field_name in self._aliases.items():
            info = self.fields[field_name]
            required = method != "update" and info.required_on_create
            default: Any = ... if required else None
            definitions[alias] = (
                _annotation(info), pydantic.Field(default, alias=field_name)
            )
        self.model: type[pydantic.BaseModel] = pydantic.create_model(
            f"{name}_{method}",
            __config__=pydantic.ConfigDict(extra="ignore", populate_by_name=False),
            **definitions,
        )

    def __call__(self, item: Mapping[str, Any], where: str) -> dict[str, Any]:
        try:
            parsed = self.model.model_validate_json(orjson.dumps(item), strict=True)
        except pydantic.ValidationError as exc:
            raise _from_pydantic(exc, where) from exc
        values = parsed.model_dump(by_alias=True, exclude_unset=True)
        return {name: _to_column_value(self.fields[name], value)
                for name, value in values.items()}


class PydanticOverride:
    """A resource's own pydantic model for one method."""

    def __init__(self, model: type[pydantic.BaseModel], fields: Mapping[str, FieldInfo]) -> None:
        self.model, self.fields = model, dict(fields)

    def __call__(self, item: Mapping[str, Any], where: str) -> dict[str, Any]:
        try:
            parsed = self.model.model_validate(dict(item))
        except pydantic.ValidationError as exc:
            raise _from_pydantic(exc, where) from exc
        values = parsed.model_dump(exclude_unset=True)
        return column_rules(self.fields, _known_columns(values, self.fields, where), where)


_FORMATS = jsonschema.FormatChecker()


@_FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if isinstance(value, str):
        if "T" not in value.upper() and " " not in value:
            raise ValueError("not a date-time")
        dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return True


class JsonSchemaOverride:
    """A JSON Schema (draft 2020-12) for one method; values then read as the column types."""

    def __init__(self, schema: Mapping[str, Any], fields: Mapping[str, FieldInfo]) -> None:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        try:
            cls.check_schema(dict(schema))
        except jsonschema.SchemaError as exc:
            raise ConfigurationError(f"The JSON Schema override is invalid: {exc.message}") from exc
        self.validator = cls(schema, format_checker=_FORMATS)
        self.fields = dict(fields)

    def __call__(self, item: Mapping[str, Any], where: str) -> dict[str, Any]:
        errors = [
            error for found in sorted(self.validator.iter_errors(item), key=lambda e: e.json_path)
            for error in _schema_errors(found, where)
        ]
        if errors:
            raise ValidationFailed("The body does not match the schema.", errors)
        values = _known_columns(dict(item), self.fields, where)
        out: dict[str, Any] = {}
        for name, value in values.items():
            info = self.fields[name]
            try:
                out[name] = value if value is None else _to_column_value(info, coerce(info, value))
            except ValueError as exc:
                raise ValidationFailed(
                    f"The field {name!r} is invalid: {exc}.",
                    [FieldError(_label(where, name), str(exc))],
                ) from None
        return column_rules(self.fields, out, where)


def _schema_errors(error: jsonschema.ValidationError, where: str) -> list[FieldError]:
    """Name the field a JSON Schema error is about, also for required/additional properties."""
    path = ".".join(str(part) for part in error.absolute_path)
    prefix = f"{path}." if path else ""
    instance = error.instance if isinstance(error.instance, dict) else {}
    if error.validator == "required" and isinstance(error.validator_value, list):
        missing = [name for name in error.validator_value if name not in instance]
        return [FieldError(_label(where, prefix + str(name)), "This field is required.")
                for name in missing]
    if error.validator == "additionalProperties" and isinstance(error.schema, dict):
        known = set(error.schema.get("properties", {}))
        extra = [name for name in instance if name not in known]
        if extra:
            return [FieldError(_label(where, prefix + str(name)), "This field is unknown.")
                    for name in extra]
    return [FieldError(_label(where, path) or where or "body", error.message)]


def _known_columns(
    values: Mapping[str, Any], fields: Mapping[str, FieldInfo], where: str
) -> dict[str, Any]:
    unknown = [name for name in values if name not in fields]
    if unknown:
        raise ValidationFailed(
            "The body sets fields that cannot be set: "
            + ", ".join(repr(name) for name in unknown) + ".",
            [FieldError(_label(where, name), "This field is unknown.") for name in unknown],
        )
    return dict(values)


def _from_pydantic(exc: pydantic.ValidationError, where: str) -> ValidationFailed:
    errors = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"])
        if error["type"] == "missing":
            message = "This field is required."
        elif error["type"] == "value_error" and "error" in error.get("ctx", {}):
            message = str(error["ctx"]["error"])  # our own sentence, without "Value error, "
        errors.append(FieldError(_label(where, location) or where or "body", message))
    names = ", ".join(sorted({repr(error.field) for error in errors}))
    return ValidationFailed(f"The body is invalid in {names}.", errors)


def build_validator(
    name: str, fields: Mapping[str, FieldInfo], method: Method, override: object | None,
) -> BodyValidator:
    """The validator for ``method``: ``override`` (pydantic model or JSON Schema) or columns."""
    if override is None:
        return ColumnValidator(name, fields, method)
    if isinstance(override, type) and issubclass(override, pydantic.BaseModel):
        return PydanticOverride(override, fields)
    if isinstance(override, Mapping):
        return JsonSchemaOverride(override, fields)
    raise ConfigurationError(
        f"The {method} schema of {name!r} must be a pydantic model class or a JSON Schema "
        f"dict, got {override!r}."
    )


def required_fields(fields: Mapping[str, FieldInfo]) -> Sequence[str]:
    return [name for name, info in fields.items() if info.required_on_create]
