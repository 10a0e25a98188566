"""A small app with several kinds of models, built only on tablerest's public API.

users 1—n posts (cascade), posts n—m tags (link table with a timestamp), countries with a
string key, country names with a composite key (and a foreign key that forbids deleting a
country still named), documents with a UUID key, events validated by a JSON Schema override.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

from flask import Flask
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tablerest import Email, Model, Password, Resource, TableRest, Timestamps


class Base(Model, DeclarativeBase):
    pass


post_tags = Table(
    "post_tags",
    Base.metadata,
    Column("post_id", ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_name", ForeignKey("tags.name", ondelete="CASCADE"), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


class User(Base, Timestamps):
    __tablename__ = "users"
    __hidden__ = ("password",)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    email: Mapped[str] = mapped_column(Email, unique=True)
    password: Mapped[str] = mapped_column(Password)
    age: Mapped[int | None] = mapped_column(Integer)
    posts: Mapped[list[Post]] = relationship(back_populates="author",
                                             cascade="all, delete-orphan",
                                             passive_deletes=True)


class Post(Base, Timestamps):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str | None] = mapped_column(Text)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    rating: Mapped[decimal.Decimal | None] = mapped_column(Numeric(4, 2))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    author: Mapped[User] = relationship(back_populates="posts")
    tags: Mapped[list[Tag]] = relationship(secondary=post_tags)


class Tag(Base):
    __tablename__ = "tags"

    name: Mapped[str] = mapped_column(String(30), primary_key=True)
    label: Mapped[str | None] = mapped_column(String(100))


class Country(Base):
    __tablename__ = "countries"

    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    name: Mapped[str] = mapped_column(String(80))


class CountryName(Base):
    __tablename__ = "country_names"

    country_code: Mapped[str] = mapped_column(ForeignKey("countries.code"), primary_key=True)
    lang: Mapped[str] = mapped_column(String(5), primary_key=True)
    name: Mapped[str] = mapped_column(String(80))


class Document(Base, Timestamps):
    __tablename__ = "documents"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    title: Mapped[str] = mapped_column(String(200))
    published_on: Mapped[dt.date | None] = mapped_column(Date)


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    day: Mapped[dt.date] = mapped_column(Date)
    starts_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    ref: Mapped[str | None] = mapped_column(String(36))


EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 3},
        "day": {"type": "string", "format": "date"},
        "starts_at": {"type": ["string", "null"], "format": "date-time"},
        "ref": {"type": ["string", "null"], "format": "uuid"},
    },
    "required": ["name", "day"],
    "additionalProperties": False,
}


class Users(Resource):
    model = User
    max_limit = 50
    writable = ("name", "email", "password", "age")


class Events(Resource):
    model = Event
    schemas = {"create": EVENT_SCHEMA, "replace": EVENT_SCHEMA}


def create_app(database_url: str, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(DATABASE_URL=database_url, TABLEREST_SECRET_KEY="test-secret-key-0123456789",
                      **config)
    api = TableRest(app)
    api.add(Users)
    api.add(Post)
    api.add(Tag)
    api.add(Country)
    api.add(CountryName)
    api.add(Document)
    api.add(Events)
    return app
