"""PostgREST's own clients, unchanged, against a live microblog with the dialect on, and
against reflected Chinook (what ``tablerest serve --db URL --postgrest`` serves), on SQLite
and PostgreSQL: ``postgrest`` from PyPI (the sync client) and ``@supabase/postgrest-js`` from
npm (``tests/postgrest_js/check.mjs`` and ``chinook.mjs``, installed from the committed lock
file with ``npm ci`` into a git-ignored ``node_modules``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from conftest import rows
from factories import live_server
from tablerest.auth import issue_token
from tablerest.extension import state_of
from tablerest.reflection import create_app as reflect
from test_reflection import chinook_sqlite, chinook_template, fresh, spell

__all__ = ["chinook_sqlite", "chinook_template", "fresh"]

JS = Path(__file__).parent / "postgrest_js"


@pytest.fixture
def live(microblog: Flask) -> Iterator[tuple[str, str, str, sa.Engine]]:
    """The microblog (its dialect is on, at /rest/v1), served on 127.0.0.1; ann and bob signed up.
    The dialect's base URL, ann's and bob's tokens, the engine."""
    client = microblog.test_client()
    tokens = []
    for name in ("ann", "bob"):
        response = client.post("/users", json={"name": name, "email": f"{name}@x.org",
                                               "password": "password123"})
        assert response.status_code == 201
        tokens.append(issue_token(state_of(microblog), response.json["id"])["access_token"])
    with live_server(microblog) as base:
        yield f"{base}/rest/v1", tokens[0], tokens[1], state_of(microblog).engine


def test_postgrest_py(live: tuple[str, str, str, sa.Engine]) -> None:
    from postgrest import APIError, CountMethod, SyncPostgrestClient

    base, ann_token, bob_token, engine = live
    with SyncPostgrestClient(base) as anon, SyncPostgrestClient(base) as ann, \
            SyncPostgrestClient(base) as bob:
        ann.auth(ann_token)
        bob.auth(bob_token)
        created = ann.from_("messages").insert({"content": "py one"}).execute()
        assert [row["content"] for row in created.data] == ["py one"]
        bulk = ann.from_("messages").insert([{"content": "py two"},
                                             {"content": "py, three"}]).execute()
        assert [row["content"] for row in bulk.data] == ["py two", "py, three"]

        found = (anon.from_("messages").select("content, author(name)")
                 .or_('content.eq.py one,content.eq."py, three"')
                 .order("id", desc=True).execute())
        assert found.data == [{"content": "py, three", "author": {"name": "ann"}},
                              {"content": "py one", "author": {"name": "ann"}}]
        listed = (anon.from_("users").select("name, messages(content)")
                  .in_("name", ["ann", "x,y"]).execute())
        assert [len(row["messages"]) for row in listed.data] == [3]
        nested = (anon.from_("users").select("name, messages!inner(content, author(name))")
                  .like("messages.content", "*three").order("id").execute())
        assert nested.data == [{"name": "ann", "messages": [
            {"content": "py, three", "author": {"name": "ann"}}]}]
        silent = (anon.from_("users").select("name, messages()").is_("messages", "null")
                  .order("id").execute())
        assert silent.data == [{"name": "bob"}]
        page = (anon.from_("messages").select("id", count=CountMethod.exact)
                .order("id").range(0, 1).execute())
        assert (len(page.data), page.count) == (2, 3)
        assert anon.from_("users").select("name").eq("name", "ann").single().execute(
            ).data == {"name": "ann"}
        assert anon.from_("users").select("name").eq("name", "zed").maybe_single().execute(
            ) is None
        assert anon.from_("messages").select("content").is_("content", "null").execute(
            ).data == []
        csv = anon.from_("users").select("id,name").order("id").csv().execute()
        assert csv.data == "id,name\n1,ann\n2,bob"

        merged = ann.from_("users").upsert({"email": "ann@x.org", "name": "Ann"},
                                           on_conflict="email").execute()
        assert [row["name"] for row in merged.data] == ["Ann"]
        ignored = ann.from_("users").upsert({"email": "ann@x.org", "name": "No"},
                                            on_conflict="email",
                                            ignore_duplicates=True).execute()
        assert ignored.data == []

        assert bob.from_("messages").update({"content": "bob's?"}).like(
            "content", "py*").execute().data == []
        updated = ann.from_("messages").update({"content": "py edited"}).eq(
            "content", "py two").execute()
        assert [row["content"] for row in updated.data] == ["py edited"]
        with pytest.raises(APIError) as caught:
            ann.from_("messages").delete().like("content", "py*").max_affected(1).execute()
        assert (caught.value.code, caught.value.details) == ("PGRST124",
                                                             "The query affects 3 rows")
        deleted = ann.from_("messages").delete().eq("content", "py edited").execute()
        assert [row["content"] for row in deleted.data] == ["py edited"]

        with pytest.raises(APIError) as caught:
            anon.from_("messages").select("nope").execute()
        assert caught.value.code == "42703"
        with pytest.raises(APIError) as caught:
            anon.from_("messages").insert({"content": "anon"}).execute()
        assert caught.value.code == "42501"
        with pytest.raises(APIError) as caught:
            anon.from_("messages").select("*").single().execute()
        assert caught.value.code == "PGRST116"
    assert [row["content"] for row in rows(engine, "SELECT content FROM messages ORDER BY id")
            ] == ["py one", "py, three"]
    assert rows(engine, "SELECT name FROM users ORDER BY id") == [{"name": "Ann"},
                                                                 {"name": "bob"}]


