"""``GET /openapi.json`` and ``GET /docs``: Swagger UI with its assets from the
``flask-swagger-ui`` package, so the page fetches nothing from anywhere else.

The page has no inline script (its Content-Security-Policy, set in ``headers.py``, allows
only scripts it serves): a small script of ours starts Swagger UI and reads the document's
URL from the page. ``sourceMappingURL`` comments are taken out of the assets, as the package
ships no source maps and a browser would ask for them.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import re
from html import escape
from importlib.resources import files
from pathlib import Path

from flask import Flask, Response, current_app, request, send_from_directory, url_for

from ..errors import NotFound
from ..serialization import dumps
from .document import api_title, openapi_document

#: The script that starts Swagger UI on the page, served as /docs/static/tablerest-docs.js.
INIT_SCRIPT = "tablerest-docs.js"
_INIT = b"""\
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.url, dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null
  });
}());
"""
#: The Swagger UI files /docs serves, and nothing else of the package.
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})
_TEXT = {".css": "text/css", ".js": "text/javascript"}
#: A source map comment at the end of a CSS or JavaScript file.
_SOURCE_MAP = re.compile(rb"\s*(?:/\*# sourceMappingURL=[^*]*\*/|//# sourceMappingURL=\S*)\s*\Z")
_MAX_AGE = 86400


def register_openapi(app: Flask) -> None:
    """Serve ``GET /openapi.json`` and ``GET /docs`` on ``app``; a second call does nothing.

    The document is built on request, so resources added later appear in it.
    """
    if "tablerest.openapi" in app.view_functions:
        return
    app.add_url_rule("/openapi.json", "tablerest.openapi", _openapi_view, methods=["GET"])
    app.add_url_rule("/docs", "tablerest.docs", _docs_view, methods=["GET"])
    app.add_url_rule("/docs/static/<name>", "tablerest.docs_static", _asset_view,
                     methods=["GET"])


def _openapi_view() -> Response:
    document = openapi_document(current_app)
    if request.script_root:  # mounted under a prefix: the paths are relative to it
        document["servers"] = [{"url": request.script_root,
                                "description": "The server that serves this document."}]
    return Response(dumps(document), mimetype="application/json")


def _assets() -> Path:
    return Path(str(files("flask_swagger_ui").joinpath("dist")))


def _asset_version() -> str:
    return importlib.metadata.version("flask-swagger-ui")


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" type="image/png" href="{favicon}">
<link rel="stylesheet" href="{css}">
</head>
<body>
<div id="swagger-ui" data-url="{spec}"></div>
<script src="{js}"></script>
<script src="{init}"></script>
</body>
</html>
"""


def _docs_view() -> Response:
    version = _asset_version()

    def asset(name: str, v: str = version) -> str:
        return escape(url_for("tablerest.docs_static", name=name, v=v))

    page = _PAGE.format(title=escape(f"{api_title(current_app)}: API docs"),
                        favicon=asset("favicon-32x32.png"), css=asset("swagger-ui.css"),
                        js=asset("swagger-ui-bundle.js"),
                        init=asset(INIT_SCRIPT, _text_asset(INIT_SCRIPT)[1][:12]),
                        spec=escape(url_for("tablerest.openapi")))
    return Response(page, mimetype="text/html")


def _asset_view(name: str) -> Response:
    if name != INIT_SCRIPT and name not in ASSETS:
        raise NotFound(f"The docs have no asset {name!r}.")
    mimetype = _TEXT.get(Path(name).suffix)
    if mimetype is None:
        return send_from_directory(_assets(), name, max_age=_MAX_AGE)
    body, etag = _text_asset(name)
    response = Response(body, mimetype=mimetype)
    response.cache_control.public = True
    response.cache_control.max_age = _MAX_AGE
    response.set_etag(etag)
    response.make_conditional(request)
    return response


def _without_source_map(text: bytes) -> bytes:
    return _SOURCE_MAP.sub(b"\n", text)


@functools.cache
def _text_asset(name: str) -> tuple[bytes, str]:
    """A CSS or JavaScript asset, without its source map comment (no map is shipped), and
    its entity tag."""
    body = _INIT if name == INIT_SCRIPT else _without_source_map((_assets() / name).read_bytes())
    return body, hashlib.blake2b(body, digest_size=16).hexdigest()
