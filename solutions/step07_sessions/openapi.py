"""The API's inventory: an OpenAPI 3.1 document made from the marshmallow schemas and the routes,
and Swagger UI to try it in a browser.

OWASP API9:2023 (improper inventory management): know what you expose. The document lists every
route, what each takes and what each answers, so that nothing is served that nobody knows about
(a test fails when a route is missing here). It is also a map for an attacker, so it is served
only when API_DOCS is true: `python -m workbook run` turns it on for development; the default,
and so production, is off.

- GET /openapi.json: the document, built once per app (apispec with its marshmallow plugin).
- GET /docs: Swagger UI, from the files the flask-swagger-ui package ships (no CDN: works offline).
"""

import copy
from pathlib import Path

from flask import Blueprint, abort, current_app, send_from_directory
from marshmallow import Schema, fields

from . import schemas

bp = Blueprint("openapi", __name__)

DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} (API docs)</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/start.js"></script>
</body>
</html>
"""
# In a file of its own, not inline: a Content-Security-Policy can then forbid inline scripts.
START_SCRIPT = 'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});\n'


# --- what the answers look like (documentation only: the views build them) -----------------------

class Status(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})


class Message(Schema):
    msg = fields.String(required=True)


class Problem(Schema):
    """RFC 9457 problem details (errors.py): every error of this API has this shape."""
    type = fields.String(required=True, metadata={"example": "about:blank"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    request_id = fields.String(metadata={"description": "Quote it when you report a problem: the log has the rest."})
    errors = fields.Dict(keys=fields.String(),
                         metadata={"description": "400 only: what is wrong, per field (\"_schema\": the body as a whole)."})


class Token(Schema):
    access_token = fields.String(required=True, metadata={"description": "A JWT: send it as `Authorization: Bearer <token>`."})
    refresh_token = fields.String(required=True, metadata={"description": "For POST /refresh only; used once."})
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "The access token's lifetime, in seconds."})


class Me(Schema):
    logged_in_as = fields.String(required=True)
    user_id = fields.String(required=True)


class NotePage(Schema):
    items = fields.List(fields.Nested(schemas.NoteOut), required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)


class UserPage(Schema):
    items = fields.List(fields.Nested(schemas.UserOut), required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)


def body(schema):
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def answer(description, schema=None, media_type="application/json"):
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {media_type: {"schema": schema}}}


def error(description):
    """The shape of this step's error answers: problem details."""
    return answer(description, Problem, "application/problem+json")


def body_errors():
    """What any route that reads a JSON body may answer for a bad one."""
    return {
        "400": error("The body is not valid JSON, or fails its schema (then `errors` says what is wrong)."),
        "413": error("The body is larger than MAX_CONTENT_LENGTH."),
        "415": error("The body is not sent as Content-Type: application/json."),
    }


def too_many():
    """What a rate-limited route answers once its limit is reached (limits.py)."""
    return {"429": {**error("Too many requests: wait as long as Retry-After says."),
                    "headers": {"Retry-After": {"description": "Seconds to wait before trying again.",
                                                "schema": {"type": "integer"}}}}}


def busy(description="The server is busy checking other passwords: wait as long as Retry-After says."):
    """What a route that hashes a password answers when every hashing slot stays taken (passwords.py)."""
    return {"503": {**error(description),
                    "headers": {"Retry-After": {"description": "Seconds to wait before trying again.",
                                                "schema": {"type": "integer"}}}}}


def token_errors():
    """What a route behind @jwt_required() answers without a good token: 401, whatever is wrong with it."""
    return {"401": {**error("No token, or one that is malformed, forged, expired or for an account that no longer "
                            "exists."),
                    "headers": {"WWW-Authenticate": {"description": "Bearer (RFC 6750 §3)", "schema": {"type": "string"}}}},
            **store_down()}


def store_down():
    """What a route that checks or records sessions answers when the revocation store is unreachable."""
    return {"503": {**error("The revocation store cannot be reached, so no token is accepted (fail closed)."),
                    "headers": {"Retry-After": {"description": "Seconds to wait before trying again.",
                                                "schema": {"type": "integer"}}}}}


def session_route(summary, ok):
    """POST /refresh, /logout, /logout/all: a token, no body."""
    return {"summary": summary, "security": [{"bearer": []}],
            "responses": {**ok, **token_errors(), **too_many(), **unexpected()}}


def page_query():
    """?page=&per_page= (schemas.PageArgs)."""
    return [{"in": "query", "schema": schemas.PageArgs}]