@pytest.fixture(scope="session")
def postgrest_js() -> Path:
    """``@supabase/postgrest-js`` installed from the committed lock file."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("CI"):
            pytest.fail("Node.js is not installed; the postgrest-js check needs node and npm.")
        pytest.skip("Node.js (node, npm) is not installed.")
    if not (JS / "node_modules" / "@supabase" / "postgrest-js").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS, check=True,
                       capture_output=True, timeout=600)
    return Path(node)


def test_postgrest_js(live: tuple[str, str, str, sa.Engine], postgrest_js: Path) -> None:
    base, ann_token, bob_token, engine = live
    result = subprocess.run([str(postgrest_js), "check.mjs", base, ann_token, bob_token],
                            cwd=JS, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    contents: list[Any] = [row["content"] for row in
                           rows(engine, "SELECT content FROM messages ORDER BY id")]
    assert contents == ["js two", "js three"]


# -- reflected Chinook ---------------------------------------------------------------------------


@pytest.fixture
def chinook(fresh: tuple[str, str]) -> Iterator[tuple[str, str, sa.Engine]]:
    """A private copy of Chinook served as ``tablerest serve --db URL --postgrest`` serves it
    (reflection mode, the dialect at /rest/v1), on 127.0.0.1: the backend, the dialect's base
    URL and the engine."""
    backend, url = fresh
    app = reflect(url, postgrest="/rest/v1")
    engine = state_of(app).engine
    try:
        with live_server(app) as base:
            yield backend, f"{base}/rest/v1", engine
    finally:
        engine.dispose()


def translated(backend: str) -> tuple[Callable[[str], str], Callable[[str], str],
                                     Callable[[Any], Any]]:
    """For names written as the SQLite copy spells them: one name, every capitalised name of
    a select, and every capitalised key of a value, in the backend's spelling."""

    def n(name: str) -> str:
        return spell(backend, name)

    def sel(text: str) -> str:
        return re.sub(r"\b[A-Z][A-Za-z]*\b", lambda found: n(found.group()), text)

    def keys(value: Any) -> Any:
        if isinstance(value, list):
            return [keys(item) for item in value]
        if isinstance(value, dict):
            return {n(key) if key[:1].isupper() else key: keys(inner)
                    for key, inner in value.items()}
        return value

    return n, sel, keys


