"""Turn pytest-benchmark JSON into a table of genlab vs peer, one row per case.

Usage: ``python benches/ratio_table.py bench-results/results.json [--markdown OUT.md]``

Columns: the median time of genlab and of each peer, ``genlab/peer`` (below 1: genlab is faster)
and the speed-up ``peer/genlab``.
"""

from __future__ import annotations

import argparse
import json
import platform
from collections import defaultdict
from pathlib import Path
from typing import Any


def _fmt_seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} us"


def ratio_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (case, peer) with median times and ratios."""
    cases: dict[str, dict[str, float]] = defaultdict(dict)
    for bench in data["benchmarks"]:
        info = bench.get("extra_info", {})
        case = info.get("case", bench.get("group") or bench["name"])
        cases[case][info.get("impl", bench["name"])] = bench["stats"]["median"]
    rows = []
    for case, impls in cases.items():
        ours = impls.get("genlab")
        for impl, seconds in impls.items():
            if impl == "genlab":
                continue
            rows.append(
                {
                    "case": case,
                    "peer": impl,
                    "genlab_s": ours,
                    "peer_s": seconds,
                    "ratio": None if ours is None else ours / seconds,
                }
            )
        if len(impls) == 1 and ours is not None:
            rows.append(
                {"case": case, "peer": "-", "genlab_s": ours, "peer_s": None, "ratio": None}
            )
    return rows


def markdown(rows: list[dict[str, Any]], machine: str) -> str:
    lines = [
        f"Machine: {machine}",
        "",
        "| case | peer | genlab | peer time | genlab/peer | speed-up |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        ours = "-" if r["genlab_s"] is None else _fmt_seconds(r["genlab_s"])
        theirs = "-" if r["peer_s"] is None else _fmt_seconds(r["peer_s"])
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.3f}"
        speedup = "-" if not r["ratio"] else f"{1 / r['ratio']:.1f}x"
        lines.append(f"| {r['case']} | {r['peer']} | {ours} | {theirs} | {ratio} | {speedup} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", type=Path, help="output of pytest --benchmark-json")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    data = json.loads(args.json.read_text())
    info = data.get("machine_info", {})
    cpu = info.get("cpu", {}).get("brand_raw") or platform.processor()
    cores = info.get("cpu", {}).get("count", "?")
    machine = f"{cpu}, {cores} cores, Python {info.get('python_version', '?')}"
    table = markdown(ratio_rows(data), machine)
    print(table)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table)


if __name__ == "__main__":
    main()
