"""``text/csv`` and ``application/x-ndjson`` for every list: the same rows as JSON, every row
unless the request gives a limit, streamed in batches from the driver cursor; the connection
goes back to the pool when the stream ends or the client goes away; 406 stays for Accept
headers nothing matches."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Table

from factories import add_post, add_user, insert, serving
from tablerest import Policy, RequestContext, Resource
from tablerest.extension import state_of
from testapp import Post, User

CSV = "text/csv"
NDJSON = "application/x-ndjson"
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
TRICKY = ['plain', 'with, comma', 'with "quotes"', "two\nlines", "crlf\r\nend", " spaced ",
          "ünïcödé ✓", "=1+1", ""]


@pytest.fixture
def posts(engine: sa.Engine) -> list[int]:
    """150 posts (more than any page): titles and bodies with characters CSV must quote."""
    alice = add_user(engine, "alice", age=30)
    rows = [{"user_id": alice, "title": f"{index:03d} {TRICKY[index % len(TRICKY)]}",
             "body": None if index % 4 == 0 else TRICKY[index % len(TRICKY)],
             "published": index % 2 == 0,
             "rating": None if index % 5 == 0 else decimal.Decimal(index % 100) / 4,
             "created_at": T0 + dt.timedelta(minutes=index, microseconds=index % 3),
             "updated_at": T0 + dt.timedelta(minutes=index)}
            for index in range(150)]
    return [int(key) for key in insert(engine, Post, *rows)]


def every_json_item(client: FlaskClient, query: str = "") -> list[dict[str, Any]]:
    """All items of the JSON list, page after page."""
    found: list[dict[str, Any]] = []
    url: str | None = f"/posts?{query}&limit=100"
    while url is not None:
        page = client.get(url).json
        found += page["items"]
        url = page["next"]
    return found


def stream(client: FlaskClient, path: str, accept: str) -> Any:
    # buffered: read to the end and closed, as a WSGI server closes every response
    response = client.get(path, headers={"Accept": accept}, buffered=True)
    assert response.status_code == 200, response.data[:500]
    return response


def ndjson_items(response: Any) -> list[dict[str, Any]]:
    assert response.mimetype == NDJSON
    lines = response.data.split(b"\n")
    assert lines[-1] == b""  # every line ends with a newline
    return [orjson.loads(line) for line in lines[:-1]]


def csv_rows(response: Any) -> list[list[str]]:
    assert response.mimetype == CSV
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.data.decode("utf-8"), newline="")))


def as_csv(value: Any) -> str:
    """What CSV shows for a JSON value: a text that a spreadsheet would run as a formula
    gets a leading ``'`` (none of the fixture's decimals is negative)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + value
    return str(value)


# -- content -------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    "", "sort=-rating", "published=true&sort=title", "fields=title,rating,created_at",
    "rating__isnull=true&sort=-created_at",
], ids=["all", "sorted", "filtered", "fields", "filtered-sorted"])
def test_ndjson_is_every_item_of_the_json_list(client: FlaskClient, posts: list[int],
                                               query: str) -> None:
    expected = every_json_item(client, query)
    assert ndjson_items(stream(client, f"/posts?{query}", NDJSON)) == expected
    if not query:
        assert len(expected) == 150


@pytest.mark.parametrize("query", ["", "sort=-rating", "fields=body,title,published"],
                         ids=["all", "sorted", "fields"])
def test_csv_is_a_header_and_every_item(client: FlaskClient, posts: list[int],
                                        query: str) -> None:
    expected = every_json_item(client, query)
    table = csv_rows(stream(client, f"/posts?{query}", CSV))
    header, body = table[0], table[1:]
    assert header == list(expected[0])
    assert body == [[as_csv(item[name]) for name in header] for item in expected]