#: Reads: name, the query (given the client and the translators), the rows expected in the
#: SQLite spelling. A nested embed is one more entry (``Name, Album(Title, Track(Name))``).
CHINOOK_READS: list[tuple[str, Callable[..., Any], Any]] = [
    ("artist -> albums", lambda db, n, sel: db.from_(n("Artist")).select(
        sel("Name, Album(Title)")).eq(n("ArtistId"), 1),
     [{"Name": "AC/DC", "Album": [{"Title": "For Those About To Rock We Salute You"},
                                  {"Title": "Let There Be Rock"}]}]),
    ("artist -> albums -> tracks, the tracks ordered and limited per album",
     lambda db, n, sel: db.from_(n("Artist")).select(
        sel("Name, Album(Title, Track(Name))")).eq(n("ArtistId"), 1).order(
        n("TrackId"), desc=True, foreign_table=f"{n('Album')}.{n('Track')}").limit(
        2, foreign_table=f"{n('Album')}.{n('Track')}"),
     [{"Name": "AC/DC", "Album": [
         {"Title": "For Those About To Rock We Salute You",
          "Track": [{"Name": "Spellbound"}, {"Name": "Night Of The Long Knives"}]},
         {"Title": "Let There Be Rock",
          "Track": [{"Name": "Whole Lotta Rosie"}, {"Name": "Hell Ain't A Bad Place To Be"}]}]}]),
    ("album -> artist", lambda db, n, sel: db.from_(n("Album")).select(
        sel("Title, band:Artist(Name)")).eq(n("AlbumId"), 1),
     [{"Title": "For Those About To Rock We Salute You", "band": {"Name": "AC/DC"}}]),
    ("invoice lines -> track", lambda db, n, sel: db.from_(n("InvoiceLine")).select(
        sel("InvoiceLineId, Track(Name)")).eq(n("InvoiceId"), 1).order(n("InvoiceLineId")),
     [{"InvoiceLineId": 1, "Track": {"Name": "Balls to the Wall"}},
      {"InvoiceLineId": 2, "Track": {"Name": "Restless and Wild"}}]),
    ("or, order descending", lambda db, n, sel: db.from_(n("Artist")).select(
        sel("ArtistId, Name")).or_(f"{n('Name')}.like.Led*,{n('ArtistId')}.eq.1").order(
        n("ArtistId"), desc=True),
     [{"ArtistId": 22, "Name": "Led Zeppelin"}, {"ArtistId": 1, "Name": "AC/DC"}]),
    ("in, gte, not is null, ilike", lambda db, n, sel: db.from_(n("Track")).select(
        n("TrackId")).in_(n("GenreId"), [24, 25]).gte(n("Milliseconds"), 300000).not_.is_(
        n("Name"), "null").ilike(n("Name"), "%A%").order(n("TrackId")).limit(2),
     [{"TrackId": 3359}, {"TrackId": 3410}]),
]