def note_id():
    return [{"in": "path", "name": "note_id", "required": True,
             "schema": {"type": "integer", "minimum": 0, "maximum": 9223372036854775807}}]


def etag():
    return {"ETag": {"description": 'The note\'s version, e.g. "3": send it back in If-Match to change only that '
                                    "version.", "schema": {"type": "string"}}}


def if_match():
    return {"in": "header", "name": "If-Match", "required": False, "schema": {"type": "string"},
            "description": 'Change the note only if it is still at this version (its ETag, e.g. "3"); `*`: any.'}


def not_yours():
    """Object-level authorization (notes.py): another user's note is exactly as missing as a deleted one."""
    return {"404": error("No such note: it does not exist, or it is not yours (the same answer either way).")}


def admins_only():
    """Function-level authorization (authz.py): a valid token of a user who is not an admin."""
    return {"403": error("Only admins may do this.")}


def unexpected():
    """The last resort (errors.py): a bug answers a generic problem with a request id, nothing more."""
    return {"500": error("Something went wrong on the server; the request id finds it in the log.")}


# A successful login makes the client a known device of the account (limits.py): a stranger's
# guesses then cannot lock it out.
DEVICE_COOKIE = {"Set-Cookie": {"description": "login_device=...; HttpOnly; Secure; SameSite=Strict; Path=/login: "
                                               "send it back on the next login to this account.",
                                "schema": {"type": "string"}}}


# Every route of the app: path, method, and its operation. tests/test_openapi.py checks that the
# app serves exactly these (apart from the documentation itself).
ROUTES = {
    ("/health", "get"): {
        "summary": "Is the API up?",
        "responses": {"200": answer("Up.", Status), **unexpected()},
    },
    ("/register", "post"): {
        "summary": "Create an account.",
        "requestBody": body(schemas.RegisterSchema),
        "responses": {"201": answer("Registered.", Message), **body_errors(),
                      "409": error("The username is taken."), **too_many(), **unexpected(),
                      **busy()},
    },
    ("/login", "post"): {
        "summary": "Log in: get an access token.",
        "requestBody": body(schemas.LoginSchema),
        "responses": {"200": {**answer("Logged in.", Token), "headers": DEVICE_COOKIE}, **body_errors(),
                      "401": error("Bad username or password (the same answer either way)."), **too_many(),
                      **unexpected(), **store_down(),
                      **busy("The revocation store cannot be reached, or the server is busy checking other passwords: "
                             "wait as long as Retry-After says.")},
    },
    ("/refresh", "post"): session_route(
        "Send the REFRESH token: get a new access token and a new refresh token (the old one is retired).",
        {"200": answer("New tokens of the same session.", Token)}),
    ("/logout", "post"): session_route("End this session: its access and refresh tokens.", {"204": answer("Logged out.")}),
    ("/logout/all", "post"): session_route("End every session of this account.", {"204": answer("Logged out everywhere.")}),
    ("/password", "post"): {
        "summary": "Change the password (needs a token from a login, not a refresh); every session ends.",
        "security": [{"bearer": []}],
        "requestBody": body(schemas.PasswordChangeSchema),
        "responses": {"200": answer("Changed; a new session for this client.", Token), **body_errors(),
                      "403": error("The current password is not right."), **token_errors(), **too_many(),
                      **unexpected(), **busy()},
    },
    ("/protected", "get"): {
        "summary": "Who am I? (needs a token)",
        "security": [{"bearer": []}],
        "responses": {"200": answer("The token's user.", Me), **token_errors(), **too_many(), **unexpected()},
    },
    ("/notes", "post"): {
        "summary": "Write a note (it is yours alone).",
        "security": [{"bearer": []}],
        "requestBody": body(schemas.NoteIn),
        "responses": {"201": {**answer("Created.", schemas.NoteOut),
                              "headers": {"Location": {"description": "The new note's address.",
                                                       "schema": {"type": "string"}}, **etag()}},
                      **body_errors(), **token_errors(), **too_many(), **unexpected()},
    },
    ("/notes", "get"): {
        "summary": "Your notes, a page at a time.",
        "security": [{"bearer": []}],
        "parameters": page_query(),
        "responses": {"200": answer("A page of your notes.", NotePage),
                      "400": error("The query string is not valid."), **token_errors(), **too_many(),
                      **unexpected()},
    },
    ("/notes/{note_id}", "get"): {
        "summary": "One of your notes.",
        "security": [{"bearer": []}],
        "parameters": note_id(),
        "responses": {"200": {**answer("The note.", schemas.NoteOut), "headers": etag()}, **not_yours(),
                      **token_errors(), **too_many(), **unexpected()},
    },
    ("/notes/{note_id}", "patch"): {
        "summary": "Change the title or the body of one of your notes.",
        "security": [{"bearer": []}],
        "parameters": [*note_id(), if_match()],
        "requestBody": body(schemas.NotePatch),
        "responses": {"200": {**answer("The changed note.", schemas.NoteOut), "headers": etag()}, **body_errors(),
                      **not_yours(), "412": error("If-Match: the note has changed since that version."),
                      **token_errors(), **too_many(), **unexpected()},
    },
    ("/notes/{note_id}", "delete"): {
        "summary": "Delete one of your notes.",
        "security": [{"bearer": []}],
        "parameters": note_id(),
        "responses": {"204": answer("Deleted."), **not_yours(), **token_errors(), **too_many(), **unexpected()},
    },
    ("/admin/users", "get"): {
        "summary": "Every account, a page at a time (admins only).",
        "security": [{"bearer": []}],
        "parameters": page_query(),
        "responses": {"200": answer("A page of accounts.", UserPage), "400": error("The query string is not valid."),
                      **admins_only(), **token_errors(), **too_many(), **unexpected()},
    },
    ("/admin/users/{user_id}", "patch"): {
        "summary": "Change an account's role, or disable it (admins only).",
        "security": [{"bearer": []}],
        "parameters": [{"in": "path", "name": "user_id", "required": True,
                        "schema": {"type": "integer", "minimum": 0, "maximum": 9223372036854775807}}],
        "requestBody": body(schemas.AdminUserPatch),
        "responses": {"200": answer("The changed account.", schemas.UserOut), **body_errors(),
                      "404": error("No such account."), "409": error("This would leave no enabled admin."),
                      **admins_only(), **token_errors(), **too_many(), **unexpected()},
    },
}


