"""The PostgREST dialect: PostgREST's wire protocol beside tablerest's own, on one core.

``api.postgrest(prefix="/rest/v1")`` serves every resource of the app at
``<prefix>/<name>`` the way PostgREST serves a table, so that PostgREST's clients
(``@supabase/postgrest-js``, ``postgrest`` on PyPI) work unchanged, on SQLite as on
PostgreSQL. One module a job:

- ``parse``: the URL grammar (``select``, filters, ``or``/``and``/``not`` trees, ``order``,
  ``limit``/``offset``) into tablerest's one query description;
- ``prefer``: the ``Prefer`` header;
- ``reads``, ``writes``: the request run on tablerest's one list, policy and write path;
- ``shape``: rows in the shape ``select`` asked for, CSV, ``Content-Range``;
- ``errors``: PostgREST's error body and codes;
- ``views``: the routes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import MethodNotAllowed

from ..errors import ConfigurationError, render_http_exception
from .errors import register_handlers, render_http
from .views import Options, no_function, no_path, resource, root

__all__ = ["Options", "options_for", "register"]

BLUEPRINT = "tablerest_postgrest"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def options_for(prefix: str, unfiltered_writes: Iterable[str] = (),
                max_affected: Mapping[str, int] | None = None) -> Options:
    """Checked options: a prefix that starts with ``/`` and does not end with one."""
    cleaned = "/" + prefix.strip("/")
    if cleaned == "/" or any(char in prefix for char in "<>?#"):
        raise ConfigurationError(f"The PostgREST prefix must be a path such as '/rest/v1', "
                                 f"got {prefix!r}.")
    limits = dict(max_affected or {})
    for name, limit in limits.items():
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise ConfigurationError(f"max_affected[{name!r}] must be an integer of 0 or "
                                     f"more, got {limit!r}.")
    return Options(cleaned, frozenset(unfiltered_writes), limits)


def register(app: Flask, options: Options) -> None:
    """Serve the dialect on ``app`` under ``options.prefix``; once per app."""
    if BLUEPRINT in app.blueprints:
        raise ConfigurationError("The PostgREST dialect is already served on this app.")
    blueprint = Blueprint(BLUEPRINT, __name__, url_prefix=options.prefix)
    blueprint.add_url_rule("/", "root", root, methods=["GET"])
    blueprint.add_url_rule("/<name>", "resource", partial(resource, options=options),
                           methods=METHODS)
    blueprint.add_url_rule("/rpc/<name>", "rpc", no_function, methods=["GET", "POST"])
    blueprint.add_url_rule("/<path:rest>", "path", no_path, methods=METHODS)
    register_handlers(blueprint, lambda: current_app)
    app.register_blueprint(blueprint)
    prefix = options.prefix

    def not_allowed(error: MethodNotAllowed) -> Response:
        # A method no rule serves fails in routing, before any blueprint is chosen: under
        # the prefix it is answered in PostgREST's body too.
        if request.path == prefix or request.path.startswith(prefix + "/"):
            return render_http(error)
        return render_http_exception(error)

    app.register_error_handler(MethodNotAllowed, not_allowed)
