"""What a resource declares: its model, writable and hidden fields, limits, hooks, policy.

Subclass ``Resource`` and set class attributes, or pass the same names as keywords::

    class Users(Resource):
        model = User
        hidden = ("password",)

    api.add(Users)                      # or: api.add(User, hidden=("password",))
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, Connection, Select, Table

from .counting import STRATEGIES
from .errors import ConfigurationError
from .schema import FieldInfo, RelationInfo, TableInfo, describe_model, describe_table


@dataclass
class RequestContext:
    """What hooks and policies know about the request being answered."""

    connection: Connection
    method: str
    principal: Any | None = None  # the authenticated user's id, when auth is on
    extras: dict[str, Any] = field(default_factory=dict)

    def first(self, statement: Select[Any], **params: Any) -> tuple[Any, ...] | None:
        """The first row of ``statement`` in this request's transaction, or None.

        Give the statement as a module-level constant with ``bindparam("name")`` values and
        pass the values as keywords: it is compiled once and then runs straight on the
        driver, which is what hooks and policies on hot paths want.
        """
        from .statements import cache_for

        cursor = self.connection.connection.cursor()
        try:
            return cache_for(self.connection.engine).first(cursor, statement, params)
        finally:
            cursor.close()


class Policy:
    """Who may see and change which rows of one resource; the default allows everything.

    The same policy governs every route of the resource: lists, items, relationship lists
    (through ``visible``), creates, updates, replaces, deletes and many-to-many links. Refuse
    by raising ``Unauthorized`` (no or bad credentials) or ``Forbidden``.
    """

    def visible(self, ctx: RequestContext, table: Table) -> ColumnElement[bool] | None:
        """A condition on ``table`` that rows must meet to be seen, or None for all."""
        return None

    def can_create(self, ctx: RequestContext, values: dict[str, Any]) -> None:
        """Check (and possibly complete, e.g. set the owner of) a row about to be inserted."""

    def can_update(self, ctx: RequestContext, current: Mapping[str, Any],
                   values: dict[str, Any]) -> None:
        """Check a change to the row ``current``.

        Also called, with ``values`` empty, for a many-to-many link or unlink, on the policy
        of the end that owns the link row (the end whose foreign key comes first in the link
        table), with that end's row, whichever end the URL starts from.
        """

    def can_delete(self, ctx: RequestContext, current: Mapping[str, Any]) -> None:
        """Check the deletion of the row ``current``."""


_OPTIONS = (
    "model", "table", "name", "hidden", "writable", "read_only", "max_limit", "default_limit",
    "default_sort", "schemas", "policy", "allow_writes", "relations", "table_relations", "bind",
    "count",
)


class Resource:
    """One table exposed over HTTP. Every attribute below can also be passed as a keyword."""

    model: ClassVar[type | None] = None
    table: ClassVar[Table | None] = None
    #: The URL segment; defaults to the table name.
    name: ClassVar[str | None] = None
    #: Write-only fields: clients may set them, they never leave the server.
    hidden: ClassVar[Sequence[str]] = ()
    #: The fields a client may set; None means every column that is not read-only.
    writable: ClassVar[Sequence[str] | None] = None
    #: Fields clients may read but not set, on top of keys and timestamps.
    read_only: ClassVar[Sequence[str]] = ()
    max_limit: ClassVar[int | None] = None
    default_limit: ClassVar[int | None] = None
    #: Sort used when the request gives none, e.g. ``("-created_at",)``; the key ends every sort.
    default_sort: ClassVar[Sequence[str]] = ()
    #: Validation overrides by method ("create", "update", "replace", or "*" for all):
    #: a pydantic model class or a JSON Schema dict.
    schemas: ClassVar[Mapping[str, object]] = {}
    policy: ClassVar[Policy | None] = None
    allow_writes: ClassVar[bool] = True
    #: Relations to expose; None means every relation whose target is a resource too.
    relations: ClassVar[Sequence[str] | None] = None
    #: With ``table=``: the table's relations (reflection derives them from foreign keys).
    table_relations: ClassVar[Mapping[str, RelationInfo] | None] = None
    #: The database to serve from: a bind name (``SQLALCHEMY_<NAME>``); default the model's
    #: ``__bind_key__``, else the main database.
    bind: ClassVar[str | None] = None
    #: How lists count their matching rows unless the request says (``?count=``):
    #: ``"exact"``, ``"estimated"`` (exact up to ``TABLEREST_COUNT_EXACT_UP_TO`` rows, else the
    #: database's estimate) or ``"none"``; None: ``TABLEREST_COUNT`` (default ``estimated``).
    count: ClassVar[str | None] = None

    def __init__(self, model: type | None = None, **options: Any) -> None:
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise ConfigurationError(
                f"Unknown resource option(s): {', '.join(sorted(unknown))}; "
                f"known: {', '.join(_OPTIONS)}."
            )
        self._options: dict[str, Any] = {name: getattr(type(self), name) for name in _OPTIONS}
        self._options.update(options)
        if model is not None:
            self._options["model"] = model
        self.info = self._describe()
        self.name_: str = self._options["name"] or self.info.name
        self.policy_: Policy = self._options["policy"] or Policy()
        self.hidden_fields: frozenset[str] = frozenset(self._declared("hidden")) | frozenset(
            name for name, info in self.info.fields.items() if info.is_password
        )
        self._check_names(self.hidden_fields, "hidden")
        self.visible: dict[str, FieldInfo] = {
            name: info for name, info in self.info.fields.items()
            if name not in self.hidden_fields
        }
        self.writable_fields = self._writable()
        # A key is set on create (when it has no default) and never changes after.
        self.updatable_fields = {name: info for name, info in self.writable_fields.items()
                                 if not info.primary_key}
        self.allows_writes = bool(self._options["allow_writes"]) and self.info.writable_table
        self.default_sort_keys: tuple[str, ...] = tuple(self._options["default_sort"])
        self.schema_overrides: Mapping[str, object] = dict(self._options["schemas"] or {})
        bad = set(self.schema_overrides) - {"create", "update", "replace", "*"}
        if bad:
            raise ConfigurationError(
                f"Resource {self.name_!r}: schemas keys must be create, update, replace or '*', "
                f"got {', '.join(sorted(bad))}."
            )
        count = self._options["count"]
        if count is not None and count not in STRATEGIES:
            raise ConfigurationError(
                f"Resource {self.name_!r}: count must be one of {', '.join(STRATEGIES)}, got "
                f"{count!r}."
            )
        table = self.info.table  # Flask-SQLAlchemy records __bind_key__ on the metadata
        self.bind_: str | None = (self._options["bind"]
                                  or getattr(self.info.model, "__bind_key__", None)
                                  or table.info.get("bind_key")
                                  or table.metadata.info.get("bind_key"))

    # -- declaration helpers -------------------------------------------------------------

    def _describe(self) -> TableInfo:
        model, table = self._options["model"], self._options["table"]
        if model is not None:
            return describe_model(model)
        if isinstance(table, Table):
            return describe_table(table, self._options["table_relations"])
        raise ConfigurationError("A resource needs a model (or a table) to expose.")

    def _declared(self, option: str) -> Sequence[str]:
        value = self._options[option]
        if value is None:
            return ()
        if isinstance(value, str):
            raise ConfigurationError(
                f"Resource option {option!r} must be a list of field names, not the string "
                f"{value!r}."
            )
        model_default = getattr(self.info.model, f"__{option}__", ())
        return tuple(value) or tuple(model_default)

    def _check_names(self, names: frozenset[str] | Sequence[str], option: str) -> None:
        unknown = [name for name in names if name not in self.info.fields]
        if unknown:
            raise ConfigurationError(
                f"Resource {self.info.name!r}: {option} names unknown field(s) "
                f"{', '.join(map(repr, unknown))}."
            )

    def _writable(self) -> dict[str, FieldInfo]:
        declared = self._options["writable"]
        if declared is None:
            declared = getattr(self.info.model, "__fillable__", None)
        read_only = set(self._declared("read_only"))
        self._check_names(tuple(read_only), "read_only")
        if declared is not None:
            self._check_names(tuple(declared), "writable")
            names = list(declared)
        else:
            names = [
                name for name, info in self.info.fields.items()
                if not info.is_timestamp and not (info.primary_key and info.has_default)
            ]
        return {
            name: self.info.fields[name] for name in names
            if name not in read_only and not self.info.fields[name].is_timestamp
        }

    @property
    def options(self) -> Mapping[str, Any]:
        return self._options

    def for_dialect(self, name: str) -> Resource:
        """This resource as served from a database of dialect ``name`` (``"sqlite"``,
        ``"postgresql"``...): a copy whose fields bound integers by what the columns hold
        there. The description is built before the engine is known, and one resource may be
        served by apps on different engines; ``self`` when nothing differs."""
        info = self.info.for_dialect(name)
        if info is self.info:
            return self
        served = copy.copy(self)
        served.info = info
        served.visible = {key: info.fields[key] for key in self.visible}
        served.writable_fields = {key: info.fields[key] for key in self.writable_fields}
        served.updatable_fields = {key: info.fields[key] for key in self.updatable_fields}
        return served

    # -- hooks: override in a subclass ---------------------------------------------------

    def base_query(self, statement: Select[Any], ctx: RequestContext) -> Select[Any]:
        """Narrow or join every read of this resource (lists, items, relationship lists)."""
        return statement

    def before_create(self, values: dict[str, Any], ctx: RequestContext) -> None:
        """Adjust the values of a row about to be inserted."""

    def after_create(self, item: dict[str, Any], ctx: RequestContext) -> None:
        """React to a row just inserted, inside the same transaction."""

    def before_update(self, current: Mapping[str, Any], values: dict[str, Any],
                      ctx: RequestContext) -> None:
        """Adjust the values about to be written over ``current``."""

    def after_update(self, item: dict[str, Any], ctx: RequestContext) -> None:
        """React to a row just updated, inside the same transaction."""

    def before_delete(self, current: Mapping[str, Any], ctx: RequestContext) -> None:
        """React to a row about to be deleted."""

    def after_delete(self, current: Mapping[str, Any], ctx: RequestContext) -> None:
        """React to a row just deleted, inside the same transaction."""

    def before_link(self, current: Mapping[str, Any], relation: str,
                    other: Mapping[str, Any], ctx: RequestContext) -> None:
        """Check a many-to-many link or unlink between ``current`` and ``other``.

        Called on the resource of the end that owns the link row, with its row as
        ``current`` and ``relation`` as that end names it (see ``Policy.can_update``).
        """

    def render(self, data: Any, ctx: RequestContext) -> Any:
        """Adjust the data of a successful GET before it is rendered."""
        return data
