"""The API's inventory (OWASP API9:2023): every step from 03 on publishes an OpenAPI 3.1 document
made from its marshmallow schemas and routes, and Swagger UI to try it — in development only.

- the document is valid OpenAPI 3.1 and documents exactly the routes the app serves;
- both are off unless API_DOCS is on (production: off), and Swagger UI loads nothing from a CDN;
- schemathesis (steps 05 on) generates requests from the document, valid and invalid, and
  checks every answer: no 5xx, a documented status, the documented content type and shape;
- a real browser (Playwright driving Chromium) opens /docs, authorizes with a token from
  /login, calls /protected and sees 200.

These check the course's own reference solutions (the document is course infrastructure, not an
exercise), so they are not a lesson's tests: `check` and `grade` do not run them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid

import pytest

from tests.conftest import CHEAP_HASHING, env_for
from tests.harness import LearnerCodeError, LiveServer, StepTarget, strong_key
from workbook.course import SOLUTIONS, load

COURSE = load()
DOCUMENTED = [s for s in COURSE.steps if (s.folder(SOLUTIONS) / "openapi.py").is_file()]
FUZZED = [s for s in DOCUMENTED if s.number >= 5]  # one error shape everywhere (RFC 9457) from step 05
PASSWORD = "violet kettle under a quiet moon"


def build(step, tmp_path, **config):
    settings = {"TESTING": True, "JWT_SECRET_KEY": strong_key(), "DATABASE": str(tmp_path / "api.sqlite"),
                "API_DOCS": True, "RATELIMIT_ENABLED": False, **CHEAP_HASHING, **config}
    try:
        return StepTarget(step, SOLUTIONS).create_app(settings)
    except LearnerCodeError as exc:
        pytest.fail(str(exc), pytrace=False)


def served_operations(app) -> set[tuple[str, str]]:
    """(path, method) of every route, in OpenAPI's spelling: /notes/{note_id}."""
    operations = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("openapi."):
            continue  # the documentation itself
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        operations |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return operations


def test_every_step_from_03_on_has_a_document():
    """From step 03 (where the schemas arrive) every solution publishes its OpenAPI document."""
    assert [s.number for s in DOCUMENTED] == [s.number for s in COURSE.steps if s.number >= 3]


@pytest.mark.parametrize("step", DOCUMENTED, ids=[s.slug for s in DOCUMENTED])
def test_the_document_is_valid_openapi_3_1(step, tmp_path):
    """/openapi.json validates against the OpenAPI 3.1 schema."""
    from openapi_spec_validator import OpenAPIV31SpecValidator

    doc = build(step, tmp_path).test_client().get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1"), doc["openapi"]
    errors = [e.message for e in OpenAPIV31SpecValidator(doc).iter_errors()]
    assert not errors, f"the OpenAPI document of step {step.number} is not valid: {errors[:3]}"


@pytest.mark.parametrize("step", DOCUMENTED, ids=[s.slug for s in DOCUMENTED])
def test_every_route_is_documented_and_nothing_else(step, tmp_path):
    """The document lists exactly the routes the app serves: an undocumented route is a route nobody knows about."""
    app = build(step, tmp_path)
    doc = app.test_client().get("/openapi.json").get_json()
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    served = served_operations(app)
    assert not served - documented, f"routes served but not documented (openapi.py ROUTES): {sorted(served - documented)}"
    assert not documented - served, f"routes documented but not served: {sorted(documented - served)}"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op.get("responses"), f"{method.upper()} {path} documents no response"
            if "{" in path or "security" in op:
                assert "401" in op["responses"], f"{method.upper()} {path} needs a token but documents no 401"


@pytest.mark.parametrize("step", DOCUMENTED, ids=[s.slug for s in DOCUMENTED])
def test_the_bearer_scheme_is_documented(step, tmp_path):
    """Routes behind a token say so (the bearer scheme), so Swagger UI's Authorize button works for them."""
    doc = build(step, tmp_path).test_client().get("/openapi.json").get_json()
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert doc["paths"]["/protected"]["get"]["security"] == [{"bearer": []}]


@pytest.mark.parametrize("step", DOCUMENTED, ids=[s.slug for s in DOCUMENTED])
def test_docs_are_off_unless_asked_for(step, tmp_path):
    """By default (production) neither the document nor Swagger UI is served: the map of the API stays private."""
    client = build(step, tmp_path, API_DOCS=False).test_client()
    for path in ("/openapi.json", "/docs", "/docs/swagger-ui-bundle.js"):
        assert client.get(path).status_code == 404, f"{path} is served although API_DOCS is off"


