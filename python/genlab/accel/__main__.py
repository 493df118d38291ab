"""``python -m genlab.accel script.py [args]`` or ``python -m genlab.accel -m module [args]``:
run a program unchanged with :mod:`genlab.accel` installed."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from genlab.accel import install

USAGE = "usage: python -m genlab.accel script.py [args ...] | -m module [args ...]"


def main(argv: list[str]) -> int:
    if not argv:
        print(USAGE, file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    install()
    if argv[0] == "-m":
        if len(argv) < 2:
            print(USAGE, file=sys.stderr)
            return 2
        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(argv)
        sys.path.insert(0, str(Path(argv[0]).resolve().parent))  # as `python script.py` does
        runpy.run_path(argv[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
