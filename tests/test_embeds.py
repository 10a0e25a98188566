"""Nested embeds in both dialects, on SQLite and PostgreSQL: tablerest's ``include`` paths
(``posts.tags``) and PostgREST's ``select`` embeds at any depth, with embedded filters,
order, limit and offset, ``!inner``, ``rel=is.null`` anti-joins and logic trees across an
embed; each level under its target's row policy, hidden fields and ``max_limit``, in one
SQL statement per relation per level whatever the page size."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from conftest import rows
from factories import add_post, add_tags, add_user, link, live_server, serving
from factories import postgrest_error as error
from tablerest import Resource, listing
from tablerest.extension import state_of
from tablerest.postgrest import options_for, register
from test_include import HideCarol, PublishedOnly, SelectCounter
from testapp import Post, Tag, User

API = "/rest/v1"
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def at(minute: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minute)


@pytest.fixture
def blog(app: Flask, engine: sa.Engine) -> FlaskClient:
    """alice: Hello (published; tags a, b), World, Hola (published; tag c); bob: Bonjour
    (published; tag a), Bye; carol: no posts. The dialect on."""
    register(app, options_for(API))
    alice, bob = add_user(engine, "alice", age=30), add_user(engine, "bob")
    add_user(engine, "carol", age=20)
    posts = [add_post(engine, alice, "Hello", published=True, body="hi there"),
             add_post(engine, alice, "World", body="big"),
             add_post(engine, alice, "Hola", published=True),
             add_post(engine, bob, "Bonjour", published=True),
             add_post(engine, bob, "Bye")]
    add_tags(engine, "a", "b", "c")
    for minute, (post, tag) in enumerate([(0, "a"), (0, "b"), (2, "c"), (3, "a")]):
        link(engine, posts[post], tag, at(minute))
    return app.test_client()


def pg(client: FlaskClient, query: str, **headers: str) -> Any:
    response = client.get(f"{API}/{query}", headers=headers)
    assert response.status_code in (200, 206), response.json
    return response.json


def items(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.json
    found: list[dict[str, Any]] = response.json["items"]
    return found




# -- tablerest's include paths -----------------------------------------------------------------


def test_include_paths_nest(blog: FlaskClient) -> None:
    users = items(blog.get("/users?include=posts.tags,posts.author&fields=name&sort=id"))
    assert [user["name"] for user in users] == ["alice", "bob", "carol"]
    alice = users[0]
    assert [post["title"] for post in alice["posts"]] == ["Hello", "World", "Hola"]
    assert [[tag["name"] for tag in post["tags"]] for post in alice["posts"]] == [
        ["b", "a"], [], ["c"]]
    assert {post["author"]["name"] for post in alice["posts"]} == {"alice"}
    assert all("password" not in post["author"] for post in alice["posts"])
    assert users[2]["posts"] == []
    # three levels: each post's author with the author's own posts
    posts = items(blog.get("/posts?include=author.posts.tags&sort=id&limit=2"))
    assert [post["title"] for post in posts[0]["author"]["posts"]] == [
        "Hello", "World", "Hola"]
    assert posts[0]["author"]["posts"][0]["tags"] == [{"name": "b", "label": None},
                                                      {"name": "a", "label": None}]
    # a relation's own list takes paths too
    own = items(blog.get("/users/2/posts?include=author.posts,tags&fields=title"))
    assert [(post["title"], [tag["name"] for tag in post["tags"]],
             [mine["title"] for mine in post["author"]["posts"]]) for post in own] == [
        ("Bonjour", ["a"], ["Bonjour", "Bye"]), ("Bye", [], ["Bonjour", "Bye"])]


def test_include_paths_in_a_query_body(blog: FlaskClient) -> None:
    response = blog.post("/users/query", json={"include": ["posts.tags"], "fields": ["name"],
                                               "where": {"name": "bob"}})
    assert items(response) == [{"name": "bob", "posts": [
        {**post, "tags": tags} for post, tags in zip(
            items(blog.get("/posts?user_id=2&sort=id")),
            [[{"name": "a", "label": None}], []], strict=True)]}]
    bad = blog.post("/users/query", json={"include": ["posts.nope"]})
    assert bad.status_code == 400
    assert bad.content_type == "application/problem+json"
    assert [error["field"] for error in bad.json["errors"]] == ["include"]
    assert "no relation 'nope' of 'posts'" in bad.json["detail"]


# -- PostgREST embeds at any depth ---------------------------------------------------------------


def test_select_embeds_nest(blog: FlaskClient) -> None:
    users = pg(blog, "users?select=name,writes:posts(title,tags(name),"
                     "by:author(name,posts(id)))&order=id")
    assert users[0] == {"name": "alice", "writes": [
        {"title": "Hello", "tags": [{"name": "b"}, {"name": "a"}],
         "by": {"name": "alice", "posts": [{"id": 1}, {"id": 2}, {"id": 3}]}},
        {"title": "World", "tags": [],
         "by": {"name": "alice", "posts": [{"id": 1}, {"id": 2}, {"id": 3}]}},
        {"title": "Hola", "tags": [{"name": "c"}],
         "by": {"name": "alice", "posts": [{"id": 1}, {"id": 2}, {"id": 3}]}}]}
    assert users[2] == {"name": "carol", "writes": []}
    spread = pg(blog, "posts?select=id,...author(writer:name,posts(id))&id=eq.4")
    assert spread == [{"id": 4, "writer": "bob"}]


def test_hidden_fields_are_never_shown_at_any_depth(blog: FlaskClient) -> None:
    deep = pg(blog, "posts?select=*,author(*,posts(*,author(*)))&id=eq.1")
    text = str(deep)
    assert "password" not in text and "$argon2" not in text
    nested = items(blog.get("/posts?include=author.posts.author&limit=1"))
    assert "password" not in str(nested) and "$argon2" not in str(nested)
    error(blog.get(f"{API}/posts?select=id,author(posts(author(password)))"), 400, "42703")
    error(blog.get(f"{API}/users?select=id,posts(id)&posts.author.password=eq.x"), 400,
          "PGRST108")
    error(blog.get(f"{API}/users?or=(posts.author.password.eq.x)"), 400, "42703")


def test_embedded_filters_order_limit_and_offset(blog: FlaskClient) -> None:
    users = pg(blog, "users?select=name,posts(title)&posts.title=like.*o*"
                     "&posts.order=id.desc&order=id")
    assert [[post["title"] for post in user["posts"]] for user in users] == [
        ["Hola", "World", "Hello"], ["Bonjour"], []]
    paged = pg(blog, "users?select=name,posts(title)&posts.order=id.desc&posts.limit=1"
                     "&posts.offset=1&order=id")
    assert [[post["title"] for post in user["posts"]] for user in paged] == [
        ["World"], ["Bonjour"], []]
    # a to-one embed filtered: null where it does not match, the parents all kept
    posts = pg(blog, "posts?select=id,author(name)&author.name=eq.bob&order=id")
    assert [post["author"] for post in posts] == [None, None, None, {"name": "bob"},
                                                  {"name": "bob"}]
    # nested paths, and a logic tree on an embed
    deep = pg(blog, "users?select=name,posts(title,tags(name))&posts.tags.name=eq.a"
                    "&posts.or=(published.is.false,title.eq.Hello)&order=id")
    assert deep[0]["posts"] == [{"title": "Hello", "tags": [{"name": "a"}]},
                                {"title": "World", "tags": []}]
    assert deep[1]["posts"] == [{"title": "Bye", "tags": []}]


def test_inner_embeds_drop_parents_and_are_counted(blog: FlaskClient) -> None:
    response = blog.get(f"{API}/users?select=name,posts!inner(title)"
                        "&posts.published=is.true&order=id", headers={"Prefer": "count=exact"})
    assert response.json == [
        {"name": "alice", "posts": [{"title": "Hello"}, {"title": "Hola"}]},
        {"name": "bob", "posts": [{"title": "Bonjour"}]}]
    assert response.headers["Content-Range"] == "0-1/2"
    # inner at the second level: posts without tags drop out, then users without such posts
    nested = pg(blog, "users?select=name,posts!inner(title,tags!inner(name))"
                      "&posts.tags.name=eq.c&order=id")
    assert nested == [{"name": "alice", "posts": [{"title": "Hola", "tags": [{"name": "c"}]}]}]
    semi = pg(blog, "users?select=name,posts()&posts=not.is.null&order=id")
    assert semi == [{"name": "alice"}, {"name": "bob"}]


def test_is_null_anti_joins(blog: FlaskClient) -> None:
    response = blog.get(f"{API}/users?select=name,posts()&posts=is.null",
                        headers={"Prefer": "count=exact"})
    assert response.json == [{"name": "carol"}]
    assert response.headers["Content-Range"] == "0-0/1"
    # the embed's filters first: users without a published post
    assert pg(blog, "users?select=name,posts(id)&posts.published=is.true&posts=is.null") == [
        {"name": "carol", "posts": []}]
    # inside an embed: each user's posts that have no tag
    inside = pg(blog, "users?select=name,posts(title,tags())&posts.tags=is.null&order=id")
    assert [[post["title"] for post in user["posts"]] for user in inside] == [
        ["World"], ["Bye"], []]
    assert pg(blog, "posts?select=id,author()&author=is.null") == []


def test_logic_trees_across_an_embed(blog: FlaskClient) -> None:
    names = [user["name"] for user in pg(
        blog, "users?select=name&or=(name.eq.carol,posts.title.eq.Bonjour)&order=id")]
    assert names == ["bob", "carol"]
    aliased = pg(blog, "users?select=name,p:posts(title)&or=(age.gt.25,p.title.eq.Bye)"
                       "&order=id")
    assert [user["name"] for user in aliased] == ["alice", "bob"]
    # two relations deep, and negated
    tagged = pg(blog, "users?select=name&or=(posts.tags.name.eq.c)")
    assert tagged == [{"name": "alice"}]
    untagged = pg(blog, "users?select=name&not.or=(posts.tags.name.eq.a,name.eq.carol)")
    assert untagged == []
    assert pg(blog, "posts?select=id&and=(author.name.eq.bob,published.is.true)") == [{"id": 4}]


def test_embeds_nest_at_most_eight_deep(blog: FlaskClient) -> None:
    def select(levels: int) -> str:
        inner = "id"
        for level in reversed(range(levels)):  # users -> posts -> author -> posts ...
            inner = f"{'author' if level % 2 else 'posts'}(id,{inner})"
        return f"{API}/users?select=id,{inner}&id=eq.1"

    body = pg(blog, select(8).removeprefix(f"{API}/"))[0]
    for level in range(8):
        body = body["author" if level % 2 else "posts"]
        body = body[0] if isinstance(body, list) else body
    assert body == {"id": 1}
    error(blog.get(select(9)), 400, "PGRST100")
    path = ".".join(["posts", "author"] * 4)
    assert items(blog.get(f"/users?include={path}&id=1"))
    assert blog.get(f"/users?include={path}.posts&id=1").status_code == 400


def test_hostile_embeds(blog: FlaskClient, engine: sa.Engine) -> None:
    error(blog.get(f"{API}/users?select=name,posts(title,tags(name)"), 400, "PGRST100")
    error(blog.get(f"{API}/users?select=name,posts(title))"), 400, "PGRST100")
    deep = "id"
    for _ in range(9):
        deep = f"author(posts({deep}))"
    error(blog.get(f"{API}/posts?select={deep}"), 400, "PGRST100")
    error(blog.get(f"{API}/users?select=name,posts(tags(nope(name)))"), 400, "PGRST200")
    error(blog.get(f"{API}/users?select=name,posts(nope)"), 400, "42703")
    error(blog.get(f"{API}/users?select=name,posts(id)&posts.nope=eq.1"), 400, "42703")
    error(blog.get(f"{API}/users?select=name,posts(id)&tags.name=eq.a"), 400, "PGRST108")
    error(blog.get(f"{API}/users?select=name,posts(id)&posts.tags.name=eq.a"), 400,
          "PGRST108")
    error(blog.get(f"{API}/users?select=name,posts(id)&posts=eq.1"), 400, "PGRST120")
    error(blog.get(f"{API}/users?select=name,posts(id)&posts.limit=-1"), 400, "PGRST100")
    error(blog.get(f"{API}/users?select=name,posts(id)&posts.order=title.sideways"), 400,
          "PGRST100")
    error(blog.get(f"{API}/users?or=(nope.title.eq.1)"), 400, "PGRST200")
    error(blog.get(f"{API}/users?or=(posts.nope.eq.1)"), 400, "42703")
    error(blog.get(f"{API}/users?select=id,posts(id)&posts.or=(title.eq.a"), 400, "PGRST100")
    injected = "a'; DROP TABLE posts; --"
    response = blog.get(f"{API}/users", query_string={
        "select": 'name,"x\'; DROP TABLE users; --":posts(title)',
        "x'; DROP TABLE users; --.title": f"eq.{injected}",
        "or": f"(posts.title.eq.{injected},name.eq.{injected})", "order": "id"})
    assert response.status_code == 200, response.json
    assert response.json == []
    response = blog.get(f"{API}/users", query_string={
        "select": 'name,"x\'; DROP TABLE users; --":posts(title)',
        "x'; DROP TABLE users; --.title": f"eq.{injected}", "order": "id"})
    assert [user["x'; DROP TABLE users; --"] for user in response.json] == [[], [], []]
    assert len(rows(engine, "SELECT id FROM posts")) == 5
    assert len(rows(engine, "SELECT id FROM users")) == 3


def test_writes_refuse_embedded_filters(blog: FlaskClient) -> None:
    error(blog.patch(f"{API}/posts?author.name=eq.bob", json={"title": "x"}), 400, "PGRST127")
    error(blog.delete(f"{API}/posts?or=(author.name.eq.bob)"), 400, "PGRST127")
    # nested embeds in a write's answer
    response = blog.patch(f"{API}/posts?id=eq.4&select=id,author(name,posts(id))",
                          json={"title": "Salut"}, headers={"Prefer": "return=representation"})
    assert response.status_code == 200
    assert response.json == [{"id": 4, "author": {"name": "bob", "posts": [{"id": 4},
                                                                           {"id": 5}]}}]


def test_statements_are_cached_by_shape(blog: FlaskClient, app: Flask) -> None:
    cache = state_of(app).served["users"].statements
    query = "users?select=name,posts(title,tags(name))&posts.title=eq.{}&posts.tags.name=eq.{}"
    assert pg(blog, query.format("Hello", "a"))[0]["posts"] == [
        {"title": "Hello", "tags": [{"name": "a"}]}]
    size = len(cache._entries)
    assert pg(blog, query.format("Bonjour", "a"))[1]["posts"] == [
        {"title": "Bonjour", "tags": [{"name": "a"}]}]
    assert pg(blog, query.format("Hola", "c"))[0]["posts"] == [
        {"title": "Hola", "tags": [{"name": "c"}]}]
    assert len(cache._entries) == size  # other values, the same statements
    other = pg(blog, "users?select=name,posts(title,tags(name))&posts.body=eq.Hello"
                     "&posts.tags.name=eq.a")
    assert other[0]["posts"] == []  # another shape: not the title statement
    assert len(cache._entries) > size
    inner = pg(blog, "users?select=name,posts!inner(title)&posts.title=eq.Hello")
    assert inner == [{"name": "alice", "posts": [{"title": "Hello"}]}]
    plain = pg(blog, "users?select=name,posts(title)&posts.title=eq.Hello&order=id")
    assert len(plain) == 3


# -- statements: one per relation per level ------------------------------------------------


@pytest.fixture
def many(app: Flask, engine: sa.Engine) -> Iterator[SelectCounter]:
    """60 posts by 12 users, tags on every other post; counting statements."""
    register(app, options_for(API))
    users = [add_user(engine, f"user{index:02d}") for index in range(12)]
    add_tags(engine, "a", "b")
    for index in range(60):
        post = add_post(engine, users[index % 12], f"post {index}", published=index % 3 > 0)
        if index % 2:
            link(engine, post, "ab"[index % 4 // 2], at(index))
    counter = SelectCounter(engine)
    yield counter
    counter.close()


@pytest.mark.parametrize(("path", "statements"), [
    ("/posts?include=author.posts.tags", 2 + 3),
    ("/posts?include=author.posts.tags,tags&count=false", 1 + 4),
    (f"{API}/posts?select=id,author(name,posts(id,tags(name)))", 1 + 3),
    (f"{API}/posts?select=id,author!inner(name,posts!inner(id,tags!inner(name)))"
     "&author.posts.tags.name=eq.a&author.posts.order=id.desc&author.posts.limit=2", 1 + 3),
    (f"{API}/posts?select=id,tags(name),author()&author=not.is.null&tags=is.null", 1),
], ids=["tablerest", "tablerest-two-branches", "postgrest", "postgrest-filtered",
        "postgrest-joins-only"])
def test_one_statement_per_relation_per_level(many: SelectCounter, app: Flask, path: str,
                                              statements: int) -> None:
    client = app.test_client()
    counts = []
    for limit in (1, 10, 50):
        before = many.selects()
        response = client.get(f"{path}&limit={limit}")
        assert response.status_code == 200, response.json
        counts.append(many.selects() - before)
        body = response.json
        listed = body["items"] if isinstance(body, dict) else body
        assert 0 < len(listed) <= limit
    assert counts == [statements] * 3
    before = many.selects()
    client.get(f"{API}/posts?select=id,author(posts(tags(name)))&limit=50",
               headers={"Prefer": "count=exact"})
    assert many.selects() - before == 1 + 1 + 3  # the page, the count, three levels


# -- row policies at every level -------------------------------------------------------------


@pytest.fixture
def guarded(db_url: str) -> Iterator[Flask]:
    """users hide carol, posts show published ones only, at most 3 posts per page or list;
    alice: a0, a1 (a draft), a2, a3, a4; carol: a published post and a draft."""
    with serving(db_url, Resource(User, policy=HideCarol()),
                 Resource(Post, policy=PublishedOnly(), max_limit=3), Tag) as app:
        register(app, options_for(API))
        engine = state_of(app).engine
        alice, carol = add_user(engine, "alice"), add_user(engine, "carol")
        for index in range(5):
            add_post(engine, alice, f"a{index}", published=index != 1)
        add_post(engine, carol, "by carol", published=True)
        add_post(engine, carol, "draft by carol")
        add_tags(engine, "t")
        link(engine, 1, "t")
        link(engine, 2, "t")
        yield app


def test_each_level_follows_its_targets_policy_and_cap(guarded: Flask) -> None:
    client = guarded.test_client()
    posts = items(client.get("/posts?include=author.posts&fields=title&sort=-id"))
    assert [post["title"] for post in posts] == ["by carol", "a4", "a3"]
    assert posts[0]["author"] is None  # carol is hidden
    # level 2: alice's published posts only, capped at 3
    assert [post["title"] for post in posts[1]["author"]["posts"]] == ["a0", "a2", "a3"]
    shown = pg(client, "posts?select=title,author(name,posts(title))&order=id.desc")
    assert [post["author"] for post in shown] == [None] + [
        {"name": "alice", "posts": [{"title": "a0"}, {"title": "a2"}, {"title": "a3"}]}] * 2
    # level 2 filtered: a4 is past the cap unfiltered, a1 (a draft) never shows
    deep = pg(client, "posts?select=title,author(posts(title))"
                      "&author.posts.title=in.(a1,a4)&id=eq.1")
    assert deep == [{"title": "a0", "author": {"posts": [{"title": "a4"}]}}]
    tags = pg(client, "posts?select=title,tags(name)&order=id")
    assert tags[0]["tags"] == [{"name": "t"}]
    # a draft never makes a parent match, nor does a hidden user
    assert pg(client, "users?select=name&or=(posts.title.eq.a1)") == []
    assert pg(client, "users?select=name,posts!inner(id)&posts.title=eq.a1") == []
    assert pg(client, "users?select=name,posts()&posts=is.null") == []
    assert pg(client, "posts?select=title,author()&author=is.null") == [
        {"title": "by carol"}]
    assert pg(client, "tags?select=name&name=eq.t") == [{"name": "t"}]


def test_own_filters_across_a_relation_see_only_visible_rows(guarded: Flask) -> None:
    # ?relation__field= must not tell whether a hidden row exists: a draft (a1), or a post
    # by a hidden author, matches nothing; the visible ones still do.
    client = guarded.test_client()
    assert items(client.get("/users?posts__title=a1")) == []
    assert [user["name"] for user in items(client.get("/users?posts__title=a2"))] == ["alice"]
    assert items(client.get("/posts?author__name=carol")) == []
    assert [post["title"] for post in items(client.get("/posts?author__name=alice&sort=id"))
            ] == ["a0", "a2", "a3"]
    body = client.open("/users", method="QUERY", json={"where": {"posts.title": "a1"}})
    assert body.status_code == 200 and body.json["items"] == []
    assert client.get("/users?posts__title=a1&count=exact").json["count"] == 0


def test_the_policy_path_runs_one_statement_per_relation_per_level(guarded: Flask) -> None:
    engine = state_of(guarded).engine
    counter = SelectCounter(engine)
    try:
        client = guarded.test_client()
        counts = []
        for limit in (1, 3):
            before = counter.selects()
            response = client.get(f"{API}/posts?select=id,author(posts(id,tags(name)))"
                                  f"&limit={limit}")
            assert response.status_code == 200
            counts.append(counter.selects() - before)
        assert counts == [4, 4]
    finally:
        counter.close()


def test_many_parent_keys_take_a_statement_per_chunk(many: SelectCounter, app: Flask,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    client = app.test_client()
    path = "/users?include=posts.tags&limit=50&count=false"
    whole = items(client.get(path))
    before = many.selects()
    assert items(client.get(path)) == whole
    assert many.selects() - before == 3
    monkeypatch.setattr(listing, "MAX_KEYS", 5)
    before = many.selects()
    assert items(client.get(path)) == whole  # 12 users, 60 posts: 3 and 12 statements
    assert many.selects() - before == 1 + 3 + 12


def test_postgrest_py_reads_nested_embeds(blog: FlaskClient, app: Flask) -> None:
    """The real client (``postgrest`` from PyPI), unchanged: nested embeds, embedded order and
    limit (``foreign_table``), ``!inner`` with an embedded filter, ``or`` on an embed."""
    from postgrest import CountMethod, SyncPostgrestClient

    with live_server(app) as base, SyncPostgrestClient(f"{base}{API}") as db:
        nested = (db.from_("users").select("name, posts(title, tags(name), author(name))")
                  .eq("name", "bob").execute())
        assert nested.data == [{"name": "bob", "posts": [
            {"title": "Bonjour", "tags": [{"name": "a"}], "author": {"name": "bob"}},
            {"title": "Bye", "tags": [], "author": {"name": "bob"}}]}]
        latest = (db.from_("users").select("name, posts(title)")
                  .order("id", desc=True, foreign_table="posts").limit(1, foreign_table="posts")
                  .order("id").execute())
        assert [user["posts"] for user in latest.data] == [
            [{"title": "Hola"}], [{"title": "Bye"}], []]
        inner = (db.from_("users").select("name, posts!inner(title)", count=CountMethod.exact)
                 .eq("posts.published", True).order("id").execute())
        assert inner.count == 2
        assert [user["name"] for user in inner.data] == ["alice", "bob"]
        tagged = (db.from_("users").select("name, posts(tags(name))")
                  .or_("name.eq.nobody,name.eq.carol", reference_table="posts.tags")
                  .eq("name", "bob").execute())
        assert tagged.data == [{"name": "bob", "posts": [{"tags": []}, {"tags": []}]}]
        lonely = db.from_("users").select("name, posts()").is_("posts", "null").execute()
        assert lonely.data == [{"name": "carol"}]


class NoByes(Resource):
    """Posts whose base_query hook leaves out every post called Bye."""

    model = Post

    def base_query(self, statement: sa.Select[Any], ctx: Any) -> sa.Select[Any]:
        return statement.where(Post.__table__.c.title != "Bye")


def test_base_query_hooks_apply_at_every_level_and_in_joins(db_url: str) -> None:
    with serving(db_url, User, NoByes(), Tag) as app:
        register(app, options_for(API))
        engine = state_of(app).engine
        bob = add_user(engine, "bob")
        for title in ("Bonjour", "Bye", "Salut"):
            add_post(engine, bob, title)
        client = app.test_client()
        posts = items(client.get("/posts?include=author.posts&sort=id"))
        assert [post["title"] for post in posts] == ["Bonjour", "Salut"]
        assert [mine["title"] for mine in posts[0]["author"]["posts"]] == ["Bonjour", "Salut"]
        deep = pg(client, "posts?select=title,author(posts(title))&order=id")
        assert deep[1] == {"title": "Salut", "author": {"posts": [{"title": "Bonjour"},
                                                                   {"title": "Salut"}]}}
        assert pg(client, "users?select=name,posts!inner(id)&posts.title=eq.Bye") == []
        assert pg(client, "users?select=name&or=(posts.title.eq.Bye)") == []
        assert pg(client, "users?select=name&or=(posts.title.eq.Salut)") == [{"name": "bob"}]
