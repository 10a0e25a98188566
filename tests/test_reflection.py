"""Reflection mode: an API for an existing database, checked against the real Chinook data.

Every answer the API gives is compared with the same question asked in SQL, on SQLite (a copy
of ``Chinook_Sqlite.sqlite``) and on PostgreSQL (``Chinook_PostgreSql.sql`` loaded once into a
template database). The SQLite copy spells names ``PascalCase`` and the PostgreSQL one
``snake_case``: tests write the SQLite spelling and ``Chinook.n`` translates it.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from pgserver import PostgresServer
from tablerest.errors import ConfigurationError
from tablerest.extension import state_of
from tablerest.reflected_names import describe_relations, strip_id_suffix, url_segment
from tablerest.reflection import create_app, reflect

# The dataset lives beside the clone (../shared/datasets/chinook), or where the variable says.
CHINOOK = Path(os.environ.get("TABLEREST_CHINOOK_DIR")
               or Path(__file__).resolve().parents[2] / "shared" / "datasets" / "chinook")
TEMPLATE = "chinook_template"
_numbers = itertools.count(1)
_MISSING = (f"the Chinook dataset is not in {CHINOOK}: put Chinook_Sqlite.sqlite and "
            "Chinook_PostgreSql.sql (from github.com/lerocha/chinook-database) there, or set "
            "TABLEREST_CHINOOK_DIR to the folder that holds them")

# CI has the dataset beside the clone: a missing one there is an error, not a skip.
if os.environ.get("CI") and not (CHINOOK / "Chinook_Sqlite.sqlite").is_file():
    raise RuntimeError(_MISSING[0].upper() + _MISSING[1:] + ".")


def _require_chinook() -> None:
    """Skip a test that needs the dataset when it is missing (the others still run)."""
    if not (CHINOOK / "Chinook_Sqlite.sqlite").is_file():
        pytest.skip(_MISSING)


# -- fixtures ------------------------------------------------------------------------------------


def spell(backend: str, name: str) -> str:
    """The database's spelling of a SQLite-spelt Chinook name (``TrackId`` -> ``track_id``)."""
    if backend != "postgresql":
        return name
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


class _Quoted(dict[str, str]):
    def __init__(self, backend: str) -> None:
        super().__init__()
        self.backend = backend

    def __missing__(self, key: str) -> str:
        return '"' + spell(self.backend, key) + '"'


