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


class Invalid(Schema):
    msg = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), required=True,
                         metadata={"description": "What is wrong, per field (\"_schema\": the body as a whole)."})


class Token(Schema):
    access_token = fields.String(required=True, metadata={"description": "A JWT: send it as `Authorization: Bearer <token>`."})


class Me(Schema):
    logged_in_as = fields.String(required=True)
    user_id = fields.String(required=True)


def body(schema):
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def answer(description, schema=None, media_type="application/json"):
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {media_type: {"schema": schema}}}


def error(description):
    """The shape of this step's error answers."""
    return answer(description, Message)


def body_errors():
    """What any route that reads a JSON body may answer for a bad one."""
    return {
        "400": answer("The body is not valid JSON, or fails its schema.", {"oneOf": [Invalid, Message]}),
        "413": answer("The body is larger than MAX_CONTENT_LENGTH.", {"type": "string"}, "text/html"),
        "415": error("The body is not sent as Content-Type: application/json."),
    }


def busy(description="The server is busy checking other passwords: wait as long as Retry-After says."):
    """What a route that hashes a password answers when every hashing slot stays taken (passwords.py)."""
    return {"503": {**error(description),
                    "headers": {"Retry-After": {"description": "Seconds to wait before trying again.",
                                                "schema": {"type": "integer"}}}}}


def token_errors():
    """What a route behind @jwt_required() may answer without a good token (Flask-JWT-Extended's defaults)."""
    return {"401": error("No token, an expired one, or one for an account that no longer exists."),
            "422": error("A token that is malformed or whose signature does not verify.")}


# Every route of the app: path, method, and its operation. tests/test_openapi.py checks that the
# app serves exactly these (apart from the documentation itself).
ROUTES = {
    ("/health", "get"): {
        "summary": "Is the API up?",
        "responses": {"200": answer("Up.", Status)},
    },
    ("/register", "post"): {
        "summary": "Create an account.",
        "requestBody": body(schemas.RegisterSchema),
        "responses": {"201": answer("Registered.", Message), **body_errors(),
                      "409": error("The username is taken."), **busy()},
    },
    ("/login", "post"): {
        "summary": "Log in: get an access token.",
        "requestBody": body(schemas.LoginSchema),
        "responses": {"200": answer("Logged in.", Token), **body_errors(),
                      "401": error("Bad username or password (the same answer either way)."), **busy()},
    },
    ("/protected", "get"): {
        "summary": "Who am I? (needs a token)",
        "security": [{"bearer": []}],
        "responses": {"200": answer("The token's user.", Me), **token_errors()},
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
