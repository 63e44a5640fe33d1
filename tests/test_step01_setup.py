"""Step 01 — set up: the factory, configuration layers, a strong JWT secret, a health check.

These tests run on step 1 and on every later step: the setup's properties must survive every lesson.
"""

import ast
import base64
import os
import re
import secrets
import socket
import string
import subprocess
import sys

import pytest

from tests.harness import ignores_test_config, strong_key, subprocess_timeout
from tests.verdict import check

# Every test here builds its app through create_app(test_config) (the make_app fixture): when
# test_config is lost on the way in, the fixture and the refusal checks blame 1.1, where the fix
# belongs, whichever exercise the test is about.
pytestmark = pytest.mark.exercise("config-order", when_named=True)

# ---------------------------------------------------------------------------------------------
# exercise 1.3 health
# ---------------------------------------------------------------------------------------------


@pytest.mark.exercise("health")
def test_health_answers_ok_and_nothing_more(client):
    """GET /health answers 200 {"status": "ok"} and reveals nothing else."""
    r = client.get("/health")
    assert r.status_code == 200, f"GET /health should answer 200, it answered {r.status_code}"
    assert r.is_json, "GET /health should answer JSON (return a dict from the view)"
    assert r.get_json() == {"status": "ok"}, (
        f'GET /health should answer exactly {{"status": "ok"}} (no versions, no internals), '
        f"it answered {r.get_json()}"
    )


VERSION = re.compile(r"\d+\.\d+")


@pytest.mark.exercise("health")
def test_health_headers_reveal_nothing_either(step, client):
    """GET /health sends no header of its own: no versions, no host names, in the headers either (ASVS V13.4.6)."""
    health = client.get("/health")
    baseline = client.get("/nothing-here")  # what the app sends on every answer (later steps add headers)
    own = {name for name in health.headers.keys() if name.lower() not in ("content-type", "content-length")}
    extra = sorted(own - set(baseline.headers.keys()))
    assert not extra, (
        f"GET /health sends the header{'s' if len(extra) > 1 else ''} "
        + ", ".join(f"{n}: {health.headers[n]}" for n in extra)
        + ": a health check must reveal nothing (versions tell an attacker which exploits to try)"
    )
    host = socket.gethostname().lower()  # compared with whole words of the values: "vm" is not in "nosniff"
    names = {host, host.split(".")[0]} - {""} if not host.isdigit() else set()
    for name, value in health.headers.items():
        assert not (VERSION.search(value) and name.lower() not in ("content-length", "x-request-id")), (
            f"GET /health sends {name}: {value}, which looks like a version number: reveal nothing"
        )
        assert not names & set(re.split(r"[^\w.-]+", value.lower())), (
            f"GET /health sends {name}: {value}, the server's host name: reveal nothing (host names map "
            "the network behind the load balancer for an attacker)"
        )
        assert str(step.root) not in value, (
            f"GET /health sends {name}: {value}, where the app lives on disk: reveal nothing"
        )


@pytest.mark.exercise("config-order")
def test_an_unknown_path_answers_404(client):
    """An unknown path answers 404, without a traceback or a crash (over HTTP too: test_step01_setup_live.py)."""
    r = client.get("/nothing-here")
    assert r.status_code == 404, f"an unknown path should answer 404, it answered {r.status_code}"
    assert "Traceback" not in r.get_data(as_text=True), "the 404 page shows a Python traceback"


# ---------------------------------------------------------------------------------------------
# exercise 1.2 strong-secret
# ---------------------------------------------------------------------------------------------

def random_printable(length):
    """``length`` characters drawn by a CSPRNG from the 94 printable ASCII characters but space."""
    return "".join(secrets.choice(string.printable[:94]) for _ in range(length))


