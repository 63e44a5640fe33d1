"""The grader on a class that cheats: real submissions, real processes, real bubblewrap.

One class is graded once (module fixture) and many tests look at it: a perfect student, the
untouched starter, a half-done one, intake cases (Unicode names, `sam/` beside `sam.zip`, a
Windows zip, an LMS export, a clone without `steps/`), and hostile submissions — each attack of
the instructors' trial. Every hostile one gets 0 for what it did not earn, harms nobody (the
perfect student keeps full marks, the grader's files and the classmates' submissions stay as they
were, no process of theirs survives the run) and the run completes.

The class is graded on steps 01 and 02 (the code path of all six); the attackers send step 01 only.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import socket
import sysconfig
import tempfile
import threading
import zipfile
from pathlib import Path

import pytest

from workbook import exercises
from workbook.course import REPO, SOLUTIONS, TESTS, load
from workbook.grading import bwrap, grade_class

COURSE = load()
STEPS = [1, 2]
ONE, TWO = COURSE.step(1), COURSE.step(2)
FULL_ONE = sum(ex.points for ex in ONE.exercises)
FULL = FULL_ONE + sum(ex.points for ex in TWO.exercises)
SITE = sysconfig.get_paths()["purelib"]
SECRET = "HIDDEN-TEST-SECRET-7f3a"
PLANTED = [REPO / "conftest.py", TESTS / "planted_by_a_student.py", Path(SITE) / "planted_by_a_student.pth"]

pytestmark = pytest.mark.skipif(bool(bwrap.probe()), reason=f"no sandbox here: {bwrap.probe()}")


def solved(dest: Path, *steps):
    for step in steps:
        shutil.copytree(step.folder(SOLUTIONS), dest / step.slug, ignore=shutil.ignore_patterns("__pycache__"))


def starter(dest: Path, *steps):
    for step in steps:
        exercises.write_starter(step, COURSE, steps_root=dest)


def sabotage(folder: Path, code: str) -> None:
    """Put hostile code at the top of a step's create_app (the app still imports)."""
    init = folder / "__init__.py"
    text = init.read_text("utf-8")
    marker = "    app = Flask(__name__, instance_relative_config=True)\n"
    lines = "".join(f"    {line}\n" for line in code.strip("\n").splitlines())
    init.write_text(text.replace(marker, lines + marker, 1), encoding="utf-8")


def hostile(subs: Path, name: str, code: str) -> Path:
    """A student who sent the untouched step 01 with `code` at the top of create_app."""
    starter(subs / name, ONE)
    sabotage(subs / name / ONE.slug, code)
    return subs / name


def tree_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if text in line:
            found.append(line)
    return found


