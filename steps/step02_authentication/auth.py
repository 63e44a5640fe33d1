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
    # TODO exercise 2.2 (verify-password): Verify the password, in the same time whether the user exists or not
    #   Check the password: if there is no such user, call
    #   `passwords.verify_dummy(password)` (as slow as a real check) and answer
    #   BAD_CREDENTIALS, 401. If `passwords.verify_password(user["password_hash"],
    #   password)` is False, answer the same. Then, if `passwords.needs_rehash(...)`, store
    #   `passwords.hash_password(password)` with `db.update_password_hash(user["id"], ...)`.
    #   Check: python -m workbook check 2    Stuck? python -m workbook hint 2 2
    user = db.get_user(username)
    if user is None:
        return BAD_CREDENTIALS, 401
    token = create_access_token(identity=str(user["id"]))
    # RFC 6749 §5.1: responses carrying tokens must not be cached.
    return {"access_token": token}, 200, {"Cache-Control": "no-store", "Pragma": "no-cache"}


# TODO exercise 2.3 (protect-route): Protect a route and read who is calling
#   Make GET /protected require a valid access token (`@jwt_required()`, below the route
#   decorator), load the user whose id is the token's identity (`get_jwt_identity()`, then
#   `db.get_user_by_id`), answer 401 {"msg": "Unknown user"} if there is none, else
#   {"logged_in_as": <username>, "user_id": <id as a string>}.
#   Check: python -m workbook check 2    Stuck? python -m workbook hint 2 3
@bp.get("/protected")
def protected():
    return {"logged_in_as": None}
