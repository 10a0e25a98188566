"""Generated clients: the documents are accepted by the client generators people use, and the
clients they generate drive the microblog and reflected Chinook on a live server.

- ``openapi-python-client`` (PyPI, a dev dependency) generates a client package without a
  warning; the tests import it from the folder it was generated into and use only it;
- ``openapi-typescript`` (npm) generates types that ``tsc --noEmit --strict`` compiles, with
  ``clients/microblog-check.ts`` using the microblog's;
- ``@redocly/cli lint`` (npm), recommended rules, finds no error and no warning but
  ``info-license`` (an API's license is its owner's to state; tablerest cannot know it);
- ``openapi-spec-validator`` accepts them.

The npm packages are pinned in ``clients/package-lock.json`` and installed with ``npm ci``
into ``clients/node_modules`` (ignored by git) when the lock file changed. Generating takes
seconds, so each tool runs once per document and session (keyed by the document's hash).
Every response a generated client receives is checked against the document: status, media
type, headers and schema.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
import schemathesis
import sqlalchemy as sa
from flask import Flask
from microblog.app import create_app as create_microblog
from openapi_spec_validator import validate

from conftest import SECRET, rows
from factories import live_server
from pgserver import PostgresServer
from tablerest.extension import state_of
from tablerest.openapi import openapi_document
from tablerest.reflection import create_app as reflect_app
from testapp import create_app as create_testapp

CLIENTS = Path(__file__).resolve().parent / "clients"
NODE_BIN = CLIENTS / "node_modules" / ".bin"
CHINOOK = Path(os.environ.get("TABLEREST_CHINOOK_DIR")
               or Path(__file__).resolve().parents[2] / "shared" / "datasets" / "chinook")
CHINOOK_DATABASE = "tablerest_clients_chinook"
PASSWORD = "a-long-secret-1"
#: Redocly's recommended rules that may warn, and why: nothing else may.
ALLOWED_WARNINGS = {"info-license": "an API's license is its owner's to state"}
GENERATOR_CONFIG = {"post_hooks": []}  # no formatter run on the generated code
#: The Node tools stay off the network: no telemetry, no update check.
NODE_ENVIRONMENT = {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
                    "NO_UPDATE_NOTIFIER": "1"}
_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake(name: str) -> str:
    """``list_PlaylistTrack`` -> ``list_playlist_track``, as the Python generator names it."""
    return re.sub(r"[^a-z0-9]+", "_", _WORD_BREAK.sub("_", name).lower()).strip("_")


def run(command: list[str], cwd: Path | None = None, ok: tuple[int, ...] = (0,)) -> str:
    """Run a tool; its output, or a failure that shows it."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900,
                          check=False, env={**os.environ, **NODE_ENVIRONMENT})
    assert done.returncode in ok, (
        f"{' '.join(command[:3])} ... exited with {done.returncode}:\n"
        f"{done.stdout[-6000:]}\n{done.stderr[-6000:]}")
    return done.stdout


def digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:16]


# -- the tools, once per document ------------------------------------------------------------


