"""Several Backforge workers as separate processes, as on separate hosts.

Each worker is ``python worker.py`` with its own scratch directory (nothing shared
with the others), against the test's Temporal server. The repository is a bare
repo served by ``git daemon`` on 127.0.0.1 (a real git transport), and the model is
the local wire server playing a scripted transcript through the OpenAI-compatible
path, so every call the workers send is counted where it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.models.base import Model, ModelRequest, ModelResponse
from activities.models.scripted import ScriptedModel, script_key
from contract import FeatureRequest, FeatureResult
from tests.support.git import git
from tests.support.wire_server import WireServer
from workflows.backend_feature import BackendFeatureWorkflow

__all__ = [
    "REPO_ROOT",
    "TINY",
    "GitDaemon",
    "Gate",
    "WorkerProcess",
    "Cluster",
    "free_port",
    "tree",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY = REPO_ROOT / "tests" / "fixtures" / "tiny.yaml"
MODEL = "openai:tiny-local"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree(repo: Path, rev: str, *, without: tuple[str, ...] = ()) -> dict[str, str]:
    """``path -> blob`` of ``rev``, leaving out paths that end with any of ``without``."""
    out = git(repo, "ls-tree", "-r", rev)
    rows = (line.split(None, 3) for line in out.splitlines())
    return {path: blob for _m, _t, blob, path in rows if not path.endswith(without)}


class GitDaemon:
    """``git daemon`` serving ``base`` on 127.0.0.1 (fetch and push), until closed.

    A ``pre-receive`` hook in each repository can hold pushes: while ``hold-<name>``
    exists in ``base``, a push whose ref matches the rule ``<name>`` waits, after
    touching ``entered-<name>``.
    """

    HOOK = r"""#!/bin/sh
base="$(dirname "$(pwd)")"
while read old new ref; do
  for rule in "$base"/hold-*; do
    [ -e "$rule" ] || continue
    name="${rule##*/hold-}"
    pattern="$(cat "$rule")"
    case "$ref" in
      $pattern)
        touch "$base/entered-$name"
        i=0
        while [ -e "$rule" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done ;;
    esac
  done
done
exit 0
"""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def repo(self, name: str, source: Path) -> str:
        """A bare copy of ``source`` served as ``name``; its ``git://`` URL."""
        bare = self.base / f"{name}.git"
        git(self.base, "clone", "-q", "--bare", str(source), str(bare))
        git(bare, "config", "core.logAllRefUpdates", "always")
        hook = bare / "hooks" / "pre-receive"
        hook.write_text(self.HOOK)
        hook.chmod(0o755)
        return f"git://127.0.0.1:{self.port}/{name}.git"

    def __enter__(self) -> GitDaemon:
        self.base.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                "git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
                f"--base-path={self.base}", "--listen=127.0.0.1", f"--port={self.port}",
                str(self.base),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("git daemon did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    @contextmanager
    def hold(self, name: str, pattern: str) -> Iterator[Path]:
        """Hold pushes to refs matching ``pattern`` until the block ends; yields the
        file that appears when a push is being held."""
        rule = self.base / f"hold-{name}"
        entered = self.base / f"entered-{name}"
        entered.unlink(missing_ok=True)
        rule.write_text(pattern)
        try:
            yield entered
        finally:
            rule.unlink(missing_ok=True)


class Gate:
    """A model wrapper (test double) that can hold one scripted call until released."""

    def __init__(self, inner: Model, *, latency: float = 0.0) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        #: Seconds every call takes (as a real model's would).
        self.latency = latency
        self.hold_key: tuple[str, int] | None = None
        self.reached = threading.Event()
        self.release = threading.Event()
        self.answered: Counter[str] = Counter()

    async def request(self, request: ModelRequest) -> ModelResponse:
        key = script_key(request.origin)
        turn = sum(1 for m in request.messages if m.role == "assistant")
        if self.hold_key == (key, turn):
            self.reached.set()
            await asyncio.to_thread(self.release.wait, 60)
        if self.latency:
            await asyncio.sleep(self.latency)
        response = await self.inner.request(request)
        self.answered[key] += 1
        return response


@dataclass
class WorkerProcess:
    """One ``python worker.py`` process with a scratch directory of its own."""

    name: str
    scratch: Path
    address: str
    namespace: str
    queue: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.scratch.parent / f"{self.name}.log"

    def start(self) -> None:
        self.scratch.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable, "worker.py", "--address", self.address,
                    "--namespace", self.namespace, "--task-queue", self.queue,
                    "--scratch", str(self.scratch), "--drain-seconds", "1",
                ],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self, *, wipe: bool = True) -> None:
        """SIGKILL the worker (as a lost host) and, by default, delete its disk."""
        assert self.proc is not None
        with _suppress_lookup():
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        if wipe:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with _suppress_lookup():
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)


def _suppress_lookup() -> contextlib.suppress:
    return contextlib.suppress(ProcessLookupError)


