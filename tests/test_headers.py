"""Headers that protect clients, and what they protect:

- ``X-Content-Type-Options: nosniff`` on every response: successes, errors, 304, streams,
  the docs and the OpenAPI document;
- ``Cache-Control: private`` on the answer to a request with ``Authorization``, unless the
  response keeps itself out of caches already (``no-store`` on the token route);
- a Content-Security-Policy on ``/docs`` without inline scripts, and a page that still works
  under it (no inline script, every asset it references served with the right type), titled
  after the API, with no source map a browser would ask for in vain;
- a JSON body in any charset but UTF-8 (or its subset US-ASCII) is 415.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from conftest import rows
from factories import PASSWORD, PASSWORD_HASH, add_user, insert
from tablerest.extension import state_of
from tablerest.reflection import create_app as reflect_app
from testapp import Post, create_app

PROBLEM = "application/problem+json"
CSV = "text/csv"
NDJSON = "application/x-ndjson"
NEW_USER = {"name": "zoe", "email": "zoe@example.com", "password": "long enough secret"}


@pytest.fixture
def alice(engine: sa.Engine) -> int:
    user = add_user(engine, "alice", age=30)
    insert(engine, Post, {"user_id": user, "title": "hello"})
    return user


def send(client: FlaskClient, method: str, path: str, **options: Any) -> TestResponse:
    return client.open(path, method=method, buffered=True, **options)


# -- nosniff ---------------------------------------------------------------------------------


REQUESTS: list[tuple[str, str, dict[str, Any], int]] = [
    ("GET", "/", {}, 200),
    ("GET", "/users", {}, 200),
    ("HEAD", "/users", {}, 200),
    ("GET", "/users/{alice}", {}, 200),
    ("GET", "/users/{alice}/posts", {}, 200),
    ("POST", "/users", {"json": NEW_USER}, 201),
    ("PATCH", "/users/{alice}", {"json": {"age": 31}}, 200),
    ("QUERY", "/posts", {"json": {"where": {"title": "hello"}}}, 200),
    ("GET", "/users", {"headers": {"Accept": CSV}}, 200),
    ("GET", "/users", {"headers": {"Accept": NDJSON}}, 200),
    ("GET", "/users?sort=nope", {}, 400),
    ("GET", "/users/999999", {}, 404),
    ("GET", "/no/such/route", {}, 404),
    ("DELETE", "/users", {}, 405),
    ("GET", "/users", {"headers": {"Accept": "image/png"}}, 406),
    ("POST", "/users", {"data": "name=zoe", "content_type": "text/plain"}, 415),
    ("POST", "/users", {"json": {"name": "zoe"}}, 422),
    ("DELETE", "/users/{alice}", {}, 204),
    ("GET", "/docs", {}, 200),
    ("GET", "/openapi.json", {}, 200),
    ("GET", "/docs/static/swagger-ui.css", {}, 200),
    ("GET", "/docs/static/favicon-32x32.png", {}, 200),
    ("GET", "/docs/static/LICENSE", {}, 404),
]


@pytest.mark.parametrize(("method", "path", "options", "status"), REQUESTS,
                         ids=[f"{method} {path} {status}" for method, path, _, status in REQUESTS])
def test_every_response_says_nosniff(client: FlaskClient, alice: int, method: str, path: str,
                                     options: dict[str, Any], status: int) -> None:
    response = send(client, method, path.format(alice=alice), **options)
    assert response.status_code == status, response.data[:300]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_304_says_nosniff(client: FlaskClient, alice: int) -> None:
    etag = client.get(f"/users/{alice}").headers["ETag"]
    response = client.get(f"/users/{alice}", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_500_says_nosniff(db_url: str) -> None:
    app = create_app(db_url)

    def broken() -> str:
        raise RuntimeError("a bug")

    app.add_url_rule("/broken", "broken", broken)
    response = app.test_client().get("/broken")
    assert response.status_code == 500
    assert response.mimetype == PROBLEM
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    state_of(app).engine.dispose()


# -- Cache-Control: private --------------------------------------------------------------------


def test_an_authenticated_request_is_answered_private(client: FlaskClient, alice: int) -> None:
    """Any request with ``Authorization``: the test app has no tokens, the header is enough."""
    credentials = {"Authorization": "Bearer something"}
    for path, headers in [("/users", {}), (f"/users/{alice}", {}),
                          ("/users", {"Accept": CSV}), ("/users/999999", {})]:
        response = client.get(path, headers={**credentials, **headers}, buffered=True)
        assert response.headers["Cache-Control"] == "private", path
        assert "private" not in client.get(path, headers=headers,
                                           buffered=True).headers.get("Cache-Control", "")


def test_a_304_to_an_authenticated_request_is_private(client: FlaskClient, alice: int) -> None:
    credentials = {"Authorization": "Bearer something"}
    etag = client.get(f"/users/{alice}", headers=credentials).headers["ETag"]
    response = client.get(f"/users/{alice}", headers={**credentials, "If-None-Match": etag})
    assert response.status_code == 304
    assert response.headers["Cache-Control"] == "private"


def test_private_replaces_public_and_keeps_the_rest(client: FlaskClient) -> None:
    plain = client.get("/docs/static/swagger-ui.css")
    assert plain.headers["Cache-Control"] == "public, max-age=86400"
    signed = client.get("/docs/static/swagger-ui.css", headers={"Authorization": "Bearer x"})
    assert signed.headers["Cache-Control"] == "max-age=86400, private"


def test_the_microblog_with_a_token(microblog: Flask, mb_client: FlaskClient) -> None:
    from microblog.models import User

    engine = state_of(microblog).engine
    (jane,) = insert(engine, User, {"name": "jane", "email": "jane@example.com",
                                    "password": PASSWORD_HASH})
    issued = mb_client.post("/auth/token", json={"name": "jane", "password": PASSWORD})
    assert issued.status_code == 200
    assert issued.headers["Cache-Control"] == "no-store"
    token = {"Authorization": f"Bearer {issued.json['access_token']}"}
    again = mb_client.post("/auth/token", json={"name": "jane", "password": PASSWORD},
                           headers=token)
    assert again.headers["Cache-Control"] == "no-store"  # stricter than private: kept
    own = mb_client.get(f"/users/{jane}", headers=token)
    assert own.status_code == 200
    assert own.headers["Cache-Control"] == "private"
    changed = mb_client.patch(f"/users/{jane}", json={"name": "janet"}, headers=token)
    assert changed.status_code == 200
    assert changed.headers["Cache-Control"] == "private"
    refused = mb_client.get("/users", headers={"Authorization": "Bearer forged"})
    assert refused.status_code == 401
    assert refused.headers["Cache-Control"] == "private"
    assert refused.headers["X-Content-Type-Options"] == "nosniff"
    assert "Cache-Control" not in mb_client.get(f"/users/{jane}").headers


# -- JSON bodies are UTF-8 ------------------------------------------------------------------


@pytest.mark.parametrize("charset", ["utf-16", "UTF-16", "utf-16le", "utf-32", "iso-8859-1",
                                     '"utf-16"', "latin1"])
def test_a_body_in_another_charset_is_415(client: FlaskClient, engine: sa.Engine,
                                          charset: str) -> None:
    body = '{"name": "zoë", "email": "zoe@example.com", "password": "long enough secret"}'
    encoding = charset.strip('"')
    response = client.post("/users", data=body.encode(encoding),
                           content_type=f"application/json; charset={charset}")
    assert response.status_code == 415
    assert response.mimetype == PROBLEM
    detail = response.json["detail"]
    assert repr(encoding) in detail and "UTF-8" in detail
    assert rows(engine, "SELECT id FROM users") == []


@pytest.mark.parametrize("charset", [None, "utf-8", "UTF-8", "us-ascii", "US-ASCII"])
def test_a_body_in_utf8_or_ascii_is_read(client: FlaskClient, engine: sa.Engine,
                                         charset: str | None) -> None:
    content_type = "application/json" + (f"; charset={charset}" if charset else "")
    name = "zoe" if charset and "ascii" in charset.lower() else "zoë"
    body = f'{{"name": "{name}", "email": "zoe@example.com", "password": "long enough"}}'
    response = client.post("/users", data=body.encode(), content_type=content_type)
    assert response.status_code == 201, response.json
    assert rows(engine, "SELECT name FROM users") == [{"name": name}]


def test_every_body_route_refuses_utf16(client: FlaskClient, engine: sa.Engine,
                                        alice: int) -> None:
    utf16 = "application/json; charset=utf-16"
    patched = client.patch(f"/users/{alice}", data='{"age": 40}'.encode("utf-16"),
                           content_type=utf16)
    assert patched.status_code == 415
    queried = client.open("/posts", method="QUERY", content_type=utf16,
                          data='{"where": {"title": "hello"}}'.encode("utf-16"))
    assert queried.status_code == 415
    created = client.post(f"/users/{alice}/posts", data='{"title": "x"}'.encode("utf-16"),
                          content_type=utf16)
    assert created.status_code == 415
    assert rows(engine, "SELECT age FROM users") == [{"age": 30}]
    assert rows(engine, "SELECT title FROM posts") == [{"title": "hello"}]


def test_the_token_route_refuses_utf16(mb_client: FlaskClient) -> None:
    response = mb_client.post("/auth/token", content_type="application/json; charset=utf-16",
                              data='{"name": "jane", "password": "x"}'.encode("utf-16"))
    assert response.status_code == 415
    assert response.mimetype == PROBLEM


# -- the docs page ------------------------------------------------------------------------------


class Page(HTMLParser):
    """The tags of a page, and the text inside its scripts and styles."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.inline: list[str] = []
        self.title = ""
        self._open: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))
        self._open = tag

    def handle_endtag(self, tag: str) -> None:
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open in ("script", "style") and data.strip():
            self.inline.append(data)
        if self._open == "title":
            self.title += data

    def urls(self) -> dict[str, str]:
        """Each URL the page loads, and what it loads it as."""
        found = {}
        for tag, attrs in self.tags:
            if tag == "script" and "src" in attrs:
                found[attrs["src"]] = "script"
            if tag == "link":
                found[attrs["href"]] = attrs["rel"]
        return found