WEAK_KEYS = {
    "missing": None,
    "empty": "",
    "the classic tutorial's key": "your_jwt_secret_key",
    "the classic key in capitals": "YOUR_JWT_SECRET_KEY",
    "secret": "secret",
    "changeme": "changeme",
    "31 bytes": secrets.token_hex(16)[:31],
    "64 times the same letter": "a" * 64,
    "a long but published placeholder": "change-this-secret-key-in-production",
    "a long placeholder in capitals": "CHANGE-THIS-SECRET-KEY-IN-PRODUCTION",
    "a long placeholder, mixed case": "Please-Change-This-To-A-Long-Random-String",
    "a number (FLASK_JWT_SECRET_KEY=1234... is parsed as JSON)": 12345678901234567890123456789012345,
    # Long enough, and not random: length is not randomness (RFC 7518 §3.2 means 256 random bits).
    "'abcdefgh' four times": "abcdefgh" * 4,
    "a short pattern repeated to 64 bytes": "Xy7!" * 16,
    "the letters and digits in order": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "an English sentence": "the quick brown fox jumps over the lazy dog",
    "a sentence with capitals, digits and punctuation": "My API's signing key, made on 2026-12-01, is secret!",
    "words run together in CamelCase": "ThisIsTheVeryLongSecretKeyOfOurNotesApi",
    "words run together in lower case": "thisisaverylongsecretkeythatnobodywillguessbecauseitislong",
    "secrets.token_hex(16): 32 bytes, only 128 random bits": secrets.token_hex(16),
    "secrets.token_urlsafe(24): 32 bytes, only 192 random bits": secrets.token_urlsafe(24),
    "32 random printable characters: 210 bits": random_printable(32),
    # Random-looking, and published: the example output of secrets.token_hex() in Flask's docs.
    "the example key of Flask's documentation": "192b9bdd22ab9ed4d12e236c78afcb9a393ec15f71bbf5dc987d54727823bcbf",
    "the same, with the newline a secrets file adds": "192b9bdd22ab9ed4d12e236c78afcb9a393ec15f71bbf5dc987d54727823bcbf\n",
    "the example key of Flask's documentation, in capitals": "192B9BDD22AB9ED4D12E236C78AFCB9A393EC15F71BBF5DC987D54727823BCBF",
}


@pytest.mark.exercise("config-order", when_named=True)
@pytest.mark.exercise("strong-secret")
@pytest.mark.parametrize("key", WEAK_KEYS.values(), ids=WEAK_KEYS.keys())
def test_refuses_to_start_with_a_weak_key(make_app, key):
    """The app refuses to start with a missing, short, non-random or published JWT key."""
    try:
        app = make_app(JWT_SECRET_KEY=key)
    except Exception as exc:  # the step's InsecureConfigError
        message = str(exc)
        check(not isinstance(exc, KeyError), "config-order",
              f"create_app() crashed with {type(exc).__name__}: {message} before the key was checked: with a "
              "test_config, the defaults (config.DEFAULTS, where JWT_SECRET_KEY is None) were not loaded. Load "
              "all three layers, one after the other")
        assert "JWT_SECRET_KEY" in message, f"the refusal should name JWT_SECRET_KEY; it said: {message!r}"
        assert "secrets.token_hex" in message, (
            "the refusal should show how to make a strong key "
            f"(python -c \"import secrets; print(secrets.token_hex(32))\"); it said: {message!r}"
        )
    else:
        # The key the check saw is not the one it was given: create_app put another in its place.
        check(app.config.get("JWT_SECRET_KEY") in (key, None), "config-order", made_up_key(app, key))
        pytest.fail(f"the app started with a weak JWT key ({key!r}): anyone could forge tokens with it")


STRONG_KEYS = {
    "token_hex(32)": strong_key(),
    "token_hex(32) in capitals": secrets.token_hex(32).upper(),
    "token_urlsafe(32)": secrets.token_urlsafe(32),
    "base64 of 32 random bytes, with its padding": base64.b64encode(secrets.token_bytes(32)).decode(),
    "40 random printable characters": random_printable(40),
    "40 random two-byte letters (80 bytes)": "".join(secrets.choice("ÄÖÜäöüßéèêëàáâãåçñøæ") for _ in range(40)),
}


@pytest.mark.exercise("strong-secret")
@pytest.mark.parametrize("key", STRONG_KEYS.values(), ids=STRONG_KEYS.keys())
def test_starts_with_a_strong_key(step, make_app, key):
    """The app starts with a key made by a CSPRNG that holds 256 random bits, in any usual encoding."""
    try:
        app = make_app(JWT_SECRET_KEY=key)
    except Exception as exc:  # the step's InsecureConfigError
        said = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        check(not ignores_test_config(step, {"TESTING": True, "JWT_SECRET_KEY": key}), "config-order",
              f"the strong key in test_config never reached the app (it said: {said}), yet the app starts with it "
              "from FLASK_JWT_SECRET_KEY: apply test_config last, with app.config.from_mapping(test_config)")
        pytest.fail(f"the app refused a strong random key of {len(key.encode('utf-8'))} bytes ({len(key)} characters): "
                    f"accept any key that holds 256 random bits, whatever its alphabet (it said: {said})",
                    pytrace=False)
    assert app.config["JWT_SECRET_KEY"] == key, "the app did not keep the JWT key it was given"


