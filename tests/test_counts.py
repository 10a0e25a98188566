"""Count strategies: ``exact``, ``estimated`` (exact up to ``TABLEREST_COUNT_EXACT_UP_TO``
rows, else the database's estimate) and ``none``; from ``?count=``, a body's ``"count"``, the
resource's ``count`` or ``TABLEREST_COUNT``; the envelope's ``count_kind``; PostgREST's
``Prefer: count=exact|planned|estimated``. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tablerest import Resource, TableRest
from tablerest.errors import ConfigurationError
from tablerest.openapi import openapi_document
from tablerest.postgrest import options_for, register
from tablerest.resource import RequestContext

API = "/rest/v1"


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "count_rows"

    id: Mapped[int] = mapped_column(primary_key=True)
    n: Mapped[int] = mapped_column(sa.Integer)


class Rows(Resource):
    model = Row


class ExactRows(Resource):
    model = Row
    name = "exact_rows"
    count = "exact"


class UncountedRows(Resource):
    model = Row
    name = "uncounted_rows"
    count = "none"


class HookedRows(Resource):
    """A ``base_query`` hook: counts go through SQLAlchemy, under the hook."""

    model = Row
    name = "hooked_rows"

    def base_query(self, statement: sa.Select[Any], ctx: RequestContext) -> sa.Select[Any]:
        return statement.where(Row.n != 9)  # hides a tenth of the rows


@contextmanager
def counted_app(db_url: str, *resources: type[Resource], rows: int = 0, analyze: bool = True,
                **config: Any) -> Iterator[tuple[Flask, sa.Engine]]:
    """An app serving ``resources`` over ``rows`` rows (``n`` = id mod 10), statistics made."""
    app = Flask(__name__)
    app.testing = True
    app.config.update(DATABASE_URL=db_url, TABLEREST_SECRET_KEY="test-secret-key-0123456789",
                      **config)
    api = TableRest(app)
    for resource in resources or (Rows,):
        api.add(resource)
    register(app, options_for(API))
    engine = api.engine_of(app)
    Base.metadata.create_all(engine)
    fill(engine, rows, analyze)
    try:
        yield app, engine
    finally:
        engine.dispose()


def fill(engine: sa.Engine, rows: int, analyze: bool) -> None:
    """``rows`` rows in one statement (a recursive CTE, on both engines), then ANALYZE."""
    if rows:
        with engine.begin() as connection:
            connection.execute(sa.text(
                "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq "
                "WHERE i < :rows) INSERT INTO count_rows (id, n) SELECT i, i % 10 FROM seq"),
                {"rows": rows})
    if analyze:
        with engine.begin() as connection:
            connection.execute(sa.text("ANALYZE count_rows" if engine.dialect.name ==
                                       "postgresql" else "ANALYZE"))


def total(engine: sa.Engine, where: str = "1 = 1") -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.text(
            f"SELECT count(*) FROM count_rows WHERE {where}")).scalar_one())


def listed(client: FlaskClient, url: str) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == 200, response.json
    body: dict[str, Any] = response.json
    return body


def near(value: int, expected: int) -> bool:
    """Within a factor of two: what a planner's or ANALYZE's estimate is good for."""
    return expected / 2 <= value <= expected * 2


# -- the default ---------------------------------------------------------------------------


def test_small_tables_count_exactly_by_default(db_url: str) -> None:
    with counted_app(db_url, rows=37) as (app, _):
        body = listed(app.test_client(), "/count_rows?limit=5")
    assert (body["count"], body["count_kind"]) == (37, "exact")
    assert len(body["items"]) == 5


def test_above_the_threshold_the_default_is_estimated(db_url: str) -> None:
    with counted_app(db_url, rows=1000, TABLEREST_COUNT_EXACT_UP_TO=100) as (app, engine):
        body = listed(app.test_client(), "/count_rows?limit=5")
        assert total(engine) == 1000
    assert body["count_kind"] == "estimated"
    assert near(body["count"], 1000) and body["count"] > 100, body["count"]


def test_a_large_table_is_estimated_with_the_default_threshold(db_url: str) -> None:
    with counted_app(db_url, rows=50_000) as (app, engine):
        client = app.test_client()
        estimated = listed(client, "/count_rows")
        exact = listed(client, "/count_rows?count=exact")
        filtered = listed(client, "/count_rows?n=3")  # 5,000 rows: under 10,000
        assert total(engine, "n = 3") == 5000
    assert estimated["count_kind"] == "estimated" and near(estimated["count"], 50_000)
    assert (exact["count"], exact["count_kind"]) == (50_000, "exact")
    assert (filtered["count"], filtered["count_kind"]) == (5000, "exact")


def test_a_filter_that_matches_few_rows_counts_them_exactly(db_url: str) -> None:
    with counted_app(db_url, rows=1000, TABLEREST_COUNT_EXACT_UP_TO=100) as (app, _):
        few = listed(app.test_client(), "/count_rows?id__lte=64&limit=5")
        many = listed(app.test_client(), "/count_rows?n=3&limit=5")
    assert (few["count"], few["count_kind"]) == (64, "exact")
    # 100 match, over the threshold of 100? No: 100 is counted exactly, 101 is not.
    assert (many["count"], many["count_kind"]) == (100, "exact")


def test_a_filtered_list_above_the_threshold_is_an_estimate_at_least_the_threshold(
        db_url: str) -> None:
    with counted_app(db_url, rows=1000, TABLEREST_COUNT_EXACT_UP_TO=50) as (app, _):
        body = listed(app.test_client(), "/count_rows?n=3&limit=5")
    assert body["count_kind"] == "estimated"
    assert body["count"] >= 51


def test_without_statistics_the_estimate_is_a_lower_bound(db_url: str) -> None:
    with counted_app(db_url, rows=1000, analyze=False, TABLEREST_COUNT_EXACT_UP_TO=100,
                     ) as (app, _):
        body = listed(app.test_client(), "/count_rows?limit=5")
    assert body["count_kind"] == "estimated" and body["count"] >= 101


def test_a_last_offset_page_knows_the_total(db_url: str) -> None:
    with counted_app(db_url, rows=1000, TABLEREST_COUNT_EXACT_UP_TO=100) as (app, _):
        last = listed(app.test_client(), "/count_rows?offset=990&limit=20")
    assert len(last["items"]) == 10
    assert (last["count"], last["count_kind"]) == (1000, "exact")


# -- asking for a strategy --------------------------------------------------------------------


@pytest.mark.parametrize(("param", "expected"), [
    ("count=exact", (1000, "exact")),
    ("count=true", (1000, "exact")),
    ("count=none", (None, None)),
    ("count=false", (None, None)),
], ids=["exact", "true", "none", "false"])
def test_the_count_parameter(db_url: str, param: str, expected: tuple[Any, Any]) -> None:
    with counted_app(db_url, rows=1000, TABLEREST_COUNT_EXACT_UP_TO=100) as (app, _):
        body = listed(app.test_client(), f"/count_rows?limit=5&{param}")
    assert (body["count"], body["count_kind"]) == expected


def test_next_keeps_the_strategy(db_url: str) -> None:
    with counted_app(db_url, rows=1000, TABLEREST_COUNT_EXACT_UP_TO=100) as (app, _):
        client = app.test_client()
        first = listed(client, "/count_rows?limit=5&count=exact")
        assert parse_qs(urlsplit(first["next"]).query)["count"] == ["exact"]
        second = listed(client, first["next"])
        asked = client.open("/count_rows", method="QUERY",
                            json={"limit": 5, "count": "none"})
        assert asked.status_code == 200, asked.json
        following = listed(client, asked.json["next"])
    assert (second["count"], second["count_kind"]) == (1000, "exact")
    assert second["items"][0]["id"] == 6
    assert (asked.json["count"], asked.json["count_kind"]) == (None, None)
    assert (following["count"], following["count_kind"]) == (None, None)
    assert following["items"][0]["id"] == 6


@pytest.mark.parametrize(("count", "expected"), [
    ("exact", (1000, "exact")), (True, (1000, "exact")), ("none", (None, None)),
    (False, (None, None)),
], ids=["exact", "true", "none", "false"])
def test_the_body_count(db_url: str, count: Any, expected: tuple[Any, Any]) -> None:
    with counted_app(db_url, rows=1000, TABLEREST_COUNT_EXACT_UP_TO=100) as (app, _):
        answer = app.test_client().open("/count_rows", method="QUERY",
                                         json={"limit": 5, "count": count})
    assert answer.status_code == 200, answer.json
    assert (answer.json["count"], answer.json["count_kind"]) == expected


@pytest.mark.parametrize("param", ["count=bogus", "count=", "count=exact&count=none"])
def test_a_bad_count_parameter_is_400(db_url: str, param: str) -> None:
    with counted_app(db_url, rows=3) as (app, _):
        response = app.test_client().get(f"/count_rows?{param}")
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert [error["field"] for error in response.json["errors"]] == ["count"]
    assert "count" in response.json["detail"]


@pytest.mark.parametrize("count", ["bogus", 1, ["exact"], {"kind": "exact"}])
def test_a_bad_body_count_is_400(db_url: str, count: Any) -> None:
    with counted_app(db_url, rows=3) as (app, _):
        response = app.test_client().open("/count_rows", method="QUERY", json={"count": count})
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert [error["field"] for error in response.json["errors"]] == ["count"]


def test_the_bad_parameter_message_lists_the_strategies(db_url: str) -> None:
    with counted_app(db_url, rows=3) as (app, _):
        response = app.test_client().get("/count_rows?count=bogus")
    assert response.json["detail"] == (
        "The query parameter 'count' is invalid: expected one of exact, estimated, none (or "
        "true or false), got 'bogus'.")


# -- per resource, per app ----------------------------------------------------------------------


def test_a_resource_chooses_its_default(db_url: str) -> None:
    with counted_app(db_url, Rows, ExactRows, UncountedRows, rows=1000,
                     TABLEREST_COUNT_EXACT_UP_TO=100) as (app, _):
        client = app.test_client()
        exact = listed(client, "/exact_rows?limit=5")
        uncounted = listed(client, "/uncounted_rows?limit=5")
        asked = listed(client, "/uncounted_rows?limit=5&count=exact")
        default = listed(client, "/count_rows?limit=5")
    assert (exact["count"], exact["count_kind"]) == (1000, "exact")
    assert (uncounted["count"], uncounted["count_kind"]) == (None, None)
    assert (asked["count"], asked["count_kind"]) == (1000, "exact")
    assert default["count_kind"] == "estimated"


def test_the_setting_chooses_the_app_default(db_url: str) -> None:
    with counted_app(db_url, rows=1000, TABLEREST_COUNT_EXACT_UP_TO=100,
                     TABLEREST_COUNT="exact") as (app, _):
        body = listed(app.test_client(), "/count_rows?limit=5")
    assert (body["count"], body["count_kind"]) == (1000, "exact")


def test_bad_configuration_is_refused(tmp_path: Any) -> None:
    with pytest.raises(ConfigurationError, match="count must be one of exact, estimated, none"):
        Resource(Row, count="bogus")
    with pytest.raises(ConfigurationError, match="TABLEREST_COUNT must be one of"), \
            counted_app(f"sqlite:///{tmp_path / 'x.db'}", TABLEREST_COUNT="most"):
        pass


def test_a_hooked_resource_estimates_under_its_hook(db_url: str) -> None:
    with counted_app(db_url, HookedRows, rows=1000, TABLEREST_COUNT_EXACT_UP_TO=100,
                     ) as (app, _):
        client = app.test_client()
        estimated = listed(client, "/hooked_rows?limit=5")
        exact = listed(client, "/hooked_rows?limit=5&count=exact")
        few = listed(client, "/hooked_rows?limit=5&id__lte=50")
    assert estimated["count_kind"] == "estimated"
    if db_url.startswith("postgresql"):  # the planner sees the hook's condition
        assert near(estimated["count"], 900), estimated["count"]
    else:  # SQLite's statistics are the table's, not the hook's: the threshold, a lower bound
        assert estimated["count"] == 101
    assert (exact["count"], exact["count_kind"]) == (900, "exact")
    assert (few["count"], few["count_kind"]) == (45, "exact")


# -- PostgREST's Prefer: count= -----------------------------------------------------------------


def prefer(client: FlaskClient, count: str, query: str = "limit=10",
           method: str = "GET") -> tuple[int, str, str | None]:
    response = client.open(f"{API}/count_rows?select=id&order=id&{query}", method=method,
                           headers={"Prefer": f"count={count}"})
    return (response.status_code, response.headers["Content-Range"],
            response.headers.get("Preference-Applied"))


def range_total(content_range: str) -> int:
    return int(content_range.rpartition("/")[2])


def test_postgrest_exact_planned_and_estimated(db_url: str) -> None:
    with counted_app(db_url, rows=1000, TABLEREST_COUNT_EXACT_UP_TO=100) as (app, _):
        client = app.test_client()
        exact = prefer(client, "exact")
        planned = prefer(client, "planned")
        estimated = prefer(client, "estimated")
        few_estimated = prefer(client, "estimated", "limit=10&id=lte.40")
        head = prefer(client, "planned", method="HEAD")
        uncounted = client.get(f"{API}/count_rows?select=id&limit=10")
    assert exact == (206, "0-9/1000", "count=exact")
    assert planned[0] == 206 and planned[2] == "count=planned"
    assert planned[1].startswith("0-9/") and near(range_total(planned[1]), 1000)
    assert estimated[0] == 206 and estimated[2] == "count=estimated"
    assert near(range_total(estimated[1]), 1000) and range_total(estimated[1]) > 100
    assert few_estimated == (206, "0-9/40", "count=estimated")
    assert head[0] == planned[0] and near(range_total(head[1]), 1000)
    assert uncounted.status_code == 200 and uncounted.headers["Content-Range"] == "0-9/*"
    assert "Preference-Applied" not in uncounted.headers


def test_postgrest_planned_without_statistics_is_exact(db_url: str) -> None:
    with counted_app(db_url, rows=1000, analyze=False, TABLEREST_COUNT_EXACT_UP_TO=100,
                     ) as (app, _):
        assert prefer(app.test_client(), "planned") == (206, "0-9/1000", "count=planned")


def test_postgrest_planned_on_a_small_table(db_url: str) -> None:
    """An estimate the page contradicts gives way: a short page knows the total."""
    with counted_app(db_url, rows=7) as (app, _):
        client = app.test_client()
        assert prefer(client, "planned") == (200, "0-6/7", "count=planned")
        assert prefer(client, "estimated") == (200, "0-6/7", "count=estimated")
        assert prefer(client, "planned", "limit=3")[1].startswith("0-2/")


# -- OpenAPI --------------------------------------------------------------------------------------


def test_openapi_describes_the_strategies_and_the_kind(db_url: str) -> None:
    with counted_app(db_url) as (app, _):
        document = openapi_document(app)
    parameter = document["components"]["parameters"]["count"]
    assert parameter["schema"]["enum"] == ["exact", "estimated", "none", "true", "false"]
    envelope = document["components"]["schemas"]["count_rows.list"]
    assert "count_kind" in envelope["required"]
    assert envelope["properties"]["count_kind"]["enum"] == ["exact", "estimated", None]
    body = document["components"]["schemas"]["count_rows.query"]["properties"]["count"]
    assert {"type": "string", "enum": ["exact", "estimated", "none"]} in body["anyOf"]



@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_small_whole_sqlite_table_is_counted_exactly_on_its_btree(db_url: str) -> None:
    # The key spans fewer than 4 x TABLEREST_COUNT_EXACT_UP_TO values: SQLite's b-tree count
    # answers exactly (cheaper than counting rows through a LIMIT); a wider span keeps the
    # capped count, and a filter always does.
    with counted_app(db_url, rows=30, analyze=False, TABLEREST_COUNT_EXACT_UP_TO=10) as (
            app, engine):
        client = app.test_client()
        whole = listed(client, "/count_rows?limit=5")
        assert (whole["count"], whole["count_kind"]) == (30, "exact")
        filtered = listed(client, "/count_rows?limit=5&n__gte=0")
        assert (filtered["count"], filtered["count_kind"]) == (11, "estimated")
        with engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO count_rows (id, n) VALUES (1000, 0)"))
        wide = listed(client, "/count_rows?limit=5")
        assert (wide["count"], wide["count_kind"]) == (11, "estimated")
