"""Model helpers: timestamps, create/update/delete, find-or-404, Password, Email and Name types.

::

    class Base(Model, DeclarativeBase):
        pass

    class User(Base, Timestamps):
        __tablename__ = "users"
        __fillable__ = ("name", "email", "password")   # mass-assignment whitelist
        __hidden__ = ("password",)                     # never serialized
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(Name(64), unique=True)
        email: Mapped[str] = mapped_column(Email(120), unique=True)
        password: Mapped[str] = mapped_column(Password(min_length=8))

    user = User.create(name=" Jane ", email="Jane@Example.com", password="s3cret-words")
    user.name, user.email        # "Jane", "jane@example.com": stored normalized
    user.password == "s3cret-words"   # True: compares against the Argon2 hash

On SQLite, the tables of a ``Model`` base are created with ``AUTOINCREMENT`` (see ``Model``).
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Iterable, Mapping
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy import DateTime, MetaData, String, Table, TypeDecorator, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.operators import OperatorType

from .errors import FieldError, NotFound, ValidationFailed
from .passwords import PasswordHash as PasswordHash
from .passwords import hash_password as hash_password
from .text import normalize_text
from .timestamps import utcnow


class Password(TypeDecorator[str]):
    """Stores an Argon2 hash of what is assigned; hidden from every API representation.

    ``Password(min_length=8)``: shorter passwords are refused (422 naming the field through
    the API, ``ValueError`` on ORM writes); a password is never empty, whatever the minimum.
    """

    impl = String(255)
    cache_ok = True
    tablerest_password = True

    def __init__(self, min_length: int | None = None) -> None:
        super().__init__()
        self.min_length = max(min_length or 1, 1)

    def check_length(self, value: str | None) -> None:
        """Refuse a plain password shorter than the minimum (a stored hash passes)."""
        if isinstance(value, str) and not isinstance(value, PasswordHash) \
                and len(value) < self.min_length:
            raise ValueError(f"A password must be at least {self.min_length} characters long.")

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        self.check_length(value)
        if value is None or isinstance(value, PasswordHash):
            return value
        return hash_password(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else PasswordHash(value)

    @property
    def python_type(self) -> type:
        return str


class NormalizedText(TypeDecorator[str]):
    """Text stored in one spelling, ``normalize(value)``, whoever writes it: the API (whose
    validation normalizes too, so a refusal is a 422 naming the field) or the ORM (a
    ``ValueError``). Comparisons (``User.email == given``) normalize what they are given,
    and a value that cannot be stored matches nothing rather than failing."""

    impl = String
    cache_ok = True
    tablerest_normalized = True

    def normalize(self, value: str) -> str:
        """``value`` as stored; ``ValueError`` saying why it cannot be."""
        return normalize_text(value)

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.normalize(value)

    def coerce_compared_value(self, op: OperatorType | None, value: Any) -> Any:
        return _Lookup(self)

    @property
    def python_type(self) -> type:
        return str


class _Lookup(TypeDecorator[str]):
    """A value compared with a ``NormalizedText`` column: normalized when it can be."""

    impl = String
    cache_ok = True

    def __init__(self, stored: NormalizedText) -> None:
        super().__init__()
        self.stored = stored

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self.stored.normalize(value)
        except ValueError:
            return value  # nothing stored looks like it


class Email(NormalizedText):
    """An email address, validated on API writes; ``Email(120)`` sets a length.

    Stored normalized: NFKC, trimmed, the whole address in lower case; control and format
    characters (zero-width spaces, bidi overrides) are refused. So ``John@DOE.com`` and
    ``john@doe.com`` are one address, and a unique constraint sees them as one.
    """

    cache_ok = True  # SQLAlchemy reads it on each class
    tablerest_format = "email"

    def __init__(self, length: int = 320) -> None:
        super().__init__(length)

    def normalize(self, value: str) -> str:
        return normalize_text(value).lower()


class Name(NormalizedText):
    """Text that names someone or something, e.g. a user name; ``Name(64)`` sets a length.

    Stored normalized (``tablerest.text.normalize_text``): NFKC, so full-width and other
    compatibility forms are folded, and trimmed; never empty; control and format characters
    (zero-width spaces, bidi overrides) are refused. Case is kept: for names unique whatever
    their case, add a unique index on ``lower(name)``.
    """

    cache_ok = True
    min_length = 1

    def __init__(self, length: int = 64) -> None:
        super().__init__(length)

    def normalize(self, value: str) -> str:
        text = normalize_text(value)
        if not text:
            raise ValueError("must not be empty or only spaces")
        return text


def session() -> Session:
    """The session of the current app context (see ``TableRest``)."""
    from .extension import current_session

    return current_session()


def _created_at(context: Any) -> Any:
    """A new row's ``updated_at``: its ``created_at`` (one moment per insert), else now."""
    created = None if context is None else context.get_current_parameters().get("created_at")
    return created if created is not None else utcnow()


class Timestamps:
    """``created_at`` and ``updated_at``, set automatically, in UTC; equal on insert."""

    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_created_at, onupdate=utcnow, nullable=False)


#: The ``MetaData`` of ``Model`` bases: their tables get ``sqlite_autoincrement``.
_MODEL_METADATA: weakref.WeakSet[MetaData] = weakref.WeakSet()