def test_csv_quotes_by_rfc_4180_and_writes_values_as_json_does(client: FlaskClient,
                                                               posts: list[int]) -> None:
    raw = stream(client, "/posts?fields=id,title,published,rating,created_at&limit=4",
                 CSV).data.decode()
    assert raw.split("\r\n")[:2] == ["id,title,published,rating,created_at",
                                     f"{posts[0]},000 plain,true,,2024-01-01T00:00:00+00:00"]
    assert f'{posts[1]},"001 with, comma",false,0.25,2024-01-01T00:01:00.000001+00:00' in raw
    assert f'{posts[2]},"002 with ""quotes""",true,0.50,' in raw
    assert f'{posts[3]},"003 two\nlines",false,0.75,' in raw
    assert raw.endswith("\r\n")


def test_csv_neutralises_a_formula_that_json_keeps(client: FlaskClient,
                                                   posts: list[int]) -> None:
    """A text starting with ``=`` gets a leading ``'`` in CSV only (test_csv_safety.py has
    every case); the title has its ``=`` in the middle and stays as it is."""
    raw = stream(client, f"/posts?id={posts[7]}&fields=id,title,body", CSV).data.decode()
    assert raw == f"id,title,body\r\n{posts[7]},007 =1+1,'=1+1\r\n"
    assert client.get(f"/posts/{posts[7]}").json["body"] == "=1+1"


def test_a_limit_is_honoured_and_not_clamped(client: FlaskClient, posts: list[int]) -> None:
    assert len(ndjson_items(stream(client, "/posts?limit=7", NDJSON))) == 7
    assert len(ndjson_items(stream(client, "/posts?limit=130", NDJSON))) == 130
    assert len(csv_rows(stream(client, "/posts?limit=3", CSV))) == 4
    assert client.get("/posts?limit=130").json["limit"] == 100  # JSON keeps its maximum


def test_cursor_and_offset_start_the_stream(client: FlaskClient, posts: list[int]) -> None:
    first = client.get("/posts?limit=10&sort=-created_at").json
    rest = ndjson_items(stream(client, f"/posts?sort=-created_at&cursor={first['cursor']}",
                               NDJSON))
    assert rest == every_json_item(client, "sort=-created_at")[10:]
    skipped = ndjson_items(stream(client, "/posts?offset=145", NDJSON))
    assert [item["id"] for item in skipped] == posts[145:]


def test_an_empty_list(client: FlaskClient, engine: sa.Engine) -> None:
    assert stream(client, "/posts", NDJSON).data == b""
    assert stream(client, "/posts?fields=id,title", CSV).data == b"id,title\r\n"


def test_relation_lists_and_body_queries_stream(client: FlaskClient,
                                                posts: list[int]) -> None:
    listed = ndjson_items(stream(client, "/users/1/posts?sort=-id", NDJSON))
    assert [item["id"] for item in listed] == posts[::-1]
    queried = client.open("/posts", method="QUERY", headers={"Accept": CSV}, buffered=True,
                          json={"where": {"or": [{"id": posts[0]}, {"id": posts[-1]}]},
                                "fields": ["id"]})
    assert csv_rows(queried) == [["id"], [str(posts[0])], [str(posts[-1])]]


def test_the_microblog_timeline_streams(mb_client: FlaskClient, microblog: Flask) -> None:
    from microblog.models import Message
    from microblog.models import User as MicroblogUser

    engine = state_of(microblog).engine
    (jane,) = insert(engine, MicroblogUser, {"name": "jane", "email": "jane@example.com",
                                             "password": "x" * 8})
    insert(engine, Message, *({"content": f"m{index}", "user_id": jane,
                               "created_at": T0 + dt.timedelta(minutes=index),
                               "updated_at": T0} for index in range(30)))
    listed = ndjson_items(stream(mb_client, f"/users/{jane}/timeline", NDJSON))
    assert [item["content"] for item in listed] == [f"m{index}" for index in range(29, -1, -1)]


# -- negotiation -------------------------------------------------------------------------------


