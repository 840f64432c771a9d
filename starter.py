"""Backforge command line (``python starter.py ...``); the code lives in the ``cli`` package.

Hints name this file by the path and interpreter it was run with (``cli.settings``).

Installed with ``pip install -e .``, the same program is the ``backforge`` command.
"""

from cli import main

if __name__ == "__main__":
    main()
