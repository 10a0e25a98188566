"""Schemathesis against the microblog: no request the document allows gets a 500, and no
response contradicts the document (its status codes, content types, headers and schemas).

One test per documented operation, each with a bounded number of generated requests (valid
ones, and invalid ones the server must refuse with a documented error), derandomized so the
suite is repeatable. On SQLite and PostgreSQL: the document is the same, but each database
has its own limits (a bigint OFFSET, text without NUL) that a request may reach. Requests
carry a bearer token of a seeded user, so writes reach the policies.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck
from hypothesis import strategies as st
from microblog.app import create_app
from microblog.models import Message, User, follows
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import SECRET
from tablerest import PasswordHash, hash_password
from tablerest.auth import issue_token
from tablerest.extension import state_of
from tablerest.migrations import Migrations, upgrade
from tablerest.openapi import openapi_document, register_openapi

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
#: The environment wins over app.config: a developer's settings stay out of these apps.
ENVIRONMENT = ("DATABASE_URL", "FLASK_CONFIG_PREFIXES", "TABLEREST_SECRET_KEY")
PASSWORD = "schemathesis-password"
MAX_EXAMPLES = 30
SEEDED_KEYS = (1, 2, 3)


@functools.cache
def password_hash() -> PasswordHash:
    return hash_password(PASSWORD)


def seed(engine: sa.Engine) -> None:
    """Three users, a message each, and a circle of follows: 1 -> 2 -> 3 -> 1."""
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as connection:
        for name in ("twittor", "john", "jane"):
            user_id = connection.execute(
                sa.insert(User.__table__).values(name=name, email=f"{name}@example.com",
                                                 password=password_hash(), created_at=now,
                                                 updated_at=now)
                .returning(User.__table__.c.id)).scalar_one()
            connection.execute(sa.insert(Message.__table__).values(
                content=f"{name}'s message", user_id=user_id, created_at=now, updated_at=now))
        for follower, followed in ((1, 2), (2, 3), (3, 1)):
            connection.execute(sa.insert(follows).values(
                follower_id=follower, followed_id=followed, created_at=now, updated_at=now))


@pytest.fixture
def microblog_app(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    app = create_app({"DATABASE_URL": db_url, "TABLEREST_SECRET_KEY": SECRET})
    register_openapi(app)
    engine = state_of(app).engine
    upgrade(Migrations.for_app(app))
    seed(engine)
    yield app
    engine.dispose()


@pytest.fixture
def token(microblog_app: Flask) -> str:
    """A bearer token of the first seeded user."""
    access: str = issue_token(state_of(microblog_app), 1)["access_token"]
    return access


def documented_operations() -> list[str]:
    """``METHOD /path`` of every operation, from the document of an app with no database."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in ENVIRONMENT:
            monkeypatch.delenv(name, raising=False)
        app = create_app({"DATABASE_URL": "sqlite://", "TABLEREST_SECRET_KEY": SECRET})
    register_openapi(app)
    paths = openapi_document(app)["paths"]
    return [f"{method.upper()} {path}" for path, item in paths.items()
            for method in item if method != "parameters"]


def cases_for(operation: schemathesis.APIOperation, label: str) -> st.SearchStrategy[Any]:
    """Valid and invalid requests; and, since random keys are mostly 404s, valid requests
    about the seeded rows (keys 1 to 3) too."""
    strategies = [operation.as_strategy(GenerationMode.POSITIVE),
                  operation.as_strategy(GenerationMode.NEGATIVE)]
    names = re.findall(r"{(\w+)}", label)
    if names:
        seeded = st.fixed_dictionaries({name: st.sampled_from(SEEDED_KEYS) for name in names})
        strategies.append(seeded.flatmap(
            lambda values: operation.as_strategy(path_parameters=values)))
    return st.one_of(strategies)


@pytest.mark.parametrize("label", documented_operations())
def test_microblog_conforms_to_its_document(microblog_app: Flask, token: str,
                                            label: str) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", microblog_app)
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label

    @hypothesis.given(case=cases_for(operation, label))
    @hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
                         database=None, suppress_health_check=list(HealthCheck))
    def conforms(case: schemathesis.Case) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

    conforms()
