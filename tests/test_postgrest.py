"""The PostgREST dialect's reads, over HTTP, on SQLite and PostgreSQL: the select grammar,
embeds, every filter operator, logic trees, order, pages and Content-Range, counts, the
singular object, CSV, PostgREST's error body, and hostile input."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from factories import postgrest_error as error
from tablerest import TableRest
from tablerest.postgrest import options_for, register

API = "/rest/v1"
POSTS = [
    {"title": "Hello", "body": "x", "published": True, "rating": "4.5"},
    {"title": "World", "body": None, "published": False, "rating": None},
    {"title": "Third, with comma", "body": "hello (there)", "published": True,
     "rating": "3.25"},
    {"title": "a'b; DROP TABLE posts", "body": "", "published": False, "rating": "1"},
]
AUTHORS = [1, 1, 2, 3]


@pytest.fixture
def pg(app: Flask, client: FlaskClient) -> FlaskClient:
    """The test app with the dialect on and four posts by three users (one has none)."""
    register(app, options_for(API))
    for name, age in (("ann", 30), ("bob", None), ("cy", 20), ("dee", 40)):
        response = client.post("/users", json={"name": name, "email": f"{name}@example.org",
                                                "password": "secret-pass", "age": age})
        assert response.status_code == 201
    for post, author in zip(POSTS, AUTHORS, strict=True):
        assert client.post("/posts", json={**post, "user_id": author}).status_code == 201
    for tag in ("news", "tech"):
        assert client.post("/tags", json={"name": tag}).status_code == 201
    assert client.put("/posts/1/tags/news").status_code == 204
    assert client.put("/posts/1/tags/tech").status_code == 204
    return client


def ids(client: FlaskClient, query: str) -> list[int]:
    response = client.get(f"{API}/posts?select=id&order=id&{query}")
    assert response.status_code == 200, response.json
    return [row["id"] for row in response.json]




# -- select and embeds ---------------------------------------------------------------------------


def test_no_select_gives_every_visible_column(pg: FlaskClient) -> None:
    response = pg.get(f"{API}/users?order=id")
    assert response.status_code == 200
    assert response.content_type == "application/json; charset=utf-8"
    assert [row["name"] for row in response.json] == ["ann", "bob", "cy", "dee"]
    assert "password" not in response.json[0]
    assert response.headers["Content-Range"] == "0-3/*"


def test_select_columns_aliases_and_quoted_names(pg: FlaskClient) -> None:
    response = pg.get(f'{API}/posts?select="id", heading:title , "x,y":published&id=eq.1')
    assert response.json == [{"id": 1, "heading": "Hello", "x,y": True}]


@pytest.mark.parametrize("embed", ["author", "users", "user_id"],
                         ids=["relation", "table", "fk-column"])
def test_a_to_one_embed_by_relation_table_or_column(pg: FlaskClient, embed: str) -> None:
    response = pg.get(f"{API}/posts?select=title,{embed}(name)&order=id")
    assert response.status_code == 200, response.json
    assert [row[embed] for row in response.json] == [
        {"name": "ann"}, {"name": "ann"}, {"name": "bob"}, {"name": "cy"}]


def test_to_many_and_many_to_many_embeds_with_aliases(pg: FlaskClient) -> None:
    users = pg.get(f"{API}/users?select=name,writes:posts(id,t:title)&order=id").json
    assert users[0] == {"name": "ann", "writes": [{"id": 1, "t": "Hello"},
                                                  {"id": 2, "t": "World"}]}
    assert users[3] == {"name": "dee", "writes": []}
    posts = pg.get(f"{API}/posts?select=id,tags(*)&order=id").json
    assert sorted(tag["name"] for tag in posts[0]["tags"]) == ["news", "tech"]
    assert posts[1]["tags"] == []


def test_empty_embed_emits_no_key_and_spread_merges_a_to_one(pg: FlaskClient) -> None:
    assert pg.get(f"{API}/posts?select=id,author()&id=eq.1").json == [{"id": 1}]
    response = pg.get(f"{API}/posts?select=id,...author(writer:name)&id=eq.3")
    assert response.json == [{"id": 3, "writer": "bob"}]


def test_embed_errors(pg: FlaskClient) -> None:
    body = error(pg.get(f"{API}/posts?select=id,comments(id)"), 400, "PGRST200")
    assert body["message"] == ("Could not find a relationship between 'posts' and 'comments' "
                               "in the schema cache")
    error(pg.get(f"{API}/posts?select=id,author(password)"), 400, "42703")
    error(pg.get(f"{API}/posts?select=count()"), 400, "PGRST123")
    error(pg.get(f"{API}/posts?select=id,author(name,posts(id,nope(id)))"), 400, "PGRST200")


# -- filters -----------------------------------------------------------------------------------


FILTERS = [
    ("title=eq.Hello", [1]),
    ("title=neq.Hello", [2, 3, 4]),
    ("rating=gt.2", [1, 3]),
    ("rating=gte.3.25", [1, 3]),
    ("rating=lt.3.25", [4]),
    ("rating=lte.3.25", [3, 4]),
    ("title=like.*orl*", [2]),
    ("title=like.%25orl%25", [2]),
    ("title=like.*ORL*", []),
    ("title=ilike.*ORL*", [2]),
    ("title=match.^W", [2]),
    ("title=imatch.^w", [2]),
    ("id=in.(1,3)", [1, 3]),
    ('title=in.("Third, with comma",World)', [2, 3]),
    ("id=in.()", []),
    ("rating=is.null", [2]),
    ("rating=not.is.null", [1, 3, 4]),
    ("published=is.true", [1, 3]),
    ("published=is.False", [2, 4]),
    ("rating=isdistinct.4.5", [2, 3, 4]),
    ("id=not.in.(1,2)", [3, 4]),
    ("title=like(any).{H*,W*}", [1, 2]),
    ("title=like(all).{*o*,*l*}", [1, 2]),
    ("id=eq(any).{1,4}", [1, 4]),
    ("id=gt.1&id=lt.4", [2, 3]),
    ("or=(id.eq.1,id.eq.4)", [1, 4]),
    ("and=(published.is.true,rating.gt.4)", [1]),
    ("or=(id.eq.2,and(published.is.true,rating.lt.4))", [2, 3]),
    ("not.or=(id.eq.1,id.eq.2)", [3, 4]),
    ("or=(id.eq.1,not.and(id.gte.2,id.lte.3))", [1, 4]),
    ('or=(title.eq."Third, with comma",id.in.(4))', [3, 4]),
    ("or=(title.like(any).{H*,Z*},id.not.eq.2)", [1, 3, 4]),
    ("title=eq.a'b; DROP TABLE posts", [4]),
    ("body=eq.", [4]),
]


@pytest.mark.parametrize(("query", "expected"), FILTERS, ids=[query for query, _ in FILTERS])
def test_filters_and_logic_trees(pg: FlaskClient, query: str, expected: list[int]) -> None:
    assert ids(pg, query) == expected


def test_a_hundred_element_in_list(pg: FlaskClient) -> None:
    values = ",".join(str(number) for number in range(100, 200)) + ",2"
    assert ids(pg, f"id=in.({values})") == [2]
    too_many = ",".join(str(number) for number in range(1001))
    error(pg.get(f"{API}/posts?id=in.({too_many})"), 400, "PGRST100")


@pytest.mark.parametrize(("query", "status", "code"), [
    ("nope=eq.1", 400, "42703"),
    ("password=eq.x", 400, "42703"),
    ("title;drop table posts=eq.1", 400, "42703"),
    ("title=Hello", 400, "PGRST100"),
    ("title=zz.Hello", 400, "PGRST100"),
    ("id=eq.abc", 400, "22P02"),
    ("id=eq.99999999999999999999999", 400, "22P02"),
    ("published=is.maybe", 400, "22P02"),
    ("id=is.true", 400, "22P02"),
    ("or=(id.eq.1", 400, "PGRST100"),
    ("or=id.eq.1", 400, "PGRST100"),
    ("or=(id.eq.1))", 400, "PGRST100"),
    ("or=(id.zz.1)", 400, "PGRST100"),
    ("or=(nope.eq.1)", 400, "42703"),
    ("id=in.(1,2", 400, "PGRST100"),
    ('title=in.("a,b)', 400, "PGRST100"),
    ("author.name=eq.ann", 400, "PGRST108"),
    ("select=id,tags(name)&tags.order=nope", 400, "42703"),
    ("select=id,tags(name)&tags.limit=x", 400, "PGRST100"),
    ("select=id,tags(name)&tags.or=(name.eq.a", 400, "PGRST100"),
    ("title->a=eq.1", 400, "PGRST127"),
], ids=lambda value: str(value))
def test_bad_filters(pg: FlaskClient, query: str, status: int, code: str) -> None:
    error(pg.get(f"{API}/posts?{query}"), status, code)


def test_deep_nesting_is_refused(pg: FlaskClient) -> None:
    tree = "id.eq.1"
    for _ in range(20):
        tree = f"or({tree},id.eq.2)"
    error(pg.get(f"{API}/posts?or=({tree})"), 400, "PGRST100")
    select = "id"
    for _ in range(20):
        select = f"author({select})"
    error(pg.get(f"{API}/posts?select={select}"), 400, "PGRST100")


@pytest.mark.parametrize("select", ["id,author(name", "id,,title", "id)", "*,", "a:b:c",
                                    '"unclosed', "author!(name)", "title::text",
                                    "data->a"], ids=str)
def test_malformed_select(pg: FlaskClient, select: str) -> None:
    response = pg.get(f"{API}/posts", query_string={"select": select})
    assert response.status_code == 400
    assert response.json["code"] in ("PGRST100", "PGRST127", "42703")


def test_an_injection_string_as_alias_is_only_a_key(pg: FlaskClient) -> None:
    alias = '"x; DROP TABLE posts --"'
    response = pg.get(f"{API}/posts", query_string={"select": f"{alias}:title", "id": "eq.1"})
    assert response.json == [{"x; DROP TABLE posts --": "Hello"}]
    assert len(pg.get(f"{API}/posts").json) == len(POSTS)


# -- order, pages, counts ----------------------------------------------------------------------


@pytest.mark.parametrize(("order", "expected"), [
    ("rating.desc", [2, 1, 3, 4]),
    ("rating.desc.nullslast", [1, 3, 4, 2]),
    ("rating", [4, 3, 1, 2]),
    ("rating.asc.nullsfirst", [2, 4, 3, 1]),
    ("published.desc,id.desc", [3, 1, 4, 2]),
], ids=str)
def test_order_puts_nulls_where_postgresql_does(pg: FlaskClient, order: str,
                                                expected: list[int]) -> None:
    response = pg.get(f"{API}/posts?select=id&order={order}")
    assert [row["id"] for row in response.json] == expected


def test_bad_order(pg: FlaskClient) -> None:
    error(pg.get(f"{API}/posts?order=nope.desc"), 400, "42703")
    error(pg.get(f"{API}/posts?order=id.sideways"), 400, "PGRST100")
    error(pg.get(f"{API}/posts?order=author(name).desc"), 400, "PGRST127")


def test_limit_offset_count_and_content_range(pg: FlaskClient) -> None:
    response = pg.get(f"{API}/posts?select=id&limit=2")
    assert (response.status_code, response.headers["Content-Range"]) == (200, "0-1/*")
    counted = {"Prefer": "count=exact"}
    response = pg.get(f"{API}/posts?select=id&limit=2&offset=1", headers=counted)
    assert (response.status_code, response.headers["Content-Range"]) == (206, "1-2/4")
    assert response.headers["Preference-Applied"] == "count=exact"
    assert [row["id"] for row in response.json] == [2, 3]
    response = pg.get(f"{API}/posts?select=id", headers=counted)
    assert (response.status_code, response.headers["Content-Range"]) == (200, "0-3/4")
    response = pg.get(f"{API}/posts?select=id&id=gt.10", headers=counted)
    assert (response.status_code, response.headers["Content-Range"]) == (200, "*/0")
    response = pg.get(f"{API}/posts?select=id&id=gt.10")
    assert response.headers["Content-Range"] == "*/*"
    body = error(pg.get(f"{API}/posts?offset=9", headers=counted), 416, "PGRST103")
    assert body["details"] == "An offset of 9 was requested, but there are only 4 rows."
    for count in ("planned", "estimated"):
        response = pg.get(f"{API}/posts?limit=1", headers={"Prefer": f"count={count}"})
        assert (response.status_code, response.headers["Content-Range"]) == (206, "0-0/4")
    error(pg.get(f"{API}/posts?limit=-1"), 400, "PGRST100")
    error(pg.get(f"{API}/posts?offset=x"), 400, "PGRST100")


def test_range_headers(pg: FlaskClient) -> None:
    response = pg.get(f"{API}/posts?select=id", headers={"Range": "1-2", "Range-Unit": "items",
                                                         "Prefer": "count=exact"})
    assert (response.status_code, response.headers["Content-Range"]) == (206, "1-2/4")
    # the header's range and the query's (offset, limit) intersect
    response = pg.get(f"{API}/posts?select=id&offset=1", headers={"Range": "0-1"})
    assert [row["id"] for row in response.json] == [2]
    response = pg.get(f"{API}/posts?select=id&limit=3", headers={"Range": "2-"})
    assert [row["id"] for row in response.json] == [3]
    response = pg.get(f"{API}/posts?select=id", headers={"Range": "bogus"})
    assert len(response.json) == len(POSTS)
    error(pg.get(f"{API}/posts", headers={"Range": "5-2"}), 416, "PGRST103")


def test_head_has_the_headers_and_no_body(pg: FlaskClient) -> None:
    response = pg.head(f"{API}/posts?select=*", headers={"Prefer": "count=exact"})
    assert response.status_code == 200
    assert response.headers["Content-Range"] == "0-3/4"
    assert response.data == b""


def test_the_page_is_capped_by_the_resources_maximum(app: Flask, pg: FlaskClient) -> None:
    for number in range(60):
        pg.post(f"{API}/users", json={"name": f"user{number}", "email": f"u{number}@x.org",
                                      "password": "secret-pass"})
    response = pg.get(f"{API}/users?select=id", headers={"Prefer": "count=exact"})
    assert (response.status_code, response.headers["Content-Range"]) == (206, "0-49/64")


# -- representations ---------------------------------------------------------------------------


OBJECT = {"Accept": "application/vnd.pgrst.object+json"}


def test_singular_object(pg: FlaskClient) -> None:
    response = pg.get(f"{API}/posts?select=id,title&id=eq.1", headers=OBJECT)
    assert response.status_code == 200
    assert response.content_type == "application/vnd.pgrst.object+json; charset=utf-8"
    assert response.json == {"id": 1, "title": "Hello"}
    body = error(pg.get(f"{API}/posts?id=eq.99", headers=OBJECT), 406, "PGRST116")
    assert body["message"] == "Cannot coerce the result to a single JSON object"
    assert body["details"] == "The result contains 0 rows"
    body = error(pg.get(f"{API}/posts?id=in.(1,2,3)", headers=OBJECT), 406, "PGRST116")
    assert body["details"] == "The result contains 3 rows"
    body = error(pg.get(f"{API}/posts?limit=2", headers=OBJECT), 406, "PGRST116")
    assert body["details"] == "The result contains 2 rows"


def test_csv(pg: FlaskClient) -> None:
    response = pg.get(f"{API}/posts?select=id,title,body,rating,author(name)&order=id",
                      headers={"Accept": "text/csv"})
    assert response.status_code == 200
    assert response.content_type == "text/csv; charset=utf-8"
    assert response.data.decode() == "\n".join([
        "id,title,body,rating,author",
        '1,Hello,x,4.50,"{""name"":""ann""}"',
        '2,World,,,"{""name"":""ann""}"',
        '3,"Third, with comma","hello (there)",3.25,"{""name"":""bob""}"',
        '4,"a\'b; DROP TABLE posts","",1.00,"{""name"":""cy""}"',
    ])


def test_media_types_and_profiles(pg: FlaskClient) -> None:
    error(pg.get(f"{API}/posts", headers={"Accept": "image/png"}), 406, "PGRST107")
    assert pg.get(f"{API}/posts", headers={"Accept": "*/*"}).status_code == 200
    body = error(pg.get(f"{API}/posts", headers={"Accept-Profile": "private"}), 406,
                 "PGRST106")
    assert body["hint"] == "Only the following schemas are exposed: public"
    response = pg.get(f"{API}/posts", headers={"Accept-Profile": "public"})
    assert response.headers["Content-Profile"] == "public"


def test_paths_and_methods(pg: FlaskClient) -> None:
    body = error(pg.get(f"{API}/nope"), 404, "PGRST205")
    assert body["message"] == "Could not find the table 'public.nope' in the schema cache"
    error(pg.get(f"{API}/posts/1"), 404, "PGRST125")
    error(pg.post(f"{API}/rpc/anything", json={}), 404, "PGRST202")
    error(pg.put(f"{API}/posts?id=eq.1", json={}), 400, "PGRST115")  # PUT needs the key
    root = pg.get(f"{API}/")
    assert root.status_code == 200
    assert "/posts" in root.json["paths"]
    # a method no route serves: PostgREST's body under the prefix, problem JSON elsewhere
    error(pg.open(f"{API}/posts", method="BREW"), 405, "PGRST117")
    assert "Allow" in pg.open(f"{API}/posts", method="BREW").headers
    error(pg.open(f"{API}/rpc/anything", method="BREW"), 405, "PGRST117")
    outside = pg.open("/posts", method="BREW")
    assert (outside.status_code, outside.content_type) == (405, "application/problem+json")


def test_tablerest_routes_keep_problem_json(pg: FlaskClient) -> None:
    response = pg.get("/posts?nope=1")
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"


# -- the core gains ----------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "expected"), [
    ("rating__is=null", [2]),
    ("rating__is=not_null", [1, 3, 4]),
    ("published__is=true", [1, 3]),
    ("title__match=^W", [2]),
    ("title__imatch=^w", [2]),
    ("rating__isdistinct=4.5", [2, 3, 4]),
], ids=str)
def test_tablerest_urls_gain_the_new_operators(pg: FlaskClient, query: str,
                                              expected: list[int]) -> None:
    response = pg.get(f"/posts?{query}&sort=id")
    assert response.status_code == 200, response.json
    assert [item["id"] for item in response.json["items"]] == expected


@pytest.mark.parametrize("pattern", ["(", "(a+)+$", "[[:alpha:]]", "(?P<n>a)", "x" * 201],
                         ids=["unbalanced", "nested-quantifier", "posix-class", "named-group",
                              "too-long"])
def test_regular_expressions_both_engines_cannot_run_are_refused(pg: FlaskClient,
                                                                 pattern: str) -> None:
    response = pg.get("/posts", query_string={"title__match": pattern})
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    error(pg.get(f"{API}/posts", query_string={"title": f"imatch.{pattern}"}), 400, "22P02")


def test_query_bodies_gain_the_new_operators(pg: FlaskClient) -> None:
    response = pg.open("/posts", method="QUERY",
                       json={"where": {"or": [{"rating": {"is": None}},
                                              {"title": {"imatch": "^h"}}]},
                             "order_by": ["id"]})
    assert [item["id"] for item in response.json["items"]] == [1, 2]
    response = pg.get("/posts?id__is=true")
    assert response.status_code == 400


def test_api_postgrest_serves_resources_added_later(db_url: str) -> None:
    app = Flask(__name__)
    app.config.update(DATABASE_URL=db_url, TABLEREST_SECRET_KEY="test-secret-key-0123456789")
    api = TableRest(app)
    api.postgrest("/api/")
    from testapp import Base, Tag

    api.add(Tag)
    Base.metadata.create_all(api.engine_of(app), tables=[Tag.__table__])
    client = app.test_client()
    assert client.post("/api/tags", json={"name": "x"}).status_code == 201
    assert client.get("/api/tags").json == [{"name": "x", "label": None}]
    with pytest.raises(Exception, match="already called"):
        api.postgrest()


def test_reflection_serves_the_dialect_when_asked(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from tablerest import reflect
    from tablerest.cli import main

    path = tmp_path / "albums.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(sa.text(
            "CREATE TABLE Album (AlbumId INTEGER PRIMARY KEY, Title TEXT NOT NULL)"))
        connection.execute(sa.text("INSERT INTO Album VALUES (1, 'One'), (2, 'Two')"))
    engine.dispose()
    client = reflect(f"sqlite:///{path}", postgrest="/rest/v1").test_client()
    response = client.get("/rest/v1/Album?select=Title&AlbumId=eq.2")
    assert response.status_code == 200
    assert response.json == [{"Title": "Two"}]
    assert reflect(f"sqlite:///{path}").test_client().get("/rest/v1/Album").status_code == 404
    refused = CliRunner().invoke(main, ["serve", "--postgrest"])
    assert refused.exit_code == 2
    assert "go with --db URL" in refused.output
