"""PostgREST's own clients, unchanged, against a live microblog with the dialect on, on
SQLite and PostgreSQL: ``postgrest`` from PyPI (the sync client) and
``@supabase/postgrest-js`` from npm (``tests/postgrest_js/check.mjs``, installed from its
committed lock file with ``npm ci`` into a git-ignored ``node_modules``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from conftest import rows
from factories import live_server
from tablerest.auth import issue_token
from tablerest.extension import state_of

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
