"""The HTML pages of reflection mode (``tablerest serve --db``) on the real Chinook data, on
SQLite and PostgreSQL: the index, a list whose foreign keys link to their items, sorting and
filtering by the form, paging by ``next``, an item with its related items and lists, and
the exact JSON of each URL. Names are the database's (``Chinook.n`` spells them)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from test_html import BROWSER, get_page, params, raw_json
from test_reflection import Chinook, chinook_sqlite, chinook_template, reader

__all__ = ["chinook_sqlite", "chinook_template", "reader"]


def test_the_index_lists_every_table(reader: Chinook) -> None:
    doc = get_page(reader.client, "/")
    links = [a.get("href") for a in doc.one("table").all("a")]
    tables = sa.inspect(reader.engine).get_table_names()
    assert sorted(links) == sorted(f"/{name}" for name in tables)
    assert raw_json(doc) == reader.get("/")


def test_a_list_links_its_foreign_keys(reader: Chinook) -> None:
    n = reader.n
    url = reader.url("/Track", sort=reader.names("TrackId"), limit=5)
    doc = get_page(reader.client, url)
    expected = reader.client.get(url).json
    assert raw_json(doc) == expected
    header = [th.text().strip(" ▲▼") for th in doc.one("thead").all("th")]
    assert header == list(expected["items"][0])
    album = header.index(n("AlbumId"))
    for tr, item in zip(doc.one("tbody").all("tr"), expected["items"], strict=True):
        cells = [tr.one("th"), *tr.all("td")]
        assert cells[0].one("a").get("href") == f"/{n('Track')}/{item[n('TrackId')]}"
        assert cells[album].one("a").get("href") == f"/{n('Album')}/{item[n('AlbumId')]}"


def test_sort_filter_and_page_through_tracks(reader: Chinook) -> None:
    n = reader.n
    doc = get_page(reader.client, reader.url("/Track", limit=10))
    name_header = next(th for th in doc.one("thead").all("th")
                       if th.text().strip() == n("Name"))
    sorted_url = name_header.one("a").get("href")
    assert params(sorted_url)[-1] == ("sort", n("Name"))
    response = reader.client.get(
        "/-/filter", headers=BROWSER,
        query_string=[("list", f"/{n('Track')}"), ("sort", f"-{n('Milliseconds')}"),
                      ("limit", "10"), ("field", n("GenreId")), ("op", "eq"), ("value", "1")])
    assert response.status_code == 302
    url: str | None = response.headers["Location"]
    expected = reader.sql("SELECT {TrackId} AS id FROM {Track} WHERE {GenreId} = 1 "
                          "ORDER BY {Milliseconds} DESC, {TrackId}")
    seen: list[str] = []
    while url is not None:
        page = get_page(reader.client, url)
        seen += [tr.one("th").text() for tr in page.one("tbody").all("tr")]
        nexts = page.one("nav", aria_label="Pagination").all("a", rel="next")
        url = nexts[0].get("href") if nexts else None
    assert seen == [str(row["id"]) for row in expected]


def test_an_item_links_its_targets_and_lists(reader: Chinook) -> None:
    n = reader.n
    doc = get_page(reader.client, f"/{n('Album')}/1")
    links = {a.text(): a.get("href") for a in doc.one("ul", class_="related").all("a")}
    assert links == {n("Artist"): f"/{n('Artist')}/1", n("Track"): f"/{n('Album')}/1/{n('Track')}"}
    tracks = get_page(reader.client, links[n("Track")])
    count: Any = reader.scalar("SELECT count(*) FROM {Track} WHERE {AlbumId} = 1")
    assert f"{count} items match" in tracks.one("p", class_="summary").text()
    assert raw_json(doc) == reader.get(f"/{n('Album')}/1")
