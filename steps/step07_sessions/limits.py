"""Rate limiting with Flask-Limiter 4: slow down guessing without locking out everyone else.

- Login is limited per client address AND per account (the canonical username), so neither
  one address trying many accounts (credential stuffing) nor many addresses trying one account
  (a botnet) gets far (OWASP Credential Stuffing Prevention and Authentication Cheat Sheets;
  ASVS 5.0 V6.3.1). Every attempt counts, successful or not: counting only failures
  (`deduct_when`) checks before and counts after the request, so a burst of simultaneous
  guesses would all pass the check.
- A per-account limit alone lets a stranger lock the owner out: 5 guesses a minute from
  anywhere, and the owner's right password answers 429 too. So the account's budget is for
  *unknown* clients only. A successful login gets a device cookie (OWASP, "Slow Down Online
  Guessing Attacks with Device Cookies"): signed by the server, bound to the account, with a
  random device id. A login that brings a valid cookie for its account counts against that
  device's own budget instead; so during an attack the owner still logs in from every device
  they used before, and only new devices wait. A stolen cookie is worth one device's budget.
- All logins without a device cookie share one more ceiling (RATELIMIT_LOGIN_EVERYONE): each
  costs a 64 MiB argon2 hash, so however many addresses an attacker has, the hashing work the
  API does for strangers has an upper bound.
- An IPv6 client is counted by its /64 network: one host usually owns a whole /64 (RFC 4291
  §2.5.1) and can pick a new address for every request.
- At most 100 guesses a day reach one account from unknown clients, whatever the number of
  addresses. NIST SP 800-63B-4 goes further — at most 100 consecutive failures in all, then
  the password is disabled until the user proves who they are again — which needs a failure
  counter per account, not a rate: a rate limit alone does not meet it.
- The client address is `request.remote_addr` (its /64 for IPv6). Headers the client writes (X-Forwarded-For,
  X-Real-IP, Forwarded) are ignored, unless the operator says how many proxies in front of the
  app append to X-Forwarded-For (TRUSTED_PROXY_COUNT): then ProxyFix trusts exactly that many.
- Counters live in RATELIMIT_STORAGE_URI: `memory://` counts per process; several processes
  (gunicorn workers) must share `redis://...`. If the storage cannot be reached, the limits
  fall back to memory (per process: weaker, never off) and the failure is logged.
"""

import hashlib
import ipaddress
import secrets
import time

from flask import current_app, g, request
from flask_limiter import Limiter
from itsdangerous import BadData, URLSafeTimedSerializer
from limits.storage import MemoryStorage as LimitsMemoryStorage
from werkzeug.http import dump_cookie
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


def client_address():
    """The key of per-address limits: the TCP peer, which the client cannot choose; for IPv6, its /64."""
    address = request.remote_addr or ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # not an IP address (a Unix socket, a test): as it is
        return address
    if ip.version == 6 and ip.ipv4_mapped:  # ::ffff:192.0.2.1 is the IPv4 client 192.0.2.1
        return str(ip.ipv4_mapped)
    if ip.version == 6:  # one host usually owns a whole /64 and picks any address in it
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


# One limiter for the app's routes. Its settings are fixed here, not read from app.config:
# Flask-Limiter keeps most settings of the FIRST app it is initialised with, and every test
# builds an app of its own. The limits themselves are read from app.config on each request.
limiter = Limiter(
    client_address,  # the key of per-address limits: the TCP peer (its /64 for IPv6)
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
    proxies = app.config["TRUSTED_PROXY_COUNT"]
    if proxies:
        # Each trusted proxy appends the address it received from; trust that many, from the right.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies)


def login_per_address():
    return current_app.config["RATELIMIT_LOGIN_PER_ADDRESS"]


def login_per_account():
    return current_app.config["RATELIMIT_LOGIN_PER_ACCOUNT"]


def login_per_device():
    return current_app.config["RATELIMIT_LOGIN_PER_DEVICE"]


def login_everyone():
    return current_app.config["RATELIMIT_LOGIN_EVERYONE"]


def register_per_address():
    return current_app.config["RATELIMIT_REGISTER_PER_ADDRESS"]


def everyone():
    """The key of a limit that all clients share."""
    return "everyone"


# Device cookies: a successful login gets one; it says "this client logged in to this account
# before". Signed with an HMAC (SHA-256) under a key derived from the app's secret for this use
# only (the salt), so nobody can make one; bound to the account by the account key's hash;
# scoped to /login, HttpOnly, SameSite=Strict and Secure. A year long.
DEVICE_COOKIE = "login_device"
DEVICE_COOKIE_MAX_AGE = 365 * 24 * 3600


def _device_signer():
    return URLSafeTimedSerializer(current_app.config["JWT_SECRET_KEY"], salt="login device cookie",
                                  signer_kwargs={"digest_method": hashlib.sha256})


def device_cookie():
    """The Set-Cookie header for a client that has just logged in: a new device of this account."""
    value = _device_signer().dumps({"account": account_key(), "device": secrets.token_urlsafe(16)})
    return dump_cookie(DEVICE_COOKIE, value, max_age=DEVICE_COOKIE_MAX_AGE, path="/login",
                       secure=current_app.config["DEVICE_COOKIE_SECURE"], httponly=True, samesite="Strict")


def device():
    """The device id from a valid device cookie of the account this login is for, else None."""
    if "login_device" not in g:
        g.login_device = None
        value = request.cookies.get(DEVICE_COOKIE)
        if value:
            try:
                data = _device_signer().loads(value, max_age=DEVICE_COOKIE_MAX_AGE)
            except BadData:  # forged, tampered with, or too old: an unknown client
                data = None
            if isinstance(data, dict) and data.get("account") == account_key() and isinstance(data.get("device"), str):
                g.login_device = data["device"]
    return g.login_device


def known_device():
    return device() is not None


def unknown_device():
    return device() is None


def device_key():
    """The per-device key of a login with a valid device cookie."""
    return "device:" + (device() or "-")


def account_key():
    """The per-account key: the canonical username of the login attempt (hashed: keys stay short)."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # the view answers this body with a 400; the key must not crash first
        data = None
    username = data.get("username") if isinstance(data, dict) else None
    if not isinstance(username, str):
        return "account:-"  # no username: the view refuses the body anyway
    canonical = schemas.canonical_username(username).encode("utf-8", "surrogatepass")
    return "account:" + hashlib.sha256(canonical).hexdigest()


def too_many_requests(error):
    """429 as a problem, saying when to come back (Retry-After and X-RateLimit-* headers come too)."""
    current = limiter.current_limit
    wait = max(1, int(current.reset_at - time.time())) if current else 60
    logs.event("ratelimit.exceeded", limit=error.description, path=request.path)
    return errors.problem(429, f"Too many requests ({error.description}). Try again in {wait} seconds.",
                          request_id=logs.request_id())
