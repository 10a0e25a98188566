from __future__ import annotations

import sqlalchemy as sa
from flask.testing import FlaskClient

from conftest import rows


def test_create_then_read_user(client: FlaskClient, engine: sa.Engine) -> None:
    response = client.post("/users", json={"name": "jane", "email": "jane@example.com",
                                           "password": "secret-pw"})
    assert response.status_code == 201
    assert response.headers["Location"] == f"/users/{response.json['id']}"
    assert "password" not in response.json
    stored = rows(engine, "SELECT name, password FROM users")
    assert stored[0]["name"] == "jane"
    assert stored[0]["password"].startswith("$argon2")
