"""A study directory is never poisoned: every value of a configuration is checked before anything
is written (file:line:[table] key messages, exit status 2), a run that fails on its first model
leaves the directory unbound, and damaged, unwritable or too-small studies end in one line and a
non-zero status with nothing stored changed (issue 15, items 2 and 3)."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("torch")

from genlab import cli
from genlab.study.config import ConfigError, parse_config
from genlab.study.store import RunRecord, Store, StoreDamagedError
from genlab.torch.models import build_model
from genlab.torch.train import TrainConfig

# One quick model: an MLP on 100 digits for one epoch, two cheap measures.
GOOD = """\
[study]
name = "one"
seeds = [0]

[data]
name = "digits"
train_size = 100

[model]
family = "mlp"
width = 16

[train]
optimizer = "adam"
epochs = 1
lr = 0.01

[grid]
batch_size = [50]

[measures]
names = ["params", "param_norm"]
"""


def _with(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def _line_of(text: str, fragment: str) -> int:
    return text[: text.index(fragment)].count("\n") + 1


# (replace this, with that, the table and key at fault, a phrase of the reason). The line is
# where "with that" lands in the file (its first line).
BAD_VALUES = [
    ("lr = 0.01", "lr = -0.003", "train", "lr", "> 0"),
    ("lr = 0.01", "lr = nan", "train", "lr", "finite"),
    ("batch_size = [50]", "batch_size = [50, 0]", "grid", "batch_size", "positive integer"),
    ("epochs = 1", "epochs = 0", "train", "epochs", "positive integer"),
    ('optimizer = "adam"', 'optimizer = "adamx"', "train", "optimizer", "expected one of"),
    ('optimizer = "adam"', "momentum = 5.0", "train", "momentum", r"\[0, 1\)"),
    ('optimizer = "adam"', 'amp = "yes"', "train", "amp", "expected bool"),
    ("seeds = [0]", "seeds = [-1]", "study", "seeds", ">= 0"),
    ("width = 16", "width = 16\ndropout = 1.5", "model", "dropout", r"\[0, 1\)"),
    ('name = "digits"', 'name = "digitz"', "data", "name", "expected one of"),
    ("train_size = 100", "train_size = 5000", "data", "train_size", "1347 examples"),
    ("train_size = 100", "label_noise = 1.5", "data", "label_noise", r"\[0, 1\]"),
    (
        'names = ["params", "param_norm"]',
        "margin_quantile = 2.0",
        "measures",
        "margin_quantile",
        r"\(0, 1\)",
    ),
    ('names = ["params", "param_norm"]', "draws = 0", "measures", "draws", "positive integer"),
    ("[study]\n", '[study]\nexecutor = "dask"\n', "study", "executor", '"local" or "ray"'),
    ("[study]\n", "[study]\njobs = -1\n", "study", "jobs", "positive"),
    ("[study]\n", "[study]\nstack = 0\n", "study", "stack", "positive number of models"),
    ("[study]\n", "[study]\nstack = -2\n", "study", "stack", "positive number of models"),
    ("[study]\n", '[study]\nstack = "8"\n', "study", "stack", "expected int"),
    ("[study]\n", "[study]\nstacks = 8\n", "study", "stacks", "unknown"),
]


@pytest.mark.parametrize(("old", "new", "table", "key", "reason"), BAD_VALUES)
def test_every_bad_value_fails_at_its_line(old, new, table, key, reason) -> None:
    text = _with(GOOD, old, new)
    line = _line_of(text, new.splitlines()[-1])
    with pytest.raises(ConfigError) as info:
        parse_config(text, path="c.toml")
    message = str(info.value)
    assert message.startswith(f"c.toml:{line}: [{table}] {key}: "), message
    assert re.search(reason, message), message


CRATE = """\
[study]
seeds = [0]

[model]
family = "crate"
dim = 32
heads = 4

