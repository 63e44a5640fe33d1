"""Step 05 — error handling: one RFC 9457 envelope for every error, nothing leaked, all logged.

This is the classic tutorial's finished API, done right. Serve it (from the repository root,
with a strong key in FLASK_JWT_SECRET_KEY):

    flask --app solutions.step05_error_handling run

or let the workbook make a development key for you: ``python -m workbook run 5 --solution``.
Several processes (Linux, macOS) share their counters through Redis:

    FLASK_RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379 \\
        gunicorn -w 4 -b 127.0.0.1:8000 "solutions.step05_error_handling:create_app()"
"""

from flask import Flask

from . import auth, config, db, errors, limits, logs, openapi, passwords


def create_app(test_config=None):
    """Create and configure the app.

    Configuration comes in three layers, each overriding the one before: the code defaults
    (config.DEFAULTS), then FLASK_* environment variables (FLASK_JWT_SECRET_KEY sets
    JWT_SECRET_KEY), then ``test_config``, which the tests use for a fresh database per test.
    """
    app = Flask(__name__, instance_relative_config=True)

    # BEGIN EXERCISE config-order
    app.config.from_mapping(config.DEFAULTS)
    app.config.from_prefixed_env()
    if test_config is not None:
        app.config.from_mapping(test_config)
    # STARTER
    # app.config.from_mapping(config.DEFAULTS)
    # if test_config is not None:
    #     app.config.from_mapping(test_config)
    # END EXERCISE

    # Refuse to start rather than run with a key anyone could guess, or with the debugger on.
    config.check_jwt_secret(app.config["JWT_SECRET_KEY"])
    config.check_not_debug(app.config["DEBUG"])

    # BEGIN EXERCISE health
    @app.get("/health")
    @limits.limiter.exempt
    def health():
        """Liveness probe for load balancers and tests: up or not, nothing more."""
        return {"status": "ok"}
    # END EXERCISE

    db.init_app(app)
    passwords.init_app(app)
    auth.jwt.init_app(app)
    limits.init_app(app)
    logs.init_app(app)
    errors.init_app(app)
    app.after_request(security_headers)
    app.register_blueprint(auth.bp)
    openapi.init_app(app)

    return app


def security_headers(response):
    """On every response: no MIME sniffing; no caching of anything an API says (tokens, user data);
    and a Content-Security-Policy for a JSON API: nothing may load, nothing may frame it (OWASP REST
    Security Cheat Sheet, "Security headers"). Should a browser ever render an answer, no script
    runs. HSTS (Strict-Transport-Security) is not set here: it belongs where TLS ends (the reverse
    proxy or load balancer), and this app speaks plain HTTP behind it."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
    return response
