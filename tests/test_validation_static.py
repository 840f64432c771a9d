"""Static review: Backforge's AST rules, bandit with ``# nosec`` ignored, optional semgrep."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from activities.validation.checks.static_review import bandit_findings, semgrep_findings
from activities.validation.checks.static_rules import iter_python_files, scan_source
from tests.support.validation_demo import build_demo_service
from tests.support.validation_services import REFERENCE


def _checks(source: str, *, test_file: bool = False) -> list[tuple[str, int]]:
    return [
        (h.check, h.line) for h in scan_source(textwrap.dedent(source), "m.py", test_file=test_file)
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "def f(db, q):\n    db.execute(f\"SELECT * FROM t WHERE a = '{q}'\")\n",
            "static.sql_string_format",
        ),
        (
            'def f(db, q):\n    sql = "SELECT * FROM t WHERE a = %s" % q\n    db.execute(sql)\n',
            "static.sql_string_format",
        ),
        (
            'def f(db, q):\n    db.execute("DELETE FROM t WHERE a = " + q)\n',
            "static.sql_string_format",
        ),
        (
            'def f(db, q):\n    db.execute("SELECT * FROM t WHERE a = {}".format(q))\n',
            "static.sql_string_format",
        ),
        (
            'def add(db, name, password):\n    db.execute("INSERT INTO users (name, password) VALUES (?, ?)", (name, password))\n',
            "static.plaintext_password",
        ),
        (
            'def add(db, name, password):\n    salt, digest = "-", password\n    db.execute("INSERT INTO u (n, s, h) VALUES (?, ?, ?)", (name, salt, digest))\n',
            "static.plaintext_password",
        ),
        (
            "def add(users, p):\n    users[p.username] = {'password': p.password}\n",
            "static.plaintext_password",
        ),
        (
            "def login(row, password):\n    return row['password'] == password\n",
            "static.plaintext_secret_compare",
        ),
        (
            "def ok(token, expected_token):\n    return token != expected_token\n",
            "static.plaintext_secret_compare",
        ),
        (
            "def ok(h, p):\n    return h['password_hash'] == sha256(p)\n",
            "static.timing_unsafe_compare",
        ),
        ('SECRET_KEY = "s3cr3t-signing-key-for-prod"\n', "static.hardcoded_secret"),
        (
            'import os\nJWT_SECRET = os.environ.get("JWT_SECRET", "dev-secret-please-change")\n',
            "static.hardcoded_secret",
        ),
        ('KEY = "-----BEGIN RSA PRIVATE KEY-----"\n', "static.hardcoded_secret"),
        ("app = FastAPI(debug=True)\n", "static.debug_enabled"),
        ("DEBUG = True\n", "static.debug_enabled"),
        ("def f(x):\n    return eval(x)\n", "static.unsafe_eval"),
        ("import pickle\ndef f(x):\n    return pickle.loads(x)\n", "static.unsafe_eval"),
        ("import yaml\ndef f(x):\n    return yaml.load(x)\n", "static.unsafe_eval"),
        ("import subprocess\ndef f(x):\n    subprocess.run(x, shell=True)\n", "static.unsafe_eval"),
    ],
)
def test_rule_fires(source: str, expected: str) -> None:
    assert expected in [check for check, _ in _checks(source)]


@pytest.mark.parametrize(
    "source",
    [
        'def f(db, q):\n    db.execute("SELECT * FROM t WHERE a = ?", (q,))\n',
        'def f(db):\n    db.execute("SELECT 1")\n',
        'def f(log, q):\n    log.info(f"user searched for {q}")\n',
        "import hmac\ndef ok(a, b):\n    return hmac.compare_digest(a, b)\n",
        'TOKEN_TYPE = "bearer"\nTOKEN_URL = "https://example.com/oauth/token"\nPASSWORD_MIN_LENGTH = 8\n',
        'def f(token):\n    return token == ""\n',
        'def add(db, name, password):\n    salt, digest = hash_password(password)\n    db.execute("INSERT INTO u (n, s, h) VALUES (?, ?, ?)", (name, salt, digest))\n',
        "import yaml\ndef f(x):\n    return yaml.load(x, Loader=yaml.SafeLoader)\n",
    ],
)
def test_rule_stays_quiet_on_safe_code(source: str) -> None:
    assert _checks(source) == []


def test_test_tampering_only_in_tests() -> None:
    hook = """
    import pytest

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item, call):
        outcome = yield
        report = outcome.get_result()
        if report.failed:
            report.outcome = "passed"

    def pytest_collection_modifyitems(items):
        items[:] = []
    """
    assert _checks(hook, test_file=True) == [
        ("static.test_tampering", 9),
        ("static.test_tampering", 12),
    ]
    assert _checks(hook) == []
    # Production rules do not run on tests (fixtures may hold literal passwords).
    assert _checks('PASSWORD = "correct horse battery"\n', test_file=True) == []


def test_python_files_skip_virtualenvs_and_caches(tmp_path: Path) -> None:
    for name in (
        "app/main.py",
        ".venv/lib/x.py",
        "node_modules/y.py",
        "app/__pycache__/z.py",
        "tests/test_a.py",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    assert [p.relative_to(tmp_path).as_posix() for p in iter_python_files(tmp_path)] == [
        "app/main.py",
        "tests/test_a.py",
    ]


def test_bandit_ignores_nosec(tmp_path: Path) -> None:
    source = tmp_path / "app.py"
    source.write_text(
        "import subprocess\n\ndef run(cmd):\n    subprocess.call(cmd, shell=True)  # nosec\n"
    )
    findings, tool = bandit_findings(tmp_path, [source])
    assert tool.used and tool.version
    assert any(f.check == "static.bandit.B602" and f.location == "app.py:4" for f in findings)


def test_reference_and_demo_code_are_clean(tmp_path: Path) -> None:
    for root in (REFERENCE / "service", build_demo_service(tmp_path / "demo").root):
        files = iter_python_files(root)
        hits = [
            h
            for f in files
            for h in scan_source(
                f.read_text(), str(f), test_file="tests" in f.parts or f.name == "conftest.py"
            )
        ]
        assert hits == [], root
        app_files = [f for f in files if "tests" not in f.parts and f.name != "conftest.py"]
        findings, _ = bandit_findings(root, app_files)
        assert [f for f in findings if f.severity.value in ("critical", "high", "medium")] == [], (
            root
        )


@pytest.mark.skipif(
    shutil.which("semgrep") is None, reason="semgrep is optional and not installed here"
)
def test_semgrep_runs_offline_with_bundled_rules(tmp_path: Path) -> None:
    source = tmp_path / "app.py"
    source.write_text('def f(db, q):\n    db.execute(f"SELECT * FROM t WHERE a = {q}")\n')
    findings, tool = semgrep_findings(tmp_path, [source], None)
    assert tool.used, tool.note
    assert [f.check for f in findings] == ["static.semgrep.sql-built-with-fstring"]


def test_semgrep_absent_is_reported_not_silent(tmp_path: Path) -> None:
    findings, tool = semgrep_findings(
        tmp_path, [tmp_path / "x.py"], str(tmp_path / "no-such-semgrep")
    )
    assert findings == [] and not tool.used and "no semgrep" in tool.note
