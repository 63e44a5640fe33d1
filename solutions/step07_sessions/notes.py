"""Notes: a resource owned by users. Create, list mine, read, update, delete.

Every note is looked up with its owner's id (db.py): asking for someone else's note is the same
as asking for one that does not exist — 404, reads and writes alike — so ids that can be
guessed reveal nothing (OWASP API1:2023).
"""

from flask import Blueprint, abort, request
from flask_jwt_extended import current_user, jwt_required
from marshmallow import ValidationError
from werkzeug.routing import IntegerConverter

from . import auth, db, errors, logs, schemas

bp = Blueprint("notes", __name__, url_prefix="/notes")
bp.register_error_handler(ValidationError, auth.invalid_body)


class RowId(IntegerConverter):
    """An id in a URL. Beyond SQLite's largest integer it can name no row: it becomes -1, which
    matches nothing, so the view answers 404 like for any missing note. (`int(max=...)` would
    refuse to match instead, and Werkzeug then answers DELETE and PATCH with 405.)"""

    def to_python(self, value):
        number = super().to_python(value)
        return number if number <= 9223372036854775807 else -1


# Registered on the app before the blueprint's routes are added (record_once runs first).
bp.record_once(lambda state: state.app.url_map.converters.setdefault("rowid", RowId))

NOTE_ID = "<rowid:note_id>"


def page_args():
    """?page=&per_page=, validated: a 400 that names the query string, not the body."""
    try:
        return schemas.PageArgs().load(request.args)
    except ValidationError as error:
        abort(errors.problem(400, "The query string is not valid.", errors=error.messages,
                             request_id=logs.request_id()))


def with_etag(note, status=200, headers=None):
    """The note as JSON, with its version as a strong ETag (RFC 9110 §8.8.3): `If-Match: "3"`
    on a PATCH then means "only if nobody changed it since I read version 3"."""
    return schemas.NoteOut().dump(note), status, {"ETag": f'"{note["version"]}"', **(headers or {})}


def expected_version():
    """The version an If-Match header asks for: None without one (or with `*`, any version)."""
    sent = request.headers.get("If-Match")
    if sent is None or sent.strip() == "*":
        return None
    tag = sent.strip()
    if not (len(tag) > 2 and tag[0] == tag[-1] == '"' and tag[1:-1].isdigit()):
        return 0  # not one of our ETags (several, weak, malformed): it matches no version
    return int(tag[1:-1])


def not_found(note_id):
    logs.event("note.not_found", user_id=current_user["id"], note_id=note_id)
    return errors.problem(404, "There is no such note.", request_id=logs.request_id())


@bp.post("")
@jwt_required()
def create():
    data = schemas.NoteIn().load(auth.json_body())
    note_id = db.create_note(current_user["id"], data["title"], data["body"])
    note = db.get_note(note_id, current_user["id"])
    return with_etag(note, 201, {"Location": f"/notes/{note_id}"})


@bp.get("")
@jwt_required()
def list_mine():
    args = page_args()
    rows, total = db.list_notes(current_user["id"], args["per_page"], (args["page"] - 1) * args["per_page"])
    return {
        "items": schemas.NoteOut(many=True).dump(rows),
        "page": args["page"],
        "per_page": args["per_page"],
        "total": total,
    }


@bp.get(f"/{NOTE_ID}")
@jwt_required()
def read(note_id):
    note = db.get_note(note_id, current_user["id"])
    if note is None:
        return not_found(note_id)
    return with_etag(note)


@bp.patch(f"/{NOTE_ID}")
@jwt_required()
def update(note_id):
    """Change the fields sent, in one statement (db.update_note): two PATCHes of different fields
    at once both count. With If-Match, only if the note is still at that version: else 412."""
    changes = schemas.NotePatch().load(auth.json_body())
    if not db.update_note(note_id, current_user["id"], changes.get("title"), changes.get("body"),
                          if_version=expected_version()):
        if db.get_note(note_id, current_user["id"]) is None:
            return not_found(note_id)
        return errors.problem(412, "The note has changed since you read it (If-Match): read it again, then "
                                   "send your change.", request_id=logs.request_id())
    return with_etag(db.get_note(note_id, current_user["id"]))


@bp.delete(f"/{NOTE_ID}")
@jwt_required()
def delete(note_id):
    if not db.delete_note(note_id, current_user["id"]):
        return not_found(note_id)
    return "", 204
