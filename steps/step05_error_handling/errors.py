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
    # TODO exercise 5.1 (problem-details): The problem details helper: RFC 9457 for every HTTP error
    #   Build the RFC 9457 body: "type" ("about:blank"), "title" (the status's phrase:
    #   phrase(status), RFC 9110's wording), "status", "detail" when given, then the
    #   extension members; answer it with that status and the media type
    #   application/problem+json. In http_error, copy the error's own headers
    #   (error.get_headers(), except Content-Type) onto the response.
    #   Check: python -m workbook check 5    Stuck? python -m workbook hint 5 1
    response = jsonify({"msg": detail, **extensions})
    response.status_code = status
    return response


def init_app(app):
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)


def http_error(error):
    """404, 405, 413, 415...: Flask's and Werkzeug's errors, as problem details."""
    response = problem(error.code, error.description, request_id=logs.request_id())
    # TODO exercise 5.1 (problem-details): The problem details helper: RFC 9457 for every HTTP error
    #   Build the RFC 9457 body: "type" ("about:blank"), "title" (the status's phrase:
    #   phrase(status), RFC 9110's wording), "status", "detail" when given, then the
    #   extension members; answer it with that status and the media type
    #   application/problem+json. In http_error, copy the error's own headers
    #   (error.get_headers(), except Content-Type) onto the response.
    #   Check: python -m workbook check 5    Stuck? python -m workbook hint 5 1
    return response


def unexpected_error(error):
    """The last resort: a bug. The client learns nothing but the request id; the log learns everything."""
    # TODO exercise 5.3 (last-resort): The last resort: a generic 500, the traceback in the log under the request id
    #   Log the error with its traceback and the request id
    #   (`logging.getLogger("api.errors") .error("unexpected error request_id=%s path=%r",
    #   logs.request_id(), logs.clean(request.path), exc_info=error)`), then answer
    #   `problem(500, <a generic detail>, request_id=logs.request_id())`. Never put
    #   str(error), its class or a path in the answer.
    #   Check: python -m workbook check 5    Stuck? python -m workbook hint 5 3
    raise error