class Cluster:
    """A git daemon, a counting model server and ``workers`` worker processes."""

    def __init__(
        self,
        env: WorkflowEnvironment,
        base: Path,
        *,
        workers: int = 2,
        latency: float = 0.0,
        transcript: Path = TINY,
    ) -> None:
        self.latency = latency
        self.transcript = transcript
        self.client: Client = env.client
        self.base = base
        self.daemon = GitDaemon(base / "remotes")
        self.wire = WireServer()
        self.gate: Gate | None = None
        address = env.client.service_client.config.target_host
        self.queue = f"cluster-{os.urandom(5).hex()}"
        worker_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "ANTHROPIC"))},
            "OPENAI_API_KEY": "test-key-not-secret",
            "PYTHONUNBUFFERED": "1",
        }
        self.workers = [
            WorkerProcess(
                f"w{i}",
                base / f"scratch-w{i}",
                address,
                env.client.namespace,
                self.queue,
                {**worker_env, "BACKFORGE_CACHE_DIR": str(base / f"scratch-w{i}" / "envs")},
            )
            for i in range(workers)
        ]

    def __enter__(self) -> Cluster:
        self.daemon.__enter__()
        self.wire.__enter__()
        self.gate = Gate(ScriptedModel(str(self.transcript)), latency=self.latency)
        self.gate.model_id = MODEL
        self.wire.play(self.gate)
        for w in self.workers:
            w.env["OPENAI_BASE_URL"] = self.wire.openai_url
            w.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for w in self.workers:
            w.stop()
        if self.gate is not None:
            self.gate.release.set()
        self.wire.__exit__(None, None, None)
        self.daemon.__exit__()

    def repository(self, name: str) -> str:
        """A new repository served by the daemon (a README on ``main``); its URL."""
        source = self.base / "sources" / name
        source.mkdir(parents=True)
        git(source, "init", "-q", "-b", "main")
        (source / "README.md").write_text("# Arithmetic service\n")
        git(source, "add", "-A")
        git(source, "-c", "user.name=u", "-c", "user.email=u@u", "commit", "-q", "-m", "initial")
        return self.daemon.repo(name, source)

    def bare(self, name: str) -> Path:
        return self.daemon.base / f"{name}.git"

    async def start(
        self, name: str, *, heartbeat_s: int = 3, feature: str = "Add an add and a subtract helper"
    ) -> WorkflowHandle[object, FeatureResult]:
        url = self.repository(name)
        return await self.client.start_workflow(
            BackendFeatureWorkflow.run,
            FeatureRequest(
                feature=feature,
                repo_path=url,
                model=MODEL,
                heartbeat_timeout_s=heartbeat_s,
            ),
            id=f"{name}-{os.urandom(4).hex()}",
            task_queue=self.queue,
        )

    def worker_running(self, identity: str) -> WorkerProcess | None:
        """The worker whose identity (``pid@host``) Temporal reports."""
        pid = identity.split("@", 1)[0]
        return next((w for w in self.workers if str(w.proc.pid if w.proc else "") == pid), None)

    async def running_activity(
        self, handle: WorkflowHandle[object, FeatureResult], activity: str, *, timeout: float = 60
    ) -> WorkerProcess:
        """Wait until ``activity`` has started on a worker; that worker."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            desc = await handle.describe()
            for pending in desc.raw_description.pending_activities:
                if pending.activity_type.name == activity and pending.last_worker_identity:
                    worker = self.worker_running(pending.last_worker_identity)
                    if worker is not None and pending.state == 2:  # STARTED
                        return worker
            await asyncio.sleep(0.02)
        raise AssertionError(f"{activity} did not start within {timeout}s")

    def received(self, branch: str | None = None) -> Counter[str]:
        """How many times the model server received each distinct request (of ``branch``)."""
        counts: Counter[str] = Counter()
        for r in self.wire.requests:
            origin = json.loads(r.headers.get("x-backforge-origin", "{}"))
            if branch is None or origin.get("branch") == branch:
                counts[hashlib.sha256(json.dumps(r.body, sort_keys=True).encode()).hexdigest()] += 1
        return counts

    async def busy_worker(
        self, handles: list[WorkflowHandle[object, FeatureResult]]
    ) -> tuple[WorkerProcess, list[str]] | None:
        """A worker running an activity of one of ``handles`` now, and the workflows it
        is working for (None if no activity is running)."""
        found: dict[str, list[str]] = {}
        for handle in handles:
            desc = await handle.describe()
            if desc.status is not None and desc.status.name != "RUNNING":
                continue
            for pending in desc.raw_description.pending_activities:
                if pending.state == 2 and pending.last_worker_identity:
                    found.setdefault(pending.last_worker_identity, []).append(handle.id)
        for identity, ids in found.items():
            worker = self.worker_running(identity)
            if worker is not None:
                return worker, ids
        return None

    def replace(self, worker: WorkerProcess) -> None:
        """Kill ``worker`` (SIGKILL), wipe its disk, and start a fresh one in its place."""
        worker.kill(wipe=True)
        worker.start()
