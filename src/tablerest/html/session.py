"""Signing in from a browser: the app's own token login, the token kept in a cookie.

The cookie (``tablerest_session``) is ``HttpOnly`` and ``SameSite=Strict`` (``Secure`` over
HTTPS) and is honoured only for HTML pages (``GET``/``HEAD`` that negotiated HTML) and the
pages' own form posts, which carry a CSRF token: a JSON request never sees it, so the JSON API
keeps requiring ``Authorization`` and no JSON route becomes CSRF-able. The token is put where
the API reads it (``Authorization: Bearer``) for that request only, so the row policy decides
pages and forms exactly as it decides JSON.

CSRF: a random ``tablerest_csrf`` cookie (``HttpOnly``, ``SameSite=Strict``) and, in every
form, its HMAC under the app's secret; a post whose token does not match, or whose
``Origin`` is another site's, is a 403.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable

from flask import current_app, g, request
from werkzeug.wrappers import Response

from ..auth import bearer_principal
from ..errors import Forbidden, Unauthorized
from ..headers import SIGNED_IN
from ..representations import prefers_html
from ..state import State

SESSION_COOKIE = "tablerest_session"
CSRF_COOKIE = "tablerest_csrf"
CSRF_FIELD = "__csrf__"
#: The pages' own form posts, which may use the cookie (after the CSRF check).
FORM_ENDPOINTS = frozenset({"tablerest_html.create", "tablerest_html.edit",
                            "tablerest_html.delete", "tablerest_html.sign_out"})


def state() -> State:
    found: State = current_app.extensions["tablerest"]
    return found


def can_sign_in(found: State) -> bool:
    """Whether the app has a token login the sign-in page can call."""
    return found.login is not None and found.token_signer is not None \
        and found.authenticator is bearer_principal


def use_cookie(found: State) -> Callable[[], None]:
    """A ``before_request`` hook (registered before ``check_token_first``): for a page or a
    form post with the session cookie and no ``Authorization``, the cookie's token is the
    request's bearer token; a stale cookie is dropped and the page is drawn signed out."""

    def hook() -> None:
        if "HTTP_COOKIE" not in request.environ:  # API clients: no cookie to parse
            return
        token = request.cookies.get(SESSION_COOKIE)
        if not token or "Authorization" in request.headers or not can_sign_in(found):
            return
        if not _page_request():
            return
        request.environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        try:
            bearer_principal(request, found)
        except Unauthorized:
            del request.environ["HTTP_AUTHORIZATION"]
            g.tablerest_drop_session = True
            return
        request.environ[SIGNED_IN] = True

    return hook


def _page_request() -> bool:
    if request.method in ("GET", "HEAD"):
        endpoint = request.endpoint or ""
        return (endpoint.startswith("tablerest") or not endpoint) and prefers_html(request)
    return request.method == "POST" and request.endpoint in FORM_ENDPOINTS


def principal() -> object | None:
    """Who is signed in on this page (None: nobody, or the app has no login)."""
    if not request.environ.get(SIGNED_IN):
        return None
    found: object | None = state().principal(request)
    return found


def finish(response: Response) -> Response:
    """An ``after_request`` hook: set the CSRF cookie a page made, drop a stale session."""
    secure = request.is_secure
    made = g.get("tablerest_new_csrf")
    if made is not None:
        response.set_cookie(CSRF_COOKIE, made, httponly=True, samesite="Strict",
                            secure=secure, path="/")
    if g.get("tablerest_drop_session"):
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Strict",
                               secure=secure)
    return response


def _secret() -> bytes:
    return (state().settings.secret_key or "").encode()


def _mac(value: str) -> str:
    return hmac.new(_secret(), b"tablerest.csrf:" + value.encode(), hashlib.sha256).hexdigest()


def csrf_token() -> str:
    """The token this page's forms carry (a CSRF cookie is made when there is none)."""
    value = request.cookies.get(CSRF_COOKIE) or g.get("tablerest_new_csrf")
    if not value:
        value = g.tablerest_new_csrf = secrets.token_urlsafe(24)
    return _mac(value)


def check_csrf() -> None:
    """403 unless the form comes from this site's page: same origin, the cookie's token."""
    # Under ``Referrer-Policy: no-referrer`` browsers send ``Origin: null`` with forms.
    origin = request.headers.get("Origin")
    if origin not in (None, "null") and origin != request.host_url.rstrip("/"):
        raise Forbidden(f"The form was sent from another site ({origin!r}); forms are "
                        "accepted only from this site's pages.")
    if request.headers.get("Sec-Fetch-Site") in ("cross-site", "same-site"):
        raise Forbidden("The form was sent from another site; forms are accepted only from "
                        "this site's pages.")
    value = request.cookies.get(CSRF_COOKIE)
    sent = request.form.get(CSRF_FIELD, "")
    if not value or not hmac.compare_digest(_mac(value), sent):
        raise Forbidden("The form's CSRF token is missing or stale: reload the page and send "
                        "the form again.")


def set_session(response: Response, token: str, max_age: int) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, httponly=True,
                        samesite="Strict", secure=request.is_secure, path="/")


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Strict",
                           secure=request.is_secure)