@dataclass
class Toolchain:
    """The generators, run at most once per document; their results are kept for the session."""

    root: Path
    packages: dict[str, str] = field(default_factory=dict)
    types: dict[str, Path] = field(default_factory=dict)
    lints: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def document_file(self, document: dict[str, Any]) -> Path:
        path = self.root / f"{digest(document)}.json"
        if not path.exists():
            path.write_text(json.dumps(document), encoding="utf-8")
        return path

    def python(self, document: dict[str, Any]) -> str:
        """The name of the package ``openapi-python-client`` generated, imported."""
        key = digest(document)
        if key not in self.packages:
            folder = self.root / f"python_{key}"
            config = self.root / "generator.json"
            config.write_text(json.dumps(GENERATOR_CONFIG), encoding="utf-8")
            run([sys.executable, "-m", "openapi_python_client", "generate",
                 "--path", str(self.document_file(document)), "--output-path", str(folder),
                 "--meta", "none", "--config", str(config), "--fail-on-warning"])
            self.packages[key] = _import_package(f"generated_{key}", folder)
        return self.packages[key]

    def typescript(self, document: dict[str, Any]) -> Path:
        """The types ``openapi-typescript`` generated (``api.ts``), which ``tsc`` compiled."""
        key = digest(document)
        if key not in self.types:
            folder = self.root / f"typescript_{key}"
            folder.mkdir()
            run([str(NODE_BIN / "openapi-typescript"), str(self.document_file(document)),
                 "--output", str(folder / "api.ts")])
            compile_typescript(folder, "api.ts")
            self.types[key] = folder
        return self.types[key] / "api.ts"

    def redocly(self, document: dict[str, Any]) -> list[dict[str, Any]]:
        """The problems ``redocly lint`` finds with its recommended rules."""
        key = digest(document)
        if key not in self.lints:
            # It exits with 1 when it finds errors: the test lists them.
            output = run([str(NODE_BIN / "redocly"), "lint", "--extends", "recommended",
                          "--format", "json", "--max-problems", "100000",
                          str(self.document_file(document))], ok=(0, 1))
            self.lints[key] = json.loads(output)["problems"]
        return self.lints[key]


def compile_typescript(folder: Path, *files: str) -> None:
    run([str(NODE_BIN / "tsc"), "--noEmit", "--strict", "--target", "es2022", "--module",
         "esnext", "--moduleResolution", "bundler", "--lib", "es2022", *files], cwd=folder)


def _import_package(name: str, folder: Path) -> str:
    """Import the package in ``folder`` as ``name``, without touching ``sys.path``."""
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return name


@pytest.fixture(scope="session")
def node_tools() -> Path:
    """``clients/node_modules``, installed from the lock file when it changed."""
    npm = shutil.which("npm")
    if npm is None:
        if os.environ.get("CI"):
            pytest.fail("npm is not installed: the generated-client tests need Node.js.")
        pytest.skip("npm is not installed (Node.js runs the TypeScript and lint tools).")
    lock = hashlib.sha256((CLIENTS / "package-lock.json").read_bytes()).hexdigest()
    stamp = CLIENTS / "node_modules" / ".tablerest-lock"
    if not stamp.is_file() or stamp.read_text(encoding="utf-8") != lock:
        run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(CLIENTS)])
        stamp.write_text(lock, encoding="utf-8")
    return NODE_BIN


@pytest.fixture(scope="session")
def toolchain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Toolchain]:
    tools = Toolchain(tmp_path_factory.mktemp("clients"))
    yield tools
    for name in list(sys.modules):
        if name.split(".")[0] in tools.packages.values():
            del sys.modules[name]


# -- the apps ------------------------------------------------------------------------------


@dataclass
class ChinookDatabases:
    """Chinook loaded once a session per backend, read by every test here."""

    directory: Path
    urls: dict[str, str] = field(default_factory=dict)
    postgres: PostgresServer | None = None

    def sqlite(self) -> str:
        if "sqlite" not in self.urls:
            target = self.directory / "Chinook_Sqlite.sqlite"
            shutil.copyfile(CHINOOK / "Chinook_Sqlite.sqlite", target)
            self.urls["sqlite"] = f"sqlite:///{target}"
        return self.urls["sqlite"]

    def postgresql(self, server: PostgresServer) -> str:
        if "postgresql" not in self.urls:
            url = server.create_database(CHINOOK_DATABASE)
            script = (CHINOOK / "Chinook_PostgreSql.sql").read_text(encoding="utf-8")
            script = re.sub(r"(?im)^\s*(?:DROP DATABASE|CREATE DATABASE|\\c)\b.*$", "", script)
            libpq = sa.make_url(url).set(drivername="postgresql")
            with psycopg.connect(libpq.render_as_string(hide_password=False),
                                 autocommit=True) as connection:
                connection.execute(script)
            self.postgres = server
            self.urls["postgresql"] = url
        return self.urls["postgresql"]


