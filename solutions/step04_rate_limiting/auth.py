"""Registration, login and a protected route.

The classic tutorial's three endpoints and response shapes, made safe:
- passwords are stored as argon2id hashes (passwords.py), users in SQLite (db.py);
- every login failure looks the same — status, body and time — whether the user exists or not
  (OWASP Authentication Cheat Sheet, "Authentication and Error Messages");
- the token says who you are by id (`sub`, a string) and lives 15 minutes;
- every body is validated by a schema (schemas.py) before any of it is used; what fails gets
  a 4xx that says what is wrong, per field, and never a 500;
- guessing is slowed down: login per address and per account, registration per address
  (limits.py).
"""

from flask import Blueprint, abort, make_response, request
from flask_jwt_extended import JWTManager, create_access_token, get_jwt_identity, jwt_required
from marshmallow import ValidationError
from werkzeug.exceptions import BadRequest

from . import db, limits, passwords, schemas

bp = Blueprint("auth", __name__)
jwt = JWTManager()

BAD_CREDENTIALS = {"msg": "Bad username or password"}


def refuse(status, msg):
    """Stop handling this request with a JSON answer (abort() with a response, not an HTML page)."""
    abort(make_response({"msg": msg}, status))


def json_body():
    """The request's JSON body, parsed; a clear 4xx for anything that is not JSON."""
    # BEGIN EXERCISE read-json
    if not request.is_json:
        refuse(415, "Send a JSON body with the header Content-Type: application/json.")
    # MAX_CONTENT_LENGTH answers 413 to a Content-Length over the cap before reading. A chunked
    # body has no length: Werkzeug then reads up to the cap and stops, silently, so the cut body
    # could parse. Without a length, a body that fills the cap may go on: refuse it the same way.
    cap = request.max_content_length
    if cap is not None and request.content_length is None and len(request.get_data()) >= cap:
        abort(413)
    try:
        return request.get_json()
    except BadRequest:  # malformed JSON, or bytes that are not UTF-8
        refuse(400, "The body is not valid JSON.")
    except RecursionError:  # Python's json parser recurses once per [ or {: refuse deep nesting
        refuse(400, "The JSON is nested too deeply.")
    # STARTER
    # return request.get_json(silent=True)
    # END EXERCISE


@bp.errorhandler(ValidationError)
def invalid_body(error):
    """A body that fails its schema: 400, with what is wrong per field (or per body: "_schema")."""
    # BEGIN EXERCISE validation-errors
    return {"msg": "The request body is not valid.", "errors": error.messages}, 400
    # STARTER
    # return {"msg": "The request body is not valid."}, 400
    # END EXERCISE


@bp.post("/register")
@limits.limiter.limit(limits.register_per_address)
def register():
    data = schemas.RegisterSchema().load(json_body())
    username, password = data["username"], data["password"]
    try:
        db.create_user(username, passwords.hash_password(password))
    except db.UsernameTaken:
        # 409 Conflict (RFC 9110 §15.5.10): the name is taken. Registration cannot hide that a
        # name exists without e-mail verification; step 04 rate-limits it against harvesting.
        return {"msg": "This username is not available"}, 409
    return {"msg": "User registered successfully"}, 201


@bp.post("/login")
# BEGIN EXERCISE login-limits
@limits.limiter.limit(limits.login_per_address)
# Unknown clients share the account's budget, and all of them one ceiling; a device the owner
# logged in from before has a budget of its own, so a stranger cannot lock the owner out.
@limits.limiter.limit(limits.login_per_account, key_func=limits.account_key, exempt_when=limits.known_device)
@limits.limiter.limit(limits.login_everyone, key_func=limits.everyone, exempt_when=limits.known_device)
@limits.limiter.limit(limits.login_per_device, key_func=limits.device_key, exempt_when=limits.unknown_device)
# END EXERCISE
def login():
    data = schemas.LoginSchema().load(json_body())
    username, password = data["username"], data["password"]
    # BEGIN EXERCISE verify-password
    user = db.get_user(username)
    if user is None:
        passwords.verify_dummy(password)  # as slow as a real check: timing reveals nothing
        return BAD_CREDENTIALS, 401
    if not passwords.verify_password(user["password_hash"], password):
        return BAD_CREDENTIALS, 401
    if passwords.needs_rehash(user["password_hash"]):
        # The cost parameters went up since this hash was made: upgrade it now, while we
        # have the password in hand (it is never stored).
        db.update_password_hash(user["id"], passwords.hash_password(password))
    # STARTER
    # user = db.get_user(username)
    # if user is None:
    #     return BAD_CREDENTIALS, 401
    # END EXERCISE
    token = create_access_token(identity=str(user["id"]))
    # RFC 6749 §5.1: responses carrying tokens must not be cached.
    return {"access_token": token}, 200, {"Cache-Control": "no-store", "Pragma": "no-cache",
                                          "Set-Cookie": limits.device_cookie()}  # now a known device of the account


# BEGIN EXERCISE protect-route
@bp.get("/protected")
@jwt_required()
def protected():
    user = db.get_user_by_id(get_jwt_identity())
    if user is None:  # a valid token for an account that no longer exists
        return {"msg": "Unknown user"}, 401
    return {"logged_in_as": user["username"], "user_id": str(user["id"])}
# STARTER
# @bp.get("/protected")
# def protected():
#     return {"logged_in_as": None}
# END EXERCISE
