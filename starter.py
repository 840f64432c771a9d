"""Backforge command line (``python starter.py ...``); the code lives in the ``cli`` package.

Installed with ``pip install -e .``, the same program is the ``backforge`` command.
"""

from cli import main

if __name__ == "__main__":
    main(prog="python starter.py")