REFUSAL_REASONS = {
    # key: (words the refusal must use, words it must not use), so that it names the real problem
    secrets.token_hex(15): (["short", "bytes"], []),  # 30 random bytes of hex: short first of all
    "ÄÖÜäöüßéèêëàáâãå": (["random"], ["short"]),  # 32 bytes (16 two-byte letters), but a pattern-free 159 bits
    secrets.token_hex(16): (["random", "bits"], ["short"]),  # 32 bytes, 128 bits
    "abcdefgh" * 4: (["random", "bits"], ["short"]),
}


@pytest.mark.exercise("strong-secret")
@pytest.mark.parametrize("key", REFUSAL_REASONS, ids=["30 bytes", "32 bytes of letters", "32 hex characters", "a pattern"])
def test_a_refusal_names_the_real_problem(step, make_app, key):
    """A short key is refused as too short (counted in bytes); a long one that is not random, as not random."""
    size = len(key.encode("utf-8"))
    try:
        make_app(JWT_SECRET_KEY=key)
    except Exception as exc:  # the step's InsecureConfigError
        refusal = str(exc)
    else:
        pytest.fail(f"the app started with a key of {size} bytes that holds far fewer than 256 random bits ({key!r}): "
                    "length is not randomness; refuse what estimated_entropy() scores under MIN_SECRET_BITS", pytrace=False)
    message = refusal.lower()
    must, must_not = REFUSAL_REASONS[key]
    check(all(word in message for word in must) or not ignores_test_config(step), "config-order",
          f"the key in test_config never reached the app (it was refused with {refusal.splitlines()[0]!r}, "
          "yet starts from FLASK_JWT_SECRET_KEY): apply test_config last, with app.config.from_mapping(test_config)")
    assert all(word in message for word in must) and not any(word in message for word in must_not), (
        f"a key of {size} bytes ({len(key)} characters) was refused with: {refusal.splitlines()[0]!r}; "
        + ("say it is too short, in bytes (RFC 7518 §3.2 asks for 32)" if "short" in must else
           "it is long enough, in bytes: say it is not random enough, and how many bits it holds")
    )


@pytest.mark.exercise("strong-secret")
def test_a_numeric_key_is_refused_with_the_reason(step, make_app):
    """A key the environment turned into a number is refused, and the refusal says why that happened."""
    # FLASK_JWT_SECRET_KEY=1234...: from_prefixed_env() parses values as JSON first, so digits become an int.
    with pytest.raises(Exception) as refused:
        make_app(JWT_SECRET_KEY=12345678901234567890123456789012345)
    message = str(refused.value)
    check(("number" in message.lower() and "json" in message.lower()) or not ignores_test_config(step), "config-order",
          f"the key in test_config never reached the app (it was refused with {message.splitlines()[0]!r}, yet "
          "starts from FLASK_JWT_SECRET_KEY): apply test_config last, with app.config.from_mapping(test_config)")
    assert "JWT_SECRET_KEY" in message and "secrets.token_hex" in message, (
        f"the refusal of a numeric key should name JWT_SECRET_KEY and say how to make one; it said: {message!r}"
    )
    assert "number" in message.lower() and "json" in message.lower(), (
        "the refusal of a numeric key should say why the key is a number: from_prefixed_env() reads "
        f"FLASK_* values as JSON first, so an all-digit key becomes an int; it said: {message!r}"
    )


def made_up_key(app, given):
    """The verdict on an app that started with another key than the one configured (None: none at all)."""
    configured = "no JWT_SECRET_KEY" if given is None else f"JWT_SECRET_KEY={given!r}"
    return (f"with {configured} configured, the app started with a key of its own "
            f"({str(app.config.get('JWT_SECRET_KEY'))[:12]}...): a key made up at start-up (or taken from "
            "elsewhere) hides that the configured one is missing or weak, and a random one differs in every "
            "process and at every restart, so tokens stop working. Use the configured key, or refuse to start")


@pytest.mark.exercise("strong-secret")
def test_no_mode_lets_a_weak_key_through(make_app, monkeypatch):
    """Debug, development or testing mode does not relax the refusal: development keys end up in production."""
    key = "your_jwt_secret_key"

    def starts():
        try:
            make_app(JWT_SECRET_KEY=key)
        except Exception:  # the step's InsecureConfigError
            return False
        return True

    if starts():
        return  # refused in no mode at all: test_refuses_to_start_with_a_weak_key says so
    monkeypatch.setenv("FLASK_DEBUG", "1")  # what `flask run --debug` sets
    monkeypatch.setenv("FLASK_ENV", "development")
    monkeypatch.setenv("FLASK_TESTING", "true")
    assert not starts(), (
        f"with FLASK_DEBUG=1 (flask run --debug), the app started with the weak key {key!r}, which it refuses "
        "otherwise: refuse a weak key in every mode, debug and testing too (a key used in development is the "
        "one that ends up in production, and a debug server is often reachable)"
    )


