"""Step 01 — the set-up seen from the network: `flask run` on 127.0.0.1, over real HTTP.

Here, not in test_step01_setup.py, so that the step's own checks (`check 1 --quick`, the mutant
runs, grading without --http) run without starting a server: every property below is also checked
in process there; these confirm that the real server behaves the same.
"""

import pytest


@pytest.mark.exercise("health")
def test_health_over_real_http(live_server):
    """A real client on the network gets the health check from `flask run`."""
    r = live_server.get("/health")
    assert r.status == 200, f"GET /health over HTTP should answer 200, it answered {r.status}"
    assert r.json() == {"status": "ok"}, f"GET /health over HTTP answered {r.text[:200]!r}"


@pytest.mark.exercise("config-order")
def test_unknown_path_is_a_plain_404(live_server):
    """An unknown path answers 404, without a traceback or a crash."""
    r = live_server.get("/nothing-here")
    assert r.status == 404, f"an unknown path should answer 404, it answered {r.status}"
    assert "Traceback" not in r.text, "the 404 page shows a Python traceback"
