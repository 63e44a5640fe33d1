"""Notebook 01 (Set up): its picture and the debugger console helper."""

from __future__ import annotations

import html as html_module
import re

from .common import blank_figure, picture

LAYERS = [  # bottom to top: (title, the line of create_app, what it sets, colour)
    ("1  code defaults", "config.DEFAULTS, in the source code",
     "JWT_SECRET_KEY = None   (no default key, on purpose)", "#eef3f8"),
    ("2  FLASK_* environment", "app.config.from_prefixed_env()",
     "FLASK_JWT_SECRET_KEY=<64 hex>   sets   JWT_SECRET_KEY", "#d6e6f5"),
    ("3  test_config", "create_app(test_config), when it is given",
     "{\"JWT_SECRET_KEY\": <a test key>}   (tests only)", "#b9d4ee"),
]
RESULTS = [  # what app.config["JWT_SECRET_KEY"] ends up as, when this layer is the top one that sets it
    ("neither set: None,\nso create_app refuses to start", "#7b241c"),
    ("flask run: the key from\nthe environment", "#1d2f40"),
    ("tests: the test's key", "#1d2f40"),
]

LAYERS_ALT = (
    "Three stacked boxes, bottom to top: 1 code defaults (config.DEFAULTS in the source code: "
    "JWT_SECRET_KEY = None, no default key on purpose); 2 the FLASK_* environment "
    "(app.config.from_prefixed_env(): FLASK_JWT_SECRET_KEY sets JWT_SECRET_KEY); 3 test_config, when "
    "create_app is given one (tests only). A red arrow up the left "
    "side reads 'later layers win'. On the right, what JWT_SECRET_KEY ends up as: None, so "
    "create_app refuses to start; under flask run, the key from the environment; in tests, the test's key."
)


def layers_picture():
    """The three configuration layers of create_app, and what JWT_SECRET_KEY ends up as."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = blank_figure(10.5, 4.3, (0, 10.5), (0.1, 4.4))
    for i, ((title, line, sets, colour), (result, result_colour)) in enumerate(zip(LAYERS, RESULTS)):
        y = 0.3 + i * 1.2
        ax.add_patch(FancyBboxPatch((1.0, y), 5.6, 0.95, boxstyle="round,pad=0.02,rounding_size=0.08",
                                    facecolor=colour, edgecolor="#34506b", linewidth=1.2))
        ax.text(1.2, y + 0.7, title, fontsize=12, fontweight="bold", va="center", color="#1d2f40")
        ax.text(1.2, y + 0.42, line, fontsize=9.5, family="monospace", va="center", color="#34506b")
        ax.text(1.2, y + 0.16, sets, fontsize=9.5, family="monospace", va="center", color="#1d2f40")
        ax.add_patch(FancyArrowPatch((6.7, y + 0.47), (7.45, y + 0.47), arrowstyle="-|>",
                                     mutation_scale=16, linewidth=1.4, color="#b9770e"))
        ax.text(7.55, y + 0.47, result, fontsize=9.8, va="center", color=result_colour)
    ax.text(7.55, 4.05, "app.config[\"JWT_SECRET_KEY\"]", fontsize=10, family="monospace",
            va="center", color="#1d2f40", fontweight="bold")
    ax.add_patch(FancyArrowPatch((0.55, 0.35), (0.55, 3.85), arrowstyle="-|>", mutation_scale=22,
                                 linewidth=2, color="#c0392b"))
    ax.text(0.3, 2.1, "later layers win", rotation=90, fontsize=11, color="#c0392b", va="center", ha="center")
    return picture(fig, LAYERS_ALT)


def try_to_start(create_app, insecure_error, key) -> str:
    """What `flask run` would print with this key (or that the app starts)."""
    try:
        create_app({"JWT_SECRET_KEY": key})
    except insecure_error as exc:
        return f"Error: {exc.format_message()}"
    return "the app starts"


class DebuggerConsole:
    """Drive the Werkzeug debugger's console the way a browser does: plain GET requests that carry
    the page's SECRET and a frame id, both read from the traceback page itself."""

    def __init__(self, client, page_html: str):
        self.client = client
        self.secret = re.search(r'SECRET = "([^"]+)"', page_html).group(1)       # in the page's <script>
        self.frame = re.findall(r'<div class="frame" id="frame-(\d+)">', page_html)[-1]  # the failing view

    def pin(self, pin: str) -> dict:
        reply = self.client.get("/", query_string={"__debugger__": "yes", "cmd": "pinauth", "pin": pin,
                                                   "s": self.secret})
        return reply.get_json()

    def run(self, expression: str) -> tuple[int, str]:
        """Send one line to the console in the failing frame; return status and what it printed."""
        reply = self.client.get("/", query_string={"__debugger__": "yes", "cmd": expression,
                                                   "frm": self.frame, "s": self.secret})
        text = reply.get_data(as_text=True)
        result = html_module.unescape(re.sub(r"<[^>]+>", "", text.partition("\n")[2]))
        return reply.status_code, result.strip()