def test_postgrest_py_on_chinook(chinook: tuple[str, str, sa.Engine]) -> None:
    from postgrest import (
        DEFAULT_POSTGREST_CLIENT_HEADERS,
        APIError,
        CountMethod,
        ReturnMethod,
        SyncPostgrestClient,
    )

    backend, base, engine = chinook
    n, sel, keys = translated(backend)
    postgres = backend == "postgresql"

    def key(name: str, value: int) -> dict[str, int]:
        return {n(name): value} if postgres else {}  # SQLite's keys are the rowid

    # postgrest-py has no rollback(): the header goes through the client's headers option.
    dry_headers = {**DEFAULT_POSTGREST_CLIENT_HEADERS,
                   "Prefer": "return=representation,tx=rollback"}
    with SyncPostgrestClient(base) as db, SyncPostgrestClient(base, headers=dry_headers) as dry:
        for name, query, expected in CHINOOK_READS:
            assert query(db, n, sel).execute().data == keys(expected), name

        counted = (db.from_(n("Track")).select("*", count=CountMethod.exact, head=True)
                   .in_(n("GenreId"), [24, 25]).gte(n("Milliseconds"), 300000).execute())
        assert counted.count == 29
        page = (db.from_(n("Track")).select(n("TrackId"), count=CountMethod.exact)
                .order(n("TrackId")).range(10, 19).execute())
        assert (page.count, [row[n("TrackId")] for row in page.data]) == (
            3503, list(range(11, 21)))
        assert db.from_(n("Genre")).select(sel("GenreId, Name")).eq(n("Name"), "Jazz").single(
            ).execute().data == keys({"GenreId": 2, "Name": "Jazz"})
        assert db.from_(n("Genre")).select(n("Name")).eq(n("Name"), "Polka").maybe_single(
            ).execute() is None
        csv = db.from_(n("Genre")).select(sel("GenreId,Name")).order(n("GenreId")).limit(3
                                                                                      ).csv()
        assert csv.execute().data == f"{n('GenreId')},{n('Name')}\n1,Rock\n2,Jazz\n3,Metal"

        minimal = db.from_(n("Genre")).insert({**key("GenreId", 26), n("Name"): "Chiptune"},
                                               returning=ReturnMethod.minimal).execute()
        assert minimal.data == []
        bulk = db.from_(n("Genre")).insert([{**key("GenreId", 27), n("Name"): "Vaporwave"},
                                            {**key("GenreId", 28), n("Name"): "Synthwave"}]
                                           ).execute()
        assert [row[n("Name")] for row in bulk.data] == ["Vaporwave", "Synthwave"]
        merged = db.from_(n("PlaylistTrack")).upsert(
            keys([{"PlaylistId": 18, "TrackId": 597}, {"PlaylistId": 18, "TrackId": 1}])
        ).execute()
        assert merged.data == keys([{"PlaylistId": 18, "TrackId": 597},
                                    {"PlaylistId": 18, "TrackId": 1}])
        ignored = db.from_(n("PlaylistTrack")).upsert(
            keys([{"PlaylistId": 18, "TrackId": 1}]), on_conflict=sel("PlaylistId,TrackId"),
            ignore_duplicates=True).execute()
        assert ignored.data == []
        changed = db.from_(n("Genre")).update({n("Name"): "Synth"}).eq(
            n("Name"), "Synthwave").execute()
        assert [row[n("Name")] for row in changed.data] == ["Synth"]
        deleted = db.from_(n("Genre")).delete().in_(n("Name"), ["Vaporwave", "Synth"]).execute()
        assert sorted(row[n("Name")] for row in deleted.data) == ["Synth", "Vaporwave"]
        rolled = dry.from_(n("Genre")).insert({**key("GenreId", 29), n("Name"): "Dry run"}
                                              ).execute()
        assert [row[n("Name")] for row in rolled.data] == ["Dry run"]

        with pytest.raises(APIError) as caught:
            db.from_(n("Track")).update({n("Composer"): "nobody"}).eq(n("GenreId"), 24
                                                                       ).max_affected(5).execute()
        assert (caught.value.code, caught.value.details) == ("PGRST124",
                                                             "The query affects 74 rows")
        with pytest.raises(APIError) as caught:
            db.from_(n("Track")).select("nope").execute()
        assert caught.value.code == "42703"
        with pytest.raises(APIError) as caught:
            db.from_(n("Album")).insert({**key("AlbumId", 1000), n("Title"): "x",
                                         n("ArtistId"): 999999}).execute()
        assert caught.value.code == "23503"
        with pytest.raises(APIError) as caught:
            db.from_(n("Artist")).delete().eq(n("ArtistId"), 1).execute()
        assert caught.value.code == "23503"
        with pytest.raises(APIError) as caught:
            db.from_(n("Genre")).select("*").single().execute()
        assert caught.value.code == "PGRST116"
    assert_chinook_after_writes(backend, engine)


def assert_chinook_after_writes(backend: str, engine: sa.Engine) -> None:
    """What both clients leave in Chinook, read with plain SQL."""
    n = translated(backend)[0]
    genres = [row["name"] for row in rows(
        engine, f'SELECT "{n("Name")}" AS name FROM "{n("Genre")}" '
                f'WHERE "{n("GenreId")}" > 25 ORDER BY "{n("GenreId")}"')]
    assert genres == ["Chiptune"]
    listed = rows(engine, f'SELECT "{n("TrackId")}" AS track FROM "{n("PlaylistTrack")}" '
                          f'WHERE "{n("PlaylistId")}" = 18 ORDER BY "{n("TrackId")}"')
    assert [row["track"] for row in listed] == [1, 597]
    untouched = rows(engine, f'SELECT count(*) AS count FROM "{n("Track")}" '
                             f'WHERE "{n("Composer")}" = \'nobody\'')
    assert untouched == [{"count": 0}]
    assert rows(engine, f'SELECT count(*) AS count FROM "{n("Album")}"') == [{"count": 347}]
    assert rows(engine, f'SELECT count(*) AS count FROM "{n("Artist")}"') == [{"count": 275}]


def test_postgrest_js_on_chinook(chinook: tuple[str, str, sa.Engine],
                                 postgrest_js: Path) -> None:
    backend, base, engine = chinook
    result = subprocess.run([str(postgrest_js), "chinook.mjs", base, backend],
                            cwd=JS, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all steps passed" in result.stdout
    assert_chinook_after_writes(backend, engine)