class Listener:
    """A TCP server of the grader's machine that counts who connects (the sandbox must not reach it)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                continue

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def build_class(subs: Path, out: Path, extra: Path, listener: Listener) -> None:
    # --- honest students -----------------------------------------------------------------
    solved(subs / "perfect" / "steps", ONE, TWO)  # the whole repository layout
    (subs / "perfect" / "README.md").write_text("mine", encoding="utf-8")
    starter(subs / "untouched", ONE, TWO)
    solved(subs / "half", ONE)
    starter(subs / "half", TWO)
    # --- intake --------------------------------------------------------------------------
    solved(subs / "Zoë", ONE)
    solved(subs / "Zoé", ONE)
    solved(subs / "sam", ONE)
    with zipfile.ZipFile(subs / "sam.zip", "w") as zf:
        zf.writestr("sam/steps/", "")
        for path in sorted(ONE.folder(SOLUTIONS).glob("*.py")):
            zf.write(path, f"sam/steps/{ONE.slug}/{path.name}")
    with zipfile.ZipFile(subs / "windows.zip", "w") as zf:  # backslashes, directory entries
        for d in ("project\\", "project\\steps\\", f"project\\steps\\{ONE.slug}\\"):
            info = zipfile.ZipInfo(d)
            info.external_attr = 0x10  # MS-DOS directory attribute
            zf.writestr(info, "")
        for path in sorted(ONE.folder(SOLUTIONS).glob("*.py")):
            zf.writestr(f"project\\steps\\{ONE.slug}\\{path.name}", path.read_bytes())
        zf.writestr("../../escaped.txt", "outside")
        zf.writestr("/tmp/absolute-escape.txt", "outside")
    lms = subs / "Lee, Kim_12345_assignsubmission_file_" / "attempt"
    lms.mkdir(parents=True)
    with zipfile.ZipFile(lms / "kim-lee.zip", "w") as zf:
        for path in sorted(ONE.folder(SOLUTIONS).glob("*.py")):
            zf.write(path, f"repo-main/steps/{ONE.slug}/{path.name}")
    shutil.copytree(SOLUTIONS, subs / "no-steps" / "solutions", ignore=shutil.ignore_patterns("__pycache__"))
    # --- hostile -------------------------------------------------------------------------
    importer = subs / "importer"
    (importer / ONE.slug).mkdir(parents=True)
    (importer / ONE.slug / "__init__.py").write_text(
        f"import sys\nsys.path[:0] = [{str(REPO)!r}, {str(REPO / 'solutions')!r}]\n"
        "try:\n    from solutions.step01_setup import create_app  # the grader's own solution\n"
        "except ImportError:\n    from step01_setup import create_app\n", encoding="utf-8")
    forged = json.dumps({"exitstatus": 0, "collection_errors": [], "tests": [], "forged": True})
    hostile(subs, "forger", f"""
import os, signal, time, glob
if not os.path.exists('/tmp/.forging'):
    open('/tmp/.forging', 'w').close()
    if os.fork() == 0:
        os.setsid()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if os.fork() == 0:
            for _ in range(400):
                for p in glob.glob('/tmp/**/report.json', recursive=True) + [{str(out / 'results.json')!r}]:
                    try:
                        open(p, 'w').write({forged!r})
                    except OSError:
                        pass
                time.sleep(0.1)
            os._exit(0)
        os._exit(0)
""")
    perfect_files = [str(p) for p in sorted((subs / "perfect").rglob("*.py"))]
    hostile(subs, "snoop", f"""
import os, glob
leaked = []
for p in glob.glob({str(extra)!r} + '/*') + glob.glob({str(TESTS)!r} + '/test_step01*'):
    try:
        leaked.append(open(p).read())
    except OSError:
        pass
for p in {perfect_files!r} + glob.glob('/tmp/workbook-grade-*/*/steps/*/__init__.py'):
    try:
        open(p, 'a').write('# planted by a classmate\\n')
    except OSError:
        pass
for p in {[str(p) for p in PLANTED]!r}:
    try:
        open(p, 'a').write('# planted by a hostile submission\\n')
    except OSError:
        pass
for cmd in glob.glob('/proc/[0-9]*/cmdline'):
    try:
        line = open(cmd, 'rb').read()
        if b'workbook_host' in line and b'snoop' not in line:
            os.kill(int(cmd.split('/')[2]), 9)
    except OSError:
        pass
if leaked:
    raise RuntimeError('LEAKED ' + ' '.join(leaked)[:3000])
""")
    hostile(subs, "protocol", """
import os, stat, struct
if not os.path.exists('/tmp/.sent'):
    open('/tmp/.sent', 'w').close()
    for fd in range(3, 30):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                os.write(fd, struct.pack('>I', 2**31 - 1) + b'x' * 65536)
        except OSError:
            pass
""")
    hostile(subs, "streamer", """
if test_config is None:  # under `flask run`: answer every request with 2 GB
    import flask
    def flood(self, environ, start_response):
        start_response('200 OK', [('Content-Type', 'application/json')])
        return (b' ' * 1024**2 for _ in range(2000))
    flask.Flask.wsgi_app = flood