@pytest.mark.exercise("config-order", when_named=True)
@pytest.mark.exercise("strong-secret")
def test_flask_cli_refuses_without_a_key_and_says_how(step, tmp_path):
    """`flask` without FLASK_JWT_SECRET_KEY stops with a helpful message, not a traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env["FLASK_DATABASE"] = str(tmp_path / "app.sqlite")
    # `flask routes` loads the app exactly as `flask run` does, and exits either way.
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", step.step.slug, "routes"],
        cwd=step.root, env=env, capture_output=True, text=True, timeout=subprocess_timeout(),
    )
    output = done.stdout + done.stderr
    if done.returncode == 0:  # started: did the factory make a key up (1.1), or did nothing refuse (1.2)?
        try:
            app = step.create_app({"DATABASE": str(tmp_path / "app.sqlite")})
        except Exception:
            app = None
        check(app is None or not app.config.get("JWT_SECRET_KEY"), "config-order", made_up_key(app, None))
    assert done.returncode != 0, "`flask --app ... run` starts without any JWT key: it must refuse"
    assert "JWT_SECRET_KEY" in output and "secrets.token_hex" in output, (
        f"`flask run` refused, but without saying how to make a key: {output[-600:]!r}"
    )
    assert "Traceback" not in output, (
        "`flask run` shows a traceback instead of a message: raise InsecureConfigError, "
        "a click exception, so that Flask prints just the message"
    )


def _hard_coded_secrets(source: str):
    """(line, name) of every string literal given to a *SECRET_KEY name in Python source."""
    def named_secret(node):
        name = None
        if isinstance(node, ast.Name):
            name = node.id
        elif isinstance(node, ast.Attribute):
            name = node.attr
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            name = node.slice.value
        elif isinstance(node, ast.Constant):
            name = node.value
        return isinstance(name, str) and name.upper().endswith("SECRET_KEY")

    def literal(node):
        return isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)) and node.value

    for node in ast.walk(ast.parse(source)):
        pairs = []
        if isinstance(node, ast.Assign):
            pairs = [(t, node.value) for t in node.targets]
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            pairs = [(node.target, node.value)]
        elif isinstance(node, ast.Dict):
            pairs = list(zip(node.keys, node.values))
        elif isinstance(node, ast.Call):
            pairs = [(ast.Name(k.arg), k.value) for k in node.keywords if k.arg]
            if len(node.args) == 2:  # setdefault("JWT_SECRET_KEY", "...")
                pairs.append(tuple(node.args))
        for target, value in pairs:
            if target is not None and named_secret(target) and literal(value):
                yield node.lineno, value.value


@pytest.mark.exercise("strong-secret")
def test_secret_is_not_written_in_the_code(step):
    """No JWT or Flask secret key is written in the source code (OWASP ASVS 5.0 V13.3.1)."""
    for path in sorted(step.folder.rglob("*.py")):
        try:
            found = list(_hard_coded_secrets(path.read_text("utf-8")))
        except SyntaxError:
            continue  # reported by every test that imports the app
        for line, _ in found:
            pytest.fail(
                f"{path.name}, line {line}, writes a secret key into the code: whoever reads the "
                "code can forge tokens. Take it from the environment (FLASK_JWT_SECRET_KEY)."
            )


# ---------------------------------------------------------------------------------------------
# exercise 1.1 config-order
# ---------------------------------------------------------------------------------------------


@pytest.mark.exercise("config-order")
def test_key_comes_from_the_environment(step, monkeypatch, tmp_path):
    """FLASK_JWT_SECRET_KEY in the environment configures the key (no test_config at all)."""
    key = strong_key()
    monkeypatch.setenv("FLASK_JWT_SECRET_KEY", key)
    monkeypatch.setenv("FLASK_DATABASE", str(tmp_path / "app.sqlite"))
    try:
        app = step.create_app()
    except Exception as exc:
        pytest.fail(
            "with FLASK_JWT_SECRET_KEY set, create_app() still refused to start: the FLASK_* "
            f"environment variables are not read ({type(exc).__name__}: {str(exc)[:80]}...)"
        )
    assert app.config["JWT_SECRET_KEY"] == key, "FLASK_JWT_SECRET_KEY did not become app.config['JWT_SECRET_KEY']"


@pytest.mark.exercise("config-order")
def test_every_key_of_test_config_is_applied(step, tmp_path):
    """Every setting in test_config reaches app.config, not only the key (the tests rely on that)."""
    key = strong_key()
    given = {"JWT_SECRET_KEY": key, "TESTING": True, "DATABASE": str(tmp_path / "app.sqlite"),
             "WORKBOOK_PROBE": "set by test_config"}
    try:
        app = step.create_app(given)
    except Exception as exc:
        pytest.fail(f"create_app(test_config) refused to start although test_config holds a strong key "
                    f"({type(exc).__name__}: {str(exc)[:80]}...): test_config is not applied. Note that "
                    "from_object() reads only the UPPERCASE attributes of a class or a module, and a dict "
                    "has none: app.config.from_mapping(test_config)", pytrace=False)
    missing = sorted(k for k, v in given.items() if app.config.get(k) != v)
    assert not missing, (
        f"test_config's {', '.join(missing)} did not reach app.config: apply the whole test_config "
        "(app.config.from_mapping(test_config)), not only some keys of it"
    )


@pytest.mark.exercise("config-order")
def test_the_environment_still_counts_beside_a_test_config(step, monkeypatch, tmp_path):
    """The layers stack: with a test_config, the FLASK_* variables still set every key test_config leaves out."""
    monkeypatch.setenv("FLASK_WORKBOOK_PROBE", "set by the environment")
    monkeypatch.setenv("FLASK_DATABASE", str(tmp_path / "app.sqlite"))
    app = step.create_app({"JWT_SECRET_KEY": strong_key()})
    assert app.config.get("WORKBOOK_PROBE") == "set by the environment", (
        "with a test_config, the FLASK_* environment variables were not read: each layer overrides only "
        "the keys it names, so an operator's FLASK_* settings must still count for every key test_config "
        "does not set. Load all three layers, one after the other (not `if test_config is None: ... else: ...`)"
    )


@pytest.mark.exercise("config-order")
def test_a_missing_key_is_never_made_up(step, tmp_path):
    """Without any JWT_SECRET_KEY, create_app() refuses to start: it never makes a key up."""
    try:
        app = step.create_app({"TESTING": True, "DATABASE": str(tmp_path / "app.sqlite")})
    except Exception:  # the step's InsecureConfigError: right
        return
    # Started without a key at all: that is the refusal's failure (exercise 1.2), reported by its own checks.
    assert not app.config.get("JWT_SECRET_KEY"), made_up_key(app, None)


@pytest.mark.exercise("config-order")
def test_test_config_overrides_the_environment(step, monkeypatch, tmp_path):
    """test_config has the last word: it overrides FLASK_* variables, which override the defaults."""
    from_env, from_test = strong_key(), strong_key()
    monkeypatch.setenv("FLASK_JWT_SECRET_KEY", from_env)
    monkeypatch.setenv("FLASK_DATABASE", str(tmp_path / "app.sqlite"))
    app = step.create_app({"JWT_SECRET_KEY": from_test})
    assert app.config["JWT_SECRET_KEY"] != from_env, "the environment overrode test_config: load test_config last"
    assert app.config["JWT_SECRET_KEY"] == from_test, "test_config's JWT_SECRET_KEY was not applied"


@pytest.mark.exercise("config-order")
def test_debug_is_off_by_default(step, monkeypatch, tmp_path):
    """Debug mode is off unless someone turns it on (the debugger is a remote Python console)."""
    monkeypatch.setenv("FLASK_JWT_SECRET_KEY", strong_key())
    monkeypatch.setenv("FLASK_DATABASE", str(tmp_path / "app.sqlite"))
    app = step.create_app()
    assert app.debug is False, "debug mode is on by default: anyone who triggers an error gets a Python console"
    assert app.testing is False, "TESTING is on by default: errors would propagate instead of answering 500"


@pytest.mark.exercise("config-order")
def test_factory_makes_independent_apps(make_app):
    """Each create_app() call returns a new app: tests and processes never share state."""
    first, second = make_app(), make_app()
    assert first is not second, "create_app returned the same app twice: build a new Flask() inside the factory"
    assert first.config["JWT_SECRET_KEY"] != second.config["JWT_SECRET_KEY"], "two apps share their configuration"

