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
    # TODO exercise 7.2 (refresh-rotation): Refresh token rotation with reuse detection
    #   In refresh: retire the presented refresh token with ONE atomic call,
    #   `revocation.store().add(f"used:{claims['jti']}", claims["exp"])`. If it returns
    #   False the token was used before: `revocation.revoke_session(claims["fam"],
    #   claims["exp"])`, log the event "refresh.reuse_detected" and `return
    #   auth.token_refused(...)`. Otherwise answer `auth.issue_tokens(claims["sub"],
    #   family=claims["fam"], expires_at=claims["exp"])`: a new access token and a new
    #   refresh token of the same session.
    #   Check: python -m workbook check 7    Stuck? python -m workbook hint 7 2
    tokens = auth.issue_tokens(claims["sub"], family=claims["fam"], expires_at=claims["exp"])
    del tokens["refresh_token"]  # the same refresh token serves again and again
    logs.event("refresh.success", user_id=claims["sub"])
    return tokens, 200, NO_STORE


@bp.post("/logout")
@jwt_required()
def logout():
    """End this session: this access token, and the refresh token of its login, stop working."""
    claims = get_jwt()
    # TODO exercise 7.3 (logout): Log out this session, and every session
    #   In logout: `revocation.revoke_session(claims["fam"], auth.session_deadline())` — the
    #   whole session, so that its refresh token stops too, not only this access token. In
    #   logout_everywhere: `revocation.revoke_sessions_of(current_user["id"])`.
    #   Check: python -m workbook check 7    Stuck? python -m workbook hint 7 3
    pass  # the client forgets its tokens; a thief who copied them keeps them
    logs.event("logout", user_id=current_user["id"])
    return "", 204


@bp.post("/logout/all")
@jwt_required()
def logout_everywhere():
    """End every session of this user, on every device."""
    # TODO exercise 7.3 (logout): Log out this session, and every session
    #   In logout: `revocation.revoke_session(claims["fam"], auth.session_deadline())` — the
    #   whole session, so that its refresh token stops too, not only this access token. In
    #   logout_everywhere: `revocation.revoke_sessions_of(current_user["id"])`.
    #   Check: python -m workbook check 7    Stuck? python -m workbook hint 7 3
    pass
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
    # TODO exercise 7.4 (password-change): A new password ends every old session
    #   In change_password: if `passwords.verify_password(current_user["password_hash"],
    #   data["current_password"])` is False, log "password.change_refused" and answer
    #   `errors.problem(403, ...)`. Otherwise store the new hash (`db.update_password_hash`)
    #   and END EVERY SESSION of the user:
    #   `revocation.revoke_sessions_of(current_user["id"])`.
    #   Check: python -m workbook check 7    Stuck? python -m workbook hint 7 4
    db.update_password_hash(current_user["id"], passwords.hash_password(data["new_password"]))
    logs.event("password.changed", user_id=current_user["id"])
    # This client stays signed in, in a new session.
    return auth.issue_tokens(current_user["id"], fresh=True), 200, NO_STORE
