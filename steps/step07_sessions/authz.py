"""Who may do what: the authorization decisions, in one place.

Authentication says who you are (the token); authorization says what you may do. Two checks,
each written once and used everywhere, never sprinkled through the views:

- object level (OWASP API1:2023): notes are read and written only through db functions that
  take the owner's id (db.py), so another user's note answers 404 — as if it did not exist;
- function level (OWASP API5:2023): admin-only routes carry @admin_required, which answers 403
  to everyone else.

Where the role lives is a trade-off. In the token, it is free to check but stays valid until
the token expires (15 minutes here): a demoted admin keeps the power that long. Here the user
is loaded from the database on every request (auth.load_user), so a demotion or a disabled
account takes effect on the very next request; the price is one indexed query per request.
"""

from functools import wraps

from flask import request
from flask_jwt_extended import current_user, jwt_required

from . import errors, logs


def admin_required(view):
    """Only for admins: 401 without a valid token, 403 with anybody else's."""

    @wraps(view)
    @jwt_required()
    def wrapper(*args, **kwargs):
        if current_user["role"] != "admin":
            logs.event("access.denied", user_id=current_user["id"], path=request.path)
            return errors.problem(403, "This needs the admin role.", request_id=logs.request_id())
        return view(*args, **kwargs)

    return wrapper
