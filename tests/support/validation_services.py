"""Test drivers for validation: serve an app over loopback, build reference variants.

``serve`` binds a listening socket on 127.0.0.1 before starting uvicorn on it, so
a client may connect at once: the kernel queues the connection until uvicorn
accepts it. No sleeps, no polling, no port races. (uvicorn's own ``--fd`` treats
an inherited socket as a Unix socket, which leaves Nagle's algorithm on and costs
40 ms per request; the launcher below hands uvicorn the TCP socket itself.)
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

__all__ = [
    "REFERENCE",
    "Variant",
    "load_variants",
    "build_reference",
    "serve",
    "ServiceFiles",
    "reference_files",
]

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "reference_service"

_LAUNCHER = (
    "import socket, sys, uvicorn\n"
    "sock = socket.socket(fileno=int(sys.argv[1]))\n"
    "config = uvicorn.Config(sys.argv[2], log_level='warning', access_log=False)\n"
    "uvicorn.Server(config).run(sockets=[sock])\n"
)


@dataclass
class Variant:
    """A seeded defect: edits to the correct service and the checks that must catch it."""

    name: str
    kind: str
    expect: list[str]
    edits: list[dict[str, str]] = field(default_factory=list)
    #: Checks that must all be reported too (e.g. the static side of an injection).
    also_expect: list[str] = field(default_factory=list)
    #: Load settings the variant needs (the slow one needs a paced load to measure).
    needs_load: bool = False


@dataclass
class ServiceFiles:
    """Where a service's code and its feature documents are."""

    root: Path
    contract: Path
    spec: Path
    quickstart: Path


def load_variants() -> list[Variant]:
    """The seeded-defect variants from ``variants.yaml``."""
    data = yaml.safe_load((REFERENCE / "variants.yaml").read_text(encoding="utf-8"))
    return [Variant(name=name, **spec) for name, spec in data["variants"].items()]


def build_reference(dest: Path, variant: Variant | None = None) -> ServiceFiles:
    """Copy the correct service to ``dest`` and apply ``variant``'s edits (each must match once)."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(REFERENCE / "service", dest, ignore=shutil.ignore_patterns("__pycache__"))
    for edit in variant.edits if variant else []:
        path = dest / edit["file"]
        text = path.read_text(encoding="utf-8")
        count = text.count(edit["old"])
        if count != 1:
            raise AssertionError(
                f"variant {variant.name if variant else ''}: edit matches {count} times in {edit['file']}"
            )
        path.write_text(text.replace(edit["old"], edit["new"], 1), encoding="utf-8")
    return reference_files(dest)


def reference_files(root: Path) -> ServiceFiles:
    """The feature documents of a reference service tree."""
    feature = root / "specs" / "001-notes"
    return ServiceFiles(
        root, feature / "contracts" / "openapi.yaml", feature / "spec.md", feature / "quickstart.md"
    )


@contextlib.contextmanager
def serve(app_dir: Path, app: str = "app.main:app", *, log: Path | None = None) -> Iterator[str]:
    """Run ``app`` from ``app_dir`` with uvicorn on a fresh loopback port; yield its base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    output = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - closed below
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(listener.fileno()), app],
            cwd=app_dir,
            pass_fds=(listener.fileno(),),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    finally:
        listener.close()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if log is not None and hasattr(output, "close"):
            output.close()
