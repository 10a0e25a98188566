"""One wording for one thing: a missing item reads the same from every route."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient


@pytest.mark.parametrize("key", ["99999", "01", "abc"])
def test_a_missing_user_reads_the_same_everywhere(mb_client: FlaskClient, key: str) -> None:
    wanted = f"No users item has the key {key!r}."
    for path in (f"/users/{key}", f"/users/{key}/timeline", f"/users/{key}/messages",
                 f"/users/{key}/following"):
        response = mb_client.get(path)
        assert response.status_code == 404, path
        assert response.get_json()["detail"] == wanted, path
