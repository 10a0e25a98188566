"""Accounts that cannot pose as each other (issue 9, item 10), through the microblog.

``Password(min_length=8)`` refuses short and empty passwords; ``Name`` stores NFKC, trimmed
text and refuses invisible characters; ``Email`` stores the whole address in lower case. A
unique index on ``lower(name)`` makes ``Jane`` a conflict beside ``jane``, and the 409 names
the field. The same normalization holds for ORM writes (seeders, ``Model.create``).
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from microblog.models import User

from conftest import rows
from tablerest import session
from tablerest.extension import state_of

PASSWORD = "correct horse battery staple"
PROBLEM = "application/problem+json"


def sign_up(client: FlaskClient, name: str, email: str | None = None,
            password: str = PASSWORD) -> Any:
    return client.post("/users", json={"name": name, "email": email or f"{name}@example.com",
                                       "password": password})


def refused(response: Any, status: int, field: str) -> None:
    shown = response.get_data(as_text=True)
    assert response.status_code == status, shown
    assert response.mimetype == PROBLEM, shown
    assert [error["field"] for error in response.json["errors"]] == [field], shown


def stored_users(microblog: Flask) -> list[dict[str, Any]]:
    return rows(state_of(microblog).engine, "SELECT name, email FROM users ORDER BY id")


# -- passwords ---------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["", "seven77", "       "],
                         ids=["empty", "seven-characters", "seven-spaces"])
def test_a_short_password_is_422(mb_client: FlaskClient, microblog: Flask,
                                 password: str) -> None:
    response = sign_up(mb_client, "ann", password=password)

    refused(response, 422, "password")
    assert "8" in response.json["errors"][0]["message"]
    assert stored_users(microblog) == []


def test_an_eight_character_password_is_enough(mb_client: FlaskClient,
                                               microblog: Flask) -> None:
    assert sign_up(mb_client, "ann", password="eight888").status_code == 201
    token = mb_client.post("/auth/token", json={"name": "ann", "password": "eight888"})
    assert token.status_code == 200


def test_openapi_shows_the_minimum_password_length(mb_client: FlaskClient) -> None:
    schemas = mb_client.get("/openapi.json").json["components"]["schemas"]

    for method in ("create", "replace", "update"):
        properties = schemas[f"users.{method}"]["properties"]
        assert properties["password"]["minLength"] == 8
        name = properties["name"].get("anyOf", [properties["name"]])[0]
        assert (name["minLength"], name["maxLength"]) == (1, 64)


# -- names -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    pytest.param("jane\u200b", id="zero-width-space"),
    pytest.param("\u202ejane", id="right-to-left-override"),
    pytest.param("ja\u200dne", id="zero-width-joiner"),
    pytest.param("jane\u0007", id="control-character"),
    pytest.param("   ", id="only-spaces"),
    pytest.param("", id="empty"),
])
def test_a_name_with_invisible_characters_is_422(mb_client: FlaskClient, microblog: Flask,
                                                 name: str) -> None:
    response = sign_up(mb_client, name, email="someone@example.com")

    refused(response, 422, "name")
    assert stored_users(microblog) == []


@pytest.mark.parametrize("taken", ["Jane", "JANE", " jane ", "\uff4a\uff41\uff4e\uff45"],
                         ids=["capital", "upper-case", "spaces", "full-width"])
def test_a_name_that_differs_only_in_case_or_form_is_409(
        mb_client: FlaskClient, microblog: Flask, taken: str) -> None:
    assert sign_up(mb_client, "jane").status_code == 201

    response = sign_up(mb_client, taken, email="other@example.com")

    refused(response, 409, "name")
    assert stored_users(microblog) == [{"name": "jane", "email": "jane@example.com"}]


def test_a_name_is_stored_trimmed_and_in_nfkc(mb_client: FlaskClient, microblog: Flask) -> None:
    response = sign_up(mb_client, " \uff4a\uff41ne ", email="jane@example.com")

    assert response.status_code == 201
    assert response.json["name"] == "jane"
    assert stored_users(microblog) == [{"name": "jane", "email": "jane@example.com"}]


def test_renaming_to_a_taken_name_in_another_case_is_409(
        mb_client: FlaskClient, microblog: Flask) -> None:
    assert sign_up(mb_client, "jane").status_code == 201
    ann = sign_up(mb_client, "ann").json["id"]
    token = mb_client.post("/auth/token", json={"name": "ann", "password": PASSWORD})
    bearer = {"Authorization": f"Bearer {token.json['access_token']}"}

    refused(mb_client.patch(f"/users/{ann}", json={"name": "Jane"}, headers=bearer),
            409, "name")
    refused(mb_client.patch(f"/users/{ann}", json={"name": "an\u200bn"}, headers=bearer),
            422, "name")
    assert mb_client.patch(f"/users/{ann}", json={"name": " Annie "},
                           headers=bearer).json["name"] == "Annie"


# -- emails ------------------------------------------------------------------------------


def test_an_email_is_stored_in_lower_case(mb_client: FlaskClient, microblog: Flask) -> None:
    response = sign_up(mb_client, "john", email=" John@DOE.com ")

    assert response.status_code == 201
    assert response.json["email"] == "john@doe.com"
    assert stored_users(microblog) == [{"name": "john", "email": "john@doe.com"}]


@pytest.mark.parametrize("taken", ["john@doe.com", "JOHN@doe.COM", "John@DOE.com"])
def test_an_email_that_differs_only_in_case_is_409(
        mb_client: FlaskClient, microblog: Flask, taken: str) -> None:
    assert sign_up(mb_client, "john", email="John@DOE.com").status_code == 201

    response = sign_up(mb_client, "other", email=taken)

    refused(response, 409, "email")
    assert stored_users(microblog) == [{"name": "john", "email": "john@doe.com"}]


@pytest.mark.parametrize("email", ["john\u200b@doe.com", "\u202ejohn@doe.com",
                                   "john@doe.com\u0000"],
                         ids=["zero-width-space", "right-to-left-override", "nul"])
def test_an_email_with_invisible_characters_is_422(
        mb_client: FlaskClient, microblog: Flask, email: str) -> None:
    refused(sign_up(mb_client, "john", email=email), 422, "email")
    assert stored_users(microblog) == []


def test_a_filter_finds_an_email_in_any_case(mb_client: FlaskClient) -> None:
    """Filter values are normalized as the column stores them: one address, any case."""
    assert sign_up(mb_client, "john", email="john@doe.com").status_code == 201

    found = mb_client.get("/users?email=John@DOE.com").json["items"]

    assert [user["name"] for user in found] == ["john"]
    response = mb_client.get("/users?name=jo%E2%80%8Bhn")  # cannot be stored: 400, not 500
    assert response.status_code == 400


# -- ORM writes ------------------------------------------------------------------------------


def test_orm_writes_store_the_same_spelling(microblog: Flask) -> None:
    with microblog.app_context():
        User.create(name=" \uff41nn ", email=" Ann@Example.COM", password=PASSWORD)
        session().commit()
        # Comparisons normalize what they are given too, and one that cannot be stored
        # matches nothing.
        assert User.where(email="ANN@example.com")[0].name == "ann"
        assert User.where(name="an\u200bn") == []

    assert stored_users(microblog) == [{"name": "ann", "email": "ann@example.com"}]


@pytest.mark.parametrize(("values", "message"), [
    ({"password": "short"}, "at least 8 characters"),
    ({"password": ""}, "at least 8 characters"),
    ({"name": "bo\u200bb"}, "U\\+200B"),
    ({"email": "bob\u202e@example.com"}, "U\\+202E"),
], ids=["short-password", "empty-password", "invisible-in-name", "invisible-in-email"])
def test_orm_writes_refuse_what_the_api_refuses(microblog: Flask, values: dict[str, str],
                                                message: str) -> None:
    with microblog.app_context():
        user = {"name": "bob", "email": "bob@example.com", "password": PASSWORD, **values}
        with pytest.raises(sa.exc.StatementError, match=message):
            User.create(**user)
        session().rollback()

    assert stored_users(microblog) == []
