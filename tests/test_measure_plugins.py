"""Your own measure: genlab.torch.measures.register_measure, and `[measures] plugins` in a study
(imported in every worker; stored, ranked and reported like a built-in measure)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("torch")

import torch

from genlab.errors import MeasureFailedWarning
from genlab.study.config import ConfigError, parse_config
from genlab.torch.data import load_dataset
from genlab.torch.measures import (
    MEASURES,
    MeasureContext,
    compute_measures,
    register_measure,
    unregister_measure,
)
from genlab.torch.models import build_model
from genlab.torch.train import TrainConfig, train


@pytest.fixture
def registered() -> Iterator[list[str]]:
    """Names registered by a test; removed afterwards (the registry is process-wide)."""
    names: list[str] = []
    yield names
    for name in names:
        if name in MEASURES:
            unregister_measure(name)


@pytest.fixture(scope="module")
def trained() -> tuple[torch.nn.Module, object, object]:
    data = load_dataset("digits", train_size=200)
    model = build_model("mlp", num_classes=10, input_shape=data.input_shape, seed=0)
    result = train(model, data, TrainConfig(optimizer="adam", lr=1e-3, epochs=1, ce_target=None))
    return model, result, data


def test_a_registered_measure_is_computed_like_a_built_in(
    registered: list[str], trained: tuple[torch.nn.Module, object, object]
) -> None:
    model, result, data = trained

    @register_measure("test_sq_weights", orientation=+1, description="sum of squared parameters")
    def sq_weights(ctx: MeasureContext) -> float:
        return float(sum(p.detach().double().pow(2).sum() for p in ctx.model.parameters()))

    def moved(ctx: MeasureContext) -> torch.Tensor:
        pairs = zip(ctx.model.parameters(), ctx.initial_model.parameters(), strict=True)
        return sum((p - q).detach().pow(2).sum() for p, q in pairs)  # a tensor: made a float

    register_measure("test_moved", moved, orientation=-1, group="distance")
    registered += ["test_sq_weights", "test_moved"]
    assert sq_weights.__name__ == "sq_weights"  # the decorator returns the function
    info = MEASURES["test_moved"]
    assert (info.orientation, info.group, info.jiang) == (-1, "distance", None)

    values = compute_measures(
        model, data, train_result=result, names=["params", "test_sq_weights", "test_moved"]
    )
    expected = sum(float((p.detach().double() ** 2).sum()) for p in model.parameters())
    assert values["test_sq_weights"] == pytest.approx(expected, rel=1e-12)
    initial = result.initial_state  # type: ignore[attr-defined]
    moved_by_hand = sum(
        float((p.detach() - initial[n]).pow(2).sum()) for n, p in model.named_parameters()
    )
    assert values["test_moved"] == pytest.approx(moved_by_hand, rel=1e-5)
    assert values["params"] == 25856.0


def test_a_measure_that_raises_is_nan_and_the_others_go_on(
    registered: list[str], trained: tuple[torch.nn.Module, object, object]
) -> None:
    model, result, data = trained

    @register_measure("test_broken", orientation=1)
    def broken(ctx: MeasureContext) -> float:
        raise RuntimeError("no such layer")

    register_measure("test_not_a_number", lambda ctx: "many", orientation=1)
    registered += ["test_broken", "test_not_a_number"]
    with pytest.warns(MeasureFailedWarning, match="test_broken: RuntimeError: no such layer"):
        values = compute_measures(
            model, data, train_result=result, names=["params", "test_broken", "test_not_a_number"]
        )
    assert values["params"] == 25856.0
    assert values["test_broken"] != values["test_broken"]  # NaN
    assert values["test_not_a_number"] != values["test_not_a_number"]


def test_registration_errors(registered: list[str]) -> None:
    with pytest.raises(ValueError, match="'path_norm' is a built-in measure"):
        register_measure("path_norm", lambda ctx: 0.0, orientation=1)
    register_measure("test_taken", lambda ctx: 0.0, orientation=1)
    registered.append("test_taken")
    with pytest.raises(ValueError, match="'test_taken' is already registered"):
        register_measure("test_taken", lambda ctx: 0.0, orientation=1)
    for orientation in (0, 2, True, 1.5):
        with pytest.raises(ValueError, match="orientation: expected \\+1 or -1"):
            register_measure("test_x", lambda ctx: 0.0, orientation=orientation)  # type: ignore[arg-type]
    for name in ("", "two words", "a,b", 3):
        with pytest.raises(ValueError, match="name: expected a non-empty name"):
            register_measure(name, lambda ctx: 0.0, orientation=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fn: expected a callable"):
        register_measure("test_x", 42, orientation=1)  # type: ignore[arg-type]
    assert "test_x" not in MEASURES
    with pytest.raises(ValueError, match="'params' is a built-in measure"):
        unregister_measure("params")
    with pytest.raises(ValueError, match="'test_never' is not a registered measure"):
        unregister_measure("test_never")


PLUGIN = """
from genlab.torch.measures import register_measure