""")
    hostile(subs, "hog", """
import os, time
if test_config is None:  # `flask routes`: the CLI runs the app too
    held = bytearray(3 * 1024**3)
    time.sleep(60)
""")
    hostile(subs, "network", f"""
import socket
s = socket.socket()
try:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('0.0.0.0', {listener.port + 1}))
    s.listen()
    app_listener = s
except OSError:
    pass
try:
    socket.create_connection(('127.0.0.1', {listener.port}), timeout=1).close()
except OSError:
    pass
""")
    hostile(subs, "filler", """
import os
if not os.path.exists('/tmp/.filled'):
    open('/tmp/.filled', 'w').close()
    places = ['/tmp'] + [os.path.dirname(test_config['DATABASE'])] if test_config and test_config.get('DATABASE') else ['/tmp']
    for place in places:
        for i in range(6):
            try:
                with open(os.path.join(place, f'big{i}'), 'wb') as fh:
                    for _ in range(48):
                        fh.write(b'x' * 1024**2)
            except OSError:
                pass
""")
    hostile(subs, "forkbomb", """
import os, time
if not os.path.exists('/tmp/.forked'):
    open('/tmp/.forked', 'w').close()
    for _ in range(400):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            time.sleep(30)
            os._exit(0)
""")
    cheat = subs / "cheater"
    starter(cheat, ONE, TWO)
    hook = ("import pytest\n@pytest.hookimpl(wrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
            "    report = yield\n    report.outcome = 'passed'\n    return report\n")
    (cheat / "conftest.py").write_text(hook, encoding="utf-8")
    (cheat / ONE.slug / "conftest.py").write_text(hook, encoding="utf-8")
    hostile(subs, "quitter", "import os\nos._exit(0)\n")
    hostile(subs, "looper", "while True:\n    pass\n")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    subs = tmp_path_factory.mktemp("submissions")
    out = tmp_path_factory.mktemp("out")
    extra = tmp_path_factory.mktemp("hidden")
    (extra / "test_step01_hidden.py").write_text(f'''"""{SECRET}"""
import pytest


@pytest.mark.exercise("health")
def test_health_is_json(client):
    """{SECRET}: /health answers JSON."""
    assert client.get("/health").is_json
''', encoding="utf-8")
    listener = Listener()
    build_class(subs, out, extra, listener)
    before = {p: p.read_bytes() if p.exists() else None for p in PLANTED}
    perfect_before = tree_hash(subs / "perfect")
    try:
        grades = grade_class(subs, out, step_numbers=STEPS, jobs=3, timeout=30, answer_timeout=3, extra_tests=extra)
    finally:
        listener.close()
        planted = [p for p in PLANTED if (p.read_bytes() if p.exists() else None) != before[p]]
        for p in planted:  # never leave them behind, whatever happened
            if before[p] is None:
                p.unlink()
    by_name = {g.student: g for g in grades}
    return {"grades": by_name, "all": grades, "out": out, "subs": subs, "extra": extra, "listener": listener,
            "planted": planted, "perfect_before": perfect_before}


def test_a_perfect_submission_gets_full_marks(graded):
    g = graded["grades"]["perfect"]
    assert g.total == FULL, (g.notes, g.flags)


def test_the_untouched_starter_and_the_half_done_one(graded):
    grades = graded["grades"]
    assert grades["untouched"].total == 0
    assert grades["half"].steps[ONE.slug] == FULL_ONE and grades["half"].steps[TWO.slug] == 0


def test_unicode_names_and_name_collisions_are_distinct_students(graded):
    grades = graded["grades"]
    ids = {g.id for g in graded["all"]}
    assert len(ids) == len(graded["all"]), "two students share an id"
    for name in ("Zoë", "Zoé"):
        assert grades[name].steps[ONE.slug] == FULL_ONE, grades[name].notes
    sams = [g for g in graded["all"] if g.student == "sam"]
    assert len(sams) == 2 and all(g.steps[ONE.slug] == FULL_ONE for g in sams), [g.notes for g in sams]
    with open(graded["out"] / "gradebook.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["student"] for r in rows} >= {"Zoë", "Zoé", "sam"} and len({r["id"] for r in rows}) == len(rows)
    assert all(r["id"].isascii() for r in rows)
    assert all((graded["out"] / "feedback" / f"{r['id']}.md").is_file() for r in rows)


def test_identical_submissions_are_flagged(graded):
    grades = graded["grades"]
    assert any("identical submission" in f for f in grades["Zoë"].flags), grades["Zoë"].flags
    assert not any("identical" in f for f in grades["perfect"].flags if "solutions" not in f)


def test_a_windows_zip_and_an_lms_export_are_read(graded):
    grades = graded["grades"]
    win = grades["windows"]
    assert win.steps[ONE.slug] == FULL_ONE, win.notes
    assert sum("outside the submission" in n for n in win.notes) == 2
    assert not (graded["subs"].parent / "escaped.txt").exists() and not Path("/tmp/absolute-escape.txt").exists()
    lms = grades["Lee, Kim_12345_assignsubmission_file_"]
    assert lms.steps[ONE.slug] == FULL_ONE, lms.notes


def test_only_the_submissions_own_steps_are_graded(graded):
    """A clone without steps/ is not graded from its solutions/; importing the grader's solutions fails."""
    grades = graded["grades"]
    assert grades["no-steps"].total == 0 and any("no step folder" in n for n in grades["no-steps"].notes)
    assert grades["importer"].total == 0, grades["importer"].notes


