"""The microblog's pages in a real browser: Debian's Chromium, driven by Playwright
(``executable_path``: no browser is downloaded), against a live server on 127.0.0.1 that
the tests start, on SQLite and PostgreSQL.

Browse from the index to a list, sort by a header, filter with the form, follow Next, open
an item and a relation; sign in, post a message, edit it, delete it; all of it once more
with JavaScript off. Every page: zero CSP violations, zero console errors, no request
leaving 127.0.0.1. Back after a JSON ``fetch()`` of the same URL still shows HTML. axe-core
(npm, installed from the committed lock file into ``node_modules/``) finds no serious or
critical violation on the index, a list, an item, a form and an error page, light and dark.

``TABLEREST_SCREENSHOTS=1`` writes the README's screenshots to ``docs/``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from conftest import rows
from factories import live_server

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the dev extras install it
    sync_playwright = None

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("TABLEREST_CHROMIUM", "/usr/bin/chromium")
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
DOCS = HERE.parents[1] / "docs"
PASSWORD = "long enough secret"
MESSAGES = 7


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; .ci/run installs it.")
    pytest.skip(reason)


# -- the server and the browser --------------------------------------------------------------


@pytest.fixture
def seeded(microblog: Flask) -> Flask:
    client = microblog.test_client()
    for name in ("john", "jane"):
        assert client.post("/users", json={"name": name, "email": f"{name}@example.com",
                                           "password": PASSWORD}).status_code == 201
    token = client.post("/auth/token", json={"name": "jane", "password": PASSWORD}
                        ).json["access_token"]
    for number in range(MESSAGES):
        assert client.post("/messages", json={"content": f"jane says {number}"},
                           headers={"Authorization": f"Bearer {token}"}).status_code == 201
    return microblog


@pytest.fixture
def live(seeded: Flask) -> Iterator[str]:
    """The app on a free port of 127.0.0.1, in a thread, for the test's duration."""
    with live_server(seeded) as base:
        yield base


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if sync_playwright is None:
        _missing("Playwright is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        _missing(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def axe() -> Path:
    """axe-core, installed from the committed lock file when it is not there yet."""
    if not AXE.exists():
        npm = shutil.which("npm")
        if npm is None:
            _missing("npm is not installed (apt-get install npm)")
        subprocess.run([str(npm), "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True,
                       capture_output=True, timeout=300)
    return AXE


class Watched:
    """A page whose console errors, CSP violations and off-host requests are recorded."""

    def __init__(self, context: Any, base: str, scripts: bool) -> None:
        self.page = context.new_page()
        self.base = base
        self.errors: list[str] = []
        self.violations: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request.url))
        context.route(re.compile(r"^(?!http://127\.0\.0\.1:).*"),
                      lambda route: route.abort())
        if scripts:
            self.page.add_init_script(
                "window.__violations = [];"
                "document.addEventListener('securitypolicyviolation',"
                " e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));")

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)
        if "Content Security Policy" in message.text:
            self.violations.append(message.text)

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def check(self, scripts: bool) -> None:
        if scripts:
            self.violations += self.page.evaluate("window.__violations || []")
        assert self.errors == []
        assert self.violations == []
        off_host = [url for url in self.requests if not url.startswith(self.base + "/")]
        assert off_host == []


@pytest.fixture(params=[True, False], ids=["js", "no-js"])
def watched(request: pytest.FixtureRequest, browser: Any, live: str) -> Iterator[Watched]:
    scripts: bool = request.param
    context = browser.new_context(java_script_enabled=scripts)
    found = Watched(context, live, scripts)
    yield found
    found.check(scripts)
    context.close()


def _user_id(app: Flask, name: str) -> int:
    [row] = rows(app.extensions["tablerest"].engine, "SELECT id FROM users WHERE name = :n",
                 n=name)
    user_id: int = row["id"]
    return user_id


# -- browsing --------------------------------------------------------------------------------


def test_browse_sort_filter_page_and_follow(watched: Watched, seeded: Flask) -> None:
    page = watched.page
    watched.goto("/")
    assert page.title().startswith("Resources")
    page.get_by_role("link", name="messages", exact=True).click()
    page.wait_for_url(re.compile(r"/messages$"))
    assert page.locator("tbody tr").count() == MESSAGES
    page.get_by_role("link", name="content", exact=True).click()
    page.wait_for_url(re.compile(r"sort=content"))
    assert page.locator("th[aria-sort=ascending]").inner_text().startswith("content")
    firsts = page.locator("tbody tr td:nth-child(2)").all_inner_texts()
    assert firsts == sorted(firsts)
    # Filter: the form's own controls, then the server's redirect to the canonical URL.
    page.locator("details.filters > summary").click()
    page.select_option("#f-field-1", "content")
    page.select_option("#f-op-1", "like")
    page.fill("#f-value-1", "jane says%")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"content__like="))
    assert "sort=content" in page.url
    # Next: a smaller page, then the rel=next link to the end.
    watched.goto("/messages?sort=id&limit=3")
    seen = page.locator("tbody th").all_inner_texts()
    while page.locator("a[rel=next]").count():
        page.locator("nav[aria-label=Pagination] a[rel=next]").click()
        page.wait_for_load_state()
        seen += page.locator("tbody th").all_inner_texts()
    assert len(seen) == MESSAGES and seen == sorted(seen, key=int)
    # An item, its author, the author's messages.
    page.locator("tbody th a").first.click()
    page.wait_for_url(re.compile(r"/messages/\d+$"))
    page.get_by_role("link", name="author").click()
    page.wait_for_url(re.compile(r"/users/\d+$"))
    assert "jane" in page.locator("table.item").inner_text()
    page.get_by_role("link", name="messages", exact=True).click()
    page.wait_for_url(re.compile(r"/users/\d+/messages$"))
    assert page.locator("tbody tr").count() == MESSAGES