@dataclass
class Chinook:
    """One served Chinook database: the API client, the engine, and name translation."""

    backend: str
    app: Flask
    client: FlaskClient
    engine: sa.Engine

    def n(self, name: str) -> str:
        return spell(self.backend, name)

    def url(self, path: str, **params: Any) -> str:
        """``/Track`` with parameters; names in ``path`` and parameter names translated."""
        parts = [self.n(part) for part in path.strip("/").split("/")]
        query = "&".join(f"{self._param(key)}={quote(str(value), safe=',')}"
                         for key, value in params.items())
        return "/" + "/".join(quote(part, safe=",") for part in parts) + (
            f"?{query}" if query else "")

    def _param(self, key: str) -> str:
        if key in ("sort", "fields"):
            return key
        return "__".join(self.n(part) if part[:1].isupper() else part
                         for part in key.split("__"))

    def names(self, value: str) -> str:
        """A comma list of field names, each translated (``-Milliseconds,Name``)."""
        return ",".join(("-" if part.startswith("-") else "") + self.n(part.lstrip("-"))
                        for part in value.split(","))

    def sql(self, statement: str, **params: Any) -> list[dict[str, Any]]:
        """Rows of ``statement``, where ``{Name}`` is the quoted database spelling of Name."""
        text = statement.format_map(_Quoted(self.backend))
        with self.engine.connect() as connection:
            return [dict(row) for row in connection.execute(sa.text(text), params).mappings()]

    def scalar(self, statement: str, **params: Any) -> Any:
        [row] = self.sql(statement, **params)
        [value] = row.values()
        return value

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(self.url(path, **params))
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.json

    def items(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a list, following ``next`` links."""
        return self.walk(self.url(path, **params))

    def walk(self, url: str | None) -> list[dict[str, Any]]:
        """Every item of the list at ``url`` (a ready URL), following ``next`` links."""
        found: list[dict[str, Any]] = []
        while url is not None:
            response = self.client.get(url)
            assert response.status_code == 200, response.get_data(as_text=True)
            found += response.json["items"]
            url = response.json["next"]
        return found


def _load_postgres_chinook(postgres: PostgresServer) -> None:
    """Create ``chinook_template`` from the dataset's script (minus its database commands)."""
    url = postgres.create_database(TEMPLATE)
    script = (CHINOOK / "Chinook_PostgreSql.sql").read_text(encoding="utf-8")
    script = re.sub(r"(?im)^\s*(?:DROP DATABASE|CREATE DATABASE|\\c)\b.*$", "", script)
    with psycopg.connect(_libpq(url), autocommit=True) as connection:
        connection.execute(script)


def _libpq(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _postgres_copy(postgres: PostgresServer, name: str) -> str:
    with psycopg.connect(_libpq(postgres.url("postgres")), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    return postgres.url(name)


@pytest.fixture(scope="session")
def chinook_template(postgres: PostgresServer) -> Iterator[PostgresServer]:
    _require_chinook()
    _load_postgres_chinook(postgres)
    yield postgres
    postgres.drop_database(TEMPLATE)


@pytest.fixture(scope="session")
def chinook_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session copy of the SQLite file; the shared dataset is never opened for writing."""
    _require_chinook()
    target = tmp_path_factory.mktemp("chinook") / "Chinook_Sqlite.sqlite"
    shutil.copyfile(CHINOOK / "Chinook_Sqlite.sqlite", target)
    return target


def _fresh_url(request: pytest.FixtureRequest, directory: Path) -> tuple[str, str | None]:
    """A writable copy of Chinook on the requested backend: (url, PostgreSQL db to drop)."""
    if request.param == "sqlite":
        target = directory / f"chinook-{next(_numbers)}.sqlite"
        shutil.copyfile(request.getfixturevalue("chinook_sqlite"), target)
        return f"sqlite:///{target}", None
    server: PostgresServer = request.getfixturevalue("chinook_template")
    name = f"chinook_{next(_numbers)}"
    return _postgres_copy(server, name), name


def _serve(backend: str, url: str, **options: Any) -> Chinook:
    app = create_app(url, **options)
    app.testing = True
    return Chinook(backend, app, app.test_client(), state_of(app).engine)


def _close(db: Chinook, drop: str | None, request: pytest.FixtureRequest) -> None:
    db.engine.dispose()
    if drop is not None:
        server: PostgresServer = request.getfixturevalue("chinook_template")
        server.drop_database(drop)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def reader(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chinook]:
    """Chinook served for reading, shared by the read-only tests of one backend."""
    url, drop = _fresh_url(request, tmp_path_factory.mktemp("reader"))
    db = _serve(request.param, url)
    yield db
    _close(db, drop, request)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(backend, url) of a private writable copy of Chinook."""
    url, drop = _fresh_url(request, tmp_path)
    yield request.param, url
    if drop is not None:
        server: PostgresServer = request.getfixturevalue("chinook_template")
        server.drop_database(drop)


@pytest.fixture
def writer(fresh: tuple[str, str]) -> Iterator[Chinook]:
    """Chinook served read-write on a private copy."""
    db = _serve(*fresh)
    yield db
    db.engine.dispose()


# -- what is served ------------------------------------------------------------------------------


def test_every_table_is_a_resource_named_as_the_database_spells_it(reader: Chinook) -> None:
    listed = {item["name"]: item["url"] for item in reader.get("/")["resources"]}
    tables = sa.inspect(reader.engine).get_table_names()
    assert listed == {name: f"/{name}" for name in tables}
    assert reader.n("PlaylistTrack") in listed


def test_no_chinook_column_is_taken_for_a_secret(reader: Chinook) -> None:
    # Shipping, Composer, PostalCode...: the secret-name rule must not hide ordinary data.
    for name, endpoints in state_of(reader.app).served.items():
        assert endpoints.resource.hidden_fields == frozenset(), name
    [customer] = reader.sql("SELECT * FROM {Customer} WHERE {CustomerId} = 1")
    assert set(reader.get("/Customer/1")) == set(customer)


def test_read_only_serving_leaves_the_file_as_it_was(chinook_sqlite: Path,
                                                     tmp_path: Path) -> None:
    path = tmp_path / "chinook.sqlite"
    shutil.copyfile(chinook_sqlite, path)
    before = path.read_bytes()
    db = _serve("sqlite", f"sqlite:///{path}", read_only=True)
    try:
        assert len(db.items("/Track", limit=100, Composer__like="%Clapton%")) > 7
        assert db.client.post("/Artist", json={"Name": "x"}).status_code == 405
    finally:
        db.engine.dispose()
    assert path.read_bytes() == before


def test_relations_follow_the_naming_rule(reader: Chinook) -> None:
    endpoints = state_of(reader.app).served
    relations = {name: set(each.info.relations) for name, each in endpoints.items()}
    n = reader.n
    assert relations[n("Album")] == {n("Artist"), n("Track")}
    assert relations[n("Artist")] == {n("Album")}
    # Customer.SupportRepId -> Employee: the suffix goes. Employee.ReportsTo has none, and
    # refers to its own table: both directions take the fallback names.
    assert relations[n("Customer")] == {n("SupportRep"), n("Invoice")}
    assert relations[n("Employee")] == {n("ReportsTo_Employee"), n("Customer"),
                                        n("Employee_by_ReportsTo")}
    assert relations[n("Playlist")] == {n("PlaylistTrack"), n("Track")}
    assert relations[n("PlaylistTrack")] == {n("Playlist"), n("Track")}
    assert relations[n("Track")] == {n("Album"), n("MediaType"), n("Genre"),
                                     n("InvoiceLine"), n("PlaylistTrack"), n("Playlist")}
    kinds = {name: relation.kind
             for name, relation in endpoints[n("Track")].info.relations.items()}
    assert kinds[n("Album")] == "to_one"
    assert kinds[n("InvoiceLine")] == "to_many"
    assert kinds[n("Playlist")] == "many_to_many"


# -- lists compared with SQL ---------------------------------------------------------------------


def test_filtered_and_sorted_tracks_match_sql(reader: Chinook) -> None:
    genre = reader.scalar("SELECT {GenreId} FROM {Genre} WHERE {Name} = 'Rock'")
    body = reader.get("/Track", GenreId=genre, Milliseconds__gt=300000,
                      sort=reader.names("-Milliseconds,Name"),
                      fields=reader.names("TrackId,Name,Milliseconds"), limit=40)
    expected = reader.sql(
        "SELECT {TrackId}, {Name}, {Milliseconds} FROM {Track} "
        "WHERE {GenreId} = :genre AND {Milliseconds} > 300000 "
        "ORDER BY {Milliseconds} DESC, {Name}, {TrackId} LIMIT 40", genre=genre)
    assert body["items"] == expected
    assert body["count"] == reader.scalar(
        "SELECT count(*) FROM {Track} WHERE {GenreId} = :genre AND {Milliseconds} > 300000",
        genre=genre)
    assert body["count"] > len(body["items"])


def test_pages_walked_by_next_match_sql(reader: Chinook) -> None:
    items = reader.items("/Track", Composer__like="%Clapton%", sort=reader.names("Name"),
                         fields=reader.names("TrackId,Name,Composer"), limit=7)
    expected = reader.sql(
        "SELECT {TrackId}, {Name}, {Composer} FROM {Track} WHERE {Composer} LIKE '%Clapton%' "
        "ORDER BY {Name}, {TrackId}")
    assert items == expected
    assert len(expected) > 7


def test_in_and_isnull_filters_match_sql(reader: Chinook) -> None:
    items = reader.items("/Track", AlbumId__in="1,2,3", Composer__isnull="false",
                         fields=reader.names("TrackId"), limit=100)
    expected = reader.sql(
        "SELECT {TrackId} FROM {Track} WHERE {AlbumId} IN (1, 2, 3) "
        "AND {Composer} IS NOT NULL ORDER BY {TrackId}")
    assert items == expected


def test_datetime_and_decimal_filters_match_sql(reader: Chinook) -> None:
    body = reader.get("/Invoice", InvoiceDate__gte="2022-01-01T00:00:00Z",
                      InvoiceDate__lt="2022-04-01T00:00:00+00:00", Total__gte="5.94",
                      sort=reader.names("InvoiceDate"), limit=100)
    expected = reader.sql(
        "SELECT {InvoiceId}, {InvoiceDate}, {Total} FROM {Invoice} "
        "WHERE {InvoiceDate} >= '2022-01-01 00:00:00' AND {InvoiceDate} < '2022-04-01 00:00:00' "
        "AND {Total} >= 5.94 ORDER BY {InvoiceDate}, {InvoiceId}")
    got = [(item[reader.n("InvoiceId")], item[reader.n("InvoiceDate")],
            decimal.Decimal(item[reader.n("Total")])) for item in body["items"]]
    want = [(row[reader.n("InvoiceId")], _iso_utc(row[reader.n("InvoiceDate")]),
             decimal.Decimal(str(row[reader.n("Total")]))) for row in expected]
    assert got == want
    assert body["count"] == len(expected) > 0


def test_equality_on_a_stored_datetime_matches_sql(reader: Chinook) -> None:
    # Filters compare with the stored text on SQLite: the bound value must use its layout.
    stored = reader.scalar("SELECT min({InvoiceDate}) FROM {Invoice} "
                           "WHERE {InvoiceDate} >= '2022-01-01 00:00:00'")
    moment = _iso_utc(stored)
    for op in ("eq", "gte", "lte"):
        items = reader.items("/Invoice", **{f"InvoiceDate__{op}": moment},
                             fields=reader.n("InvoiceId"), limit=100)
        sign = {"eq": "=", "gte": ">=", "lte": "<="}[op]
        assert items == reader.sql(
            f"SELECT {{InvoiceId}} FROM {{Invoice}} WHERE {{InvoiceDate}} {sign} :moment "
            "ORDER BY {InvoiceId}", moment=stored)


def _iso_utc(value: Any) -> str:
    parsed = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    return parsed.replace(tzinfo=dt.UTC).isoformat()


def test_filter_through_a_to_one_relation_matches_sql(reader: Chinook) -> None:
    items = reader.items("/Album", Artist__Name="Iron Maiden", sort=reader.names("Title"))
    expected = reader.sql(
        "SELECT a.* FROM {Album} AS a JOIN {Artist} AS r ON r.{ArtistId} = a.{ArtistId} "
        "WHERE r.{Name} = 'Iron Maiden' ORDER BY a.{Title}, a.{AlbumId}")
    assert items == expected
    assert len(expected) > 1


def test_include_embeds_the_album_with_its_artist(reader: Chinook) -> None:
    response = reader.client.get(reader.url("/Album", include=reader.n("Artist"), limit=5))
    assert response.status_code == 200, response.json
    assert len(response.json["items"]) == 5
    for item in response.json["items"]:
        artist = reader.sql("SELECT * FROM {Artist} WHERE {ArtistId} = :id",
                            id=item[reader.n("ArtistId")])
        assert item[reader.n("Artist")] == artist[0]


# -- relationship routes -------------------------------------------------------------------------


def test_an_artists_albums_match_sql(reader: Chinook) -> None:
    artist = reader.scalar("SELECT {ArtistId} FROM {Album} GROUP BY {ArtistId} "
                           "ORDER BY count(*) DESC, {ArtistId} LIMIT 1")
    items = reader.items(f"/Artist/{artist}/Album", limit=5)
    expected = reader.sql("SELECT * FROM {Album} WHERE {ArtistId} = :id ORDER BY {AlbumId}",
                          id=artist)
    assert items == expected
    assert len(expected) > 5


def test_each_employees_reports_match_sql(reader: Chinook) -> None:
    employees = reader.sql("SELECT {EmployeeId} FROM {Employee} ORDER BY {EmployeeId}")
    managers = 0
    for row in employees:
        key = row[reader.n("EmployeeId")]
        items = reader.items(f"/Employee/{key}/Employee_by_ReportsTo",
                             fields=reader.names("EmployeeId,LastName"))
        expected = reader.sql("SELECT {EmployeeId}, {LastName} FROM {Employee} "
                              "WHERE {ReportsTo} = :id ORDER BY {EmployeeId}", id=key)
        assert items == expected
        managers += bool(expected)
    assert managers > 1


def test_playlist_tracks_through_the_link_table_match_sql(reader: Chinook) -> None:
    playlist = reader.scalar("SELECT {PlaylistId} FROM {PlaylistTrack} GROUP BY {PlaylistId} "
                             "HAVING count(*) BETWEEN 10 AND 100 ORDER BY {PlaylistId} LIMIT 1")
    items = reader.items(f"/Playlist/{playlist}/Track", sort=reader.names("Name"),
                         fields=reader.names("TrackId,Name"), limit=100)
    expected = reader.sql(
        "SELECT t.{TrackId}, t.{Name} FROM {Track} AS t JOIN {PlaylistTrack} AS pt "
        "ON pt.{TrackId} = t.{TrackId} WHERE pt.{PlaylistId} = :id "
        "ORDER BY t.{Name}, t.{TrackId}", id=playlist)
    assert items == expected
    track = expected[0][reader.n("TrackId")]
    playlists = reader.items(f"/Track/{track}/Playlist", fields=reader.names("PlaylistId"))
    assert playlists == reader.sql(
        "SELECT {PlaylistId} FROM {PlaylistTrack} WHERE {TrackId} = :id ORDER BY {PlaylistId}",
        id=track)


def test_composite_key_rows(reader: Chinook) -> None:
    assert reader.sql("SELECT * FROM {PlaylistTrack} WHERE {PlaylistId} = 1 "
                      "AND {TrackId} = 3402") == [reader.get("/PlaylistTrack/1,3402")]
    for missing in ("/PlaylistTrack/1,999999", "/PlaylistTrack/1", "/PlaylistTrack/1,2,3"):
        assert reader.client.get(reader.url(missing)).status_code == 404
    items = reader.items("/PlaylistTrack", PlaylistId=1, TrackId__lt=100, limit=100)
    assert items == reader.sql("SELECT * FROM {PlaylistTrack} WHERE {PlaylistId} = 1 "
                               "AND {TrackId} < 100 ORDER BY {PlaylistId}, {TrackId}")


def test_unknown_names_are_400(reader: Chinook) -> None:
    for params in ({"Nope": "1"}, {"sort": "Nope"}, {"Artist__Nope": "x"}):
        response = reader.client.get(reader.url("/Album", **params))
        assert response.status_code == 400, params


# -- writes --------------------------------------------------------------------------------------


def test_create_artist_shows_up_in_the_database(writer: Chinook) -> None:
    before = writer.scalar("SELECT max({ArtistId}) FROM {Artist}")
    body: dict[str, Any] = {writer.n("Name"): "Nouvelle Vague"}
    if writer.backend == "postgresql":
        # PostgreSQL Chinook keys are plain INT NOT NULL: the client gives them.
        response = writer.client.post(writer.url("/Artist"), json=body)
        assert response.status_code == 422
        assert {e["field"] for e in response.json["errors"]} == {writer.n("ArtistId")}
        body[writer.n("ArtistId")] = before + 1
    # SQLite INTEGER PRIMARY KEY is the rowid: the database assigns it.
    response = writer.client.post(writer.url("/Artist"), json=body)
    assert response.status_code == 201, response.json
    key = response.json[writer.n("ArtistId")]
    assert key == before + 1
    assert response.headers["Location"] == writer.url(f"/Artist/{key}")
    assert writer.sql("SELECT * FROM {Artist} WHERE {ArtistId} = :id", id=key) == [
        response.json]


def test_sqlite_key_that_is_not_the_rowid_is_required(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE codes (code INT PRIMARY KEY, label TEXT)")
        connection.exec_driver_sql("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    engine.dispose()
    db = _serve("sqlite", f"sqlite:///{path}")
    assert db.client.post("/codes", json={"label": "x"}).status_code == 422
    assert db.client.post("/codes", json={"code": 7, "label": "x"}).status_code == 201
    assert db.client.post("/notes", json={"body": "x"}).json == {"id": 1, "body": "x"}
    assert db.client.post("/notes", json={"id": 5, "body": "x"}).status_code == 422
    db.engine.dispose()


def test_sqlite_datetimes_stored_as_numbers_are_served_as_numbers(tmp_path: Path) -> None:
    path = tmp_path / "epoch.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE events (id INTEGER PRIMARY KEY, at DATETIME)")
        connection.exec_driver_sql("INSERT INTO events (at) VALUES (1700000000), (NULL)")
    engine.dispose()
    db = _serve("sqlite", f"sqlite:///{path}")
    assert db.walk("/events") == [{"id": 1, "at": 1700000000}, {"id": 2, "at": None}]
    db.engine.dispose()


def test_create_invoice_stores_utc_in_the_columns_own_layout(writer: Chinook) -> None:
    n = writer.n
    body: dict[str, Any] = {n("CustomerId"): 1, n("InvoiceDate"): "2024-05-01T10:30:00+02:00",
                            n("Total"): "3.96"}
    if writer.backend == "postgresql":
        body[n("InvoiceId")] = writer.scalar("SELECT max({InvoiceId}) + 1 FROM {Invoice}")
    response = writer.client.post(writer.url("/Invoice"), json=body)
    assert response.status_code == 201, response.json
    assert response.json[n("InvoiceDate")] == "2024-05-01T08:30:00+00:00"
    assert response.json[n("Total")] == "3.96"
    key = response.json[n("InvoiceId")]
    [stored] = writer.sql("SELECT {InvoiceDate}, {Total} FROM {Invoice} WHERE {InvoiceId} = :id",
                          id=key)
    if writer.backend == "sqlite":
        assert stored[n("InvoiceDate")] == "2024-05-01 08:30:00"  # like the existing rows
    else:
        assert stored[n("InvoiceDate")] == dt.datetime(2024, 5, 1, 8, 30)
    assert decimal.Decimal(str(stored[n("Total")])) == decimal.Decimal("3.96")
    found = writer.get("/Invoice", InvoiceDate="2024-05-01T08:30:00Z",
                       fields=n("InvoiceId"))["items"]
    assert found == [{n("InvoiceId"): key}]


def test_update_and_delete_show_up_in_the_database(writer: Chinook) -> None:
    n = writer.n
    lonely = writer.scalar("SELECT min({ArtistId}) FROM {Artist} WHERE {ArtistId} NOT IN "
                           "(SELECT {ArtistId} FROM {Album})")
    response = writer.client.patch(writer.url(f"/Artist/{lonely}"), json={n("Name"): "Renamed"})
    assert response.status_code == 200
    assert writer.scalar("SELECT {Name} FROM {Artist} WHERE {ArtistId} = :id",
                         id=lonely) == "Renamed"
    assert writer.client.delete(writer.url(f"/Artist/{lonely}")).status_code == 204
    assert writer.sql("SELECT * FROM {Artist} WHERE {ArtistId} = :id", id=lonely) == []


def test_create_through_a_to_many_fills_the_foreign_key(writer: Chinook) -> None:
    n = writer.n
    body: dict[str, Any] = {n("Title"): "Live at the Reflection"}
    if writer.backend == "postgresql":
        body[n("AlbumId")] = writer.scalar("SELECT max({AlbumId}) + 1 FROM {Album}")
    response = writer.client.post(writer.url("/Artist/1/Album"), json=body)
    assert response.status_code == 201, response.json
    assert writer.sql("SELECT {ArtistId} FROM {Album} WHERE {AlbumId} = :id",
                      id=response.json[n("AlbumId")]) == [{n("ArtistId"): 1}]


def test_link_and_unlink_through_the_link_table(writer: Chinook) -> None:
    n = writer.n
    track = writer.scalar("SELECT min({TrackId}) FROM {Track} WHERE {TrackId} NOT IN "
                          "(SELECT {TrackId} FROM {PlaylistTrack} WHERE {PlaylistId} = 1)")
    link = "SELECT count(*) FROM {PlaylistTrack} WHERE {PlaylistId} = 1 AND {TrackId} = :t"
    for _ in range(2):  # idempotent
        assert writer.client.put(writer.url(f"/Playlist/1/Track/{track}")).status_code == 204
        assert writer.scalar(link, t=track) == 1
    assert writer.client.delete(writer.url(f"/Playlist/1/Track/{track}")).status_code == 204
    assert writer.scalar(link, t=track) == 0
    response = writer.client.post(writer.url("/PlaylistTrack"),
                                  json={n("PlaylistId"): 1, n("TrackId"): track})
    assert response.status_code == 201
    assert response.headers["Location"] == writer.url(f"/PlaylistTrack/1,{track}")
    again = writer.client.post(writer.url("/PlaylistTrack"),
                               json={n("PlaylistId"): 1, n("TrackId"): track})
    assert again.status_code == 409
    assert writer.client.delete(writer.url(f"/PlaylistTrack/1,{track}")).status_code == 204
    assert writer.scalar(link, t=track) == 0


def _snapshot(db: Chinook) -> list[int]:
    return [db.scalar("SELECT count(*) FROM {" + table + "}")
            for table in ("Artist", "Album", "Track", "PlaylistTrack")]


def test_foreign_key_violations_are_409_and_change_nothing(writer: Chinook) -> None:
    n = writer.n
    before = _snapshot(writer)
    body: dict[str, Any] = {n("Title"): "Orphan", n("ArtistId"): 999999}
    if writer.backend == "postgresql":
        body[n("AlbumId")] = 999999
    response = writer.client.post(writer.url("/Album"), json=body)
    assert response.status_code == 409
    assert [e["field"] for e in response.json["errors"]] == [n("ArtistId")]
    response = writer.client.delete(writer.url("/Artist/1"))  # AC/DC still has albums
    assert response.status_code == 409
    good = {n("Title"): "Fine", n("ArtistId"): 1}
    if writer.backend == "postgresql":
        good[n("AlbumId")] = 999998
    response = writer.client.post(writer.url("/Album"), json=[good, body])
    assert response.status_code == 409  # all or nothing: the good row is not kept
    assert _snapshot(writer) == before


def test_wrong_types_and_lengths_are_422_and_change_nothing(writer: Chinook) -> None:
    n = writer.n
    before = _snapshot(writer)
    good = {n("Name"): "x", n("MediaTypeId"): 1, n("Milliseconds"): 1, n("UnitPrice"): "0.99"}
    if writer.backend == "postgresql":
        good[n("TrackId")] = 999999
    bad = [  # (field, wrong value); ... removes the field
        ("Milliseconds", "long"), ("Name", "x" * 201), ("Name", None),
        ("UnitPrice", "cheap"), ("UnitPrice", ...), ("MediaTypeId", 1.5), ("Bytes", True),
    ]
    for field, value in bad:
        body = {**good, n(field): value}
        if value is ...:
            del body[n(field)]
        response = writer.client.post(writer.url("/Track"), json=body)
        assert response.status_code == 422, (field, value)
        assert [e["field"] for e in response.json["errors"]] == [n(field)]
    response = writer.client.patch(writer.url("/Track/1"), json={n("Bytes"): "many"})
    assert response.status_code == 422
    assert _snapshot(writer) == before


def test_read_only_refuses_every_write_with_405(fresh: tuple[str, str]) -> None:
    db = _serve(*fresh, read_only=True)
    n = db.n
    before = _snapshot(db)
    for method, path in [("post", "/Artist"), ("patch", "/Artist/1"), ("put", "/Artist/1"),
                         ("delete", "/Artist/1"), ("post", "/Artist/1/Album"),
                         ("delete", "/PlaylistTrack/1,3402")]:
        response = getattr(db.client, method)(db.url(path), json={n("Name"): "x"})
        assert response.status_code == 405, (method, path)
        assert "GET" in response.headers["Allow"]
        assert response.mimetype == "application/problem+json"
    assert db.get("/Artist/1")[n("ArtistId")] == 1
    assert _snapshot(db) == before
    db.engine.dispose()


def test_views_and_keyless_tables_are_read_only(fresh: tuple[str, str]) -> None:
    backend, url = fresh
    quoted = _Quoted(backend)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(
            'CREATE VIEW "Albums per Artist" AS SELECT a.{ArtistId} AS artist, '
            "count(*) AS albums FROM {Album} AS a GROUP BY a.{ArtistId}".format_map(quoted)))
        connection.execute(sa.text('CREATE TABLE "log" (line VARCHAR(20) NOT NULL)'))
        connection.execute(sa.text("INSERT INTO \"log\" VALUES ('one'), ('two')"))
        if backend == "postgresql":
            connection.execute(sa.text("CREATE MATERIALIZED VIEW lines AS SELECT * FROM log"))
    engine.dispose()
    db = _serve(backend, url)
    if backend == "postgresql":
        assert db.walk("/lines?sort=line") == [{"line": "one"}, {"line": "two"}]
        assert db.client.post("/lines", json={"line": "three"}).status_code == 405
    items = db.walk("/Albums%20per%20Artist?sort=artist")
    expected = db.sql('SELECT * FROM "Albums per Artist" ORDER BY artist')
    assert items == expected
    assert len(items) > 1
    for path in ("/Albums%20per%20Artist", "/log"):
        response = db.client.post(path, json={"line": "three"})
        assert response.status_code == 405
        assert "GET" in response.headers["Allow"]
        assert db.client.get(path + "/1").status_code == 404  # no key, no item routes
    assert db.walk("/log?sort=line") == [{"line": "one"}, {"line": "two"}]
    db.engine.dispose()


# -- options and failures ------------------------------------------------------------------------


def test_tables_and_exclude_choose_what_is_served(fresh: tuple[str, str]) -> None:
    backend, url = fresh
    db = _serve(backend, url, tables=[spell(backend, "Artist"), spell(backend, "Album")])
    assert {item["name"] for item in db.get("/")["resources"]} == {db.n("Artist"), db.n("Album")}
    assert set(state_of(db.app).served[db.n("Artist")].info.relations) == {db.n("Album")}
    assert db.client.get(db.url("/Track")).status_code == 404
    db.engine.dispose()
    db = _serve(backend, url, exclude=[db.n("PlaylistTrack")])
    # A relation is served only when every table it touches is: no link table, no link.
    assert set(state_of(db.app).served[db.n("Playlist")].info.relations) == set()
    assert db.client.get(db.url("/Playlist/1/Track")).status_code == 404
    db.engine.dispose()
    with pytest.raises(ConfigurationError, match="'Nope'"):
        reflect(url, tables=["Nope"])
    with pytest.raises(ConfigurationError, match="'Nope'"):
        reflect(url, exclude=["Nope"])


def test_a_missing_sqlite_file_is_refused_not_created(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    with pytest.raises(ConfigurationError, match="no SQLite database file"):
        create_app(f"sqlite:///{path}")
    assert not path.exists()


def test_an_empty_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    engine.connect().close()
    engine.dispose()
    with pytest.raises(ConfigurationError, match="nothing to serve"):
        create_app(f"sqlite:///{path}")


def test_an_unreachable_database_is_a_configuration_error(postgres: PostgresServer) -> None:
    with pytest.raises(ConfigurationError, match="Cannot reflect"):
        create_app(postgres.url("no_such_database_here"))


def test_a_malformed_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="not a database URL"):
        create_app("not a url")


# -- names that are awkward in URLs --------------------------------------------------------------


def test_names_with_spaces_and_slashes(tmp_path: Path) -> None:
    path = tmp_path / "names.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.exec_driver_sql('CREATE TABLE "Orders" ("Order Id" INTEGER PRIMARY KEY, '
                                   '"When" DATETIME)')
        connection.exec_driver_sql(
            'CREATE TABLE "Order Details" ("Line" INTEGER PRIMARY KEY, '
            '"Order Id" INTEGER NOT NULL REFERENCES "Orders" ("Order Id"), "select" TEXT)')
        connection.exec_driver_sql('CREATE TABLE "in/out" ("id" INTEGER PRIMARY KEY)')
        connection.exec_driver_sql(
            "INSERT INTO \"Orders\" VALUES (1, '2024-01-02T03:04:05.000006')")
    engine.dispose()
    db = _serve("sqlite", f"sqlite:///{path}")
    listed = {item["name"] for item in db.get("/")["resources"]}
    assert listed == {"Orders", "Order Details", "in_out"}
    response = db.client.post("/Order%20Details", json={"Order Id": 1, "select": "x"})
    assert response.status_code == 201, response.json
    assert response.headers["Location"] == "/Order%20Details/1"
    assert db.get("/Order Details/1") == {"Line": 1, "Order Id": 1, "select": "x"}
    assert db.items("/Orders/1/Order Details") == [{"Line": 1, "Order Id": 1, "select": "x"}]
    assert db.items("/Order Details", Order__When__lt="2025-01-01T00:00:00Z") == [
        {"Line": 1, "Order Id": 1, "select": "x"}]
    assert db.items("/Order Details", Order__When__lt="2024-01-01T00:00:00Z") == []
    assert db.client.post("/Order%20Details", json={"Order Id": 1}).status_code == 201
    first = db.client.get("/Order%20Details?limit=1").json
    assert first["next"].startswith("/Order%20Details?limit=1&cursor=")
    assert [item["Line"] for item in db.client.get(first["next"]).json["items"]] == [2]
    urls = {item["name"]: item["url"] for item in db.get("/")["resources"]}
    assert urls["Order Details"] == "/Order%20Details"
    assert db.client.post("/in_out", json={}).status_code == 201
    # This column's layout has a T and microseconds: new values are written the same way.
    assert db.client.post("/Orders", json={"When": "2024-02-03T04:05:06Z"}).status_code == 201
    stored = db.sql('SELECT "When" FROM "Orders" ORDER BY "Order Id"')
    assert [row["When"] for row in stored] == ["2024-01-02T03:04:05.000006",
                                               "2024-02-03T04:05:06.000000"]
    db.engine.dispose()


# -- the naming rule, on schemas built in code ---------------------------------------------------


@pytest.mark.parametrize(("column", "base"), [
    ("ArtistId", "Artist"), ("artist_id", "artist"), ("ARTIST_ID", "ARTIST"),
    ("TrackID", "Track"), ("Order Id", "Order"), ("user-id", "user"),
    ("ReportsTo", None), ("Id", None), ("id", None), ("_id", None), ("paid", None),
    ("PAID", None), ("GUID", None), ("artistid", None),
], ids=lambda value: repr(value))
def test_id_suffixes(column: str, base: str | None) -> None:
    assert strip_id_suffix(column) == base


@pytest.mark.parametrize(("name", "segment"), [
    ("Album", "Album"), ("Order Details", "Order Details"), ("in/out", "in_out"),
    ("a<b>", "a_b_"), ("back\\slash", "back_slash"), ("..", "__"), (".", "_"),
    ("v1.2", "v1.2"), ("naïve", "naïve"),
], ids=lambda value: repr(value))
def test_url_segments(name: str, segment: str) -> None:
    assert url_segment(name) == segment


def _served(metadata: sa.MetaData) -> dict[sa.Table, str]:
    return {table: url_segment(table.name) for table in metadata.tables.values()}


def _names(relations: dict[sa.Table, dict[str, Any]], metadata: sa.MetaData,
           table: str) -> dict[str, str]:
    return {name: relation.kind for name, relation in relations[metadata.tables[table]].items()}


def test_clashes_take_the_documented_fallbacks() -> None:
    metadata = sa.MetaData()
    sa.Table("user", metadata, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("message", sa.Text))  # a column named like the to-many
    sa.Table("message", metadata, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("sender_id", sa.ForeignKey("user.id")),
             sa.Column("recipient_id", sa.ForeignKey("user.id")),
             sa.Column("reply_to", sa.ForeignKey("message.id")))
    sa.Table("follows", metadata,
             sa.Column("follower_id", sa.ForeignKey("user.id"), primary_key=True),
             sa.Column("followed_id", sa.ForeignKey("user.id"), primary_key=True))
    sa.Table("album", metadata, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("artist", sa.ForeignKey("user.id")),  # no suffix
             sa.Column("owner_id", sa.ForeignKey("user.id")),
             sa.Column("owner", sa.Text))  # the stripped name is a column
    relations = describe_relations(_served(metadata))
    assert _names(relations, metadata, "message") == {
        "sender": "to_one", "recipient": "to_one", "reply_to_message": "to_one",
        "message_by_reply_to": "to_many",
    }
    assert _names(relations, metadata, "user") == {
        "album_by_artist": "to_many", "album_by_owner_id": "to_many",
        "follows_by_follower_id": "to_many", "follows_by_followed_id": "to_many",
        "message_by_sender_id": "to_many", "message_by_recipient_id": "to_many",
        "user_via_follows_followed_id": "many_to_many",
        "user_via_follows_follower_id": "many_to_many",
    }
    assert _names(relations, metadata, "follows") == {"follower": "to_one",
                                                      "followed": "to_one"}
    assert _names(relations, metadata, "album") == {"artist_user": "to_one",
                                                    "owner_id_user": "to_one"}
    following = relations[metadata.tables["user"]]["user_via_follows_followed_id"]
    assert [(a.name, b.name) for a, b in following.pairs] == [("id", "follower_id")]
    assert [(a.name, b.name) for a, b in following.secondary_pairs] == [("id", "followed_id")]


def test_link_tables_must_be_pure_and_served() -> None:
    metadata = sa.MetaData()
    sa.Table("post", metadata, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table("tag", metadata, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table("post_tag", metadata,
             sa.Column("post_id", sa.ForeignKey("post.id"), primary_key=True),
             sa.Column("tag_id", sa.ForeignKey("tag.id"), primary_key=True))
    sa.Table("pinned", metadata,  # an extra column: not a pure link table
             sa.Column("post_id", sa.ForeignKey("post.id"), primary_key=True),
             sa.Column("tag_id", sa.ForeignKey("tag.id"), primary_key=True),
             sa.Column("note", sa.Text))
    served = _served(metadata)
    relations = describe_relations(served)
    assert _names(relations, metadata, "post") == {
        "post_tag": "to_many", "pinned": "to_many", "tag": "many_to_many"}
    assert _names(relations, metadata, "tag")["post"] == "many_to_many"
    del served[metadata.tables["post_tag"]]
    relations = describe_relations(served)
    assert _names(relations, metadata, "post") == {"pinned": "to_many"}


def test_two_link_tables_to_one_table_take_fallbacks() -> None:
    metadata = sa.MetaData()
    sa.Table("Post", metadata, sa.Column("PostId", sa.Integer, primary_key=True))
    sa.Table("Tag", metadata, sa.Column("TagId", sa.Integer, primary_key=True))
    for link in ("PostTag", "PostHiddenTag"):
        sa.Table(link, metadata,
                 sa.Column("PostId", sa.ForeignKey("Post.PostId"), primary_key=True),
                 sa.Column("TagId", sa.ForeignKey("Tag.TagId"), primary_key=True))
    relations = describe_relations(_served(metadata))
    assert _names(relations, metadata, "Post") == {
        "PostHiddenTag": "to_many", "PostTag": "to_many",
        "Tag_via_PostHiddenTag_TagId": "many_to_many", "Tag_via_PostTag_TagId": "many_to_many",
    }


def test_secret_columns_are_write_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'accounts.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(
            "CREATE TABLE accounts (id INTEGER PRIMARY KEY, login TEXT NOT NULL, "
            "password_hash TEXT NOT NULL, api_key TEXT)"))
        connection.execute(sa.text(
            "INSERT INTO accounts (login, password_hash, api_key) VALUES ('ann', 'h1', 'k1')"))
    engine.dispose()
    app = create_app(url)
    client = app.test_client()
    listed = client.get("/accounts")
    assert listed.status_code == 200
    assert listed.json["items"] == [{"id": 1, "login": "ann"}]
    assert client.get("/accounts?password_hash=h1").status_code == 400
    created = client.post("/accounts", json={"login": "bob", "password_hash": "h2"})
    assert created.status_code == 201
    assert created.json == {"id": 2, "login": "bob"}
    state_of(app).engine.dispose()
    check = sa.create_engine(url)
    with check.connect() as connection:
        stored = connection.execute(sa.text(
            "SELECT login, password_hash FROM accounts ORDER BY id")).all()
    check.dispose()
    assert [tuple(row) for row in stored] == [("ann", "h1"), ("bob", "h2")]