@pytest.mark.parametrize("name", ["forger", "snoop", "protocol", "streamer", "hog", "network", "filler", "forkbomb",
                                  "cheater", "quitter", "looper"])
def test_hostile_code_earns_nothing_and_costs_nobody_else(graded, name):
    grades = graded["grades"]
    assert grades[name].total == 0, (grades[name].notes, grades[name].flags)
    assert grades["perfect"].total == FULL, "another student's hostile code cost the perfect one points"
    assert not processes_mentioning(f"/{grades[name].id}/"), "a process of the student's survived the run"
    assert not list(Path(tempfile.gettempdir()).glob(f"workbook-grade-*/{grades[name].id}")), "its files outlived the run"


def test_a_forged_report_and_outputs_do_not_count(graded):
    results = json.loads((graded["out"] / "results.json").read_text("utf-8"))
    assert isinstance(results, list) and len(results) == len(graded["all"])
    assert not any(r.get("forged") for r in results)


def test_classmates_the_grader_and_hidden_tests_are_out_of_reach(graded):
    assert graded["planted"] == [], f"a submission planted files in the grader: {graded['planted']}"
    assert tree_hash(graded["subs"] / "perfect") == graded["perfect_before"], "a classmate's submission changed"
    snoop = graded["grades"]["snoop"]
    said = " ".join(t.reason for t in snoop.tests) + " ".join(snoop.notes)
    said += "".join(p.read_text("utf-8") for p in (graded["out"] / "feedback").glob("*.md"))
    assert "LEAKED" not in said and SECRET not in said, "student code read the hidden tests or the grader's tests"


def test_no_network_beyond_the_sandboxs_loopback(graded):
    assert graded["listener"].connections == 0, "student code reached a port of the grader's machine"
    with socket.socket() as s:
        s.settimeout(0.5)
        assert s.connect_ex(("127.0.0.1", graded["listener"].port + 1)) != 0, "a student's listener is still up"


def test_an_app_that_hung_is_not_started_again_by_its_commands(graded):
    """Once a student's create_app has hung in the app host, `flask ...` commands of that step fail at
    once instead of spinning until their own time-out (~10 s of a core the whole class waits for)."""
    looper = graded["grades"]["looper"]
    commands = [t for t in looper.tests if "test_flask_cli_refuses_without_a_key" in t.nodeid]
    assert commands, "the looper's `flask routes` check did not run"
    assert all(not t.passed and "commands are not started either" in t.reason for t in commands), (
        [t.reason for t in commands])