@pytest.fixture(scope="session")
def chinook_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChinookDatabases]:
    databases = ChinookDatabases(tmp_path_factory.mktemp("chinook"))
    yield databases
    if databases.postgres is not None:
        databases.postgres.drop_database(CHINOOK_DATABASE)


@pytest.fixture
def chinook(db_url: str, chinook_databases: ChinookDatabases,
            request: pytest.FixtureRequest) -> Iterator[Flask]:
    """Reflected Chinook on the backend of ``db_url``."""
    if not (CHINOOK / "Chinook_Sqlite.sqlite").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"The Chinook dataset is not in {CHINOOK}; set TABLEREST_CHINOOK_DIR.")
        pytest.skip(f"the Chinook dataset is not in {CHINOOK}")
    if db_url.startswith("sqlite"):
        url = chinook_databases.sqlite()
    else:
        url = chinook_databases.postgresql(request.getfixturevalue("postgres"))
    app = reflect_app(url)
    yield app
    state_of(app).engine.dispose()


def _microblog(db_url: str) -> Flask:
    return create_microblog({"DATABASE_URL": db_url, "TABLEREST_SECRET_KEY": SECRET})


APPS: dict[str, Callable[[pytest.FixtureRequest, str], Flask]] = {
    "microblog": lambda request, url: _microblog(url),
    "testapp": lambda request, url: create_testapp(url),
    "chinook": lambda request, url: request.getfixturevalue("chinook"),
}


@pytest.fixture(params=list(APPS))
def document(request: pytest.FixtureRequest, db_url: str) -> dict[str, Any]:
    """The document of the microblog, the test app or reflected Chinook, on each backend."""
    app = APPS[request.param](request, db_url)
    found = openapi_document(app)
    if request.param != "chinook":
        state_of(app).engine.dispose()
    return found





# -- the documents are accepted ------------------------------------------------------------


def test_openapi_spec_validator_accepts_the_document(document: dict[str, Any]) -> None:
    validate(document)


def test_openapi_python_client_generates_every_operation(
        document: dict[str, Any], toolchain: Toolchain) -> None:
    package = toolchain.python(document)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            [tag] = operation["tags"]
            module = importlib.import_module(
                f"{package}.api.{snake(tag)}.{snake(operation['operationId'])}")
            assert callable(module.sync_detailed), (method, path)


def test_openapi_typescript_types_compile(document: dict[str, Any], toolchain: Toolchain,
                                          node_tools: Path) -> None:
    assert "export interface paths" in toolchain.typescript(document).read_text("utf-8")


