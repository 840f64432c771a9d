"""Validating a checkout: serve it in the sandbox, run the checker beside it.

The generated service is started with uvicorn inside the sandbox (its own network
namespace, a copy of the checkout, the project environment read-only). The checker
(``python -m activities.validation``) runs as a separate worker-side process joined
only to that network namespace: outside the app's process, outside the project's
pytest configuration and environment, and unable to reach anything but the service.
What the service printed while it ran is kept for the report.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from activities.sandbox import SandboxLimits, ServiceError, ensure_project_env, serve_in_sandbox
from activities.validation.models import ValidationReport, ValidationSettings
from activities.validation.openapi import load_contract

__all__ = ["CheckoutValidation", "validate_checkout", "DEFAULT_APP"]

DEFAULT_APP = "app.main:app"
#: The service may live this long (the checks and the bounded load fit well inside).
_SERVICE_LIMITS = SandboxLimits(timeout_s=900, cpu_s=900)
_CHECKER_TIMEOUT_S = 600.0


@dataclass
class CheckoutValidation:
    """A validation's report, its Markdown, and what the service and sandbox said."""

    report: ValidationReport
    markdown: str
    service_log: str
    warnings: list[str]


def _app(contract: Path, app: str | None) -> str:
    if app:
        return app
    try:
        return load_contract(contract).extension.app or DEFAULT_APP
    except Exception:  # noqa: BLE001 - a broken contract is the checker's finding, not ours
        return DEFAULT_APP


async def validate_checkout(
    root: Path,
    *,
    contract: str,
    spec: str | None = None,
    quickstart: str | None = None,
    app: str | None = None,
    settings: ValidationSettings | None = None,
    run_label: str | None = None,
) -> CheckoutValidation:
    """Serve ``root`` in the sandbox and validate it; paths are relative to ``root``.

    A service that does not start is not an error here: the checker then finds it
    unreachable (a blocking finding), and the service's output says why.
    """
    settings = settings or ValidationSettings()
    target = _app(root / contract, app)
    env = await ensure_project_env(root)
    project_env = env.env if env.ok else None
    argv = ["python", "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", "{port}"]
    with tempfile.TemporaryDirectory(prefix="backforge-validation-") as tmp:
        out = Path(tmp)
        checker = [
            sys.executable, "-m", "activities.validation",
            "--contract", str(root / contract),
            "--source", str(root),
            "--output", str(out / "report.json"),
            "--markdown", str(out / "validation.md"),
            "--max-examples", str(settings.max_examples),
        ]  # fmt: skip
        if spec and (root / spec).is_file():
            checker += ["--spec", str(root / spec)]
        if quickstart and (root / quickstart).is_file():
            checker += ["--quickstart", str(root / quickstart)]
        if run_label:
            checker += ["--run-label", run_label]
        warnings: list[str] = [] if env.ok else [f"project environment: {env.message}"]
        service_log = ""
        try:
            async with serve_in_sandbox(
                root, argv=argv, project_env=project_env, limits=_SERVICE_LIMITS
            ) as service:
                result = await service.run_in_netns(
                    [*checker, "--base-url", f"http://127.0.0.1:{service.port}"],
                    timeout_s=_CHECKER_TIMEOUT_S,
                )
                warnings += service.warnings + result.warnings
                service_log = service.output()
                checker_output = result.output
        except ServiceError as err:
            # Not listening: pointed at a port where nothing listens, the checker reports
            # the service unreachable (a blocking finding); the service's output says why.
            service_log = err.result.output if err.result else str(err)
            warnings.append(f"the service did not start: {err}")
            checker_output = await _run(
                [*checker, "--base-url", f"http://127.0.0.1:{_closed_port()}", "--wait", "1"]
            )
        report_file = out / "report.json"
        if not report_file.is_file():
            raise RuntimeError(f"the checker wrote no report: {checker_output[-1500:]}")
        report = ValidationReport.model_validate_json(report_file.read_text(encoding="utf-8"))
        markdown = (out / "validation.md").read_text(encoding="utf-8")
    return CheckoutValidation(report, markdown, service_log, warnings)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


async def _run(argv: list[str]) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), _CHECKER_TIMEOUT_S)
    return out.decode(errors="replace")