def test_limits_are_flagged_and_flagged_runs_are_not_cached(graded):
    grades, out = graded["grades"], graded["out"]
    # The filler trips the cap on what a run may leave behind, or (on a slow disk) the answer's time limit.
    expected = {"protocol": ("limit",), "forkbomb": ("process count",), "filler": ("wrote", "timeout"),
                "looper": ("timeout",)}
    for name, words in expected.items():
        assert any(word in f for f in grades[name].flags for word in words), (name, grades[name].flags)
        assert not (out / ".cache" / f"{grades[name].id}.json").exists(), f"{name}'s flagged run was cached"
    assert grades["hog"].seconds < 25, "the memory hog held its memory instead of failing"
    assert grades["streamer"].seconds < 25, "a server streaming gigabytes was read to the end"
    report = (out / "report.html").read_text("utf-8")
    assert "Suspicious rows" in report and grades["forkbomb"].id in report


def test_hidden_tests_count_and_stay_hidden(graded):
    """The hidden test ran for every step-01 student (and is not named in the feedback)."""
    g = graded["grades"]["perfect"]
    assert any("_extra_" in t.nodeid and t.passed for t in g.tests)
    assert "health_is_json" not in (graded["out"] / "feedback" / f"{g.id}.md").read_text("utf-8")


def test_the_outputs(graded):
    grades, out = graded["grades"], graded["out"]
    with open(out / "gradebook.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(graded["all"]) and {r["student"] for r in rows} == set(grades)
    assert all(r["maximum"] == f"{FULL:g}" for r in rows) and "flags" in rows[0] and "id" in rows[0]
    feedback = (out / "feedback" / f"{grades['half'].id}.md").read_text("utf-8")
    assert "python -m workbook hint 2" in feedback and "✗" in feedback and "✓" in feedback
    report = (out / "report.html").read_text("utf-8")
    assert "<svg" in report and "struggled" in report and "attempted" in report


def test_unchanged_submissions_are_not_graded_again(graded):
    """A second run (same hidden tests) reuses every unchanged, unflagged student; a changed one is graded again."""
    subs, out, extra = graded["subs"], graded["out"], graded["extra"]
    init = subs / "half" / TWO.slug / "__init__.py"
    init.write_text(init.read_text("utf-8") + "\n# changed\n", encoding="utf-8")
    cached = sorted(p.name for p in (out / ".cache").glob("*.json"))
    suite_before = json.loads((out / ".cache" / f"{graded['grades']['perfect'].id}.json").read_text("utf-8"))["suite"]
    assert f"{graded['grades']['perfect'].id}.json" in cached, (cached, graded["grades"]["perfect"].flags)
    keep = subs.parent / "kept"
    keep.mkdir()
    for name in ("half", "perfect", "untouched"):
        shutil.move(str(subs / name), keep / name)  # grade just these three again
    grades = grade_class(keep, out, step_numbers=STEPS, jobs=3, timeout=30, answer_timeout=3, extra_tests=extra)
    by_name = {g.student: g for g in grades}
    regraded = sorted(name for name, g in by_name.items() if not g.cached)
    after = json.loads((out / ".cache" / f"{by_name['perfect'].id}.json").read_text("utf-8"))
    if regraded != ["half"] and after["suite"] != suite_before:
        pytest.skip("the course's tests or grader changed while this test ran (someone is editing them)")
    assert regraded == ["half"], f"re-graded: {regraded}; only the changed one should be"
    assert by_name["perfect"].total == FULL and by_name["half"].steps[ONE.slug] == FULL_ONE
    for name in ("half", "perfect", "untouched"):
        shutil.move(str(keep / name), subs / name)
