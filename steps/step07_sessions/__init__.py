"""Step 07 — sessions: refresh tokens with rotation, logout, revocation that every process sees.

Serve it (from the repository root, with a strong key in FLASK_JWT_SECRET_KEY):

    flask --app solutions.step07_sessions run

or let the workbook make a development key for you: ``python -m workbook run 7 --solution``.
There is no default account: make the first admin on the server,

    flask --app solutions.step07_sessions create-admin alice

Several processes (gunicorn -w 4, several machines) share one revocation store:
FLASK_REVOCATION_STORAGE_URI=redis://127.0.0.1:6379/0.
"""

from flask import Flask

from . import admin, auth, commands, config, db, errors, limits, logs, notes, openapi, passwords, revocation, sessions


def create_app(test_config=None):
    """Create and configure the app.

    Configuration comes in three layers, each overriding the one before: the code defaults
    (config.DEFAULTS), then FLASK_* environment variables (FLASK_JWT_SECRET_KEY sets
    JWT_SECRET_KEY), then ``test_config``, which the tests use for a fresh database per test.
    """
    app = Flask(__name__, instance_relative_config=True)

    app.config.from_mapping(config.DEFAULTS)
    app.config.from_prefixed_env()
    if test_config is not None:
        app.config.from_mapping(test_config)

    # Refuse to start rather than run with a key anyone could guess, or with the debugger on.
    config.check_jwt_secret(app.config["JWT_SECRET_KEY"])
    config.check_not_debug(app.config["DEBUG"])

    @app.get("/health")
    @limits.limiter.exempt
    def health():
        """Liveness probe for load balancers and tests: up or not, nothing more."""
        return {"status": "ok"}

    db.init_app(app)
    revocation.init_app(app)
    passwords.init_app(app)
    auth.jwt.init_app(app)
    limits.init_app(app)
    logs.init_app(app)
    errors.init_app(app)
    app.after_request(security_headers)
    app.register_blueprint(auth.bp)
    app.register_blueprint(notes.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(sessions.bp)
    openapi.init_app(app)
    app.cli.add_command(commands.create_admin)
    app.cli.add_command(commands.set_role)

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
