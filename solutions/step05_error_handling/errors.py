"""One envelope for every error: RFC 9457 problem details, `application/problem+json`.

    {"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": "...",
     "request_id": "..."}

Every HTTP error (404, 405, 413, 415, 429...), every validation error (with the messages per
field in the extension member "errors"), every token failure (auth.py) and every unexpected
exception gets this shape. An unexpected exception gets a generic 500 that names only the
request id: the traceback goes to the server's log under that id, never to the client — no
exception text, path, SQL or class name (OWASP Error Handling Cheat Sheet; ASVS 5.0 V16.5).
"""

import logging

from flask import jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from . import logs


# RFC 9110 §15 renamed two reason phrases that Werkzeug's table still has in their RFC 7231 form.
RFC_9110_PHRASES = {413: "Content Too Large", 422: "Unprocessable Content"}


def phrase(status):
    """The status's reason phrase as RFC 9110 words it: "Not Found", "Content Too Large"."""
    return RFC_9110_PHRASES.get(status) or HTTP_STATUS_CODES.get(status, "Error")


def problem(status, detail=None, **extensions):
    """An RFC 9457 problem details response."""
    # BEGIN EXERCISE problem-details
    # "about:blank": the status says it all, so the title is the status's phrase (RFC 9457 §4.2.1).
    body = {"type": "about:blank", "title": phrase(status), "status": status}
    if detail:
        body["detail"] = detail
    body.update(extensions)
    response = jsonify(body)
    response.status_code = status
    response.content_type = "application/problem+json"
    return response
    # STARTER
    # response = jsonify({"msg": detail, **extensions})
    # response.status_code = status
    # return response
    # END EXERCISE


def init_app(app):
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)


def http_error(error):
    """404, 405, 413, 415...: Flask's and Werkzeug's errors, as problem details."""
    response = problem(error.code, error.description, request_id=logs.request_id())
    # BEGIN EXERCISE problem-details
    # Keep the headers that belong to the error (405's Allow, 401's WWW-Authenticate).
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    # END EXERCISE
    return response


def unexpected_error(error):
    """The last resort: a bug. The client learns nothing but the request id; the log learns everything."""
    # BEGIN EXERCISE last-resort
    logging.getLogger("api.errors").error(
        "unexpected error request_id=%s path=%r", logs.request_id(), logs.clean(request.path),
        exc_info=error,
    )
    return problem(500, "Something went wrong on our side. Quote the request id if you report it.",
                   request_id=logs.request_id())
    # STARTER
    # raise error
    # END EXERCISE
