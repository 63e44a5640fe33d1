"""Step 03 — input validation: every body checked by a schema before it is used.

Serve it (from the repository root, with a strong key in FLASK_JWT_SECRET_KEY):

    flask --app solutions.step03_input_validation run

or let the workbook make a development key for you: ``python -m workbook run 3 --solution``.
Users are kept in the SQLite file DATABASE (default: the instance folder).
"""

from flask import Flask

from . import auth, config, db, openapi, passwords


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

    # Refuse to start rather than run with a key anyone could guess.
    config.check_jwt_secret(app.config["JWT_SECRET_KEY"])

    # BEGIN EXERCISE health
    @app.get("/health")
    def health():
        """Liveness probe for load balancers and tests: up or not, nothing more."""
        return {"status": "ok"}
    # END EXERCISE

    db.init_app(app)
    passwords.init_app(app)
    auth.jwt.init_app(app)
    app.register_blueprint(auth.bp)
    openapi.init_app(app)

    return app
