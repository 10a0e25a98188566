"""Browsable HTML, checked through the test client with an HTML parser, on SQLite and
PostgreSQL: negotiation that fails safe, the pages (index, lists, items, errors) and what
they link to, hostile values rendered inert, the security headers, the sign-in cookie with
CSRF-protected forms under the row policy, overridable templates, and the page's cost in
statements. The same pages in a real browser: tests/browser/.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from conftest import rows
from factories import add_post, add_tags, add_user
from tablerest.extension import state_of
from test_include import SelectCounter
from testapp import Base, create_app

CHROME = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
          "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7")
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
SAFARI = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
BROWSER = {"Accept": FIREFOX}
PAGES_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
             "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "</script><b>x",
           "javascript:alert(1)", "\u202egnp.exe", "a\u2066b\u2069c\u200f"]
BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
PASSWORD = "long enough secret"


# -- a small DOM -----------------------------------------------------------------------------


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    def text(self) -> str:
        return "".join(child if isinstance(child, str) else child.text()
                       for child in self.children)

    def all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if (tag is None or child.tag == tag) and all(
                        child.attrs.get(name.rstrip("_").replace("_", "-")) == value
                        for name, value in attrs.items()):
                    found.append(child)
                found += child.all(tag, **attrs)
        return found

    def one(self, tag: str | None = None, **attrs: str) -> Node:
        found = self.all(tag, **attrs)
        assert len(found) == 1, (tag, attrs, len(found))
        return found[0]

    def get(self, name: str) -> str:
        value = self.attrs.get(name)
        assert value is not None, (self.tag, name)
        return value


VOID = {"meta", "link", "input", "br", "img", "hr", "source", "col", "area", "base", "wbr"}


class Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.here = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs), self.here)
        self.here.children.append(node)
        if tag not in VOID:
            self.here = node

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.here
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.here = node.parent

    def handle_data(self, data: str) -> None:
        self.here.children.append(data)


def page(response: TestResponse, status: int = 200) -> Node:
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    assert response.mimetype == "text/html"
    parser = Parser()
    parser.feed(response.get_data(as_text=True))
    return parser.root


def get_page(client: FlaskClient, url: str, status: int = 200) -> Node:
    return page(client.get(url, headers=BROWSER), status)


def raw_json(doc: Node) -> Any:
    """The JSON of the page's raw-response panel."""
    return orjson.loads(doc.one("details", class_="raw").one("pre").text())


