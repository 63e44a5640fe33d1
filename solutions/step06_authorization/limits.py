"""Rate limiting with Flask-Limiter 4: slow down guessing without locking out everyone else.

- Login is limited per client address AND per account (the canonical username), so neither
  one address trying many accounts (credential stuffing) nor many addresses trying one account
  (a botnet) gets far (OWASP Credential Stuffing Prevention and Authentication Cheat Sheets;
  ASVS 5.0 V6.3.1). Every attempt counts, successful or not: counting only failures
  (`deduct_when`) checks before and counts after the request, so a burst of simultaneous
  guesses would all pass the check.
- The trade-off, on purpose: an attacker who burns an account's budget also keeps its owner
  out until the window ends (a minute; at most a day). That throttles, it does not lock: no
  one has to unlock anything, and at most 100 guesses a day reach one account, whatever the
  number of addresses. NIST SP 800-63B-4 goes further — at most 100 consecutive failures in
  all, then the password is disabled until the user proves who they are again — which needs a
  failure counter per account, not a rate: a rate limit alone does not meet it.
- The client address is `request.remote_addr`. Headers the client writes (X-Forwarded-For,
  X-Real-IP, Forwarded) are ignored, unless the operator says how many proxies in front of the
  app append to X-Forwarded-For (TRUSTED_PROXY_COUNT): then ProxyFix trusts exactly that many.
- Counters live in RATELIMIT_STORAGE_URI: `memory://` counts per process; several processes
  (gunicorn workers) must share `redis://...`. If the storage cannot be reached, the limits
  fall back to memory (per process: weaker, never off) and the failure is logged.
"""

import hashlib
import time

from flask import current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits.storage import MemoryStorage as LimitsMemoryStorage
from werkzeug.middleware.proxy_fix import ProxyFix

from . import errors, logs, schemas


class MemoryStorage(LimitsMemoryStorage):
    """memory:// without a thread: limits' own in-memory storage, cleaned up by the requests.

    limits 5.8's MemoryStorage frees expired counters in a threading.Timer of 10 ms that every hit
    starts again once the last one has run: under load, a new thread about every 10 ms in each
    process (seen in a profile on ~1 request in 6), and a thread switch at each. Here the same
    clean-up (the library's own) runs in the request that finds it due, at most once a second.
    Counting is unchanged: each check compares the entries' timestamps with the window, and the
    clean-up only frees memory, so a limit holds exactly as before; memory stays bounded by the
    hits of one window plus one second.

    Registered for the scheme memory:// (limits picks a storage class by its STORAGE_SCHEME), so
    RATELIMIT_STORAGE_URI keeps its meaning; redis:// is untouched.
    """

    STORAGE_SCHEME = ["memory"]
    CLEAN_UP_EVERY = 1.0  # seconds

    def __init__(self, uri=None, wrap_exceptions=False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.timer.cancel()  # the one timer the library's constructor starts
        self.next_clean_up = time.monotonic() + self.CLEAN_UP_EVERY

    def _MemoryStorage__schedule_expiry(self):  # limits calls this (a private name) on every hit
        now = time.monotonic()
        if now >= self.next_clean_up:
            self.next_clean_up = now + self.CLEAN_UP_EVERY
            self._MemoryStorage__expire_events()


# One limiter for the app's routes. Its settings are fixed here, not read from app.config:
# Flask-Limiter keeps most settings of the FIRST app it is initialised with, and every test
# builds an app of its own. The limits themselves are read from app.config on each request.
limiter = Limiter(
    # BEGIN EXERCISE limiter-config
    get_remote_address,  # the key of per-address limits: the TCP peer, which the client cannot choose
    # STARTER
    # lambda: request.headers.get("X-Forwarded-For") or request.remote_addr,
    # END EXERCISE
    default_limits=[lambda: current_app.config["RATELIMIT_DEFAULT"]],
    strategy="moving-window",  # no double burst at a window's edge, as fixed windows allow
    headers_enabled=True,  # Retry-After and X-RateLimit-* on limited responses
    in_memory_fallback_enabled=True,  # storage down: per-process limits, never none, never a 500
    storage_options={"socket_connect_timeout": 1, "socket_timeout": 1},
)


def init_app(app):
    """Counters from the RATELIMIT_* configuration; a JSON 429; ProxyFix only for trusted proxies."""
    limiter.init_app(app)
    app.register_error_handler(429, too_many_requests)
    # BEGIN EXERCISE limiter-config
    proxies = app.config["TRUSTED_PROXY_COUNT"]
    if proxies:
        # Each trusted proxy appends the address it received from; trust that many, from the right.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies)
    # END EXERCISE


def login_per_address():
    return current_app.config["RATELIMIT_LOGIN_PER_ADDRESS"]


def login_per_account():
    return current_app.config["RATELIMIT_LOGIN_PER_ACCOUNT"]


def register_per_address():
    return current_app.config["RATELIMIT_REGISTER_PER_ADDRESS"]


def account_key():
    """The per-account key: the canonical username of the login attempt (hashed: keys stay short)."""
    # BEGIN EXERCISE login-limits
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # the view answers this body with a 400; the key must not crash first
        data = None
    username = data.get("username") if isinstance(data, dict) else None
    if not isinstance(username, str):
        return "account:-"  # no username: the view refuses the body anyway
    canonical = schemas.canonical_username(username).encode("utf-8", "surrogatepass")
    return "account:" + hashlib.sha256(canonical).hexdigest()
    # STARTER
    # return get_remote_address()
    # END EXERCISE


def too_many_requests(error):
    """429 as a problem, saying when to come back (Retry-After and X-RateLimit-* headers come too)."""
    # BEGIN EXERCISE json-429
    current = limiter.current_limit
    wait = max(1, int(current.reset_at - time.time())) if current else 60
    logs.event("ratelimit.exceeded", limit=error.description, path=request.path)
    return errors.problem(429, f"Too many requests ({error.description}). Try again in {wait} seconds.",
                          request_id=logs.request_id())
    # STARTER
    # return error
    # END EXERCISE
