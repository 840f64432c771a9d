"""``worker.py --dev`` as a process: its ports, its Ctrl-C, its log.

Ctrl-C at a terminal is SIGINT to the whole foreground process group; the
embedded server must not get it (it runs in a session of its own) so that the
worker drains while the server still takes the activities' reports.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from runtime import free_port

ROOT = Path(__file__).resolve().parent.parent


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _read_until(process: subprocess.Popen[str], marker: str, lines: list[str]) -> bool:
    """Collect output lines until one contains ``marker`` (False at end of output)."""
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if marker in line:
            return True
    return False


def test_dev_worker_keeps_its_server_out_of_ctrl_c_and_stops_it_last(tmp_path: Path) -> None:
    port = free_port(7400)
    ui_port = free_port(port + 1000)
    argv = [sys.executable, "worker.py", "--dev", "--port", str(port), "--ui-port", str(ui_port)]
    worker = subprocess.Popen(
        [*argv, "--data-dir", str(tmp_path / "data"), "--drain-seconds", "5"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a "terminal" of its own: its group gets the Ctrl-C
    )
    lines: list[str] = []
    ready = threading.Thread(target=_read_until, args=(worker, "Worker polling", lines))
    ready.start()
    ready.join(timeout=90)
    try:
        assert any("Worker polling" in line for line in lines), "".join(lines)
        assert f"Embedded Temporal dev server: localhost:{port}, UI http://localhost:{ui_port}" in (
            "".join(lines)
        )
        servers = _children(worker.pid)
        assert servers, "no embedded server process"
        for server in servers:  # not in the group a terminal's Ctrl-C reaches
            assert os.getpgid(server) != os.getpgid(worker.pid)

        # A second worker on the same port is refused with one line naming a free port.
        taken = subprocess.run(
            [*argv, "--data-dir", str(tmp_path / "other")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert taken.returncode == 1
        assert taken.stderr.count("\n") == 1, taken.stderr
        assert taken.stderr.startswith(f"error: port {port} is already in use")
        assert "Pass --port " in taken.stderr and "(free now)" in taken.stderr

        os.killpg(worker.pid, signal.SIGINT)  # Ctrl-C
        rest, _ = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    output = "".join(lines) + rest
    assert worker.returncode == 0, output
    assert "Shutting down: in-flight activities have up to 5s" in output
    assert output.rstrip().endswith("Worker stopped."), output
    assert "Traceback" not in output and "\x1b[" not in output  # no colour codes in the log
    for server in servers:
        assert not Path(f"/proc/{server}").exists() or "Z" in _state(server)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