def params(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def blog(engine: sa.Engine) -> dict[str, Any]:
    alice = add_user(engine, "alice", age=30)
    bob = add_user(engine, "bob", age=40)
    posts = [add_post(engine, alice if number % 2 else bob, f"post {number:02}")
             for number in range(1, 26)]
    add_tags(engine, "python", "sql")
    return {"alice": alice, "bob": bob, "posts": posts}


def sign_up(client: FlaskClient, name: str) -> int:
    response = client.post("/users", json={"name": name, "email": f"{name}@example.com",
                                           "password": PASSWORD})
    assert response.status_code == 201, response.json
    user_id: int = response.json["id"]
    return user_id


def token_of(client: FlaskClient, name: str) -> str:
    response = client.post("/auth/token", json={"name": name, "password": PASSWORD})
    token: str = response.json["access_token"]
    return token


def post_message(client: FlaskClient, name: str, content: str) -> int:
    response = client.post("/messages", json={"content": content},
                           headers={"Authorization": f"Bearer {token_of(client, name)}"})
    assert response.status_code == 201, response.json
    message_id: int = response.json["id"]
    return message_id


@pytest.fixture
def people(mb_client: FlaskClient) -> dict[str, int]:
    """john and jane, a message each."""
    found = {name: sign_up(mb_client, name) for name in ("john", "jane")}
    found["john_message"] = post_message(mb_client, "john", "hello from john")
    found["jane_message"] = post_message(mb_client, "jane", "hello from jane")
    return found


def csrf_of(doc: Node) -> str:
    return doc.all("input", name="__csrf__")[0].get("value")


def sign_in(client: FlaskClient, name: str, password: str = PASSWORD) -> TestResponse:
    doc = get_page(client, "/-/signin?next=/messages")
    return client.post("/-/signin", data={"login": name, "password": password,
                                          "next": "/messages", "__csrf__": csrf_of(doc)},
                       headers=BROWSER)


# -- 1. negotiation --------------------------------------------------------------------------


@pytest.mark.parametrize("accept", [CHROME, FIREFOX, SAFARI, "text/html"],
                         ids=["chrome", "firefox", "safari", "text-html"])
@pytest.mark.parametrize("url", ["/", "/users", "/users/{alice}", "/users/{alice}/posts"])
def test_browsers_get_html(client: FlaskClient, blog: dict[str, Any], accept: str,
                           url: str) -> None:
    response = client.get(url.format(**blog), headers={"Accept": accept})
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Vary"] == "Accept"


@pytest.mark.parametrize("accept", [None, "*/*", "application/json",
                                    "application/json, text/html", "text/html, application/json",
                                    "text/html;q=0.9, application/json",
                                    "application/json;q=0.5, text/html;q=0.5"],
                         ids=["none", "any", "json", "json-first-tie", "html-first-tie",
                              "json-preferred", "equal-q"])
@pytest.mark.parametrize("url", ["/", "/users", "/users/{alice}", "/users/{alice}/posts"])
def test_everything_else_gets_the_same_json(client: FlaskClient, blog: dict[str, Any],
                                            accept: str | None, url: str) -> None:
    url = url.format(**blog)
    headers = {} if accept is None else {"Accept": accept}
    response = client.get(url, headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Vary"] == "Accept"
    assert response.data == client.get(url).data


@pytest.mark.parametrize(("accept", "mimetype"), [("text/csv", "text/csv"),
                                                   ("application/x-ndjson",
                                                    "application/x-ndjson")])
def test_csv_and_ndjson_are_unchanged(client: FlaskClient, blog: dict[str, Any], accept: str,
                                      mimetype: str) -> None:
    response = client.get("/posts?limit=3", headers={"Accept": accept}, buffered=True)
    assert response.status_code == 200 and response.mimetype == mimetype
    assert response.headers["Vary"] == "Accept"


def test_unacceptable_types_stay_406(client: FlaskClient, blog: dict[str, Any]) -> None:
    for url in ("/users", f"/users/{blog['alice']}", "/"):
        response = client.get(url, headers={"Accept": "image/png"})
        assert response.status_code == 406, url
        assert response.mimetype == "application/problem+json"
        assert response.headers["Vary"] == "Accept"


def test_the_query_override(client: FlaskClient, blog: dict[str, Any]) -> None:
    """``?__as__=`` beats Accept both ways, cannot be a filter, and is checked."""
    assert client.get("/users?__as__=html").mimetype == "text/html"
    forced = client.get("/users?__as__=json", headers=BROWSER)
    assert forced.mimetype == "application/json"
    assert forced.json == client.get("/users").json
    assert client.get("/posts?__as__=csv", headers=BROWSER, buffered=True).mimetype \
        == "text/csv"
    assert client.get("/posts?__as__=ndjson", buffered=True).mimetype == "application/x-ndjson"
    assert client.get(f"/users/{blog['alice']}?__as__=html").mimetype == "text/html"
    assert client.get(f"/users/{blog['alice']}?__as__=json", headers=BROWSER).json["name"] \
        == "alice"
    assert client.get(f"/users/{blog['alice']}?__as__=csv").status_code == 406
    bad = client.get("/users?__as__=xml")
    assert bad.status_code == 400 and bad.json["errors"][0]["field"] == "__as__"
    # No field can be named so: as a filter it would follow two relations.
    assert client.get("/users?__as__=json&name=alice").json["items"][0]["name"] == "alice"


def test_vary_on_errors_and_304(client: FlaskClient, blog: dict[str, Any]) -> None:
    item = client.get(f"/users/{blog['alice']}")
    again = client.get(f"/users/{blog['alice']}",
                       headers={"If-None-Match": item.headers["ETag"]})
    assert again.status_code == 304 and again.headers["Vary"] == "Accept"
    for url in ("/nothing", "/users/999999", "/users?sort=nope"):
        for headers in ({}, BROWSER):
            assert client.get(url, headers=headers).headers["Vary"] == "Accept"


# -- 2. pages --------------------------------------------------------------------------------


def test_index_page(client: FlaskClient, blog: dict[str, Any]) -> None:
    doc = get_page(client, "/")
    links = [a.get("href") for a in doc.one("table").all("a")]
    assert links == [resource["url"] for resource in client.get("/").json["resources"]]
    assert "/docs" in [a.get("href") for a in doc.all("a")]
    assert raw_json(doc) == client.get("/").json


def test_list_table_semantics_and_parity(client: FlaskClient, blog: dict[str, Any]) -> None:
    url = "/posts?sort=-title&fields=id,title,user_id&limit=5"
    doc = get_page(client, url)
    expected = client.get(url).json
    table = doc.one("table")
    assert table.one("caption").text().strip()
    headers = table.one("thead").all("th")
    assert all(th.get("scope") == "col" for th in headers)
    assert [th.text().strip(" ▲▼") for th in headers] == list(expected["items"][0])
    body_rows = table.one("tbody").all("tr")
    assert len(body_rows) == 5
    for tr, item in zip(body_rows, expected["items"], strict=True):
        row_header = tr.one("th", scope="row")
        assert row_header.one("a").get("href") == f"/posts/{item['id']}"
        assert row_header.text() == str(item["id"])
        cells = tr.all("td")
        assert cells[0].text() == item["title"]
        assert cells[1].one("a").get("href") == f"/users/{item['user_id']}"
    assert raw_json(doc) == expected
    assert doc.one("details", class_="raw").one("p", class_="request").text() \
        .startswith(f"GET {url}")


def test_sort_links_toggle_keep_filters_and_drop_the_page(client: FlaskClient,
                                                          blog: dict[str, Any]) -> None:
    first = client.get("/posts?user_id=1&sort=title&limit=2").json
    url = first["next"]
    assert "cursor=" in url
    doc = get_page(client, url)
    headers = {th.text().strip(" ▲▼"): th for th in doc.one("thead").all("th")}
    title = headers["title"]
    assert title.get("aria-sort") == "ascending"
    assert title.one("span").get("aria-hidden") == "true"
    link = title.one("a")
    assert link.get("rel") == "nofollow"
    assert params(link.get("href")) == [("user_id", "1"), ("limit", "2"), ("sort", "-title")]
    assert "aria-sort" not in headers["id"].attrs
    assert params(headers["id"].one("a").get("href"))[-1] == ("sort", "id")
    descending = get_page(client, link.get("href"))
    title = next(th for th in descending.one("thead").all("th") if "title" in th.text())
    assert title.get("aria-sort") == "descending"
    assert params(title.one("a").get("href"))[-1] == ("sort", "title")


def test_the_default_sort_is_marked(mb_client: FlaskClient, people: dict[str, int]) -> None:
    doc = get_page(mb_client, "/messages")
    sorted_columns = [th for th in doc.one("thead").all("th") if "aria-sort" in th.attrs]
    assert [(th.text().strip(" ▲▼"), th.get("aria-sort")) for th in sorted_columns] == [
        ("created_at", "descending")]


def test_filter_form_redirects_to_the_canonical_url(client: FlaskClient,
                                                    blog: dict[str, Any]) -> None:
    doc = get_page(client, "/posts?sort=-id&title__like=post%25&offset=3&limit=3")
    form = doc.one("form", class_="filter-form")
    assert form.get("method") == "get" and form.get("action") == "/-/filter"
    rows_ = form.all("fieldset")
    assert len(rows_) == 2  # the request's filter, then an empty row
    chosen = [option.text() for option in rows_[0].one("select", name="field").all("option")
              if "selected" in option.attrs]
    assert chosen == ["title"]
    assert [option.text() for option in rows_[0].one("select", name="op").all("option")
            if "selected" in option.attrs] == ["like"]
    assert rows_[0].one("input", name="value").get("value") == "post%"
    kept = [(i.get("name"), i.get("value")) for i in form.all("input", type="hidden")]
    assert kept == [("list", "/posts"), ("sort", "-id"), ("limit", "3")]
    response = client.get("/-/filter?list=/posts&sort=-id&limit=3&field=title&op=like"
                          "&value=post 1%25&field=user_id&op=eq&value=1&field=&op=eq&value=",
                          headers=BROWSER)
    assert response.status_code == 302
    target = response.headers["Location"]
    assert target.startswith("/posts?")
    assert params(target) == [("sort", "-id"), ("limit", "3"), ("title__like", "post 1%"),
                              ("user_id__eq", "1")]
    listed = client.get(target).json["items"]
    assert listed and all(item["title"].startswith("post 1") and item["user_id"] == 1
                          for item in listed)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/posts",
                                    "/\\evil.example", "/posts/1", "/-/signin", "/nothing",
                                    "javascript:alert(1)"])
