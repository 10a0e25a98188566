"""The microblog's tables: users, their messages, and who follows whom.

Names and emails are stored normalized (``Name``, ``Email``) and are unique whatever their
case; passwords have at least 8 characters. On SQLite every table is made with
``AUTOINCREMENT`` (``Model``): a deleted user's id is never handed to the next sign-up.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tablerest import Email, Model, Name, Password, Timestamps
from tablerest.migrations import NAMING_CONVENTION


class Base(Model, DeclarativeBase):
    # Named constraints can be dropped by later migrations (SQLite's batch mode needs names).
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


follows = Table(
    "follows",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("follower_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("followed_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("follower_id", "followed_id", name="uq_follows_pair"),
    Index("ix_follows_followed_id", "followed_id"),
)


class User(Base, Timestamps):
    __tablename__ = "users"
    __fillable__ = ("name", "email", "password")

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Name(64), unique=True)
    email: Mapped[str] = mapped_column(Email(120), unique=True)  # stored in lower case
    password: Mapped[str] = mapped_column(Password(min_length=8))

    messages: Mapped[list[Message]] = relationship(
        back_populates="author", passive_deletes=True, order_by="Message.id")
    following: Mapped[list[User]] = relationship(
        secondary=follows,
        primaryjoin=lambda: User.id == follows.c.follower_id,
        secondaryjoin=lambda: User.id == follows.c.followed_id,
        back_populates="followers", passive_deletes=True,
    )
    followers: Mapped[list[User]] = relationship(
        secondary=follows,
        primaryjoin=lambda: User.id == follows.c.followed_id,
        secondaryjoin=lambda: User.id == follows.c.follower_id,
        back_populates="following", passive_deletes=True,
    )


class Message(Base, Timestamps):
    __tablename__ = "messages"
    __fillable__ = ("content",)
    # Lists of messages (and the timeline) are newest first: the index keeps every page cheap.
    __table_args__ = (Index("ix_messages_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    content: Mapped[str] = mapped_column(Text)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)

    author: Mapped[User] = relationship(back_populates="messages")


# `Jane` cannot sign up beside `jane`: a sign-up that breaks this index is a 409 naming
# `name`. SQLite's lower() folds ASCII letters only; PostgreSQL's follows the database's
# locale.
Index("uq_users_lower_name", func.lower(User.__table__.c.name), unique=True)
