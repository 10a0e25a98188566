"""Headers on every response, set in one ``after_request`` hook so that errors, 304s,
streams and the docs get them too:

- ``X-Content-Type-Options: nosniff``: a browser never guesses a type the server did not send;
- a Content-Security-Policy on the docs page (``/docs``), which runs only the scripts it
  serves itself (no inline script, nothing from elsewhere);
- ``Cache-Control: private`` on the answer to a request that carries ``Authorization``, so a
  shared cache never keeps one caller's data for another, unless the response already keeps
  itself out of every cache (``no-store``).
"""

from __future__ import annotations

from flask import Flask, Response, request

#: The docs page's policy: its own scripts and styles only; Swagger UI sets inline styles,
#: draws icons from ``data:`` URLs, and calls the API from the page ("Try it out").
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")
#: The endpoints whose HTML pages get ``DOCS_CSP``.
DOCS_PAGES = frozenset({"tablerest.docs"})


def register_headers(app: Flask) -> None:
    """Add the headers to every response of ``app``; a second call does nothing."""
    if security_headers not in app.after_request_funcs.get(None, []):
        app.after_request(security_headers)


def security_headers(response: Response) -> Response:
    """The ``after_request`` hook: see the module docstring."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.endpoint in DOCS_PAGES:
        response.headers.setdefault("Content-Security-Policy", DOCS_CSP)
    if "Authorization" in request.headers:
        _private(response)
    return response


def _private(response: Response) -> None:
    """Keep the response out of shared caches; ``no-store`` and ``private`` already do."""
    cache = response.cache_control
    if cache.no_store or cache.private:
        return
    cache.public = False
    cache.private = True
