"""``GET /openapi.json`` and ``GET /docs``: Swagger UI with its assets from the
``flask-swagger-ui`` package, so the page fetches nothing from anywhere else."""

from __future__ import annotations

import importlib.metadata
from html import escape
from importlib.resources import files
from pathlib import Path

from flask import Flask, Response, current_app, send_from_directory, url_for

from ..errors import NotFound
from ..serialization import dumps
from .document import openapi_document

#: The Swagger UI files /docs serves, and nothing else of the package.
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})


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
    return Response(dumps(openapi_document(current_app)), mimetype="application/json")


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
<div id="swagger-ui"></div>
<script src="{js}"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: {spec}, dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null
}});
</script>
</body>
</html>
"""


def _docs_view() -> Response:
    version = _asset_version()

    def asset(name: str) -> str:
        return escape(url_for("tablerest.docs_static", name=name, v=version))

    spec = url_for("tablerest.openapi")
    page = _PAGE.format(title=escape(f"{current_app.name}: API docs"),
                        favicon=asset("favicon-32x32.png"), css=asset("swagger-ui.css"),
                        js=asset("swagger-ui-bundle.js"),
                        spec=dumps(spec).decode().replace("<", "\\u003c"))
    return Response(page, mimetype="text/html")


def _asset_view(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound(f"The docs have no asset {name!r}.")
    return send_from_directory(_assets(), name, max_age=86400)
