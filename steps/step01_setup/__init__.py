"""Step 01 — set up: an application factory that refuses to run insecurely.

Serve it (from the repository root, with a strong key in FLASK_JWT_SECRET_KEY):

    flask --app solutions.step01_setup run

or let the workbook make a development key for you: ``python -m workbook run 1 --solution``.
"""

from flask import Flask

from . import config


def create_app(test_config=None):
    """Create and configure the app.

    Configuration comes in three layers, each overriding the one before: the code defaults
    (config.DEFAULTS), then FLASK_* environment variables (FLASK_JWT_SECRET_KEY sets
    JWT_SECRET_KEY), then ``test_config``, which the tests use for a fresh database per test.
    """
    app = Flask(__name__, instance_relative_config=True)

    # TODO exercise 1.1 (config-order): Configuration: defaults, then the environment, then the test configuration
    #   Load the configuration in three layers, each overriding the one before: the defaults
    #   in config.DEFAULTS, then the FLASK_* environment variables
    #   (`app.config.from_prefixed_env()`), then `test_config` when it is given.
    #   Check: python -m workbook check 1    Stuck? python -m workbook hint 1 1
    app.config.from_mapping(config.DEFAULTS)
    if test_config is not None:
        app.config.from_mapping(test_config)

    # Refuse to start rather than run with a key anyone could guess.
    config.check_jwt_secret(app.config["JWT_SECRET_KEY"])

    # TODO exercise 1.3 (health): A health endpoint that reveals nothing
    #   Add a route GET /health that answers 200 with the JSON object {"status": "ok"}, and
    #   nothing else, in the body or in the headers: no versions, no host names, no
    #   configuration (ASVS V13.4.6).
    #   Check: python -m workbook check 1    Stuck? python -m workbook hint 1 3

    return app
