"""Admin-only functions: list users, change a user's role, disable or enable an account.

Every route here carries @authz.admin_required: anyone else gets 403 (OWASP API5:2023,
Broken Function Level Authorization). No route makes the first admin: an operator does, on the
server, with `flask --app ... create-admin` (commands.py).

Disabling, enabling or demoting an account ends its sessions (step 07): a disabled account's
tokens must not come back to life when it is enabled again (OWASP ASVS 5.0 V7.4.2), and a
demoted admin's refresh token must not outlive the decision.
"""

from flask import Blueprint
from flask_jwt_extended import current_user
from marshmallow import ValidationError

from . import auth, authz, db, errors, logs, notes, revocation, schemas

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.register_error_handler(ValidationError, auth.invalid_body)


@bp.get("/users")
@authz.admin_required
def list_users():
    args = notes.page_args()
    rows, total = db.list_users(args["per_page"], (args["page"] - 1) * args["per_page"])
    return {
        "items": schemas.UserOut(many=True).dump(rows),
        "page": args["page"],
        "per_page": args["per_page"],
        "total": total,
    }


@bp.patch("/users/<rowid:user_id>")  # notes.RowId: an id too large to exist answers 404
@authz.admin_required
def update_user(user_id):
    changes = schemas.AdminUserPatch().load(auth.json_body())
    before = db.get_user_by_id(user_id)
    try:
        found = db.update_user(user_id, **changes)
    except db.LastAdmin:
        logs.event("admin.last_admin_kept", admin_user_id=current_user["id"], target_user_id=user_id, changes=changes)
        return errors.problem(409, "This would leave no enabled admin: make another admin first.",
                              request_id=logs.request_id())
    if not found:
        return errors.problem(404, "There is no such user.", request_id=logs.request_id())
    if "disabled" in changes or (before["role"] == "admin" and changes.get("role") == "user"):
        revocation.revoke_sessions_of(user_id)
    # Who changed whom, and how (ASVS 5.0 V16.2.1: the log says who did it).
    logs.event("admin.user_updated", admin_user_id=current_user["id"], target_user_id=user_id, changes=changes)
    return schemas.UserOut().dump(db.get_user_by_id(user_id))
