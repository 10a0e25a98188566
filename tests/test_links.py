"""Many-to-many links ask the owner of the link row, from either end, and stay idempotent
when identical requests race.

In the microblog a follow belongs to the follower: ``PUT /users/2/followers/3`` is user 3
following user 2, so only user 3 may make it, and following yourself is refused from both
ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from conftest import rows
from factories import live_server
from tablerest.extension import state_of

PASSWORD = "a-long-secret-1"


def sign_up(client: FlaskClient, name: str) -> tuple[int, dict[str, str]]:
    """A new microblog user: their id and the headers that act as them."""
    created = client.post("/users", json={"name": name, "email": f"{name}@example.com",
                                          "password": PASSWORD})
    assert created.status_code == 201, created.get_json()
    token = client.post("/auth/token", json={"name": name, "password": PASSWORD})
    assert token.status_code == 200, token.get_json()
    return created.get_json()["id"], {
        "Authorization": f"Bearer {token.get_json()['access_token']}"}


@pytest.fixture
def people(mb_client: FlaskClient) -> dict[str, tuple[int, dict[str, str]]]:
    return {name: sign_up(mb_client, name) for name in ("twittor", "john", "jane")}


def follows(app: Flask) -> list[tuple[int, int]]:
    return [(row["follower_id"], row["followed_id"]) for row in rows(
        state_of(app).engine,
        "SELECT follower_id, followed_id FROM follows ORDER BY follower_id, followed_id")]


def test_only_the_follower_makes_a_follow_from_the_followed_end(
        microblog: Flask, mb_client: FlaskClient, people: dict[str, Any]) -> None:
    (_twittor, _), (john, as_john), (jane, as_jane) = (people[n] for n in
                                                      ("twittor", "john", "jane"))
    response = mb_client.put(f"/users/{john}/followers/{jane}", headers=as_john)
    assert response.status_code == 403, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert follows(microblog) == []
    # Jane herself may: it is her follow, from whichever end.
    assert mb_client.put(f"/users/{john}/followers/{jane}", headers=as_jane).status_code == 204
    assert follows(microblog) == [(jane, john)]
    assert mb_client.get(f"/users/{jane}/following").get_json()["items"][0]["id"] == john


def test_only_the_follower_removes_a_follow_from_the_followed_end(
        microblog: Flask, mb_client: FlaskClient, people: dict[str, Any]) -> None:
    (twittor, as_twittor), (john, as_john) = people["twittor"], people["john"]
    assert mb_client.put(f"/users/{twittor}/following/{john}",
                         headers=as_twittor).status_code == 204
    response = mb_client.delete(f"/users/{john}/followers/{twittor}", headers=as_john)
    assert response.status_code == 403
    assert follows(microblog) == [(twittor, john)]
    assert mb_client.delete(f"/users/{john}/followers/{twittor}",
                            headers=as_twittor).status_code == 204
    assert follows(microblog) == []


@pytest.mark.parametrize("relation", ["following", "followers"])
def test_following_yourself_is_refused_from_both_ends(
        microblog: Flask, mb_client: FlaskClient, people: dict[str, Any],
        relation: str) -> None:
    john, as_john = people["john"]
    response = mb_client.put(f"/users/{john}/{relation}/{john}", headers=as_john)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "other"
    assert follows(microblog) == []


def test_a_link_without_a_token_is_401_from_both_ends(
        microblog: Flask, mb_client: FlaskClient, people: dict[str, Any]) -> None:
    john, jane = people["john"][0], people["jane"][0]
    assert mb_client.put(f"/users/{john}/following/{jane}").status_code == 401
    assert mb_client.put(f"/users/{john}/followers/{jane}").status_code == 401
    assert follows(microblog) == []


def test_tag_links_belong_to_the_post(client: FlaskClient, engine: sa.Engine) -> None:
    from factories import add_post, add_tags, add_user

    post = add_post(engine, add_user(engine, "alice"), "hello")
    add_tags(engine, "news")
    assert client.put(f"/posts/{post}/tags/news").status_code == 204
    assert client.put(f"/posts/{post}/tags/news").status_code == 204
    assert rows(engine, "SELECT post_id, tag_name FROM post_tags") == [
        {"post_id": post, "tag_name": "news"}]


# -- races ---------------------------------------------------------------------------------


def race(count: int, request: Callable[[], int]) -> list[int]:
    """Run ``request`` from ``count`` threads released at the same moment; the statuses."""
    barrier = threading.Barrier(count)
    statuses: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait(10)
        status = request()
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return statuses


@pytest.mark.parametrize("attempt", range(3))
def test_identical_concurrent_follows_all_answer_204_and_make_one_row(
        microblog: Flask, mb_client: FlaskClient, people: dict[str, Any],
        attempt: int) -> None:
    import urllib.request

    (john, as_john), (jane, _) = people["john"], people["jane"]
    def call(method: str) -> Callable[[], int]:
        def send() -> int:
            request = urllib.request.Request(f"{base}/users/{john}/following/{jane}",
                                             method=method, headers=as_john)
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return int(response.status)
            except urllib.error.HTTPError as error:
                return int(error.code)
        return send

    with live_server(microblog) as base:
        assert race(8, call("PUT")) == [204] * 8
        assert follows(microblog) == [(john, jane)]
        assert race(8, call("DELETE")) == [204] * 8
        assert follows(microblog) == []


def test_concurrent_sign_ups_with_one_name_give_one_201_and_409s(
        microblog: Flask, mb_client: FlaskClient) -> None:
    import json
    import urllib.request

    def sign_up_once() -> int:
        body = json.dumps({"name": "racer", "email": "racer@example.com",
                           "password": PASSWORD}).encode()
        request = urllib.request.Request(f"{base}/users", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    with live_server(microblog) as base:
        statuses = race(4, sign_up_once)
    assert sorted(statuses) == [201, 409, 409, 409]
    assert len(rows(state_of(microblog).engine,
                    "SELECT id FROM users WHERE name = 'racer'")) == 1
