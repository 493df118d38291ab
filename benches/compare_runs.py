"""Compare two benchmark runs of genlab (a base revision and the working tree) case by case.

Usage: ``python benches/compare_runs.py DIR [--base-label REV] [--markdown OUT.md]``, where DIR
holds ``base-*.json`` and ``current-*.json`` from pytest-benchmark (``scripts/bench-compare.sh``
writes them).

Per case: genlab's median time in both runs, current/base (above 1: slower now), and
current/base after dividing each by the peer timed in the same run (it cancels a change in the
machine's speed between the two runs). A case is flagged when both ratios exceed 1.10.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ratio_table import _fmt_seconds, ratio_rows

SLOWER = 1.10


def _rows(directory: Path, side: str) -> dict[tuple[str, str], dict[str, Any]]:
    benchmarks: list[dict[str, Any]] = []
    for path in sorted(directory.glob(f"{side}-*.json")):
        benchmarks.extend(json.loads(path.read_text())["benchmarks"])
    return {(r["case"], r["peer"]): r for r in ratio_rows({"benchmarks": benchmarks})}


def compare(directory: Path, base_label: str) -> tuple[str, int]:
    """The comparison table as markdown, and how many cases are flagged slower."""
    base, current = _rows(directory, "base"), _rows(directory, "current")
    lines = [
        f"| case | peer | genlab at {base_label} | genlab now | now/before | "
        "now/before vs peer | flag |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    flagged = 0
    for key in sorted(base.keys() & current.keys()):
        b, c = base[key], current[key]
        if not b["genlab_s"] or not c["genlab_s"]:
            continue
        raw = c["genlab_s"] / b["genlab_s"]
        relative = c["ratio"] / b["ratio"] if b["ratio"] and c["ratio"] else None
        slower = raw > SLOWER and (relative is None or relative > SLOWER)
        flagged += slower
        rel = "-" if relative is None else f"{relative:.3f}"
        lines.append(
            f"| {key[0]} | {key[1]} | {_fmt_seconds(b['genlab_s'])} | "
            f"{_fmt_seconds(c['genlab_s'])} | {raw:.3f} | {rel} | {'SLOWER' if slower else ''} |"
        )
    return "\n".join(lines) + "\n", flagged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--base-label", default="base")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    table, flagged = compare(args.directory, args.base_label)
    summary = f"\n{flagged} case(s) more than {SLOWER - 1:.0%} slower than {args.base_label}.\n"
    print(table + summary)
    if args.markdown:
        args.markdown.write_text(table + summary)


if __name__ == "__main__":
    main()