def test_the_typescript_types_fit_the_microblog(toolchain: Toolchain, node_tools: Path,
                                                tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Real values type-check, and a password, an unknown sort key or token type do not.
    (The microblog's document is the same on every database.)"""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = _microblog("sqlite://")
    types = toolchain.typescript(openapi_document(app))
    state_of(app).engine.dispose()
    shutil.copyfile(types, tmp_path / "microblog.ts")
    shutil.copyfile(CLIENTS / "microblog-check.ts", tmp_path / "microblog-check.ts")
    compile_typescript(tmp_path, "microblog.ts", "microblog-check.ts")


def test_redocly_lint_finds_no_errors(document: dict[str, Any], toolchain: Toolchain,
                                      node_tools: Path) -> None:
    problems = toolchain.redocly(document)
    errors = [f"{each['ruleId']}: {each['message']}" for each in problems
              if each["severity"] == "error"]
    assert not errors, errors[:20]
    warnings = {each["ruleId"] for each in problems if each["severity"] == "warn"}
    assert warnings <= set(ALLOWED_WARNINGS), warnings


# -- a generated client drives the API -------------------------------------------------------


class Conformance:
    """An httpx response hook: every response fits what the document says of its operation."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.schema = schemathesis.openapi.from_dict(document)
        self.seen: list[tuple[str, str, int]] = []

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        method, path = response.request.method, response.request.url.path
        operation = self.schema.find_operation_by_path(method, path)
        assert operation is not None, f"{method} {path} is not in the document"
        responses = self.document["paths"][operation.path][method.lower()]["responses"]
        status = str(response.status_code)
        assert status in responses, f"{method} {operation.path} answered {status}: undocumented"
        spec = responses[status]
        while "$ref" in spec:
            spec = self._resolve(spec["$ref"])
        for name, header in spec.get("headers", {}).items():
            assert not header.get("required") or name in response.headers, (status, name)
        media = response.headers.get("Content-Type", "").partition(";")[0]
        assert (media in spec.get("content", {})) if response.content else \
            "content" not in spec, (method, operation.path, status, media)
        operation.validate_response(response)
        self.seen.append((method, operation.path, response.status_code))

    def _resolve(self, ref: str) -> Any:
        found: Any = self.document
        for part in ref.removeprefix("#/").split("/"):
            found = found[part]
        return found


@dataclass
class PythonClient:
    """The generated package, and clients of it that check every response."""

    package: str
    base_url: str
    conformance: Conformance

    def api(self, tag: str, operation: str) -> Any:
        return importlib.import_module(f"{self.package}.api.{tag}.{operation}")

    @property
    def models(self) -> ModuleType:
        return importlib.import_module(f"{self.package}.models")

    @property
    def unset(self) -> Any:
        """What the generated code passes for a parameter not sent, or a field not given."""
        return importlib.import_module(f"{self.package}.types").UNSET

    def client(self, token: str | None = None) -> Any:
        package = importlib.import_module(self.package)
        options: dict[str, Any] = {
            "base_url": self.base_url, "raise_on_unexpected_status": True,
            "httpx_args": {"event_hooks": {"response": [self.conformance]}}}
        if token is None:
            return package.Client(**options)
        return package.AuthenticatedClient(token=token, **options)


@contextmanager
def generated_client(app: Flask, toolchain: Toolchain) -> Iterator[PythonClient]:
    """A generated client of ``app``'s served document, against ``app`` on a live server."""
    with live_server(app) as base_url:
        document = httpx.get(f"{base_url}/openapi.json").json()
        yield PythonClient(toolchain.python(document), base_url, Conformance(document))


def test_the_generated_python_client_drives_the_microblog(
        microblog: Flask, toolchain: Toolchain) -> None:
    engine = state_of(microblog).engine
    with generated_client(microblog, toolchain) as generated:
        m, api, anonymous = generated.models, generated.api, generated.client()

        # Sign up, and get tokens.
        people = {}
        for name in ("jane", "john", "ada"):
            user = api("users", "create_users").sync(client=anonymous, body=m.UsersCreate(
                name=name, email=f"{name}@example.com", password=PASSWORD))
            assert isinstance(user, m.Users), user
            token = api("auth", "create_token").sync(
                client=anonymous, body=m.Credentials(name=name, password=PASSWORD))
            assert isinstance(token, m.Token), token
            assert token.token_type == m.TokenTokenType.BEARER
            people[name] = (user.id, generated.client(token.access_token))
        (jane, as_jane), (john, as_john), (ada, as_ada) = (people[name] for name in
                                                           ("jane", "john", "ada"))
        assert rows(engine, "SELECT name FROM users ORDER BY id") == [
            {"name": "jane"}, {"name": "john"}, {"name": "ada"}]

        # Post messages: one, an array in one transaction, and one under the author's URL.
        first = api("messages", "create_messages").sync(
            client=as_jane, body=m.MessagesCreate(content="Hello from a generated client"))
        assert isinstance(first, m.Messages) and first.user_id == jane
        batch = api("messages", "create_messages").sync(client=as_john, body=[
            m.MessagesCreate(content=f"John's generated message {number}")
            for number in range(3)])
        assert [message.user_id for message in batch] == [john] * 3
        under = api("users", "create_users_messages").sync(
            key=ada, client=as_ada, body=m.UsersMessagesCreate(content="Ada, generated"))
        assert isinstance(under, m.Messages) and under.user_id == ada

        # A list with a filter and a sort.
        page = api("messages", "list_messages").sync(
            client=anonymous, content_like="%generated%", user_id_in=[john, ada],
            sort=[m.MessagesSortKey("-id")], include=[m.MessagesRelation.AUTHOR])
        assert isinstance(page, m.MessagesList)
        assert [item.id for item in page.items] == [row["id"] for row in rows(
            engine, "SELECT id FROM messages WHERE content LIKE '%generated%' "
                    "AND user_id IN (:john, :ada) ORDER BY id DESC", john=john, ada=ada)]
        assert {item.author.name for item in page.items} == {"john", "ada"}
        assert page.count == 4

        # Follow and unfollow.
        follow, unfollow = (api("users", "link_users_following"),
                            api("users", "unlink_users_following"))
        assert follow.sync_detailed(key=jane, other=ada, client=as_jane).status_code == 204
        assert rows(engine, "SELECT follower_id, followed_id FROM follows") == [
            {"follower_id": jane, "followed_id": ada}]
        assert unfollow.sync_detailed(key=jane, other=ada, client=as_jane).status_code == 204
        assert rows(engine, "SELECT follower_id FROM follows") == []
        assert follow.sync_detailed(key=jane, other=john, client=as_jane).status_code == 204

        # The timeline, page by page with the cursor each page returns.
        timeline, seen, cursor, pages = api("users", "list_users_timeline"), [], None, 0
        while pages == 0 or cursor is not None:
            page = timeline.sync(key=jane, client=anonymous, limit=2,
                                 cursor=generated.unset if cursor is None else cursor)
            seen += [item.id for item in page.items]
            pages += 1
            cursor = page.cursor if page.next_ is not None else None
        whole = timeline.sync(key=jane, client=anonymous, limit=50)
        assert seen == [item.id for item in whole.items]
        assert (pages, len(seen)) == (2, 4)
        assert set(seen) == {row["id"] for row in rows(
            engine, "SELECT id FROM messages WHERE user_id IN (:jane, :john)",
            jane=jane, john=john)}

        # A body query, continued by the query token its next link carries.
        query = m.MessagesQuery.from_dict({"where": {"content": {"like": "%generated%"}},
                                           "order_by": ["id"], "limit": 3})
        found = api("messages", "query_messages").sync(client=anonymous, body=query)
        token = parse_qs(urlsplit(found.next_).query)["cursor"][0]
        assert token.startswith("q.")
        rest = api("messages", "query_messages").sync(client=anonymous, body=query,
                                                      cursor=token)
        assert rest.next_ is None
        assert [item.id for item in [*found.items, *rest.items]] == [row["id"] for row in rows(
            engine, "SELECT id FROM messages WHERE content LIKE '%generated%' ORDER BY id")]

        # Errors come back as the documented problem model.
        taken = api("users", "create_users").sync(client=anonymous, body=m.UsersCreate(
            name="jane", email="jane2@example.com", password=PASSWORD))
        assert isinstance(taken, m.Problem), taken
        assert (taken.status, [error.field for error in taken.errors]) == (409, ["name"])
        anonymous_post = api("messages", "create_messages").sync(
            client=anonymous, body=m.MessagesCreate(content="Who am I?"))
        assert isinstance(anonymous_post, m.Problem) and anonymous_post.status == 401
        not_hers = api("messages", "delete_messages").sync(key=batch[0].id, client=as_jane)
        assert isinstance(not_hers, m.Problem) and not_hers.status == 403
        missing = api("users", "read_users").sync(key=10**6, client=anonymous)
        assert isinstance(missing, m.Problem) and missing.status == 404
        stale = api("messages", "update_messages").sync(
            key=first.id, client=as_jane, body=m.MessagesUpdate(content="Edited"),
            if_match='"stale"')
        assert isinstance(stale, m.Problem) and stale.status == 412

        # Conditional reads: the ETag the client got says "not modified".
        read = api("users", "read_users")
        response = read.sync_detailed(key=jane, client=anonymous)
        again = read.sync_detailed(key=jane, client=anonymous,
                                   if_none_match=response.headers["ETag"])
        assert (again.status_code, again.parsed) == (304, None)
        assert rows(engine, "SELECT count(*) AS n FROM messages") == [{"n": 5}]

    statuses = {status for _, _, status in generated.conformance.seen}
    assert {200, 201, 204, 304, 401, 403, 404, 409, 412} <= statuses


def test_the_generated_python_client_reads_chinook(chinook: Flask,
                                                   toolchain: Toolchain) -> None:
    """List, filter, a composite key and an include, each compared with SQL. SQLite spells
    Chinook ``PascalCase``, PostgreSQL ``snake_case``: the generated names are the same."""
    engine = state_of(chinook).engine
    postgres = engine.dialect.name == "postgresql"

    def n(name: str) -> str:
        return snake(name) if postgres else name

    def sql(statement: str, **params: Any) -> list[dict[str, Any]]:
        return rows(engine, re.sub(r"\{(\w+)\}", lambda match: f'"{n(match[1])}"', statement),
                    **params)

    with generated_client(chinook, toolchain) as generated:
        m, api, client = generated.models, generated.api, generated.client()

        albums = api("album", "list_album").sync(client=client, limit=5,
                                                 sort=[m.AlbumSortKey(n("AlbumId"))])
        assert [(album.album_id, album.title) for album in albums.items] == [
            (row["id"], row["title"]) for row in sql(
                'SELECT {AlbumId} AS id, {Title} AS title FROM {Album} ORDER BY {AlbumId} '
                "LIMIT 5")]
        assert albums.count == sql("SELECT count(*) AS n FROM {Album}")[0]["n"]

        rock = sql("SELECT {GenreId} AS id FROM {Genre} WHERE {Name} = 'Rock'")[0]["id"]
        tracks = api("track", "list_track").sync(
            client=client, genre_id=rock, milliseconds_gt=300000, limit=40,
            sort=[m.TrackSortKey("-" + n("Milliseconds")), m.TrackSortKey(n("Name"))],
            fields=[m.TrackField(n("TrackId")), m.TrackField(n("Milliseconds"))])
        assert [(track.track_id, track.milliseconds) for track in tracks.items] == [
            (row["id"], row["ms"]) for row in sql(
                "SELECT {TrackId} AS id, {Milliseconds} AS ms FROM {Track} "
                "WHERE {GenreId} = :rock AND {Milliseconds} > 300000 "
                "ORDER BY {Milliseconds} DESC, {Name}, {TrackId} LIMIT 40", rock=rock)]
        assert all(track.name is generated.unset for track in tracks.items)  # not in fields

        pair = sql("SELECT {PlaylistId} AS playlist, {TrackId} AS track FROM {PlaylistTrack} "
                   "ORDER BY {PlaylistId} DESC, {TrackId} DESC LIMIT 1")[0]
        item = api("playlist_track", "read_playlist_track").sync(
            key=f"{pair['playlist']},{pair['track']}", client=client)
        assert isinstance(item, m.PlaylistTrack), item
        assert (item.playlist_id, item.track_id) == (pair["playlist"], pair["track"])

        included = api("album", "list_album").sync(
            client=client, artist_id_lte=10, include=[m.AlbumRelation(n("Artist"))],
            sort=[m.AlbumSortKey(n("Title"))], limit=10)
        assert [(album.title, album.artist.name) for album in included.items] == [
            (row["title"], row["artist"]) for row in sql(
                "SELECT {Album}.{Title} AS title, {Artist}.{Name} AS artist FROM {Album} "
                "JOIN {Artist} ON {Artist}.{ArtistId} = {Album}.{ArtistId} "
                "WHERE {Album}.{ArtistId} <= 10 ORDER BY {Album}.{Title}, {Album}.{AlbumId} "
                "LIMIT 10")]
        assert len(included.items) == 10