def csp(response: TestResponse) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {name: values for name, *values in
            (directive.split() for directive in policy.split(";") if directive.strip())}


@pytest.fixture
def docs(client: FlaskClient) -> Iterator[tuple[TestResponse, Page]]:
    response = client.get("/docs")
    assert response.status_code == 200
    yield response, Page(response.get_data(as_text=True))


def test_the_docs_have_a_strict_policy(docs: tuple[TestResponse, Page]) -> None:
    policy = csp(docs[0])
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert "'unsafe-eval'" not in docs[0].headers["Content-Security-Policy"]


def test_the_docs_have_no_inline_script(docs: tuple[TestResponse, Page]) -> None:
    _, page = docs
    assert page.inline == []
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert scripts and all(attrs.get("src") for attrs in scripts)
    handlers = [name for _, attrs in page.tags for name in attrs if name.startswith("on")]
    assert handlers == []


def test_every_asset_of_the_docs_is_served_as_what_it_is(
        client: FlaskClient, docs: tuple[TestResponse, Page]) -> None:
    """With nosniff, a browser refuses a script or a style sheet of the wrong type."""
    expected = {"script": "text/javascript", "stylesheet": "text/css", "icon": "image/png"}
    urls = docs[1].urls()
    assert sorted(urls.values()) == ["icon", "script", "script", "stylesheet"]
    for url, kind in urls.items():
        assert url.startswith("/docs/static/"), url  # same origin: 'self'
        with client.get(url) as response:
            assert response.status_code == 200, url
            assert response.mimetype == expected[kind], url
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            if kind != "icon":
                assert b"sourceMappingURL" not in response.data, url


