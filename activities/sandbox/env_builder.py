"""Backforge's environment builder, run inside the sandbox (stdlib only).

``python env_builder.py '<json>'`` with ``{"venv": "/venv", "pip": [...], "wheelhouses":
[...], "skip": [...]}``: runs pip (offline: ``--no-index``, the operator's wheelhouses
as ``--find-links``, no network in the sandbox anyway) into the writable copy of the
environment at ``venv``, then streams what pip added (everything not in ``skip``) as a
tar archive to fd 3. The worker reads that stream as untrusted data and builds the
read-only environment from it itself; it never touches the tree written here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

PIP_OPTIONS = [
    "--no-input", "--disable-pip-version-check", "--no-cache-dir", "--no-build-isolation",
    "--progress-bar", "off", "--no-warn-script-location", "--no-index",
]  # fmt: skip
OUT_FD = 3


def main(argv: list[str]) -> int:
    cfg = json.loads(argv[1])
    venv = cfg["venv"]
    links = [arg for w in cfg["wheelhouses"] for arg in ("--find-links", w)]
    env = dict(os.environ, PIP_CONFIG_FILE=os.devnull)
    command = [f"{venv}/bin/python", "-m", "pip", "install", *PIP_OPTIONS, *links, *cfg["pip"]]
    sys.stdout.write(f"$ pip install {' '.join(cfg['pip'])}\n")
    sys.stdout.flush()
    code = subprocess.call(command, env=env)
    if code != 0:
        return code
    skip = set(cfg["skip"])
    with os.fdopen(OUT_FD, "wb") as out, tarfile.open(fileobj=out, mode="w|") as tar:
        for dirpath, dirnames, filenames in os.walk(venv):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, venv)
                if rel not in skip:
                    tar.add(full, arcname=rel, recursive=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