[grid]
lr = [0.01]
"""


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # heads = 0 used to divide by zero inside build_model.
        ("heads = 4", "heads = 0", r"c.toml:7: \[model\] heads: expected a positive integer"),
        # 15 does not split into 2 heads: about two options, so the [model] table is named.
        (
            "dim = 32\nheads = 4",
            "dim = 15\nheads = 2",
            r"c.toml:4: \[model\]: dim_head: not given and dim=15 is not divisible by heads=2",
        ),
        ("heads = 4", "heads = 4\nista_step = nan", r"c.toml:8: \[model\] ista_step: .*finite"),
        # An axis may not repeat a fixed option.
        (
            "lr = [0.01]",
            "lr = [0.01]\nheads = [4, 0]",
            r"c.toml:11: \[grid\] heads: also set as a fixed option",
        ),
    ],
)
def test_model_options_are_checked_for_every_grid_point(old, new, expected) -> None:
    text = _with(CRATE, old, new)
    with pytest.raises(ConfigError, match=expected):
        parse_config(text, path="c.toml")


def test_a_grid_value_is_reported_with_its_grid_point() -> None:
    text = _with(CRATE, "heads = 4\n", "").replace(
        "lr = [0.01]", "lr = [0.01, 0.1]\nheads = [4, 0]"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, path="c.toml")
    assert str(info.value) == ("c.toml:10: [grid] heads: expected a positive integer, got 0"), str(
        info.value
    )


def test_model_is_checked_against_each_data_set_of_the_grid() -> None:
    # patch_size 4 divides the 8 x 8 digits and the 32 x 32 CIFAR images, 3 divides neither.
    text = CRATE + '[data]\nroot = "/nowhere"\n'
    text = text.replace("lr = [0.01]", 'lr = [0.01]\nname = ["digits", "cifar10"]')
    parse_config(text.replace("heads = 4", "heads = 4\npatch_size = 4"), path="c.toml")
    with pytest.raises(ConfigError, match=r"\[model\] patch_size: the image \(8 x 8\)"):
        parse_config(text.replace("heads = 4", "heads = 4\npatch_size = 3"), path="c.toml")


def test_checks_build_nothing_real() -> None:
    # A model of 10^10 parameters: checked on the meta device, so no memory is taken.
    text = _with(CRATE, "dim = 32", "dim = 100000").replace("heads = 4", "heads = 4\ndepth = 1")
    parse_config(text, path="c.toml")


def test_training_and_model_classes_refuse_what_the_config_refuses() -> None:
    for kwargs, error, match in [
        ({"momentum": 5.0}, ValueError, r"momentum: expected a number in \[0, 1\)"),
        ({"amp": "yes"}, TypeError, "amp: expected a bool"),
        ({"evaluate_test": 1}, TypeError, "evaluate_test: expected a bool"),
        ({"step_gamma": 0.0}, ValueError, "step_gamma: expected a finite number > 0"),
        ({"device": "tpu"}, ValueError, "device: expected 'cpu' or 'cuda"),
        ({"seed": -1}, ValueError, "seed: expected a non-negative integer"),
    ]:
        with pytest.raises(error, match=match):
            TrainConfig(**kwargs)  # type: ignore[arg-type]
    for options, error, match in [
        ({"heads": 0}, ValueError, "heads: expected a positive integer"),
        ({"dim": float("nan")}, TypeError, "dim: expected an integer"),
        ({"dim": "32"}, TypeError, "dim: expected an integer"),
        ({"ista_lambda": -1.0}, ValueError, "ista_lambda: expected a finite number >= 0"),
    ]:
        with pytest.raises(error, match=match):
            build_model("crate", num_classes=10, input_shape=(1, 8, 8), **options)


# --- the command line: nothing written before the first model, and one line per failure ---------


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = cli.main(list(argv))
    return status, capsys.readouterr().err


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_bad_config_writes_nothing_and_the_fixed_one_then_runs(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    bad = tmp_path / "bad.toml"
    bad.write_text(_with(GOOD, "lr = 0.01", "lr = -0.003"))
    status, err = _run(capsys, "study", "run", str(bad), "--out", str(out), "--quiet")
    assert status == 2
    assert f"{bad}:{_line_of(bad.read_text(), 'lr = -0.003')}: [train] lr:" in err
    assert not out.exists()
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    status, err = _run(
        capsys, "study", "run", str(good), "--out", str(out), "--quiet", "--no-report"
    )
    assert status == 0, err
    assert len(Store(out).records()) == 1


def test_a_run_that_fails_on_its_first_model_does_not_bind_the_store(tmp_path, capsys) -> None:
    # Valid values, but the files are not there: the first model fails in its worker.
    out = tmp_path / "out"
    missing = tmp_path / "missing.toml"
    missing.write_text(
        _with(GOOD, 'name = "digits"\ntrain_size = 100', f'name = "mnist"\nroot = "{tmp_path}/x"')
    )
    status, err = _run(capsys, "study", "run", str(missing), "--out", str(out), "--quiet")
    assert status == 1
    lines = err.strip().splitlines()
    assert lines[0].startswith("genlab study run: run "), err
    assert "failed:" in lines[0]
    assert "batch_size=50, seed=0" in lines[0]
    assert "0 model(s) stored" in err
    assert not (out / Store.FILENAME).exists()
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    status, err = _run(
        capsys, "study", "run", str(good), "--out", str(out), "--quiet", "--no-report"
    )
    assert status == 0, err


def test_setup_the_machine_cannot_run_is_refused_before_anything(
    tmp_path, capsys, monkeypatch
) -> None:
    import importlib.util

    import torch

    out = tmp_path / "out"
    config = tmp_path / "c.toml"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config.write_text(_with(GOOD, "[study]\n", '[study]\ndevice = "cuda"\n'))
    status, err = _run(capsys, "study", "run", str(config), "--out", str(out))
    assert status == 2
    assert f'{config}:2: [study] device: "cuda" but PyTorch sees no CUDA GPU' in err
    # The same through the command line's override.
    config.write_text(GOOD)
    status, err = _run(capsys, "study", "run", str(config), "--out", str(out), "--device", "cuda")
    assert status == 2
    assert "--device cuda: " in err
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "ray" else real_find_spec(name, *a),
    )
    config.write_text(_with(GOOD, "[study]\n", '[study]\nexecutor = "ray"\n'))
    status, err = _run(capsys, "study", "run", str(config), "--out", str(out))
    assert status == 2
    assert f'{config}:2: [study] executor: "ray" needs Ray' in err
    assert not out.exists()


def test_jobs_on_the_command_line_must_be_positive(tmp_path, capsys) -> None:
    config = tmp_path / "c.toml"
    config.write_text(GOOD)
    with pytest.raises(SystemExit) as info:
        cli.main(["study", "run", str(config), "--out", str(tmp_path / "o"), "--jobs", "-1"])
    assert info.value.code == 2
    assert "--jobs: expected a positive integer, got -1" in capsys.readouterr().err


def test_a_config_that_is_not_utf8_names_its_line(tmp_path, capsys) -> None:
    config = tmp_path / "c.toml"
    config.write_bytes(b'[study]\nseeds = [0]\nname = "caf\xe9"\n')
    status, err = _run(capsys, "study", "run", str(config), "--out", str(tmp_path / "o"))
    assert status == 2
    assert f"{config}:3: not UTF-8 text (byte 0xe9)" in err


# --- damaged, unwritable and too-small study directories ----------------------------------------


def _record(i: int) -> RunRecord:
    return RunRecord(
        run_id=f"run{i}",
        seed=0,
        hparams={"batch_size": 50 + i},
        converged=True,
        train_loss=0.1,
        test_loss=0.5 + i,
        train_acc=1.0,
        test_acc=0.9,
        measures={"params": float(i), "param_norm": float(-i)},
    )


def _study(tmp_path: Path, n_records: int) -> Path:
    out = tmp_path / "study"
    store = Store(out)
    store.open_for(parse_config(GOOD, path="good.toml"))
    for i in range(n_records):
        store.add(_record(i))
    return out


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other-database", "bad-json"])
def test_a_damaged_store_is_reported_and_left_untouched(tmp_path, capsys, damage) -> None:
    out = _study(tmp_path, 3)
    db = out / Store.FILENAME
    with sqlite3.connect(db) as conn:  # fold the WAL in, so the file alone is the store
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if damage == "garbage":
        db.write_bytes(b"this is not a database\n" * 100)
    elif damage == "truncated":
        db.write_bytes(db.read_bytes()[:2000])
    elif damage == "other-database":
        db.unlink()
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE t (x)")
    else:
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE runs SET measures = '{\"params\": ' WHERE run_id = 'run1'")
    before = _digest(db)
    config = tmp_path / "good.toml"
    config.write_text(GOOD)
    for argv in (
        ("study", "rank", str(out)),
        ("study", "report", str(out), "--out", str(tmp_path / "report")),
        ("study", "run", str(config), "--out", str(out), "--quiet"),
    ):
        status, err = _run(capsys, *argv)
        assert status == 1, (argv, err)
        assert len(err.strip().splitlines()) == 1, err
        if damage == "other-database" and argv[1] != "run":
            assert "records no configuration" in err or "not a readable study store" in err
        else:
            assert "not a readable study store" in err, err
            assert "left untouched" in err, err
        assert _digest(db) == before
    if damage == "bad-json":
        with pytest.raises(StoreDamagedError, match="run 'run1'"):
            Store(out).records()


def test_ranking_fewer_than_two_models_is_one_line(tmp_path, capsys) -> None:
    out = _study(tmp_path, 1)
    status, err = _run(capsys, "study", "rank", str(out))
    assert status == 1
    assert (
        err.strip() == f"genlab study rank: {out}: need at least 2 finished models to rank, have 1"
    )


def test_a_missing_study_is_one_line(tmp_path, capsys) -> None:
    status, err = _run(capsys, "study", "rank", str(tmp_path / "none"))
    assert status == 1
    assert "holds no study" in err


def test_an_out_path_under_a_file_is_refused_before_training(tmp_path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    config = tmp_path / "good.toml"
    config.write_text(GOOD)
    status, err = _run(capsys, "study", "run", str(config), "--out", str(blocker / "out"))
    assert status == 1
    assert "cannot be a study directory" in err


def _make_read_only(path: Path) -> None:
    """Make ``path`` unwritable, for root too when possible (root ignores permission bits, not
    the immutable attribute)."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        return
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"running as root without chattr +i here: {done.stderr!r}")


def _make_writable(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)
    path.chmod(0o755)


def test_a_read_only_study_directory_is_refused_before_training(tmp_path, capsys) -> None:
    out = _study(tmp_path, 2)
    db = out / Store.FILENAME
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    config = tmp_path / "good.toml"
    config.write_text(GOOD)
    before = _digest(db)
    _make_read_only(out)
    try:
        assert not os.access(out, os.W_OK)
        status, err = _run(capsys, "study", "run", str(config), "--out", str(out), "--quiet")
    finally:
        _make_writable(out)
    assert status == 1
    assert "not writable by this user" in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert _digest(db) == before
