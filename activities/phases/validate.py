"""Phase 7: validate the running service from outside, against its contract and spec.

No model. The generated service is served in the sandbox and Backforge's own checker
exercises it over HTTP (``activities.validation``): contract conformance,
authentication, object-level authorization, injection and robustness, performance
against the spec's targets, a static review and traceability. The findings, with
reproducible requests, are committed as ``<feature dir>/validation.md``; history
carries only the counts (``ValidationSummary``). Only HARD findings block.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from temporalio import activity

from activities.heartbeat import keep_alive
from activities.model_phase import PhaseActivity, layout_of
from activities.validation.sandboxed import validate_checkout
from activities.yaml_text import YAMLError, load_yaml
from contract import PhaseInput, PhaseOutcome, ValidationSummary
from telemetry import metrics

__all__ = ["ValidatePhase"]

_NOT_APPLICABLE = """# Validation: not applicable

The contract `{contract}` declares no HTTP operations, so there is no running service
to validate from outside. Nothing was checked over HTTP; the tests are the only evidence.
"""


def _declares_operations(contract: Path) -> bool:
    """Whether the contract exists and has ``paths`` (else the feature has no HTTP API)."""
    try:
        raw = load_yaml(contract.read_text(encoding="utf-8"))
    except (OSError, YAMLError):
        return True  # unreadable: let the checker report it
    return not isinstance(raw, dict) or bool(raw.get("paths"))


class ValidatePhase(PhaseActivity):
    """Serves the branch at its base commit and runs the black-box checks against it."""

    @activity.defn(name="run_phase_validate")
    async def run(self, inp: PhaseInput) -> PhaseOutcome:
        layout = layout_of(inp)
        async with self.checkout(inp) as ws:
            path = layout.path("validation")
            if not _declares_operations(ws.root / layout.path("contract")):
                ws.write(path, _NOT_APPLICABLE.format(contract=layout.path("contract")))
                summary = ValidationSummary(passed=True, blocking=0, findings=0, report_path=path)
                return await self.commit(
                    ws,
                    inp,
                    "validate: no HTTP operations to check",
                    summary="The contract declares no operations; nothing to validate over HTTP.",
                    artifacts=[path],
                    validation=summary,
                )
            async with keep_alive(f"{inp.run_key}: validating the running service"):
                done = await validate_checkout(
                    ws.root,
                    contract=layout.path("contract"),
                    spec=layout.path("spec"),
                    quickstart=layout.path("quickstart"),
                    run_label=hashlib.sha256(
                        f"{inp.workflow_id}/{inp.run_key}".encode()
                    ).hexdigest()[:10],
                )
            text = done.markdown
            if done.warnings or done.service_log.strip():
                text += "\n\n## The service while it ran\n\n"
                text += "".join(f"- {w}\n" for w in done.warnings)
                text += f"\n```text\n{done.service_log.strip()[-6000:]}\n```\n"
            ws.write(path, text)
            summary = done.report.summary(report_path=path)
            metrics.record_findings(
                metrics.Finding("validation", f.severity.value, f.blocking)
                for f in done.report.findings
            )
            counts = f"{summary.blocking} blocking of {summary.findings} finding(s)"
            return await self.commit(
                ws,
                inp,
                f"validate: {counts}",
                summary=f"{counts}; {summary.operations_checked}/{summary.operations_total} "
                "operations checked",
                artifacts=[path],
                validation=summary,
            )
