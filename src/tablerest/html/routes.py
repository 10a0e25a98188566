"""The pages' own routes under ``/-/``: the filter form's redirect, sign-in and sign-out,
and the form posts that create, edit and delete through the API's own code."""

from __future__ import annotations

from urllib.parse import quote, urlencode

import orjson
from flask import Blueprint, current_app, redirect, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from ..auth import AccountLogin, PasswordLogin, log_in
from ..errors import BadRequest, Conflict, NotFound, Unauthorized, ValidationFailed
from ..served import Served
from ..views.items import Items
from ..views.lists import Lists
from . import pages, session
from .forms import can_have_form, form_body, form_fields
from .urls import local_path

#: Endpoint kinds whose URL is a list the filter form may send to.
_LISTS = ("list", "rel_", "scoped_")


def add_routes(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/-/filter", "filter", filter_redirect, methods=["GET"])
    blueprint.add_url_rule("/-/signin", "sign_in", sign_in, methods=["GET", "POST"])
    blueprint.add_url_rule("/-/signout", "sign_out", sign_out, methods=["POST"])
    blueprint.add_url_rule("/-/forms/<resource>", "create", create, methods=["POST"])
    blueprint.add_url_rule("/-/forms/<resource>/<key>/edit", "edit", edit, methods=["POST"])
    blueprint.add_url_rule("/-/forms/<resource>/<key>/delete", "delete", delete,
                           methods=["POST"])


# -- the filter form -------------------------------------------------------------------------


def filter_redirect() -> Response:
    """The filter form's rows (``field``, ``op``, ``value``) -> 302 to the list's canonical
    URL, ``field__op=value``; the list then answers (a bad filter: its 400 page)."""
    target = _list_path(request.args.get("list"))
    params = [(name, value) for name in pages.KEPT for value in request.args.getlist(name)
              if value]
    fields, ops, values = (request.args.getlist(name) for name in ("field", "op", "value"))
    for index, field in enumerate(fields):
        field = field.strip()
        if not field:
            continue
        op = ops[index] if index < len(ops) and ops[index] else "eq"
        value = values[index] if index < len(values) else ""
        params.append((f"{field}__{op}", value))
    query = urlencode(params)
    return redirect(target + (f"?{query}" if query else ""), 302)


def _list_path(raw: str | None) -> str:
    """The list the form filters: a path of this app that a list answers, nothing else."""
    path = local_path(raw)
    endpoint = None
    if path is not None:
        try:
            endpoint, _ = current_app.url_map.bind("localhost").match(path, method="GET")
        except HTTPException:
            endpoint = None
    kind = str(endpoint or "").rpartition(".")[2]
    if path is None or not str(endpoint).startswith("tablerest.") or \
            not kind.startswith(_LISTS) or kind.endswith("_query"):
        raise BadRequest(f"The filter form names {raw!r}, which is not a list of this API.")
    return quote(path, safe="/,")


# -- signing in and out ----------------------------------------------------------------------


def sign_in() -> Response:
    found = session.state()
    if not session.can_sign_in(found) or found.login is None:
        raise NotFound("This API has no sign-in: it does not issue tokens.")
    next_page = local_path(request.values.get("next")) or "/"
    if request.method == "GET":
        return _sign_in_page(next_page, None, 200)
    session.check_csrf()
    login = found.login
    given = request.form.get("login", "")
    password = request.form.get("password", "")
    identifiers = login.identifiers if isinstance(login, PasswordLogin) else ("name",)
    name = "email" if "@" in given and "email" in identifiers else identifiers[0]
    password_field = login.password if isinstance(login, PasswordLogin) else "password"
    credentials = {name: given, password_field: password}
    if isinstance(login, AccountLogin) and login.account(credentials) is None and given:
        return _sign_in_page(next_page, "The name or email has characters a name cannot "
                                        "have.", 401, given)
    try:
        token = log_in(found, login, credentials, request.remote_addr)
    except (Unauthorized, ValidationFailed) as error:
        return _sign_in_page(next_page, error.detail, error.status, given)
    response = redirect(next_page, 303)
    session.set_session(response, str(token["access_token"]), int(token["expires_in"]))
    return response


def _sign_in_page(next_page: str, problem: str | None, status: int,
                  given: str = "") -> Response:
    return pages.render(["tablerest/signin.html"], status=status,
                        title=pages.title_of("Sign in"), heading="Sign in",
                        next_page=next_page, problem=problem, given=given,
                        csrf_needed=True, alternate=None, json=None,
                        crumbs=[("Home", "/"), ("Sign in", "/-/signin")])


def sign_out() -> Response:
    session.check_csrf()
    response = redirect("/", 303)
    session.clear_session(response)
    return response


# -- forms -----------------------------------------------------------------------------------


def _served(resource: str) -> Served:
    served = session.state().served.get(resource)
    if served is None:
        raise NotFound(f"No resource is named {resource!r}.")
    return served


def create(resource: str) -> Response:
    session.check_csrf()
    served = _served(resource)
    if not can_have_form(served, "create"):
        raise NotFound(f"{served.name} has no create form.")
    body = form_body(served, "create", request.form)
    try:
        created = Lists(served, session.state()).create_from(body)
    except (ValidationFailed, Conflict) as error:
        return _form_again(served, "create", f"/-/forms/{quote(served.name, safe='')}",
                           f"New {served.name}", error, "Create")
    return redirect(created.headers["Location"], 303)


def edit(resource: str, key: str) -> Response:
    session.check_csrf()
    served = _served(resource)
    if not can_have_form(served, "update"):
        raise NotFound(f"{served.name} has no edit form.")
    body = form_body(served, "update", request.form)
    views = Items(served, session.state())
    try:
        values = served.validate_body(body, "update", served.resource.updatable_fields)
        updated = views.update(key, values)
    except (ValidationFailed, Conflict) as error:
        return _form_again(served, "update", request.path,
                           f"Edit {served.name} {key}", error, "Save")
    del updated
    return redirect(f"/{quote(served.name, safe='')}/{quote(key, safe=',')}", 303)


def delete(resource: str, key: str) -> Response:
    session.check_csrf()
    served = _served(resource)
    if not served.resource.allows_writes:
        raise NotFound(f"{served.name} is read-only.")
    Items(served, session.state()).delete(key)
    return redirect(f"/{quote(served.name, safe='')}", 303)


def _form_again(served: Served, method: str, action: str, heading: str,
                error: ValidationFailed | Conflict, submit: str) -> Response:
    fields = form_fields(served, method, submitted=request.form, errors=error.errors)
    return pages.form_page(heading, action, fields, error.status, error.detail,
                           orjson.dumps(error.body()), submit)
