"""Every published study table is regenerated, byte for byte, from the store committed beside it.

The folders under ``docs/results/`` that hold a ``study.sqlite`` were written by
``genlab study publish RUN_DIR docs/results/NAME``; ``genlab study report`` on a copy of that store
must write the same ``ranking.md`` and ``ranking.csv``. A change to the statistics or the
measures' conventions that moves a published number fails here until the results are
regenerated (and the words around them rewritten).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from genlab.cli import main

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
# Published rankings: a store with its ranking tables beside it.
PUBLISHED = sorted(
    p.parent for p in RESULTS.glob("*/study.sqlite") if (p.parent / "ranking.md").exists()
)


def test_there_is_a_published_study() -> None:
    assert [p.name for p in PUBLISHED] == ["digits-crate"]


def test_the_srr_regularizer_table_regenerates_from_its_store(tmp_path: Path) -> None:
    """docs/results/srr-regularizer/table.md is what examples/srr_regularizer.py prints for the
    store published beside it."""
    import subprocess
    import sys

    folder = RESULTS / "srr-regularizer"
    shutil.copy(folder / "study.sqlite", tmp_path / "study.sqlite")
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "srr_regularizer.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (folder / "table.md").read_text()


@pytest.mark.parametrize("folder", PUBLISHED, ids=lambda p: p.name)
def test_published_table_regenerates_byte_for_byte(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = folder / "study.sqlite"
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    shutil.copy(store, tmp_path / "study.sqlite")
    out = tmp_path / "report"
    assert main(["study", "report", str(tmp_path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("ranking.md", "ranking.csv"):
        assert (out / name).read_bytes() == (folder / name).read_bytes(), (
            f"{folder.name}/{name} no longer matches its store: regenerate it with "
            f"`genlab study report {folder} --out {folder}` and rewrite the text around it"
        )
    assert (folder / "ranking.md").read_text() in printed
    # Reading the published store (read-only) leaves its file untouched.
    assert main(["study", "rank", str(folder)]) == 0
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before
    assert not (folder / "study.sqlite-wal").exists()
