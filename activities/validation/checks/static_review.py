"""Static review of the generated code: bandit, optionally semgrep, and Backforge's own rules.

* bandit runs in-process on the application code (tests, virtualenvs and caches
  excluded) with ``# nosec`` comments ignored, so generated code cannot silence
  it. HIGH severity with at least MEDIUM confidence is a high finding, MEDIUM is
  medium, the rest low.
* semgrep runs only when a ``semgrep`` executable is given or on PATH; it is not
  a dependency (it pins an older OpenTelemetry than the worker uses). It runs
  offline with a small bundled rule set (no registry, no metrics, no version
  check).
* The AST rules of ``static_rules`` cover what these tools miss for this stack.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

from activities.validation.checks.static_rules import is_test_file, iter_python_files, scan_file
from activities.validation.context import RunContext
from activities.validation.models import Evidence, Finding, Severity, ToolInfo

__all__ = ["run_static_review", "SEMGREP_RULES", "bandit_findings", "semgrep_findings"]

SEMGREP_RULES = """
rules:
  - id: sql-built-with-fstring
    languages: [python]
    severity: ERROR
    message: SQL passed to execute() is built with an f-string
    pattern-either:
      - pattern: $C.execute(f"...", ...)
      - pattern: $C.execute("..." % $X, ...)
      - pattern: $C.execute("...".format(...), ...)
      - pattern: $C.execute("..." + $X, ...)
  - id: eval-or-exec
    languages: [python]
    severity: ERROR
    message: eval()/exec() on data
    pattern-either:
      - pattern: eval(...)
      - pattern: exec(...)
  - id: pickle-loads
    languages: [python]
    severity: ERROR
    message: pickle deserialisation of data
    pattern-either:
      - pattern: pickle.loads(...)
      - pattern: pickle.load(...)
  - id: subprocess-shell-true
    languages: [python]
    severity: ERROR
    message: subprocess with shell=True
    pattern: subprocess.$F(..., shell=True, ...)
  - id: fastapi-debug
    languages: [python]
    severity: WARNING
    message: FastAPI debug mode
    pattern: FastAPI(..., debug=True, ...)
"""


def _severity(level: str, confidence: str) -> Severity:
    level, confidence = level.upper(), confidence.upper()
    if level == "HIGH" and confidence != "LOW":
        return Severity.HIGH
    if level in ("HIGH", "MEDIUM") and confidence != "LOW":
        return Severity.MEDIUM
    return Severity.LOW


def bandit_findings(root: Path, files: list[Path]) -> tuple[list[Finding], ToolInfo]:
    """bandit's issues in ``files`` (in-process, ``# nosec`` ignored)."""
    with warnings.catch_warnings():
        # bandit's plugin loader passes an argument stevedore has deprecated.
        warnings.simplefilter("ignore")
        try:
            import bandit
            from bandit.core import config as bandit_config
            from bandit.core import manager
        except ImportError:
            return [], ToolInfo(name="bandit", used=False, note="not installed")
        mgr = manager.BanditManager(
            bandit_config.BanditConfig(), "file", quiet=True, ignore_nosec=True
        )
        mgr.discover_files([str(f) for f in files], False)
        mgr.run_tests()
    findings: list[Finding] = []
    for issue in mgr.get_issue_list():
        relative = os.path.relpath(issue.fname, root)
        location = f"{relative}:{issue.lineno}"
        code = (issue.get_code() or "").strip().splitlines()
        findings.append(
            Finding(
                check=f"static.bandit.{issue.test_id}",
                category="static",
                severity=_severity(str(issue.severity), str(issue.confidence)),
                title=f"bandit {issue.test_id}: {issue.text}"[:200],
                detail=f"bandit {issue.test_id} ({issue.test}), severity {issue.severity}, confidence {issue.confidence}.",
                location=location,
                evidence=[Evidence(location=location, snippet="\n".join(code[:4])[:400])],
            )
        )
    return findings, ToolInfo(
        name="bandit",
        version=getattr(bandit, "__version__", None),
        note=f"{len(files)} files, # nosec ignored",
    )


def _semgrep_executable(configured: str | None) -> str | None:
    if configured:
        return configured if Path(configured).is_file() or shutil.which(configured) else None
    return os.environ.get("BACKFORGE_SEMGREP") or shutil.which("semgrep")


def semgrep_findings(
    root: Path, files: list[Path], executable: str | None
) -> tuple[list[Finding], ToolInfo]:
    """semgrep's matches of the bundled rules, when an executable is available."""
    found = _semgrep_executable(executable)
    if found is None or not files:
        return [], ToolInfo(
            name="semgrep", used=False, note="no semgrep executable (optional; not a dependency)"
        )
    with tempfile.TemporaryDirectory(prefix="bf-semgrep-") as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(SEMGREP_RULES, encoding="utf-8")
        env = {
            **os.environ,
            "SEMGREP_ENABLE_VERSION_CHECK": "0",
            "SEMGREP_SEND_METRICS": "off",
            "HOME": tmp,
        }
        try:
            done = subprocess.run(  # noqa: S603 - fixed argument list, no shell
                [
                    found,
                    "scan",
                    "--config",
                    str(rules),
                    "--metrics=off",
                    "--disable-version-check",
                    "--json",
                    "--quiet",
                    *map(str, files),
                ],
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
                cwd=root,
                check=False,
            )
            data = json.loads(done.stdout or "{}")
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            return [], ToolInfo(name="semgrep", used=False, note=f"failed to run: {exc}"[:200])
    version = data.get("version")
    findings: list[Finding] = []
    for result in data.get("results", []):
        relative = os.path.relpath(result.get("path", ""), root)
        line = (result.get("start") or {}).get("line", 0)
        extra = result.get("extra") or {}
        severity = Severity.HIGH if extra.get("severity") == "ERROR" else Severity.MEDIUM
        findings.append(
            Finding(
                check=f"static.semgrep.{result.get('check_id', 'rule').rsplit('.', 1)[-1]}",
                category="static",
                severity=severity,
                title=f"semgrep: {extra.get('message', '')}"[:200],
                location=f"{relative}:{line}",
                evidence=[Evidence(location=f"{relative}:{line}")],
            )
        )
    return findings, ToolInfo(name="semgrep", version=version, note="offline, bundled rules")


def run_static_review(ctx: RunContext, source_dir: Path) -> list[ToolInfo]:
    """Review the generated project at ``source_dir`` without running it."""
    run = ctx.run_record("static")
    files = iter_python_files(source_dir)
    app_files = [f for f in files if not is_test_file(f.relative_to(source_dir))]
    for path in files:
        for hit in scan_file(path, source_dir):
            location = f"{hit.path}:{hit.line}"
            ctx.add(
                Finding(
                    check=hit.check,
                    category="static",
                    severity=hit.severity,
                    title=hit.title,
                    location=location,
                    evidence=[Evidence(location=location, snippet=hit.snippet)],
                )
            )
    tools: list[ToolInfo] = []
    for findings, tool in (
        bandit_findings(source_dir, app_files),
        semgrep_findings(source_dir, app_files, ctx.settings.semgrep),
    ):
        tools.append(tool)
        for finding in findings:
            ctx.add(finding)
    run.probes.append(
        f"Backforge AST rules on {len(files)} files ({len(app_files)} application, {len(files) - len(app_files)} test)"
    )
    run.probes.extend(f"{t.name} {t.version or ''}".strip() for t in tools if t.used)
    run.note = "; ".join(f"{t.name}: {t.note}" for t in tools if not t.used)
    return tools