@pytest.mark.parametrize("step", DOCUMENTED, ids=[s.slug for s in DOCUMENTED])
def test_swagger_ui_comes_from_the_app_not_a_cdn(step, tmp_path):
    """/docs loads its script and style from the app itself (a packaged copy): it works offline."""
    client = build(step, tmp_path).test_client()
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "the docs page loads something from another site"
    for asset in re.findall(r"(?:src|href)=\"(/docs/[^\"]+)\"", html):
        with client.get(asset) as r:  # a file response: closed when done
            assert r.status_code == 200 and r.get_data().strip(), f"{asset} answered {r.status_code}"


# --- schemathesis: the document against the app's behaviour ------------------------------------


def token_for(client) -> str:
    name = f"fuzz{uuid.uuid4().hex[:10]}"
    assert client.post("/register", json={"username": name, "password": PASSWORD}).status_code == 201
    return client.post("/login", json={"username": name, "password": PASSWORD}).get_json()["access_token"]


@pytest.mark.parametrize("step", FUZZED, ids=[s.slug for s in FUZZED])
def test_schemathesis_finds_no_5xx_and_every_answer_is_documented(step, tmp_path):
    """Requests generated from the document, valid and invalid, with and without a token: never a 5xx,
    and every answer has a documented status, content type and shape."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                     status_code_conformance)

    app = build(step, tmp_path, PROPAGATE_EXCEPTIONS=False)
    client = app.test_client()
    bearer = {"Authorization": f"Bearer {token_for(client)}"}
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    quick = os.environ.get("WORKBOOK_CHECK") == "1"
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=5 if quick else 12, derandomize=True, database=None, deadline=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case):
                headers = bearer if operation.security else {}
                try:
                    case.call_and_validate(headers=headers, checks=checks)
                except Exception as exc:  # schemathesis' failures: AssertionError or a group of them
                    failures.append(f"{case.method} {case.formatted_path} ({mode.value}): {str(exc).strip()[:600]}")
                    raise

            try:
                call()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, f"no valid request for {operation.label} could be made"
                # nothing in this operation can be made invalid (GET /health takes no input)
            except Exception:  # noqa: BLE001 - recorded above, with the case; on to the next operation
                pass
    assert not failures, "the app's answers do not match its OpenAPI document:\n" + "\n".join(dict.fromkeys(failures))


# --- a real browser ------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian/Ubuntu: apt-get install chromium; "
                                             "CI installs it, so there this test runs)")
def test_a_browser_authorizes_in_swagger_ui_and_calls_protected(tmp_path):
    """In Chromium: open /docs, log in through the page, Authorize with the token, call /protected: 200."""
    pytest.importorskip("playwright", reason="playwright is in requirements.txt")
    from playwright.sync_api import sync_playwright

    step = DOCUMENTED[-1]
    server = LiveServer(StepTarget(step, SOLUTIONS), tmp_path,
                        env=env_for({**CHEAP_HASHING, "API_DOCS": True, "RATELIMIT_ENABLED": False}))
    try:
        server.start()
    except LearnerCodeError as exc:
        pytest.fail(str(exc), pytrace=False)
    name = f"browser{uuid.uuid4().hex[:8]}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"])
            try:
                page = browser.new_page()
                page.set_default_timeout(15_000)
                blocked = []  # what the page's Content-Security-Policy refused, if anything
                page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
                page.goto(f"{server.url}/docs")
                page.wait_for_selector("#operations-default-post_register")
                token = page.evaluate("""async ([name, password]) => {
                    const body = JSON.stringify({username: name, password: password});
                    const headers = {"Content-Type": "application/json"};
                    await fetch("/register", {method: "POST", headers, body});
                    const r = await fetch("/login", {method: "POST", headers, body});
                    return (await r.json()).access_token;
                }""", [name, PASSWORD])
                assert token, "logging in from the docs page gave no token"
                page.click("button.authorize")
                page.fill(".auth-container input", token)
                page.click(".auth-btn-wrapper button.authorize")
                page.click("button.btn-done")
                page.click("#operations-default-get_protected .opblock-summary")
                page.click("#operations-default-get_protected button.try-out__btn")
                page.click("#operations-default-get_protected button.execute")
                status = page.wait_for_selector("#operations-default-get_protected .live-responses-table tbody "
                                                "td.response-col_status")
                assert status.inner_text().strip().startswith("200"), (
                    f"Swagger UI's call of /protected with the token answered {status.inner_text()!r}")
                shown = page.inner_text("#operations-default-get_protected .live-responses-table tbody "
                                        ".response-col_description pre")
                assert json.loads(shown)["logged_in_as"] == name
                assert not blocked, f"the docs page's Content-Security-Policy blocked: {blocked[:3]}"
            finally:
                browser.close()
    finally:
        server.stop()