def test_sign_in_post_edit_delete(watched: Watched, seeded: Flask) -> None:
    page = watched.page
    engine = seeded.extensions["tablerest"].engine
    watched.goto("/messages")
    page.get_by_role("link", name="Sign in").click()
    page.fill("#login", "john")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/messages$"))
    assert "Signed in" in page.locator(".session").inner_text()
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    session = cookies["tablerest_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    page.get_by_label("content").fill("posted from Chromium")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/messages/\d+$"))
    key = int(page.url.rsplit("/", 1)[1])
    assert rows(engine, "SELECT user_id, content FROM messages WHERE id = :id", id=key) == [
        {"user_id": _user_id(seeded, "john"), "content": "posted from Chromium"}]
    page.get_by_label("content").fill("edited in Chromium")
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    assert "edited in Chromium" in page.locator("table.item").inner_text()
    assert rows(engine, "SELECT content FROM messages WHERE id = :id", id=key) == [
        {"content": "edited in Chromium"}]
    page.get_by_role("button", name="Delete this item").click()
    page.wait_for_url(re.compile(r"/messages$"))
    assert rows(engine, "SELECT id FROM messages WHERE id = :id", id=key) == []
    # jane's messages have no forms for john.
    page.locator("tbody th a").first.click()
    page.wait_for_url(re.compile(r"/messages/\d+$"))
    assert page.get_by_role("button", name="Save").count() == 0
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/$"))
    assert "tablerest_session" not in {cookie["name"] for cookie in page.context.cookies()}


def test_back_after_a_json_fetch_still_shows_html(browser: Any, live: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(live + "/users")
    fetched = page.evaluate("fetch('/users', {headers: {Accept: 'application/json'}})"
                            ".then(r => r.json()).then(j => j.items.length)")
    assert fetched == 2
    page.goto(live + "/messages")
    page.go_back()
    page.wait_for_load_state()
    assert page.locator("table caption").inner_text().startswith("/users")
    assert page.evaluate("document.contentType") == "text/html"
    context.close()


def test_keyboard_reaches_the_skip_link_and_every_control(browser: Any, live: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(live + "/messages")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.locator("details.filters > summary").focus()
    page.keyboard.press("Enter")
    key = ("(e => e.tagName + '|' + (e.id || e.getAttribute('href') || e.name"
           " || e.textContent))")
    focusable = set(page.evaluate(
        "[...document.querySelectorAll('a[href], button, input:not([type=hidden]), select,"
        f" textarea, summary')].filter(e => e.offsetParent !== null).map({key})"))
    reached = set()
    page.locator("a.skip").focus()
    for _ in range(len(focusable) * 3):
        page.keyboard.press("Tab")
        reached.add(page.evaluate(f"{key}(document.activeElement)"))
    assert focusable <= reached
    context.close()


# -- accessibility ---------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_nothing_serious(browser: Any, live: str, axe: Path, seeded: Flask,
                                   scheme: str) -> None:
    # axe is injected as an inline script: only this context may bypass the CSP to run it.
    context = browser.new_context(bypass_csp=True, color_scheme=scheme)
    page = context.new_page()
    jane = _user_id(seeded, "jane")
    page.goto(live + "/-/signin")
    page.fill("#login", "jane")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live + "/")
    [message] = rows(seeded.extensions["tablerest"].engine,
                     "SELECT min(id) AS id FROM messages")
    found = {}
    for path in ("/", "/messages", f"/messages/{message['id']}", f"/users/{jane}",
                 "/-/signin", "/messages?sort=nope", "/nothing"):
        page.goto(live + path)
        page.add_script_tag(path=str(axe))
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        found[path] = [(violation["id"], violation["impact"], len(violation["nodes"]))
                       for violation in result["violations"]
                       if violation["impact"] in ("serious", "critical")]
    assert found == {path: [] for path in found}
    context.close()


def test_screenshots_of_a_list_and_an_item(browser: Any, live: str, seeded: Flask,
                                           tmp_path: Path) -> None:
    """The README's pictures (written to docs/ with TABLEREST_SCREENSHOTS=1)."""
    target = DOCS if os.environ.get("TABLEREST_SCREENSHOTS") else tmp_path
    context = browser.new_context(viewport={"width": 1000, "height": 640})
    page = context.new_page()
    page.goto(live + "/messages?limit=5")
    page.screenshot(path=str(target / "html-list.png"))
    [message] = rows(seeded.extensions["tablerest"].engine,
                     "SELECT min(id) AS id FROM messages")
    page.goto(live + f"/messages/{message['id']}")
    page.locator("details.raw > summary").click()
    page.screenshot(path=str(target / "html-item.png"), full_page=True)
    assert (target / "html-list.png").stat().st_size > 1000
    context.close()