@register_measure("plugin_weight_count", orientation=+1, description="entries of every parameter")
def weight_count(ctx):
    return sum(p.numel() for p in ctx.model.parameters())


@register_measure("plugin_broken", orientation=-1)
def broken(ctx):
    raise ValueError("deliberately broken")
"""

CONFIG = """
[study]
name = "plugins"
seeds = [0, 1]
jobs = 2

[data]
name = "digits"
train_size = 120

[model]
family = "mlp"

[train]
optimizer = "adam"
epochs = 1
batch_size = 60
ce_target = 0.5

[grid]
lr = [0.001, 0.01]

[measures]
plugins = ["{module}"]
names = ["params", "plugin_weight_count", "plugin_broken"]

[ranking]
bootstrap = 10
exclude_nonconverged = false
"""


def test_a_plugin_measure_is_stored_ranked_and_reported(tmp_path: Path) -> None:
    module = "genlab_test_plugin_measures"
    (tmp_path / f"{module}.py").write_text(PLUGIN)
    config = tmp_path / "study.toml"
    config.write_text(CONFIG.format(module=module))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "PYTHONWARNINGS": "ignore",
    }

    def genlab(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "genlab.cli", *args],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            check=False,
        )

    out = tmp_path / "out"
    # Two jobs: the models are measured in pool workers, which import the plugin themselves.
    run = genlab("study", "run", str(config), "--out", str(out), "--quiet", "--no-report")
    assert run.returncode == 0, run.stderr
    with sqlite3.connect(out / "study.sqlite") as conn:
        rows = conn.execute("SELECT measures, history FROM runs").fetchall()
    assert len(rows) == 4
    same_model = build_model("mlp", num_classes=10, input_shape=(1, 8, 8))
    every_parameter = sum(p.numel() for p in same_model.parameters())
    for measures, history in rows:
        values = json.loads(measures)
        assert values["plugin_weight_count"] == every_parameter  # computed in the workers
        assert values["params"] < every_parameter  # weight tensors only: not the same measure
        assert json.loads(history)["measure_errors"] == {
            "plugin_broken": "ValueError: deliberately broken"
        }
    ranked = genlab("study", "rank", str(out))
    assert ranked.returncode == 0, ranked.stderr
    assert "| plugin_weight_count | + |" in ranked.stdout
    assert "| plugin_broken | - |" in ranked.stdout
    report = genlab("study", "report", str(out))
    assert report.returncode == 0, report.stderr
    assert "entries of every parameter" in (out / "report" / "report.html").read_text()


def test_a_plugin_that_cannot_be_imported_names_its_line(tmp_path: Path) -> None:
    text = CONFIG.format(module="no_such_genlab_plugin")
    line = text.splitlines().index('plugins = ["no_such_genlab_plugin"]') + 1
    with pytest.raises(ConfigError) as info:
        parse_config(text, path="study.toml", check_runs=False)
    message = str(info.value)
    assert message.startswith(f"study.toml:{line}: [measures] plugins:")
    assert "'no_such_genlab_plugin' cannot be imported: ModuleNotFoundError" in message
    bad = CONFIG.format(module="x").replace('plugins = ["x"]', "plugins = [1]")
    with pytest.raises(ConfigError, match=r"\[measures\] plugins: expected a list of module"):
        parse_config(bad, check_runs=False)


def test_plugins_leave_the_hash_of_older_configurations_alone() -> None:
    """The published study's stored hash still matches its configuration (so it can resume)."""
    store = Path(__file__).resolve().parents[1] / "docs" / "results" / "digits-crate"
    with sqlite3.connect(f"{(store / 'study.sqlite').as_uri()}?mode=ro", uri=True) as conn:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    config = parse_config(meta["config_toml"], check_runs=False)
    assert config.measures.plugins == ()
    assert config.content_hash() == meta["config_hash"]