def test_the_filter_redirect_goes_only_to_lists(client: FlaskClient, target: str) -> None:
    response = client.get("/-/filter", query_string={"list": target, "field": "id",
                                                     "op": "eq", "value": "1"},
                          headers=BROWSER)
    doc = page(response, 400)
    assert "not a list of this API" in doc.one("div", class_="problem").text()


def test_a_bad_filter_shows_the_400_problem(client: FlaskClient, blog: dict[str, Any]) -> None:
    response = client.get("/-/filter?list=/posts&field=nope&op=eq&value=1", headers=BROWSER)
    doc = get_page(client, response.headers["Location"], 400)
    problem = client.get(response.headers["Location"]).json
    assert problem["status"] == 400
    assert doc.one("h1").text() == "400 Bad Request"
    assert doc.one("div", class_="problem").one("p").text() == problem["detail"]
    assert [li.text() for li in doc.one("div", class_="problem").all("li")] == [
        f"{error['field']}: {error['message']}" for error in problem["errors"]]
    assert raw_json(doc) == problem


def test_paging_follows_the_json_next_link(client: FlaskClient, blog: dict[str, Any]) -> None:
    url: str | None = "/posts?limit=10&sort=title"
    seen = []
    while url is not None:
        doc = get_page(client, url)
        nav = doc.one("nav", aria_label="Pagination")
        expected = client.get(url).json
        seen += [tr.one("th").text() for tr in doc.one("tbody").all("tr")]
        nexts = nav.all("a", rel="next")
        if expected["next"] is None:
            assert nexts == []
            url = None
        else:
            assert [a.get("href") for a in nexts] == [expected["next"]]
            url = html.unescape(nexts[0].get("href"))
    assert seen == [str(post) for post in blog["posts"]]


