"""keys never reused; names unique in any case

Revision ID: 1f310c0940e7
Revises: 81905d5c744d
Create Date: 2026-11-27 04:33:55.000000

On SQLite, users, follows and messages are rebuilt with AUTOINCREMENT: without it SQLite
hands out max(id) + 1, so the id of the newest user, once deleted, went to the next sign-up
(and whatever still named the old id, such as a token, now named the new user). Batch mode
copies each table with its rows, indexes and constraints. PostgreSQL's sequences never
reuse a value: there the rebuild is skipped.

Then names become unique whatever their case (a unique index on lower(name)), and stored
emails are lower-cased and trimmed as the Email type now stores them. Two existing accounts
that differ only in case make the upgrade fail and roll back: rename one first. The
downgrade keeps emails in lower case.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '1f310c0940e7'
down_revision: str | Sequence[str] | None = '81905d5c744d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("users", "follows", "messages")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always",
                                  table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass


def upgrade() -> None:
    _rebuild(autoincrement=True)
    op.execute("UPDATE users SET email = lower(trim(email)), name = trim(name)")
    # After the rebuild: SQLite cannot reflect an index on an expression, so batch mode
    # would not copy it.
    op.create_index("uq_users_lower_name", "users", [sa.text("lower(name)")], unique=True)


def downgrade() -> None:
    op.drop_index("uq_users_lower_name", table_name="users")
    _rebuild(autoincrement=False)
