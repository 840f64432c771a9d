"""``validate``: the black-box checks on any FastAPI service at a commit, without a model.

The repository (a path or a git URL) is read as a remote, never changed: the ref is
checked out into a scratch directory, the app is served in the sandbox, and
Backforge's checker exercises it from outside. Findings are printed; the exit code
is 1 when any finding blocks.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from cli.errors import EXIT_FAILED, CliError
from cli.render import console

__all__ = ["run_validate", "find_contract"]


def find_contract(root: Path) -> str:
    """The newest feature's ``contracts/openapi.yaml``, else an ``openapi.yaml`` at the root.

    Raises:
        CliError: None found.
    """
    features = sorted(root.glob("specs/*/contracts/openapi.y*ml"))
    if features:
        return str(features[-1].relative_to(root))
    for name in ("openapi.yaml", "openapi.yml", "openapi.json"):
        if (root / name).is_file():
            return name
    raise CliError(
        "no contract found (looked for specs/*/contracts/openapi.yaml and openapi.yaml); "
        "pass --contract PATH (relative to the repository)"
    )


async def run_validate(
    *,
    repo: str,
    ref: str | None,
    app: str | None,
    contract: str | None,
    markdown: Path | None,
    json_out: Path | None,
    max_examples: int,
) -> int:
    """Check out ``repo`` at ``ref``, serve ``app`` and validate it; the exit code."""
    from activities.validation import ValidationSettings, render_markdown
    from activities.validation.sandboxed import validate_checkout
    from activities.workspace import WorkspaceError, Workspaces, preflight

    try:
        preflight(repo, None)
    except ValueError as err:
        raise CliError(f"invalid --repo: {err}") from None
    with tempfile.TemporaryDirectory(prefix="backforge-validate-") as scratch:
        workspaces = Workspaces(Path(scratch))
        try:
            async with workspaces.snapshot(repo, ref) as co:
                rel = contract or find_contract(co.root)
                if not (co.root / rel).is_file():
                    raise CliError(f"invalid --contract: {rel} is not a file at {ref or 'HEAD'}")
                feature = Path(rel).parent.parent
                with console.status(f"Validating {app or 'the app'} at {co.base[:10]}…"):
                    done = await validate_checkout(
                        co.root,
                        contract=rel,
                        spec=str(feature / "spec.md"),
                        quickstart=str(feature / "quickstart.md"),
                        app=app,
                        settings=ValidationSettings(max_examples=max_examples),
                    )
        except WorkspaceError as err:
            raise CliError(str(err)) from None
    report = done.report
    console.print(
        f"{len(report.findings)} finding(s), {len(report.blocking)} blocking "
        f"({len(report.operations_checked)} of {report.operations_total} operations checked)",
        style="bold",
    )
    for f in sorted(report.findings, key=lambda f: (not f.blocking, f.severity.value)):
        where = f.endpoint or f.location or ""
        mark = "BLOCKS " if f.blocking else "       "
        console.print(f"{mark}{f.severity.value:<8} {f.check}  {where}: {f.title}", soft_wrap=True)
    console.print(report.confidence, soft_wrap=True)
    for warning in done.warnings:
        console.print(f"warning: {warning}", style="yellow", soft_wrap=True)
    if markdown is not None:
        markdown.write_text(render_markdown(report), encoding="utf-8")
        console.print(f"Findings with reproducible requests: {markdown}")
    if json_out is not None:
        json_out.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    return EXIT_FAILED if report.blocking else 0
