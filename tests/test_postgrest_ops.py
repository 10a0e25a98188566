"""PostgreSQL's own filter operators in the PostgREST dialect: full text search (``fts``,
``plfts``, ``phfts``, ``wfts``, with ``fts(config)``) on text and tsvector columns, and
``cs cd ov sl sr nxr nxl adj`` on arrays, ranges and JSONB; 400 ``PGRST127`` on SQLite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from factories import postgrest_error as error
from tablerest.extension import state_of
from tablerest.reflection import create_app

API = "/rest/v1"

POSTGRES_TABLE = """
CREATE TABLE texts (
    id integer PRIMARY KEY,
    body text,
    search tsvector,
    tags text[],
    span int4range,
    meta jsonb
)"""
SQLITE_TABLE = "CREATE TABLE texts (id integer PRIMARY KEY, body text, tags text)"
DOCS = [
    (1, "The quick brown fox jumps over the lazy dog", "{animal,fast}", "[1,5)",
     '{"kind": "fable", "n": 1}'),
    (2, "Foxes are running in the forest", "{animal}", "[5,10)", '{"kind": "fact"}'),
    (3, "A slow turtle", "{slow}", "[20,30)", '{"kind": "fable", "n": 3}'),
    (4, None, "{}", None, None),
]


@pytest.fixture
def docs(db_url: str) -> Iterator[tuple[FlaskClient, sa.Engine]]:
    """A reflected ``texts`` table with the dialect on (its PostgreSQL columns there)."""
    engine = sa.create_engine(db_url)
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as connection:
        connection.execute(sa.text(POSTGRES_TABLE if postgres else SQLITE_TABLE))
        for key, body, tags, span, meta in DOCS:
            if postgres:
                connection.execute(sa.text(
                    "INSERT INTO texts VALUES (:id, :body, to_tsvector('english', :body), "
                    "CAST(:tags AS text[]), CAST(:span AS int4range), CAST(:meta AS jsonb))"),
                    {"id": key, "body": body, "tags": tags, "span": span, "meta": meta})
            else:
                connection.execute(sa.text("INSERT INTO texts VALUES (:id, :body, :tags)"),
                                   {"id": key, "body": body, "tags": tags})
    engine.dispose()
    app = create_app(db_url, postgrest=API)
    app.testing = True
    yield app.test_client(), engine
    engine.dispose()
    state_of(app).engine.dispose()


#: Tests of PostgreSQL's types run on PostgreSQL only; the refusals on SQLite only.
ON_POSTGRES = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
ON_SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def ids(client: FlaskClient, query: str) -> list[int]:
    response = client.get(f"{API}/texts?select=id&order=id&{query}")
    assert response.status_code == 200, response.json
    return [row["id"] for row in response.json]




@pytest.mark.parametrize(("query", "expected"), [
    ("body=fts.turtle", [3]),  # the server's default configuration
    ("body=fts(simple).fox", [1]),  # simple does not stem
    ("body=fts(english).fox", [1, 2]),  # english stems foxes to fox
    ("body=fts(english).fox %26 forest", [2]),
    ("body=fts(english).fox | turtle", [1, 2, 3]),
    ("body=not.fts(english).fox", [3]),  # NULL matches neither
    ("body=plfts.quick brown", [1]),
    ("body=plfts(english).running forests", [2]),
    ("body=phfts(english).brown fox", [1]),
    ("body=phfts(english).fox brown", []),
    ("body=wfts(english).\"lazy dog\" -turtle", [1]),
    ("body=wfts(english).fox or turtle", [1, 2, 3]),
    ("search=fts.fox", [1, 2]),  # a tsvector column is searched as it is
    ("search=wfts(english).slow", [3]),
    ("or=(body.fts(english).turtle,id.eq.1)", [1, 3]),
])
@ON_POSTGRES
def test_full_text_search(docs: tuple[FlaskClient, sa.Engine], db_url: str, query: str,
                          expected: list[int]) -> None:
    assert ids(docs[0], query) == expected


@pytest.mark.parametrize(("query", "expected"), [
    ("tags=cs.{animal}", [1, 2]),
    ("tags=cs.{animal,fast}", [1]),
    ("tags=cd.{animal,fast,slow}", [1, 2, 3, 4]),
    ("tags=ov.{fast,slow}", [1, 3]),
    ("tags=not.ov.{fast,slow}", [2, 4]),
    ("span=cs.[2,3]", [1]),
    ("span=cd.[0,12)", [1, 2]),
    ("span=ov.[4,6)", [1, 2]),
    ("span=sl.[10,20)", [1, 2]),
    ("span=sr.[10,20)", [3]),
    ("span=nxr.[0,10)", [1, 2]),
    ("span=nxl.[5,6)", [2, 3]),
    ("span=adj.[10,20)", [2, 3]),
    ('meta=cs.{"kind":"fable"}', [1, 3]),
    ('meta=cd.{"kind":"fact","n":2}', [2]),
    ('and=(tags.cs."{animal}",span.sl."[7,8)")', [1]),
])
@ON_POSTGRES
def test_array_range_and_jsonb_operators(docs: tuple[FlaskClient, sa.Engine], db_url: str,
                                         query: str, expected: list[int]) -> None:
    assert ids(docs[0], query) == expected


@ON_POSTGRES
def test_values_are_bound_not_spliced(docs: tuple[FlaskClient, sa.Engine],
                                      db_url: str) -> None:
    client, engine = docs
    hostile = "fox'); DROP TABLE texts; --"
    assert ids(client, f"body=plfts.{hostile}") == []
    error(client.get(f"{API}/texts?tags=cs.{hostile}"), 400, "22P02")
    error(client.get(f"{API}/texts?body=fts.fox dog"), 400, "42601")  # not a tsquery
    error(client.get(f"{API}/texts?body=fts(klingon).fox"), 400, "42704")
    error(client.get(f"{API}/texts?body=fts(english'x).fox"), 400, "PGRST100")
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM texts")).scalar() == 4


@ON_POSTGRES
@pytest.mark.parametrize("query", ["id=cs.{1}", "body=sl.[1,2)", "span=fts.x", "meta=ov.{}",
                                   "tags=adj.[1,2)"])
def test_an_operator_the_type_lacks(docs: tuple[FlaskClient, sa.Engine], db_url: str,
                                    query: str) -> None:
    body = error(docs[0].get(f"{API}/texts?{query}"), 404, "42883")
    assert body["message"].startswith("operator does not exist: ")


@ON_POSTGRES
def test_configuration_and_quantifiers_only_where_they_belong(
        docs: tuple[FlaskClient, sa.Engine], db_url: str) -> None:
    error(docs[0].get(f"{API}/texts?tags=cs(english).{{a}}"), 400, "PGRST100")
    error(docs[0].get(f"{API}/texts?body=fts(any).{{a,b}}"), 400, "PGRST100")
    error(docs[0].get(f"{API}/texts?nope=fts.a"), 400, "42703")


@ON_SQLITE
@pytest.mark.parametrize("query", ["body=fts.fox", "body=plfts(english).fox",
                                   "body=not.phfts.fox", "body=wfts.fox", "tags=cs.{a}",
                                   "tags=cd.{a}", "tags=ov.{a}", "tags=sl.[1,2)",
                                   "tags=sr.[1,2)", "tags=nxr.[1,2)", "tags=nxl.[1,2)",
                                   "tags=adj.[1,2)", "or=(id.eq.1,body.fts.fox)"])
def test_not_implemented_on_sqlite(docs: tuple[FlaskClient, sa.Engine], db_url: str,
                                   query: str) -> None:
    body = error(docs[0].get(f"{API}/texts?{query}"), 400, "PGRST127")
    assert "needs PostgreSQL" in body["details"]


def test_tablerest_own_filters_do_not_offer_them(docs: tuple[FlaskClient, sa.Engine]) -> None:
    # The PostgreSQL-only operators are the dialect's: tablerest's own routes keep theirs.
    response = docs[0].get("/texts?body__fts=fox")
    assert response.status_code == 400
    assert response.content_type.startswith("application/problem+json")
