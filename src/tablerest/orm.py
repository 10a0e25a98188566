"""Model helpers: timestamps, create/update/delete, find-or-404, Password and Email types.

::

    class Base(Model, DeclarativeBase):
        pass

    class User(Base, Timestamps):
        __tablename__ = "users"
        __fillable__ = ("name", "email", "password")   # mass-assignment whitelist
        __hidden__ = ("password",)                     # never serialized
        id: Mapped[int] = mapped_column(primary_key=True)
        password: Mapped[str] = mapped_column(Password)

    user = User.create(name="jane", email="jane@example.com", password="s3cret")
    user.password == "s3cret"   # True: compares against the Argon2 hash
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy import DateTime, String, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, Session, mapped_column

from .errors import FieldError, NotFound, ValidationFailed
from .passwords import PasswordHash as PasswordHash
from .passwords import hash_password as hash_password
from .timestamps import utcnow


class Password(TypeDecorator[str]):
    """Stores an Argon2 hash of what is assigned; hidden from every API representation."""

    impl = String(255)
    cache_ok = True
    tablerest_password = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or isinstance(value, PasswordHash):
            return value
        return hash_password(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else PasswordHash(value)

    @property
    def python_type(self) -> type:
        return str


class Email(TypeDecorator[str]):
    """A string column validated as an email address on writes; ``Email(120)`` sets a length."""

    impl = String
    cache_ok = True
    tablerest_format = "email"

    def __init__(self, length: int = 320) -> None:
        super().__init__(length)

    @property
    def python_type(self) -> type:
        return str


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


class Model:
    """Orator-style helpers for mapped classes: mix it into your declarative base.

    ``class Base(Model, DeclarativeBase): pass`` (or Flask-SQLAlchemy's
    ``SQLAlchemy(model_class=...)``), then declare models on ``Base`` as usual.
    """

    __fillable__: tuple[str, ...] | None = None
    __hidden__: tuple[str, ...] = ()

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
