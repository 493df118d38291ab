"""The study harness end to end, through the ``genlab`` command: run, rank, report; resume after
``kill -9``; configuration errors; the Ray executor; the report in headless Chromium."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from genlab.study.store import Store

TINY = """
[study]
name = "tiny"
seeds = [0]

[data]
name = "digits"
train_size = 200

[model]
dim = 16
depth = 2
heads = 2

[train]
optimizer = "adam"
epochs = {epochs}
batch_size = 50
ce_target = {ce_target}

[grid]
family = ["crate", "crate-n"]
lr = [0.003, 0.01]

[measures]
draws = 1
search_depth = 3
ascent_steps = 1
flatness_samples = 64
srr_samples = 32

[ranking]
bootstrap = 20
exclude_nonconverged = false
"""


def write_config(
    tmp_path: Path, *, epochs: int = 4, ce_target: float = 0.5, extra: str = ""
) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(TINY.format(epochs=epochs, ce_target=ce_target) + extra)
    return path


def genlab(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "genlab.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_run_rank_report_through_the_cli(tmp_path):
    config = write_config(tmp_path)
    out = tmp_path / "out"
    started = time.perf_counter()
    run = genlab("study", "run", str(config), "--out", str(out), "--quiet")
    assert run.returncode == 0, run.stderr
    assert "4 model(s) trained and measured, 0 already stored" in run.stdout
    assert f"Report: {(out / 'report' / 'report.html').resolve()}" in run.stdout
    assert len(Store(out).records()) == 4

    rank = genlab("study", "rank", str(out))
    assert rank.returncode == 0, rank.stderr
    assert "| measure | orientation | psi | tau" in rank.stdout
    assert "srr_measure_last" in rank.stdout

    report_dir = out / "report"
    shutil.rmtree(report_dir)
    report = genlab("study", "report", str(out))
    assert report.returncode == 0, report.stderr
    html = (report_dir / "report.html").read_text()
    assert '<table id="ranking">' in html
    assert html.count("data:image/png;base64,") >= 4
    for name in (
        "psi_ranking.png",
        "srr_through_depth.png",
        "spectrum_by_layer.png",
        "spectrum_esd.png",
        "coverage.png",
        "ranking.csv",
        "ranking.md",
    ):
        assert (report_dir / name).stat().st_size > 0
    # The per-layer spectra behind the spectrum measures are stored with each run.
    for record in Store(out).records():
        spectra = record.history["layer_spectra"]
        alphas = [a for a in spectra["alpha"] if a is not None]
        assert record.measures["spectral_alpha"] == pytest.approx(np.mean(alphas), rel=1e-12)
        assert len(spectra["eigenvalues"]) == len(spectra["layers"]) >= 3
    # Rerunning finds everything done.
    again = genlab("study", "run", str(config), "--out", str(out), "--quiet", "--no-report")
    assert "0 model(s) trained and measured, 4 already stored" in again.stdout
    assert time.perf_counter() - started < 60


def test_a_stacked_study_stores_what_the_one_by_one_study_stores(tmp_path):
    """[study] stack = 2: the two runs of each family train as one stack (genlab.torch.stack),
    are measured one by one, and are stored one per transaction; the stored numbers are those of
    training each alone, to float32 rounding."""
    plain = write_config(tmp_path)
    stacked = tmp_path / "stacked.toml"
    stacked.write_text(plain.read_text().replace("seeds = [0]", "seeds = [0]\nstack = 2"))
    results = {}
    for name, config in (("plain", plain), ("stacked", stacked)):
        run = genlab("study", "run", str(config), "--out", str(tmp_path / name), "--quiet")
        assert run.returncode == 0, run.stderr
        assert "4 model(s) trained and measured" in run.stdout
        results[name] = {r.run_id: r for r in Store(tmp_path / name).records()}
    assert results["plain"].keys() == results["stacked"].keys()  # the same run ids
    for run_id, one in results["plain"].items():
        other = results["stacked"][run_id]
        assert other.train_loss == pytest.approx(one.train_loss, rel=1e-3)
        assert other.test_loss == pytest.approx(one.test_loss, rel=1e-3)
        assert other.measures["params"] == one.measures["params"]
        for name in ("log_prod_of_spec", "fro_dist", "param_norm"):
            assert other.measures[name] == pytest.approx(one.measures[name], rel=1e-3), name
        assert len(other.history["train_loss"]) == len(one.history["train_loss"])


def _rows(db: Path) -> list[tuple[str, float]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT run_id, test_loss FROM runs ORDER BY finished_at").fetchall()


@pytest.mark.parametrize("stack", [1, 2])
def test_resume_after_kill(tmp_path, stack):
    """kill -9 mid-study loses at most the unit in flight (one model, or one stack of models
    trained together); the resumed study runs exactly the models not stored."""
    # Slower models (no early stop) so that the kill lands mid-run.
    config = write_config(tmp_path, epochs=25, ce_target=1e-6)
    config.write_text(config.read_text().replace("seeds = [0]", f"seeds = [0]\nstack = {stack}"))
    out = tmp_path / "out"
    db = out / Store.FILENAME
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "genlab.cli",
            "study",
            "run",
            str(config),
            "--out",
            str(out),
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 180
    while time.time() < deadline:
        with contextlib.suppress(sqlite3.OperationalError):  # the store is still being created
            if db.exists() and len(_rows(db)) >= 1:
                break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _rows(db)
    assert 1 <= len(before) < 4, "the kill should land after the first model and before the last"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    resumed = genlab("study", "run", str(config), "--out", str(out), "--quiet", "--no-report")
    assert resumed.returncode == 0, resumed.stderr
    assert (
        f"{4 - len(before)} model(s) trained and measured, {len(before)} already stored"
        in resumed.stdout
    )
    after = _rows(db)
    assert len(after) == 4
    assert len({run_id for run_id, _ in after}) == 4
    assert after[: len(before)] == before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[study]\nseeds = [0]\n[train]\nlearning_rate = 0.1\n",
            r"study.toml:4: \[train\] learning_rate: unknown key",
        ),
        (
            '[study]\nseeds = [0]\n[model]\ndepth = "deep"\n',
            r"study.toml:4: \[model\] depth: expected int, got str 'deep'",
        ),
        (
            "[study]\nseeds = [0]\n[grid]\n\nlr = []\n",
            r"study.toml:5: \[grid\] lr: the axis is empty",
        ),
        (
            "[study]\nseeds = [0]\n[grid]\nbanana = [1, 2]\n",
            r"study.toml:4: \[grid\] banana: unknown axis",
        ),
        ("[grid]\nlr = [0.1]\n", r"\[study\] seeds: required"),
        (
            '[study]\nseeds = [0]\n[model]\nfamily = "mlp"\nheads = 2\n',
            r"study.toml:5: \[model\] heads: not an option of model family 'mlp'",
        ),
        ("[study]\nseeds = [0]\n[results]\nx = 1\n", r"study.toml:3: \[results\]: unknown table"),
        ("[study\nseeds = [0]\n", r"not valid TOML"),
    ],
)
def test_config_errors_name_the_key_and_line(tmp_path, text, expected):
    path = tmp_path / "study.toml"
    path.write_text(text)
    result = genlab("study", "run", str(path), "--out", str(tmp_path / "out"), timeout=60)
    assert result.returncode == 2
    assert __import__("re").search(expected, result.stderr), result.stderr


def test_store_refuses_another_config(tmp_path):
    out = tmp_path / "out"
    assert (
        genlab(
            "study", "run", str(write_config(tmp_path)), "--out", str(out), "--quiet", "--no-report"
        ).returncode
        == 0
    )
    other = write_config(tmp_path, epochs=5)
    refused = genlab("study", "run", str(other), "--out", str(out), "--quiet", "--no-report")
    assert refused.returncode == 2
    assert "different configuration" in refused.stderr
    assert "--allow-config-change" in refused.stderr


@pytest.mark.parametrize("stack", [1, 2])
def test_ray_executor_gives_the_same_rows_as_the_local_executor(tmp_path, stack):
    pytest.importorskip("ray")
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("seeds = [0]", f"seeds = [0]\nstack = {stack}"))
    local, ray_out = tmp_path / "local", tmp_path / "ray"
    assert (
        genlab(
            "study",
            "run",
            str(config),
            "--out",
            str(local),
            "--jobs",
            "2",
            "--quiet",
            "--no-report",
        ).returncode
        == 0
    )
    result = genlab(
        "study",
        "run",
        str(config),
        "--out",
        str(ray_out),
        "--executor",
        "ray",
        "--jobs",
        "2",
        "--quiet",
        "--no-report",
    )
    assert result.returncode == 0, result.stderr
    a = {r.run_id: r for r in Store(local).records()}
    b = {r.run_id: r for r in Store(ray_out).records()}
    assert a.keys() == b.keys()
    for run_id, ra in a.items():
        rb = b[run_id]
        assert (ra.train_loss, ra.test_loss, ra.train_acc, ra.test_acc) == (
            rb.train_loss,
            rb.test_loss,
            rb.train_acc,
            rb.test_acc,
        )
        assert ra.measures.keys() == rb.measures.keys()
        for name, value in ra.measures.items():
            assert value == rb.measures[name] or (
                value != value and rb.measures[name] != rb.measures[name]
            ), name
        assert ra.srr_profile == rb.srr_profile


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def _render(browser: str, page: Path, shot: Path) -> str:
    result = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1300,2000",
            "--enable-logging=stderr",
            "--v=0",
            f"--screenshot={shot}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.stderr


def test_report_renders_in_headless_chromium(tmp_path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("GENLAB_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is not installed (scripts/test.sh installs Debian's chromium)")
        pytest.skip("chromium is not installed")
    out = tmp_path / "out"
    assert (
        genlab("study", "run", str(write_config(tmp_path)), "--out", str(out), "--quiet").returncode
        == 0
    )
    shot = tmp_path / "report.png"
    log = _render(browser, out / "report" / "report.html", shot)
    assert shot.stat().st_size > 20_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "CONSOLE" not in log, log
    # The check above can fail: a page with a script error does log console lines.
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    assert "CONSOLE" in _render(browser, bad, tmp_path / "bad.png")


def test_stack_units_group_what_can_share_a_stack() -> None:
    from genlab.study.executors import stack_units
    from genlab.study.grid import RunSpec

    def spec(
        run_id: str, family: str, lr: float, seed: int, size: int = 200, **train: object
    ) -> RunSpec:
        return RunSpec(
            run_id=run_id,
            hparams={"family": family, "lr": lr},
            seed=seed,
            data={"name": "digits", "train_size": size, "seed": seed},
            model={"family": family, "dim": 16},
            train={"optimizer": "adam", "lr": lr, "batch_size": 50, **train},
        )

    specs = [
        spec("a", "crate", 0.01, 0),
        spec("b", "crate-n", 0.01, 0),
        spec("c", "crate", 0.003, 1, schedule="cosine"),  # each model of a stack its own
        spec("d", "crate", 0.01, 2, size=400),  # another training-set size: its own stack
        spec("e", "crate", 0.003, 3),
        spec("f", "crate", 0.003, 4, batch_size=32),  # a shared training option differs
    ]
    units = [[s.run_id for s in unit] for unit in stack_units(specs, 2)]
    assert units == [["a", "c"], ["e"], ["b"], ["d"], ["f"]]
    assert [[s.run_id for s in u] for u in stack_units(specs, 1)] == [[x] for x in "abcdef"]
    with pytest.raises(ValueError, match="stack: expected a positive number"):
        stack_units(specs, 0)


def test_the_progress_bar_counts_models_in_flight(tmp_path):
    config = write_config(tmp_path, epochs=2)
    run = genlab("study", "run", str(config), "--out", str(tmp_path / "out"), "--no-report")
    assert run.returncode == 0, run.stderr
    lines = run.stderr.replace("\r", "\n").splitlines()
    assert any("1 in flight, epoch 1/2" in line for line in lines), lines[-5:]
    assert "4/4" in lines[-1] or "4/4" in lines[-2]
    assert any("0 in flight; last: test acc" in line for line in lines)


def _threads_seen(_: int) -> tuple[str, int, int]:
    import torch

    from genlab import _core

    return os.environ["RAYON_NUM_THREADS"], torch.get_num_threads(), _core.effective_n_jobs(None)


def test_pool_workers_pin_torch_and_kernel_threads() -> None:
    """A local pool of `jobs` workers gives each cores / jobs threads, for torch and for the
    genlab kernels alike (jobs x threads never exceeds the cores)."""
    import concurrent.futures as cf
    import multiprocessing as mp

    from genlab.study.executors import _init_worker, threads_per_task

    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        devices = manager.Queue()
        for _ in range(2):
            devices.put("cpu")
        threads = threads_per_task(2)
        with cf.ProcessPoolExecutor(
            2, ctx, _init_worker, (devices, manager.Queue(), threads)
        ) as pool:
            seen = set(pool.map(_threads_seen, range(2)))
    assert seen == {(str(threads), threads, threads)}


def test_run_stack_measures_a_stack_together_as_one_by_one(tmp_path):
    """The path a GPU worker takes (measure_models over the stack), forced on the CPU: the same
    stored measures as measuring each model of the stack alone, to float32 rounding of the
    batched passes."""
    import dataclasses
    import math
    import warnings

    from genlab.study.config import load_config
    from genlab.study.grid import expand
    from genlab.study.worker import run_stack

    config = load_config(write_config(tmp_path, epochs=3, ce_target=0.5))
    config = dataclasses.replace(config, seeds=(0, 1, 2))
    unit = [s for s in expand(config) if s.hparams == {"family": "crate", "lr": 0.01}]
    assert len(unit) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = run_stack(unit, measures=config.measures, measure_together=False)
        together = run_stack(unit, measures=config.measures, measure_together=True)
    searched = ("pacbayes", "sharpness", "hessian")
    for a, b in zip(together, alone, strict=True):
        assert a.run_id == b.run_id
        assert a.measures.keys() == b.measures.keys()
        assert a.srr_profile == b.srr_profile
        for name, value in b.measures.items():
            got = a.measures[name]
            if math.isnan(value):
                assert math.isnan(got), name
            elif name.startswith(searched):
                # A float32 rounding can move one accuracy by one example, and a bisection step.
                assert math.isfinite(got), name
            else:
                assert got == pytest.approx(value, rel=1e-4, abs=1e-6), name
