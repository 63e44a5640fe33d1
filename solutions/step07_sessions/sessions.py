"""Sessions: refresh with rotation, logout, log out everywhere, change the password.

A login starts a session (auth.issue_tokens): an access token that lives minutes, for every
route, and a refresh token that lives longer, for POST /refresh only (the `type` claim:
Flask-JWT-Extended refuses a refresh token anywhere else, and an access token here). Both carry
the session's id (`fam`, for family).

- Rotation (RFC 9700 §4.14.2): every refresh answers a NEW refresh token and retires the one
  presented. A retired refresh token presented again means two parties hold it — the user and
  a thief — and the server cannot tell which is which: it ends the whole session (reuse
  detection), and both must log in again, which only the user can.
- Logout ends this session: its access token and its refresh token are refused from now on.
  Logout everywhere ends every session of the user. A new password does that too (whoever
  stole a session must not keep it after the user changed the password), and so does an admin
  disabling, enabling or demoting the account (admin.py; OWASP ASVS 5.0 V7.4).

Everything is recorded in the revocation store (revocation.py), which every request consults.
"""

from flask import Blueprint
from flask_jwt_extended import current_user, get_jwt, jwt_required
from marshmallow import ValidationError

from . import auth, db, errors, limits, logs, passwords, revocation, schemas

bp = Blueprint("sessions", __name__)
bp.register_error_handler(ValidationError, auth.invalid_body)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1: tokens are never cached


@bp.post("/refresh")
@jwt_required(refresh=True)
def refresh():
    """A refresh token in, a new access token AND a new refresh token out; the old one retired."""
    claims = get_jwt()
    # BEGIN EXERCISE refresh-rotation
    # Retire the presented refresh token. The store's add is atomic: of two requests with the
    # same token, exactly one adds the mark; the other finds it there and is a reuse.
    if not revocation.store().add(f"used:{claims['jti']}", claims["exp"]):
        revocation.revoke_session(claims["fam"], claims["exp"])
        logs.event("refresh.reuse_detected", user_id=claims["sub"], family=claims["fam"])
        return auth.token_refused("This refresh token was used already: the session has ended. Log in again.")
    tokens = auth.issue_tokens(claims["sub"], family=claims["fam"], expires_at=claims["exp"])
    # STARTER
    # tokens = auth.issue_tokens(claims["sub"], family=claims["fam"], expires_at=claims["exp"])
    # del tokens["refresh_token"]  # the same refresh token serves again and again
    # END EXERCISE
    logs.event("refresh.success", user_id=claims["sub"])
    return tokens, 200, NO_STORE


@bp.post("/logout")
@jwt_required()
def logout():
    """End this session: this access token, and the refresh token of its login, stop working."""
    claims = get_jwt()
    # BEGIN EXERCISE logout
    # The whole family, not just this access token: the refresh token would mint new ones.
    # Its entry lasts as long as the session could (the latest its refresh token can expire).
    revocation.revoke_session(claims["fam"], auth.session_deadline())
    # STARTER
    # pass  # the client forgets its tokens; a thief who copied them keeps them
    # END EXERCISE
    logs.event("logout", user_id=current_user["id"])
    return "", 204


@bp.post("/logout/all")
@jwt_required()
def logout_everywhere():
    """End every session of this user, on every device."""
    # BEGIN EXERCISE logout
    revocation.revoke_sessions_of(current_user["id"])
    # STARTER
    # pass
    # END EXERCISE
    logs.event("logout.all", user_id=current_user["id"])
    return "", 204


@bp.post("/password")
@limits.limiter.limit(limits.login_per_address)  # the current password can be guessed here too
@jwt_required(fresh=True)  # a token from a login, not from a refresh: someone just typed the password
def change_password():
    """Change the password (the current one is required), then end every session of the user."""
    data = schemas.PasswordChangeSchema().load(auth.json_body())
    if data["new_password"] and current_user["username"] in data["new_password"].casefold():
        raise ValidationError("Choose a password that does not contain your username.", "new_password")
    # BEGIN EXERCISE password-change
    if not passwords.verify_password(current_user["password_hash"], data["current_password"]):
        logs.event("password.change_refused", user_id=current_user["id"])
        return errors.problem(403, "The current password is not right.", request_id=logs.request_id())
    db.update_password_hash(current_user["id"], passwords.hash_password(data["new_password"]))
    # Whoever holds a token of an old session (a thief, a forgotten laptop) is out now.
    revocation.revoke_sessions_of(current_user["id"])
    # STARTER
    # db.update_password_hash(current_user["id"], passwords.hash_password(data["new_password"]))
    # END EXERCISE
    logs.event("password.changed", user_id=current_user["id"])
    # This client stays signed in, in a new session.
    return auth.issue_tokens(current_user["id"], fresh=True), 200, NO_STORE
