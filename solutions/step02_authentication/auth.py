"""Registration, login and a protected route.

The classic tutorial's three endpoints and response shapes, made safe:
- passwords are stored as argon2id hashes (passwords.py), users in SQLite (db.py);
- every login failure looks the same — status, body and time — whether the user exists or not
  (OWASP Authentication Cheat Sheet, "Authentication and Error Messages");
- the token says who you are by id (`sub`, a string) and lives 15 minutes;
- a body that is not a JSON object with two strings authenticates nobody and breaks nothing
  (full validation is step 03's lesson).
"""

from flask import Blueprint, request
from flask_jwt_extended import JWTManager, create_access_token, get_jwt_identity, jwt_required

from . import db, passwords

bp = Blueprint("auth", __name__)
jwt = JWTManager()

BAD_CREDENTIALS = {"msg": "Bad username or password"}


def read_credentials():
    """(username, password) from a JSON object body, or None when the body is anything else."""
    data = request.get_json(silent=True)  # None for no body, malformed JSON, or not JSON at all
    if not isinstance(data, dict):
        return None
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        return None
    return username, password


def bad_request():
    return {"msg": 'Send a JSON object: {"username": "...", "password": "..."}'}, 400


@bp.post("/register")
def register():
    credentials = read_credentials()
    if credentials is None:
        return bad_request()
    username, password = credentials
    try:
        db.create_user(username, passwords.hash_password(password))
    except db.UsernameTaken:
        # 409 Conflict (RFC 9110 §15.5.10): the name is taken. Registration cannot hide that a
        # name exists without e-mail verification; step 04 rate-limits it against harvesting.
        return {"msg": "This username is not available"}, 409
    return {"msg": "User registered successfully"}, 201


@bp.post("/login")
def login():
    credentials = read_credentials()
    if credentials is None:
        return bad_request()
    username, password = credentials
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
    return {"access_token": token}, 200, {"Cache-Control": "no-store", "Pragma": "no-cache"}


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