def test_the_count_or_that_it_was_skipped(client: FlaskClient, blog: dict[str, Any]) -> None:
    assert "25 items match" in get_page(client, "/posts").one("p", class_="summary").text()
    skipped = get_page(client, "/posts?count=false").one("p", class_="summary").text()
    assert "not counted" in skipped


def test_an_estimated_count_says_so(db_url: str) -> None:
    # Past TABLEREST_COUNT_EXACT_UP_TO the default count is an estimate: the page says
    # "about", and count=exact gives the exact figure.
    app = create_app(db_url, TABLEREST_COUNT_EXACT_UP_TO=10)
    engine = state_of(app).engine
    Base.metadata.create_all(engine)
    try:
        alice = add_user(engine, "alice")
        for number in range(12):
            add_post(engine, alice, f"post {number}")
        client = app.test_client()
        # (a filtered list: a small whole SQLite table is counted exactly anyway)
        summary = get_page(client, "/posts?limit=5&title__like=post%25").one(
            "p", class_="summary").text()
        assert summary.startswith("About ") and "estimated" in summary
        exact = get_page(client, "/posts?limit=5&title__like=post%25&count=exact").one(
            "p", class_="summary")
        assert exact.text().startswith("12 items match")
    finally:
        engine.dispose()


def test_item_page_links_relations_and_targets(client: FlaskClient,
                                               blog: dict[str, Any]) -> None:
    post = blog["posts"][0]
    doc = get_page(client, f"/posts/{post}")
    hrefs = {a.text(): a.get("href") for a in doc.one("ul", class_="related").all("a")}
    assert hrefs == {"author": f"/users/{blog['alice']}", "tags": f"/posts/{post}/tags"}
    user = get_page(client, f"/users/{blog['alice']}")
    assert {a.text(): a.get("href") for a in user.one("ul", class_="related").all("a")} == {
        "posts": f"/users/{blog['alice']}/posts"}
    fields = {tr.one("th").text(): tr.one("td").text() for tr in doc.one("tbody").all("tr")}
    item = client.get(f"/posts/{post}").json
    assert list(fields) == list(item)
    assert raw_json(doc) == item
    crumbs = doc.one("nav", aria_label="Breadcrumb").all("a")
    assert [(a.text(), a.get("href")) for a in crumbs] == [
        ("Home", "/"), ("posts", "/posts"), (str(post), f"/posts/{post}")]
    assert [a.attrs.get("aria-current") for a in crumbs] == [None, None, "page"]


def test_export_links_reproduce_the_query(client: FlaskClient, blog: dict[str, Any]) -> None:
    url = "/posts?user_id=1&sort=-title&fields=id,title&limit=4"
    response = client.get(url, headers=BROWSER)
    doc = page(response)
    exports = {a.text(): a.get("href") for a in doc.one("p", class_="exports").all("a")}
    assert set(exports) == {"JSON", "CSV", "NDJSON"}
    exported, expected = client.get(exports["JSON"], headers=BROWSER).json, client.get(url).json
    assert exported["items"] == expected["items"] and exported["count"] == expected["count"]
    # The next page stays JSON.
    assert sorted(params(exported["next"])) == sorted([*params(expected["next"]),
                                                       ("__as__", "json")])
    assert client.get(exports["CSV"], headers=BROWSER).data == \
        client.get(url, headers={"Accept": "text/csv"}).data
    assert client.get(exports["NDJSON"], headers=BROWSER).data == \
        client.get(url, headers={"Accept": "application/x-ndjson"}).data
    assert response.headers["Link"] == \
        f'<{exports["JSON"]}>; rel="alternate"; type="application/json"'
    assert doc.one("link", rel="alternate").get("href") == exports["JSON"]


