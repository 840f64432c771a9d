"""The Prometheus service of deploy/compose.yaml scrapes the workers where they serve metrics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    return {
        name: (value if sep else None)
        for name, sep, value in (entry.partition("=") for entry in service["environment"])
    }


def prometheus_config() -> tuple[dict[str, Any], Path]:
    service = compose()["services"]["prometheus"]
    (mount,) = [v for v in service["volumes"] if v.endswith(":ro")]
    source, target, _ = mount.split(":")
    flag = next(a for a in service["command"] if a.startswith("--config.file="))
    assert flag.removeprefix("--config.file=") == target
    path = (DEPLOY / source).resolve()
    assert path.is_relative_to(DEPLOY / "prometheus"), path
    return yaml.safe_load(path.read_text()), path


def test_prometheus_service_is_declared() -> None:
    spec = compose()
    service = spec["services"]["prometheus"]
    assert service["image"].startswith("prom/prometheus:v")
    assert "9090:9090" in service["ports"]
    assert "worker" in service["depends_on"]
    data = [v.split(":")[0] for v in service["volumes"] if v.split(":")[1] == "/prometheus"]
    assert data and data[0] in spec["volumes"], "TSDB on a named volume"


def test_scrape_config_names_the_worker_service_and_port() -> None:
    config, _ = prometheus_config()
    worker = compose()["services"]["worker"]
    port = environment(worker)["BACKFORGE_METRICS_PORT"]
    assert port is not None and str(port) in [str(p) for p in worker["expose"]]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "backforge-worker"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [
        f"{name}:{sd['port']}" for sd in job.get("dns_sd_configs", []) for name in sd["names"]
    ] + [t for sc in job.get("static_configs", []) for t in sc["targets"]]
    assert targets == [f"worker:{port}"]
    assert "worker" in compose()["services"]


def test_worker_takes_its_metrics_port_from_the_environment() -> None:
    """The compose worker runs the image's CMD, so the port comes from the environment."""
    assert "command" not in compose()["services"]["worker"]
    code = "import sys, worker; sys.argv = ['worker.py', '--help']; worker.main()"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert "--metrics-port" in proc.stdout and "BACKFORGE_METRICS_PORT" in proc.stdout
