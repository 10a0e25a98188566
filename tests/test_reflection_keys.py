"""Reflected rows whose key cannot be one URL segment (empty, with ``/``; with ``,`` in a
composite key) are listed and paged like any other row, and their item URLs are 404, never a
500 and never another row."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from conftest import rows
from tablerest.extension import state_of
from tablerest.reflection import create_app

CODES = ["", "a/b", "a,b", "plain"]


@pytest.fixture
def client(db_url: str) -> Iterator[FlaskClient]:
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        for statement in (
            "CREATE TABLE codes (code VARCHAR(10) PRIMARY KEY, label VARCHAR(10))",
            "CREATE TABLE uses (id INTEGER PRIMARY KEY, "
            "code VARCHAR(10) NOT NULL REFERENCES codes (code))",
            "CREATE TABLE pairs (k VARCHAR(10), j VARCHAR(10), v VARCHAR(10), "
            "PRIMARY KEY (k, j))",
            "INSERT INTO codes VALUES ('', 'empty'), ('a/b', 'slash'), ('a,b', 'comma'), "
            "('plain', 'plain'), ('a', 'a')",
            "INSERT INTO uses VALUES (1, 'a/b'), (2, ''), (3, 'a')",
            "INSERT INTO pairs VALUES ('a,b', 'c', 'comma'), ('p/q', 'z', 'slash'), "
            "('', '', 'empty')",
        ):
            connection.exec_driver_sql(statement)
    engine.dispose()
    app = create_app(db_url)
    app.testing = True
    yield app.test_client()
    state_of(app).engine.dispose()


def test_such_rows_are_listed_and_paged(client: FlaskClient) -> None:
    listed = client.get("/codes?sort=label&limit=100").json["items"]
    url: str | None = "/codes?limit=1"
    paged = []
    while url is not None:
        page = client.get(url).json
        paged += page["items"]
        url = page["next"]

    assert [item["code"] for item in listed] == ["a", "a,b", "", "plain", "a/b"]
    assert sorted(item["code"] for item in paged) == sorted(item["code"] for item in listed)
    assert client.get("/codes?code=a/b").json["items"] == [{"code": "a/b", "label": "slash"}]
    included = client.get("/uses?include=code_codes&sort=id").json["items"]
    assert [item["code_codes"]["label"] for item in included] == ["slash", "empty", "a"]


@pytest.mark.parametrize("path", [
    "/codes/", "/codes/a%2Fb", "/codes//uses", "/codes/a%2Fb/uses/1",
    "/pairs/p%2Fq,z", "/pairs/a%2Cb,c",
], ids=repr)
@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])  # HEAD: issue 9, item 1
def test_their_item_urls_are_404(client: FlaskClient, db_url: str, path: str,
                                 method: str) -> None:
    body = {"v": "x"} if path.startswith("/pairs") else {"label": "x"}
    response = client.open(path, method=method,
                           json=body if method in ("PATCH", "PUT") else None)

    assert response.status_code == 404, response.get_data(as_text=True)
    engine = sa.create_engine(db_url)
    assert rows(engine, "SELECT count(*) AS n FROM codes WHERE label = 'x'") == [{"n": 0}]
    assert rows(engine, "SELECT count(*) AS n FROM pairs WHERE v = 'x'") == [{"n": 0}]
    engine.dispose()


def test_no_such_url_reaches_another_row(client: FlaskClient) -> None:
    assert client.get("/codes/a/uses").json["items"] == [{"id": 3, "code": "a"}]
    # "%2F" is decoded before routing: this is /codes/a/b/uses, which is no route.
    assert client.get("/codes/a%2Fb/uses").status_code == 404
    # Not merged into /codes/uses, which would be the row keyed "uses".
    assert client.get("/codes//uses").status_code == 404


def test_other_keys_have_item_urls(client: FlaskClient) -> None:
    assert client.get("/codes/a%2Cb").json == {"code": "a,b", "label": "comma"}
    assert client.get("/pairs/,").json == {"k": "", "j": "", "v": "empty"}