def autoincrement_on_sqlite(table: Table) -> None:
    """Give ``table`` ``sqlite_autoincrement=True`` when it has one integer key column
    (the only tables it changes) and does not say otherwise itself.

    Without ``AUTOINCREMENT`` SQLite hands out ``max(rowid) + 1``: the key of the last row,
    deleted, goes to the next row, and whatever still refers to the old row (a token, a
    link, a cache) now refers to the new one. PostgreSQL's sequences never reuse a value.
    """
    if "sqlite_autoincrement" in dict(table.dialect_kwargs):  # the keywords it was given
        return
    keys = list(table.primary_key.columns)
    if len(keys) != 1 or keys[0].foreign_keys:
        return
    declared = keys[0].type
    if isinstance(getattr(declared, "impl_instance", declared), sa.Integer):
        table.dialect_kwargs["sqlite_autoincrement"] = True


@event.listens_for(Table, "after_parent_attach")
def _on_table(table: Table, parent: Any) -> None:
    # Every table of a Model base's MetaData: the models' and ``Table(..., Base.metadata)``.
    if isinstance(parent, MetaData) and parent in _MODEL_METADATA:
        autoincrement_on_sqlite(table)


class Model:
    """Orator-style helpers for mapped classes: mix it into your declarative base.

    ``class Base(Model, DeclarativeBase): pass`` (or Flask-SQLAlchemy's
    ``SQLAlchemy(model_class=...)``), then declare models on ``Base`` as usual.

    Every table of the base's ``MetaData`` with a single integer key — the models' and plain
    ``Table("follows", Base.metadata, ...)`` alike — is made with ``AUTOINCREMENT`` on SQLite
    (``create_all`` and ``tablerest db make``), so a key is never handed out twice. A table
    that says ``sqlite_autoincrement=False`` in its ``__table_args__`` keeps that.
    """

    __fillable__: tuple[str, ...] | None = None
    __hidden__: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        metadata = cls.__dict__.get("metadata")
        if isinstance(metadata, MetaData):  # a base that brings its own MetaData
            _MODEL_METADATA.add(metadata)
        super().__init_subclass__(**kwargs)
        metadata = getattr(cls, "metadata", None)
        if isinstance(metadata, MetaData) and metadata not in _MODEL_METADATA:
            _MODEL_METADATA.add(metadata)
            for table in metadata.tables.values():  # made before the base was known
                autoincrement_on_sqlite(table)

    @classmethod
    def _fillable_values(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        columns = set(sa.inspect(cls).column_attrs.keys())
        allowed = set(cls.__fillable__) if cls.__fillable__ is not None else columns
        refused = [key for key in data if key not in allowed or key not in columns]
        if refused:
            raise ValidationFailed(
                f"{cls.__name__} does not allow setting {', '.join(map(repr, refused))}.",
                [FieldError(key, "This field cannot be set.") for key in refused],
            )
        return dict(data)

    @classmethod
    def create(cls, session: Session | None = None, **data: Any) -> Self:
        """Insert a row from fillable ``data`` and flush it (the caller commits)."""
        obj = cls(**cls._fillable_values(data))
        db = session or _default_session()
        db.add(obj)
        db.flush()
        return obj

    def update(self, session: Session | None = None, **data: Any) -> Self:
        """Set fillable ``data`` on this row and flush."""
        for key, value in self._fillable_values(data).items():
            setattr(self, key, value)  # keys are checked against the mapped columns above
        (session or _default_session()).flush()
        return self

    def delete(self, session: Session | None = None) -> None:
        db = session or _default_session()
        db.delete(self)
        db.flush()

    @classmethod
    def find(cls, ident: Any, session: Session | None = None) -> Self | None:
        return (session or _default_session()).get(cls, ident)

    @classmethod
    def find_or_404(cls, ident: Any, session: Session | None = None) -> Self:
        found = cls.find(ident, session)
        if found is None:
            raise NotFound(f"No {cls.__name__} has the key {ident!r}.")
        return found

    @classmethod
    def find_for_update(cls, ident: Any, session: Session | None = None) -> Self | None:
        """Read and lock a row (``SELECT ... FOR UPDATE`` on PostgreSQL)."""
        return (session or _default_session()).get(cls, ident, with_for_update=True)

    @classmethod
    def count(cls, session: Session | None = None, **equal: Any) -> int:
        statement = sa.select(sa.func.count()).select_from(cls)
        for key, value in equal.items():
            statement = statement.where(sa.inspect(cls).columns[key] == value)
        return int((session or _default_session()).execute(statement).scalar_one())

    @classmethod
    def where(cls, session: Session | None = None, **equal: Any) -> list[Self]:
        statement = sa.select(cls)
        for key, value in equal.items():
            statement = statement.where(sa.inspect(cls).columns[key] == value)
        return list((session or _default_session()).scalars(statement))

    @classmethod
    def bulk_add(cls, rows: Iterable[Mapping[str, Any]], session: Session | None = None,
                 ) -> list[Self]:
        """Create many rows in one flush."""
        db = session or _default_session()
        objects = [cls(**cls._fillable_values(row)) for row in rows]
        db.add_all(objects)
        db.flush()
        return objects


def raw_sql(sql: str, params: Mapping[str, Any] | None = None,
            session: Session | None = None) -> list[dict[str, Any]]:
    """Run SQL with named parameters (``:name``) and return the rows as dicts."""
    result = (session or _default_session()).execute(sa.text(sql), dict(params or {}))
    if not result.returns_rows:  # type: ignore[attr-defined]
        return []
    return [dict(row) for row in result.mappings()]


def _default_session() -> Session:
    return session()
