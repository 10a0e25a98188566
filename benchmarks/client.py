"""Plain urllib requests: the benchmarked endpoints, tokens, and a check of each response."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import orjson

from . import BenchmarkError

MESSAGE_BODY = b'{"content": "A benchmark message: hello from wrk."}'


@dataclass(frozen=True)
class Endpoint:
    """One measured request: the same for both apps."""

    label: str
    method: str
    path: str
    expected_status: int
    body: bytes | None = None
    needs_token: bool = False
    key: str = ""  # what --endpoints calls it


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def endpoints(user_id: int) -> list[Endpoint]:
    """The four measured requests, on the benchmark user ``user_id``."""
    return [
        Endpoint("GET /users/<id>", "GET", f"/users/{user_id}", 200, key="item"),
        Endpoint("GET /users?limit=50", "GET", "/users?limit=50", 200, key="list"),
        Endpoint("GET /users/<id>/followers", "GET", f"/users/{user_id}/followers", 200,
                 key="followers"),
        Endpoint(
            "POST /users/<id>/messages", "POST", f"/users/{user_id}/messages", 201,
            body=MESSAGE_BODY, needs_token=True, key="post",
        ),
    ]


def send(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Answer:
    """One request; an HTTP error status is an answer, a connection failure an OSError."""
    request = Request(url, data=body, method=method, headers=headers or {})
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urlopen(request, timeout=10) as response:
            return Answer(response.status, dict(response.headers.items()), response.read())
    except HTTPError as error:
        return Answer(error.code, dict(error.headers.items()), error.read())


def tablerest_token(base_url: str, name: str, password: str) -> str:
    """A bearer token from the microblog's ``POST /auth/token``."""
    credentials = orjson.dumps({"name": name, "password": password})
    answer = send("POST", f"{base_url}/auth/token", credentials)
    token = _json_or_none(answer)
    if answer.status == 200 and isinstance(token, dict):
        access = token.get("access_token")
        if isinstance(access, str) and access:
            return access
    raise BenchmarkError(
        f"POST /auth/token for {name!r} answered {answer.status}, expected 200 with"
        f" {{\"access_token\": ...}}; body: {_excerpt(answer.body)}"
    )


def check(base_url: str, endpoint: Endpoint, token: str | None) -> Answer:
    """Send ``endpoint`` once; raise ``BenchmarkError`` unless it answers the expected JSON."""
    headers = {"Authorization": f"Bearer {token}"} if endpoint.needs_token else {}
    try:
        answer = send(endpoint.method, base_url + endpoint.path, endpoint.body, headers)
    except OSError as error:
        raise BenchmarkError(f"{endpoint.label}: the request failed: {error}") from error
    if answer.status != endpoint.expected_status:
        raise BenchmarkError(
            f"{endpoint.label} ({endpoint.path}) answered {answer.status}, expected"
            f" {endpoint.expected_status}; body: {_excerpt(answer.body)}"
        )
    if _json_or_none(answer) is None:
        raise BenchmarkError(
            f"{endpoint.label} ({endpoint.path}) did not answer JSON; body: {_excerpt(answer.body)}"
        )
    return answer


def _json_or_none(answer: Answer) -> Any:
    try:
        return answer.json()
    except orjson.JSONDecodeError:
        return None


def _excerpt(body: bytes, limit: int = 300) -> str:
    text = body.decode(errors="replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")