def document(app):
    """The OpenAPI 3.1 document of ``app``, as a dict."""
    from apispec import APISpec  # imported only when the docs are served: it costs ~50 ms
    from apispec.ext.marshmallow import MarshmallowPlugin

    spec = APISpec(title=f"Secure REST API with Flask ({app.name.rsplit('.', 1)[-1]})", version="1.0.0",
                   openapi_version="3.1.0", plugins=[MarshmallowPlugin()],
                   info={"description": "The workbook's API. Log in, then Authorize with the access token."})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    paths = {}
    for (path, method), operation in ROUTES.items():
        # A copy: apispec replaces the schema classes in what it is given by references.
        paths.setdefault(path, {})[method] = copy.deepcopy(operation)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    doc = spec.to_dict()
    # A username is made canonical (schemas.canonical_username) before its pattern is checked, so
    # "ALICE" is a valid input: document the rule, not the pattern of the canonical form.
    for schema in doc["components"]["schemas"].values():
        username = schema.get("properties", {}).get("username", {})
        if username.pop("pattern", None):
            username["description"] = "Made canonical first (NFKC, case folded), then: " + schemas.USERNAME_RULE
    return doc


def init_app(app):
    """Serve the document and Swagger UI when API_DOCS is true."""
    if app.config["API_DOCS"]:
        app.register_blueprint(bp)


# Swagger UI is a page, not JSON: it may load its script and style from here, and call the API
# (security_headers in __init__.py keeps a policy that is already set).
DOCS_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
               "connect-src 'self'; frame-ancestors 'none'")


@bp.after_request
def docs_policy(response):
    response.headers["Content-Security-Policy"] = DOCS_POLICY
    return response


@bp.get("/openapi.json")
def openapi_json():
    spec = current_app.extensions.get("openapi")
    if spec is None:
        spec = current_app.extensions["openapi"] = document(current_app)
    return spec


@bp.get("/docs")
def docs():
    return DOCS_PAGE.format(title=current_app.name.rsplit(".", 1)[-1])


@bp.get("/docs/start.js")
def docs_start():
    return START_SCRIPT, 200, {"Content-Type": "text/javascript; charset=utf-8"}


@bp.get("/docs/<any('swagger-ui.css', 'swagger-ui-bundle.js'):name>")
def docs_asset(name):
    try:
        import flask_swagger_ui  # only its copy of Swagger UI 5 (OpenAPI 3.1) is used
    except ImportError:
        abort(404)
    return send_from_directory(Path(flask_swagger_ui.__file__).with_name("dist"), name)