@pytest.mark.parametrize(("accept", "mimetype"), [
    (None, "application/json"),
    ("*/*", "application/json"),
    ("application/json", "application/json"),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html"),
    ("text/csv", CSV),
    ("text/*", CSV),
    ("text/csv;q=0.5, application/x-ndjson", NDJSON),
    ("application/x-ndjson, */*;q=0.1", NDJSON),
    ("application/json;q=0.2, text/csv;q=0.9", CSV),
    ("application/problem+json", "application/json"),
], ids=["none", "any", "json", "browser", "csv", "text-any", "ndjson-preferred", "ndjson",
        "csv-preferred", "problem-json"])
def test_accept_chooses_the_representation(client: FlaskClient, posts: list[int],
                                           accept: str | None, mimetype: str) -> None:
    headers = {"Accept": accept} if accept else {}
    response = client.get("/posts?limit=2", headers=headers, buffered=True)
    assert response.status_code == 200
    assert response.mimetype == mimetype


@pytest.mark.parametrize("path", ["/posts", "/users/1/posts"])
def test_accept_matching_nothing_is_406(client: FlaskClient, posts: list[int],
                                        path: str) -> None:
    response = client.get(path, headers={"Accept": "image/png"})
    assert response.status_code == 406
    assert "text/csv" in response.json["detail"]


def test_items_stay_json_only(client: FlaskClient, posts: list[int]) -> None:
    assert client.get(f"/posts/{posts[0]}", headers={"Accept": CSV}).status_code == 406


def test_a_bad_query_is_a_problem_before_any_row(client: FlaskClient, posts: list[int]) -> None:
    response = client.get("/posts?nope=1", headers={"Accept": CSV})
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


# -- streaming: batches, and the connection released -----------------------------------------


def chunks_of(response: Any) -> Iterator[bytes]:
    return iter(response.response)


def test_rows_are_fetched_in_batches_as_the_client_reads(client: FlaskClient,
                                                         engine: sa.Engine) -> None:
    alice = add_user(engine, "alice")
    insert(engine, Post, *({"user_id": alice, "title": f"t{index}"} for index in range(2500)))
    response = client.get("/posts?fields=id", headers={"Accept": NDJSON}, buffered=False)
    assert response.is_streamed
    chunks = chunks_of(response)
    first = next(chunks)
    assert first.count(b"\n") == 1000  # one batch, not the whole result
    assert engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    rest = b"".join(chunks)
    assert (first + rest).count(b"\n") == 2500
    response.close()
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("accept", [CSV, NDJSON])
def test_a_client_that_goes_away_releases_the_connection(client: FlaskClient,
                                                         engine: sa.Engine,
                                                         accept: str) -> None:
    alice = add_user(engine, "alice")
    insert(engine, Post, *({"user_id": alice, "title": f"t{index}"} for index in range(2500)))
    for read in (0, 1):
        response = client.get("/posts", headers={"Accept": accept}, buffered=False)
        chunks = chunks_of(response)
        for _ in range(read):
            next(chunks)
        assert engine.pool.checkedout() == 1  # type: ignore[attr-defined]
        response.close()  # what a WSGI server does when the client disconnects
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    # The pool is healthy: the next request reads normally.
    assert client.get("/posts?limit=1").json["count"] == 2500


class OwnPostsOnly(Policy):
    def visible(self, ctx: RequestContext, table: Table) -> sa.ColumnElement[bool]:
        return table.c.published.is_(True)


@pytest.fixture
def guarded(db_url: str) -> Iterator[Flask]:
    with serving(db_url, Resource(User), Resource(Post, policy=OwnPostsOnly())) as app:
        yield app


def test_the_policy_path_streams_too(guarded: Flask) -> None:
    engine = state_of(guarded).engine
    alice = add_user(engine, "alice")
    for index in range(1500):
        add_post(engine, alice, f"t{index}", published=index % 3 == 0)
    client = guarded.test_client()
    listed = ndjson_items(stream(client, "/posts?fields=title", NDJSON))
    assert listed == [{"title": f"t{index}"} for index in range(0, 1500, 3)]
    response = client.get("/posts", headers={"Accept": CSV}, buffered=False)
    next(chunks_of(response))
    response.close()
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
