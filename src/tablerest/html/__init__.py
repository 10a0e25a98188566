"""Browsable HTML for every GET: the index, lists, items and errors, as pages a person can
sort, filter, page through and (signed in) edit, without JavaScript.

One layer over the JSON API, never beside it: the views negotiate (``representations``) and
hand this package the envelope or item they built; forms post through the same validation
and row policy. ``register_html(app, state)`` serves the stylesheet and script, the filter
form's redirect, sign-in and sign-out, and the form posts, under ``/-/``.
"""

from __future__ import annotations

from flask import Blueprint, Flask

from ..errors import ERROR_PAGES
from ..representations import PAGES, offer_pages
from ..state import State
from . import pages, routes, session

blueprint = Blueprint("tablerest_html", __name__, template_folder="templates",
                      static_folder="static", static_url_path="/-/static")
routes.add_routes(blueprint)


class Pages:
    """What the views call to draw a page (registered as the HTML representation)."""

    list_page = staticmethod(pages.list_page)
    item_page = staticmethod(pages.item_page)
    index_page = staticmethod(pages.index_page)


if not PAGES:
    offer_pages(Pages())
    ERROR_PAGES.append(pages.error_page)


def register_html(app: Flask, state: State) -> None:
    """Serve the pages' files and form routes on ``app``; the session cookie is read
    before ``check_token_first`` (register this first)."""
    app.register_blueprint(blueprint)
    app.before_request(session.use_cookie(state))
    app.after_request(session.finish)


__all__ = ["Pages", "blueprint", "register_html"]
