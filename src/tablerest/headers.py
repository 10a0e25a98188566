"""Headers on every response, set in one ``after_request`` hook so that errors, 304s,
streams and the docs get them too:

- ``X-Content-Type-Options: nosniff``: a browser never guesses a type the server did not send;
- ``Vary: Accept``: one URL answers JSON, HTML, CSV or NDJSON by ``Accept`` (errors too), so a
  cache must never hand one client's representation to another;
- a Content-Security-Policy on the docs page (``/docs``), which runs only the scripts it
  serves itself (no inline script, nothing from elsewhere);
- on the HTML pages (``tablerest.html``) a stricter policy still (nothing inline, nothing from
  elsewhere, no frames, forms posting only here), ``Referrer-Policy: no-referrer`` and
  ``X-Robots-Tag: noindex, nofollow``; a page seen signed in is ``private, no-store``;
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
#: The browsable pages' policy: the one stylesheet and script tablerest serves, nothing else.
PAGES_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
             "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
#: The WSGI environ key ``tablerest.html`` sets when a page is drawn for a signed-in caller.
SIGNED_IN = "tablerest.html.signed_in"
#: Endpoints that do not negotiate (files): no ``Vary: Accept``.
FILES = frozenset({"tablerest_html.static"})


def register_headers(app: Flask) -> None:
    """Add the headers to every response of ``app``; a second call does nothing."""
    if security_headers not in app.after_request_funcs.get(None, []):
        app.after_request(security_headers)


def security_headers(response: Response) -> Response:
    """The ``after_request`` hook: see the module docstring."""
    headers = response.headers
    headers["X-Content-Type-Options"] = "nosniff"
    endpoint = request.endpoint
    if endpoint not in FILES:
        vary = headers.get("Vary")
        if vary is None:  # the common case, without parsing a header set
            headers["Vary"] = "Accept"
        else:
            response.vary.add("Accept")
    if endpoint in DOCS_PAGES:
        response.headers.setdefault("Content-Security-Policy", DOCS_CSP)
    elif response.mimetype == "text/html":
        _page_headers(response)
    if "HTTP_AUTHORIZATION" in request.environ:  # the Authorization header, unparsed
        _private(response)
    return response


def _page_headers(response: Response) -> None:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", PAGES_CSP)
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Robots-Tag", "noindex, nofollow")
    headers.setdefault("X-Frame-Options", "DENY")
    if request.environ.get(SIGNED_IN):
        cache = response.cache_control
        cache.public = False
        cache.private = True
        cache.no_store = True


def _private(response: Response) -> None:
    """Keep the response out of shared caches; ``no-store`` and ``private`` already do."""
    if "Cache-Control" not in response.headers:  # the common case: no header to parse
        response.headers["Cache-Control"] = "private"
        return
    cache = response.cache_control
    if cache.no_store or cache.private:
        return
    cache.public = False
    cache.private = True