def test_the_docs_script_starts_swagger_ui_on_the_document(
        client: FlaskClient, docs: tuple[TestResponse, Page]) -> None:
    _, page = docs
    (root,) = [attrs for tag, attrs in page.tags if attrs.get("id") == "swagger-ui"]
    spec = client.get(root["data-url"])
    assert spec.status_code == 200
    assert spec.json["openapi"] == "3.1.0"
    (init,) = [url for url in page.urls() if "tablerest-docs.js" in url]
    script = client.get(init).get_data(as_text=True)
    assert "SwaggerUIBundle(" in script and "dataset.url" in script


def test_the_style_sheet_draws_images_from_data_urls_only(client: FlaskClient) -> None:
    """``img-src 'self' data:``: the style sheet refers to nothing else."""
    css = client.get("/docs/static/swagger-ui.css").get_data(as_text=True)
    references = re.findall(r"url\(\s*[\"']?([^\"')]*)", css)
    assert references and all(url.startswith("data:") for url in references)


def test_no_source_map_is_asked_for(client: FlaskClient) -> None:
    """The package ships no ``swagger-ui.css.map``: nothing the page loads points to one."""
    assert client.get("/docs/static/swagger-ui.css.map").status_code == 404
    for name in ("swagger-ui.css", "swagger-ui-bundle.js", "tablerest-docs.js"):
        assert b"sourceMappingURL" not in client.get(f"/docs/static/{name}").data


def test_a_docs_asset_answers_304_to_its_etag(client: FlaskClient) -> None:
    first = client.get("/docs/static/swagger-ui.css")
    again = client.get("/docs/static/swagger-ui.css",
                       headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.headers["X-Content-Type-Options"] == "nosniff"


def test_only_the_docs_page_has_the_policy(client: FlaskClient) -> None:
    for path in ("/openapi.json", "/", "/users", "/docs/static/swagger-ui.css"):
        assert "Content-Security-Policy" not in client.get(path).headers, path


# -- the API's title ------------------------------------------------------------------------


def titles(app: Flask) -> tuple[str, str]:
    """The docs page's title and the document's ``info.title``."""
    client = app.test_client()
    page = Page(client.get("/docs").get_data(as_text=True))
    return page.title, client.get("/openapi.json").json["info"]["title"]


def test_the_title_is_the_apps_package_made_readable(app: Flask) -> None:
    assert titles(app) == ("Testapp: API docs", "Testapp")


def test_the_microblog_is_titled_microblog(microblog: Flask) -> None:
    assert titles(microblog) == ("Microblog: API docs", "Microblog")


def test_the_title_can_be_configured(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(db_url, TABLEREST_API_TITLE="Shop & <Co>")
    assert titles(app) == ("Shop & <Co>: API docs", "Shop & <Co>")
    assert "<title>Shop &amp; &lt;Co&gt;: API docs</title>" in \
        app.test_client().get("/docs").get_data(as_text=True)
    monkeypatch.setenv("TABLEREST_API_TITLE", "Twittor")
    assert titles(create_app(db_url)) == ("Twittor: API docs", "Twittor")


def test_a_reflected_database_is_titled_by_its_name(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chinook.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE artist (id INTEGER PRIMARY KEY, name TEXT)"))
    engine.dispose()
    app = reflect_app(url)
    assert titles(app) == ("chinook.sqlite: API docs", "chinook.sqlite")
    state_of(app).engine.dispose()