def test_scoped_lists_and_relation_lists_are_pages(mb_client: FlaskClient,
                                                   people: dict[str, int]) -> None:
    john = people["john"]
    for url in (f"/users/{john}/timeline", f"/users/{john}/messages",
                f"/users/{john}/following"):
        doc = get_page(mb_client, url)
        assert raw_json(doc) == mb_client.get(url).json
    user = get_page(mb_client, f"/users/{john}")
    related = [a.text() for a in user.one("ul", class_="related").all("a")]
    assert sorted(related) == ["followers", "following", "messages", "timeline"]


@pytest.mark.parametrize(("url", "status"), [("/nothing", 404), ("/posts/999999", 404),
                                             ("/posts?sort=nope", 400),
                                             ("/posts?limit=abc", 400)])
def test_errors_are_pages_with_the_same_problem(client: FlaskClient, url: str,
                                                status: int) -> None:
    problem = client.get(url).json
    doc = get_page(client, url, status)
    assert doc.one("h1").text() == f"{status} {problem['title']}"
    assert doc.one("div", class_="problem").one("p").text() == problem["detail"]
    assert raw_json(doc) == problem
    assert "Traceback" not in doc.text()


def test_a_500_page_shows_no_trace(client: FlaskClient, app: Flask, engine: sa.Engine,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from tablerest.views import items

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    add_tags(engine, "python")
    monkeypatch.setattr(items.Items, "read", broken)
    doc = get_page(client, "/tags/python", 500)
    assert "secret internals" not in doc.text() and "Traceback" not in doc.text()
    assert "logged as request" in doc.one("div", class_="problem").text()


# -- 4. safe by construction -----------------------------------------------------------------


def _inert(doc: Node, response: TestResponse) -> None:
    scripts = doc.all("script")
    assert [s.get("src") for s in scripts] == ["/-/static/tablerest.js"]
    assert doc.all("img") == []
    for node in doc.all():
        assert not any(name.startswith("on") for name in node.attrs), node.attrs
        for name in ("href", "src", "action"):
            value = node.attrs.get(name)
            if value is not None:
                assert value.startswith(("/", "#", "http://", "https://")), value
    # A form control keeps its value exactly (saving it again must not change it); it is
    # drawn in a box of its own, which no character in it can reorder the page around.
    text = re.sub(r"<textarea[^>]*>[^<]*</textarea>", "", response.get_data(as_text=True))
    assert not BIDI.search(text)


def test_hostile_values_render_inert(client: FlaskClient, engine: sa.Engine) -> None:
    user = add_user(engine, "mallory")
    for text in HOSTILE:
        add_post(engine, user, text, body=text * 20)
    add_post(engine, user, "site", body="https://example.org/a?b=1&c=<2>")
    response = client.get("/posts?sort=id", headers=BROWSER)
    doc = page(response)
    _inert(doc, response)
    titles = [tr.all("td")[0].text() for tr in doc.one("tbody").all("tr")]
    assert titles[:2] == HOSTILE[:2]
    assert titles[4] == "<U+202E>gnp.exe"
    links = [a for a in doc.one("tbody").all("a") if a.attrs.get("rel")]
    assert [a.get("href") for a in links] == ["https://example.org/a?b=1&c=<2>"] or \
        [a.get("href") for a in links] == []
    assert raw_json(doc)["items"][0]["title"] == HOSTILE[0]


def test_only_web_urls_become_links(client: FlaskClient, engine: sa.Engine) -> None:
    user = add_user(engine, "mallory")
    add_post(engine, user, "https://example.org/page")
    add_post(engine, user, "javascript:alert(1)")
    add_post(engine, user, "data:text/html,<script>x</script>")
    doc = get_page(client, "/posts?sort=id&fields=id,title")
    cells = [tr.one("td") for tr in doc.one("tbody").all("tr")]
    assert [[a.get("href") for a in cell.all("a")] for cell in cells] == [
        ["https://example.org/page"], [], []]
    assert cells[0].one("a").get("rel") == "nofollow noopener noreferrer"


def test_hostile_keys_in_captions_crumbs_and_errors(client: FlaskClient,
                                                    engine: sa.Engine) -> None:
    for text in ('"><img src=x onerror=alert(1)>', "<script>x"):
        add_tags(engine, text)
        response = client.get(f"/tags/{text.replace('/', '')}", headers=BROWSER)
        doc = page(response)
        _inert(doc, response)
        assert text in doc.one("caption").text()
        missing = client.get(f"/tags/{text}x", headers=BROWSER)
        _inert(page(missing, 404), missing)


def test_hostile_values_in_form_values(mb_client: FlaskClient, people: dict[str, int]) -> None:
    sign_in(mb_client, "john")
    hostile = post_message(mb_client, "john", HOSTILE[1] + HOSTILE[4])
    response = mb_client.get(f"/messages/{hostile}", headers=BROWSER)
    doc = page(response)
    _inert(doc, response)
    assert doc.one("textarea").text() == HOSTILE[1] + HOSTILE[4]


def test_security_headers_on_pages(client: FlaskClient, blog: dict[str, Any]) -> None:
    for url, status in (("/", 200), ("/posts", 200), (f"/posts/{blog['posts'][0]}", 200),
                        ("/nothing", 404), ("/-/signin", 404)):
        response = client.get(url, headers=BROWSER)
        assert response.status_code == status, url
        assert response.headers["Content-Security-Policy"] == PAGES_CSP
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Robots-Tag"] == "noindex, nofollow"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "no-store" not in response.headers.get("Cache-Control", "")
        doc = page(response, status)
        assert doc.one("meta", name="robots").get("content") == "noindex, nofollow"
        assert not doc.all("style") and all("style" not in n.attrs for n in doc.all())
        assert all("src" not in s.attrs or s.get("src").startswith("/-/static/")
                   for s in doc.all("script"))
        assert all(not s.text().strip() for s in doc.all("script"))
    css = client.get("/-/static/tablerest.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert "Vary" not in css.headers
    css.close()
    assert client.get("/posts").headers.get("Content-Security-Policy") is None


def test_fit_for_people(client: FlaskClient, engine: sa.Engine) -> None:
    user = add_user(engine, "writer")
    long = "word " * 200
    add_post(engine, user, "long", body=long)
    titles = set()
    for url in ("/", "/posts", "/posts/1", "/users", f"/users/{user}", "/nothing"):
        response = client.get(url, headers=BROWSER)
        doc = page(response, response.status_code)
        assert doc.one("html").get("lang") == "en"
        titles.add(doc.one("title").text())
        skip = doc.one("a", class_="skip")
        assert skip.get("href") == "#main" and doc.one("main").get("id") == "main"
        assert doc.one("meta", name="viewport")
    assert len(titles) == 6
    listed = get_page(client, "/posts?fields=id,body")
    cell = listed.one("tbody").all("td")[0]
    assert len(cell.text()) <= 121 and cell.one("span", class_="cut")
    assert client.get("/posts?fields=id,body").json["items"][0]["body"] == long
    item = get_page(client, "/posts/1")
    assert long in item.text()
    times = item.all("time")
    created = client.get("/posts/1").json["created_at"]
    assert times[0].get("datetime") == created
    assert times[0].text().endswith(" UTC")


# -- 6. cheap --------------------------------------------------------------------------------


def test_a_page_costs_what_the_json_list_costs(client: FlaskClient, blog: dict[str, Any],
                                               engine: sa.Engine) -> None:
    counter = SelectCounter(engine)
    try:
        costs = {}
        for limit in (5, 25):
            for headers in ({}, BROWSER):
                counter.seen.clear()
                assert client.get(f"/posts?limit={limit}", headers=headers).status_code == 200
                costs[(limit, bool(headers))] = counter.selects()
    finally:
        counter.close()
    assert costs[(5, True)] == costs[(25, True)] == costs[(5, False)] == costs[(25, False)]


# -- 3. signed in ----------------------------------------------------------------------------


def test_sign_in_sets_a_strict_http_only_cookie(mb_client: FlaskClient,
                                                people: dict[str, int]) -> None:
    doc = get_page(mb_client, "/-/signin")
    assert doc.one("input", type="password")
    wrong = sign_in(mb_client, "john", "wrong password!")
    assert "wrong" in page(wrong, 401).one("div", class_="problem").text()
    response = sign_in(mb_client, "john")
    assert response.status_code == 303 and response.headers["Location"] == "/messages"
    cookie = next(value for value in response.headers.getlist("Set-Cookie")
                  if value.startswith("tablerest_session="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    listed = mb_client.get("/messages", headers=BROWSER)
    assert listed.headers["Cache-Control"] == "private, no-store" or \
        set(listed.headers["Cache-Control"].split(", ")) == {"private", "no-store"}
    doc = page(listed)
    assert "Signed in" in doc.one("div", class_="session").text()
    assert token not in listed.get_data(as_text=True)


def test_the_cookie_is_secure_over_https(microblog: Flask, people: dict[str, int]) -> None:
    client = microblog.test_client()
    doc = page(client.get("/-/signin", base_url="https://localhost", headers=BROWSER))
    response = client.post("/-/signin", base_url="https://localhost", headers=BROWSER,
                           data={"login": "john", "password": PASSWORD,
                                 "__csrf__": csrf_of(doc)})
    assert response.status_code == 303
    assert all("Secure" in value for value in response.headers.getlist("Set-Cookie"))


def test_the_json_api_ignores_the_cookie(mb_client: FlaskClient, microblog: Flask,
                                         people: dict[str, int]) -> None:
    sign_in(mb_client, "john")
    created = mb_client.post("/messages", json={"content": "by cookie"})
    assert created.status_code == 401
    listed = mb_client.get("/messages")
    assert "private" not in listed.headers.get("Cache-Control", "")
    assert rows(microblog.extensions["tablerest"].engine,
                "SELECT id FROM messages WHERE content = 'by cookie'") == []


def test_create_edit_and_delete_by_forms(mb_client: FlaskClient, microblog: Flask,
                                         people: dict[str, int]) -> None:
    engine = microblog.extensions["tablerest"].engine
    assert not get_page(mb_client, "/messages").all("form", method="post")  # signed out
    sign_in(mb_client, "john")
    doc = get_page(mb_client, "/messages")
    form = doc.one("section", class_="form").one("form")
    assert form.get("action") == "/-/forms/messages"
    assert [i.get("name") for i in form.all("textarea")] == ["content"]
    assert not form.all("input", name="user_id") and not form.all("input", name="id")
    label = form.one("label").text()
    assert "content" in label and "(required)" in label
    created = mb_client.post(form.get("action"), headers=BROWSER,
                             data={"content": "posted by form", "__csrf__": csrf_of(doc)})
    assert created.status_code == 303
    [row] = rows(engine, "SELECT id, user_id FROM messages WHERE content = 'posted by form'")
    assert row["user_id"] == people["john"]
    assert created.headers["Location"] == f"/messages/{row['id']}"
    item = get_page(mb_client, created.headers["Location"])
    edit = item.one("form", action=f"/-/forms/messages/{row['id']}/edit")
    assert edit.one("textarea").text() == "posted by form"
    saved = mb_client.post(edit.get("action"), headers=BROWSER,
                           data={"content": "edited", "__csrf__": csrf_of(item)})
    assert saved.status_code == 303
    assert rows(engine, "SELECT content FROM messages WHERE id = :id", id=row["id"]) == [
        {"content": "edited"}]
    deleted = mb_client.post(f"/-/forms/messages/{row['id']}/delete", headers=BROWSER,
                             data={"__csrf__": csrf_of(item)})
    assert deleted.status_code == 303 and deleted.headers["Location"] == "/messages"
    assert rows(engine, "SELECT id FROM messages WHERE id = :id", id=row["id"]) == []


def test_validation_errors_show_beside_the_fields(mb_client: FlaskClient,
                                                  people: dict[str, int],
                                                  microblog: Flask) -> None:
    sign_in(mb_client, "john")
    doc = get_page(mb_client, f"/users/{people['john']}")
    edit = doc.one("form", action=f"/-/forms/users/{people['john']}/edit")
    names = [i.get("name") for i in edit.all("input") if i.get("type") != "hidden"]
    assert names == ["name", "email"]  # the password is hidden: never an input
    assert edit.one("input", name="email").get("type") == "email"
    response = mb_client.post(edit.get("action"), headers=BROWSER,
                              data={"name": "<b>john</b>", "email": "not an email",
                                    "__csrf__": csrf_of(doc)})
    again = page(response, 422)
    field = next(div for div in again.all("div") if "invalid" in div.attrs.get("class", ""))
    assert field.one("input").get("name") == "email"
    assert field.one("input").get("value") == "not an email"
    assert field.one("input").get("aria-invalid") == "true"
    assert field.one("p", class_="error").text()
    assert again.one("input", name="name").get("value") == "<b>john</b>"
    assert rows(microblog.extensions["tablerest"].engine,
                "SELECT name FROM users WHERE id = :id", id=people["john"]) == [
        {"name": "john"}]


def test_the_policy_governs_forms(mb_client: FlaskClient, microblog: Flask,
                                  people: dict[str, int]) -> None:
    engine = microblog.extensions["tablerest"].engine
    sign_in(mb_client, "john")
    theirs = get_page(mb_client, f"/messages/{people['jane_message']}")
    assert not theirs.all("form", method="post")[1:]  # only sign-out
    assert get_page(mb_client, f"/messages/{people['john_message']}").all(
        "form", action=f"/-/forms/messages/{people['john_message']}/edit")
    csrf = csrf_of(theirs)
    for action in ("edit", "delete"):
        response = mb_client.post(f"/-/forms/messages/{people['jane_message']}/{action}",
                                  headers=BROWSER, data={"content": "hijacked",
                                                         "__csrf__": csrf})
        page(response, 403)
    assert rows(engine, "SELECT content FROM messages WHERE id = :id",
                id=people["jane_message"]) == [{"content": "hello from jane"}]


def test_forms_need_the_csrf_token_and_this_origin(mb_client: FlaskClient, microblog: Flask,
                                                   people: dict[str, int]) -> None:
    engine = microblog.extensions["tablerest"].engine
    sign_in(mb_client, "john")
    doc = get_page(mb_client, "/messages")
    for data, headers in (({"content": "x1"}, BROWSER),
                          ({"content": "x2", "__csrf__": "forged"}, BROWSER),
                          ({"content": "x3", "__csrf__": csrf_of(doc)},
                           {**BROWSER, "Origin": "https://evil.example"}),
                          ({"content": "x4", "__csrf__": csrf_of(doc)},
                           {**BROWSER, "Sec-Fetch-Site": "cross-site"})):
        page(mb_client.post("/-/forms/messages", data=data, headers=headers), 403)
    assert rows(engine, "SELECT id FROM messages WHERE content LIKE 'x%'") == []
    signed_out = microblog.test_client()
    response = signed_out.post("/-/forms/messages", headers=BROWSER,
                               data={"content": "anon", "__csrf__": csrf_of(doc)})
    page(response, 403)  # no CSRF cookie in this client


def test_signed_out_posts_are_401(microblog: Flask, people: dict[str, int]) -> None:
    client = microblog.test_client()
    doc = get_page(client, "/-/signin")
    response = client.post("/-/forms/messages", headers=BROWSER,
                           data={"content": "anon", "__csrf__": csrf_of(doc)})
    page(response, 401)


def test_sign_out_and_stale_cookies(mb_client: FlaskClient, people: dict[str, int]) -> None:
    sign_in(mb_client, "john")
    doc = get_page(mb_client, "/messages")
    out = mb_client.post("/-/signout", headers=BROWSER, data={"__csrf__": csrf_of(doc)})
    assert out.status_code == 303
    assert any(value.startswith("tablerest_session=;") for value in
               out.headers.getlist("Set-Cookie"))
    assert "Sign in" in get_page(mb_client, "/messages").one("div", class_="session").text()
    mb_client.set_cookie("tablerest_session", "forged.token", domain="localhost")
    response = mb_client.get("/messages", headers=BROWSER)
    assert page(response).one("div", class_="session").one("a").text() == "Sign in"
    assert any(value.startswith("tablerest_session=;") for value in
               response.headers.getlist("Set-Cookie"))


# -- 7. overridable --------------------------------------------------------------------------


@pytest.fixture
def templated(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    from testapp import Base

    folder = tmp_path / "templates"
    (folder / "tags").mkdir(parents=True)
    (folder / "tags" / "list.html").write_text(
        '{% extends "tablerest/list.html" %}'
        '{% block summary %}<p id="mine">Our tags: {{ shown }}</p>{{ super() }}{% endblock %}')
    (folder / "tags" / "item.html").write_text(
        '{% extends "tablerest/item.html" %}{% block links %}<p id="mine">{{ item.name }}'
        '</p>{% endblock %}')
    app = create_app(db_url)
    app.template_folder = str(folder)
    engine = app.extensions["tablerest"].engine
    Base.metadata.create_all(engine)
    yield app
    engine.dispose()


def test_templates_named_after_the_resource_override(templated: Flask) -> None:
    client = templated.test_client()
    add_tags(templated.extensions["tablerest"].engine, "python", "<i>sql")
    doc = get_page(client, "/tags")
    assert doc.one("p", id="mine").text() == "Our tags: 2"
    assert doc.one("p", class_="summary")  # super() kept the default
    item = get_page(client, "/tags/%3Ci%3Esql")
    assert item.one("p", id="mine").text() == "<i>sql"
    assert not get_page(client, "/posts").all("p", id="mine")
