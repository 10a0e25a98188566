"""Strong ETags on items: conditional GET with If-None-Match (304), and lost-update protection
with If-Match on PATCH, PUT and DELETE (412, nothing written)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from conftest import rows
from factories import insert
from testapp import Document

KEY = uuid.UUID("0b7e2c5e-3f7a-4c1e-9d5b-2a6f8e4d1c3b")
PATH = f"/documents/{KEY}"


@pytest.fixture
def etag(client: FlaskClient, engine: sa.Engine) -> str:
    """The ETag of the document ``spec`` at ``PATH``, as a client read it."""
    insert(engine, Document, {"id": KEY, "title": "spec"})
    response = client.get(PATH)
    assert response.status_code == 200
    value: str = response.headers["ETag"]
    return value


def test_etag_is_strong_and_stable(client: FlaskClient, etag: str) -> None:
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2  # not W/"..."
    assert client.get(PATH).headers["ETag"] == etag


def test_etag_changes_with_the_item_and_matches_the_write_response(client: FlaskClient,
                                                                   etag: str) -> None:
    patched = client.patch(PATH, json={"title": "rfc"})
    assert patched.status_code == 200
    assert patched.headers["ETag"] != etag
    assert client.get(PATH).headers["ETag"] == patched.headers["ETag"]


def test_etags_differ_between_items(client: FlaskClient, engine: sa.Engine, etag: str) -> None:
    [other] = insert(engine, Document, {"title": "spec"})
    assert client.get(f"/documents/{other}").headers["ETag"] != etag


@pytest.mark.parametrize("header", [
    pytest.param("{etag}", id="same"),
    pytest.param('"other", {etag}', id="in-a-list"),
    pytest.param("*", id="star"),
    pytest.param("W/{etag}", id="weak-form"),
])
def test_if_none_match_gives_304(client: FlaskClient, etag: str, header: str) -> None:
    response = client.get(PATH, headers={"If-None-Match": header.format(etag=etag)})
    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == etag


@pytest.mark.parametrize("header", ['"other"', '"other", "more"'], ids=["other", "others"])
def test_if_none_match_with_other_etags_gives_the_item(client: FlaskClient, etag: str,
                                                       header: str) -> None:
    response = client.get(PATH, headers={"If-None-Match": header})
    assert response.status_code == 200
    assert response.json["title"] == "spec"
    assert response.headers["ETag"] == etag


def test_if_none_match_after_a_change_gives_the_new_item(client: FlaskClient,
                                                         etag: str) -> None:
    client.patch(PATH, json={"title": "rfc"})
    response = client.get(PATH, headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.json["title"] == "rfc"


def test_if_none_match_on_a_missing_item_is_404(client: FlaskClient, etag: str) -> None:
    response = client.get(f"/documents/{uuid.UUID(int=0)}", headers={"If-None-Match": "*"})
    assert response.status_code == 404


WRITES: list[tuple[str, dict[str, Any] | None, int]] = [
    ("patch", {"title": "rfc"}, 200),
    ("put", {"title": "rfc"}, 200),
    ("delete", None, 204),
]


@pytest.mark.parametrize(("method", "body", "status"), WRITES, ids=["patch", "put", "delete"])
@pytest.mark.parametrize("header", ["{etag}", '"other", {etag}', "*"],
                         ids=["same", "in-a-list", "star"])
def test_if_match_current_lets_the_write_through(client: FlaskClient, engine: sa.Engine,
                                                 etag: str, method: str,
                                                 body: dict[str, Any] | None, status: int,
                                                 header: str) -> None:
    kwargs: dict[str, Any] = {"headers": {"If-Match": header.format(etag=etag)}}
    if body is not None:
        kwargs["json"] = body
    response = getattr(client, method)(PATH, **kwargs)
    assert response.status_code == status
    expected = [] if method == "delete" else [{"title": "rfc"}]
    assert rows(engine, "SELECT title FROM documents") == expected


@pytest.mark.parametrize(("method", "body", "status"), WRITES, ids=["patch", "put", "delete"])
@pytest.mark.parametrize("header", ['"stale"', "W/{etag}", "{changed}"],
                         ids=["stale", "weak-never-matches", "changed-since"])
def test_if_match_stale_is_412_and_writes_nothing(client: FlaskClient, engine: sa.Engine,
                                                  etag: str, method: str,
                                                  body: dict[str, Any] | None, status: int,
                                                  header: str) -> None:
    if "{changed}" in header:  # someone else changed the item after we read it
        assert client.patch(PATH, json={"title": "draft"}).status_code == 200
    stored = rows(engine, "SELECT title, updated_at FROM documents")
    kwargs: dict[str, Any] = {"headers": {"If-Match": header.format(etag=etag, changed=etag)}}
    if body is not None:
        kwargs["json"] = body
    response = getattr(client, method)(PATH, **kwargs)
    assert response.status_code == 412
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 412
    assert rows(engine, "SELECT title, updated_at FROM documents") == stored
