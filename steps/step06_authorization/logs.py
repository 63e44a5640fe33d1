"""The security log: who tried what, under which request id — never a secret.

Every request gets an id (X-Request-ID, echoed in the response and in error bodies), so that
a user's "it failed" can be matched to the server's log line, and the log keeps the events
OWASP's Logging Cheat Sheet and ASVS 5.0 V16 ask for: logins that succeed and fail, limits
hit, tokens refused, unexpected errors. Never a password, a token or a hash (ASVS V16.2.5).

Values that come from the client (a username, a path) are escaped before they are logged:
a username "x\\r\\nINFO login.success user=admin" must not forge a second log line (CWE-117).
"""

import logging
import re
import uuid

from flask import g, request

security_log = logging.getLogger("api.security")  # errors.py logs to "api.errors"

# An id the client sent is kept only if it is short and plain; otherwise we make our own.
CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def init_app(app):
    app.before_request(assign_request_id)
    app.after_request(echo_request_id)
    api_log = logging.getLogger("api")
    if not api_log.handlers and not logging.getLogger().handlers:
        # Nobody configured logging (`flask run`, gunicorn): Python would print only warnings
        # and errors, without a time. Log the security events too, one per line, on stderr.
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        api_log.addHandler(handler)
        api_log.setLevel(logging.INFO)


def assign_request_id():
    sent = request.headers.get("X-Request-ID", "")
    g.request_id = sent if CLIENT_REQUEST_ID.match(sent) else uuid.uuid4().hex


def request_id():
    return g.get("request_id") or "-"


def echo_request_id(response):
    response.headers["X-Request-ID"] = request_id()
    return response


def clean(value, limit=64):
    """A client-supplied value made safe for one log line: control characters escaped, length capped."""
    text = str(value)[:limit]
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def event(name, level=logging.INFO, **fields):
    """Log one security event: `login.failure request_id=... ip=... username='alice'`.

    Cheap when its level is off (a logger set to WARNING): one comparison, no formatting."""
    if not security_log.isEnabledFor(level):
        return
    details = " ".join(f"{key}={clean(value)!r}" for key, value in fields.items())
    security_log.log(level, "%s request_id=%s ip=%s %s", name, request_id(), request.remote_addr, details)
