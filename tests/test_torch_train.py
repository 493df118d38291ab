"""genlab.torch.train: training lowers the loss on digits in seconds, is deterministic on the CPU,
stops at the cross-entropy target, records what the measures need; SRR regularization; CUDA."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from genlab.torch.data import DatasetSplit, load_dataset  # noqa: E402
from genlab.torch.models import build_model  # noqa: E402
from genlab.torch.train import (  # noqa: E402
    EpochRecord,
    TrainConfig,
    TrainResult,
    evaluate,
    gradient_noise,
    train,
)

# One thread: these models are tiny, and on a shared 2-core machine a second thread only spins.
torch.set_num_threads(1)

SMALL_CRATE = {"dim": 16, "depth": 2, "heads": 4}


@pytest.fixture(scope="module")
def digits() -> DatasetSplit:
    return load_dataset("digits")


@pytest.fixture(scope="module")
def small_digits() -> DatasetSplit:
    return load_dataset("digits", train_size=256)


def _config(**kw: Any) -> TrainConfig:
    base: dict[str, Any] = {
        "optimizer": "adam",
        "lr": 3e-3,
        "epochs": 3,
        "batch_size": 64,
        "ce_target": None,
    }
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("family", ["crate", "mlp", "cnn"])
def test_training_lowers_the_loss(digits: DatasetSplit, family: str) -> None:
    options = SMALL_CRATE if family == "crate" else {}
    model = build_model(family, num_classes=10, input_shape=digits.input_shape, seed=0, **options)
    before, _ = evaluate(model, digits.train)
    result = train(model, digits, _config(lr=1e-2, epochs=6))
    assert isinstance(result, TrainResult)
    assert result.train_loss < 0.7 * before
    assert result.train_accuracy > 0.5
    assert result.test_accuracy > 0.4
    assert result.epochs == 6
    assert len(result.history) == 6
    assert result.steps == 6 * math.ceil(len(digits.train) / 64)
    assert [h.epoch for h in result.history] == [1, 2, 3, 4, 5, 6]
    assert result.history[-1].train_loss == result.train_loss
    assert result.loss_gap == pytest.approx(result.test_loss - result.train_loss)
    assert result.error_gap == pytest.approx(result.train_accuracy - result.test_accuracy)
    assert not result.converged
    assert not result.diverged


def test_deterministic_on_cpu(small_digits: DatasetSplit) -> None:
    def run(seed: int) -> tuple[Any, TrainResult]:
        model = build_model(
            "crate", num_classes=10, input_shape=(1, 8, 8), seed=0, dropout=0.1, **SMALL_CRATE
        )
        return model, train(model, small_digits, _config(seed=seed, epochs=2))

    (m1, r1), (m2, r2), (_, r3) = run(5), run(5), run(6)
    assert [h.train_loss for h in r1.history] == [h.train_loss for h in r2.history]
    for p1, p2 in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(p1, p2)
    assert r1.train_loss != r3.train_loss


def test_global_rng_untouched(small_digits: DatasetSplit) -> None:
    model = build_model("mlp", num_classes=10, input_shape=(1, 8, 8), seed=0, dropout=0.2)
    state = torch.random.get_rng_state()
    train(model, small_digits, _config(epochs=1))
    assert torch.equal(torch.random.get_rng_state(), state)


def test_stops_at_the_ce_target_and_records_milestones(digits: DatasetSplit) -> None:
    model = build_model("mlp", num_classes=10, input_shape=(1, 8, 8), seed=0)
    seen: list[EpochRecord] = []
    result = train(
        model,
        digits,
        _config(epochs=60, ce_target=0.01),
        progress=seen.append,
    )
    assert result.converged
    assert result.train_loss <= 0.01
    assert result.epochs < 60
    assert seen == list(result.history)
    assert all(r.epochs == 60 for r in seen)
    # milestones at epoch resolution: the first epoch whose end CE is below 0.1 (0.01)
    first = next(h.step for h in result.history if h.train_loss <= 0.1)
    second = next(h.step for h in result.history if h.train_loss <= 0.01)
    assert result.steps_to_ce_0_1 == first
    assert result.steps_ce_0_1_to_0_01 == second - first


def test_ce_check_every_steps(small_digits: DatasetSplit) -> None:
    model = build_model("mlp", num_classes=10, input_shape=(1, 8, 8), seed=0)
    result = train(model, small_digits, _config(epochs=40, ce_target=0.1, ce_check_every=1))
    assert result.converged
    assert result.steps_to_ce_0_1 == result.steps  # stopped at the very step it got there
    assert result.steps_ce_0_1_to_0_01 is None


def test_initial_state_is_the_weights_before_training(small_digits: DatasetSplit) -> None:
    model = build_model("crate-fix", num_classes=10, input_shape=(1, 8, 8), seed=0, **SMALL_CRATE)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = train(model, small_digits, _config(epochs=1))
    assert result.initial_state.keys() == before.keys()
    for k, v in before.items():
        assert torch.equal(result.initial_state[k], v)
    after = model.state_dict()
    assert not torch.equal(
        after["layers.0.attention.qkv.weight"], before["layers.0.attention.qkv.weight"]
    )
    # crate-fix: the frozen output projection never moves
    assert torch.equal(
        after["layers.0.attention.out_proj.weight"], before["layers.0.attention.out_proj.weight"]
    )


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw"])
def test_optimizers(small_digits: DatasetSplit, optimizer: str) -> None:
    model = build_model("mlp", num_classes=10, input_shape=(1, 8, 8), seed=0)
    lr = 0.1 if optimizer in ("sgd", "momentum") else 3e-3
    result = train(
        model, small_digits, _config(optimizer=optimizer, lr=lr, weight_decay=1e-4, epochs=3)
    )
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_schedules(small_digits: DatasetSplit) -> None:
    model = build_model("mlp", num_classes=10, input_shape=(1, 8, 8), seed=0, width=8)
    cosine = train(model, small_digits, _config(schedule="cosine", lr=0.01, epochs=4))
    expected = [0.005 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    assert [h.lr for h in cosine.history] == pytest.approx(expected)
    step = train(
        model,
        small_digits,
        _config(schedule="step", lr=0.01, epochs=5, step_epochs=2, step_gamma=0.5),
    )
    assert [h.lr for h in step.history] == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.0025])


def test_gradient_noise_matches_a_naive_computation(small_digits: DatasetSplit) -> None:
    model = build_model("mlp", num_classes=10, input_shape=(1, 8, 8), seed=0, width=16)
    x, y = small_digits.train.tensors
    grads = []
    for start in range(0, 256, 64):
        model.zero_grad()
        F.cross_entropy(model(x[start : start + 64]), y[start : start + 64]).backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]).double())
    g = torch.stack(grads)
    expected = float(((g - g.mean(0)) ** 2).sum(1).mean())
    assert gradient_noise(model, small_digits.train, 64) == pytest.approx(expected, rel=1e-9)


def test_divergence_is_reported(small_digits: DatasetSplit) -> None:
    model = build_model("mlp", num_classes=10, input_shape=(1, 8, 8), seed=0)
    result = train(model, small_digits, _config(optimizer="sgd", lr=1e12, epochs=5))
    assert result.diverged
    assert not result.converged
    assert result.epochs < 5 or not math.isfinite(result.train_loss)
    # a diverged model's gradients are not finite, and its gradient noise says so
    assert math.isnan(gradient_noise(model, small_digits.train, 64))


def test_srr_regularization_changes_training_and_lowers_the_penalty(
    small_digits: DatasetSplit,
) -> None:
    def run(gamma: float, mode: str = "random-layer") -> TrainResult:
        model = build_model("crate", num_classes=10, input_shape=(1, 8, 8), seed=0, **SMALL_CRATE)
        return train(model, small_digits, _config(srr_gamma=gamma, srr_mode=mode, epochs=3))

    plain, reg, reg_all = run(0.0), run(0.05), run(0.05, "all-layers")
    assert plain.history[0].srr_penalty is None
    assert reg.history[0].srr_penalty is not None
    assert reg.train_loss != plain.train_loss
    assert reg.history[-1].srr_penalty < reg.history[0].srr_penalty
    assert reg_all.history[-1].srr_penalty < reg_all.history[0].srr_penalty
    # the objective is CE + gamma * penalty (CE in training mode; no dropout here)
    record = reg_all.history[0]
    assert record.objective > 0.05 * record.srr_penalty


def test_srr_regularization_needs_a_genlab_model(small_digits: DatasetSplit) -> None:
    plain = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    with pytest.raises(ValueError, match="needs a genlab model"):
        train(plain, small_digits, _config(srr_gamma=0.1))
    # without the regularizer any classifier trains
    assert train(plain, small_digits, _config(epochs=1)).epochs == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"optimizer": "lbfgs"}, ValueError, "optimizer: expected one of"),
        ({"schedule": "linear"}, ValueError, "schedule: expected one of"),
        ({"srr_mode": "every"}, ValueError, "srr_mode: expected one of"),
        ({"lr": 0.0}, ValueError, "lr: expected a finite number > 0"),
        ({"lr": "fast"}, TypeError, "lr: expected a real number"),
        ({"weight_decay": -1.0}, ValueError, "weight_decay"),
        ({"batch_size": 0}, ValueError, "batch_size: expected a positive int"),
        ({"epochs": 2.5}, TypeError, "epochs: expected an int"),
        ({"ce_target": -0.1}, ValueError, "ce_target"),
        ({"ce_check_every": 0}, ValueError, "ce_check_every"),
        ({"srr_eps": 0.0}, ValueError, "srr_eps"),
    ],
)
def test_bad_config(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        TrainConfig(**kwargs)


def test_bad_device_and_amp(small_digits: DatasetSplit) -> None:
    model = build_model("mlp", num_classes=10, input_shape=(1, 8, 8), seed=0)
    with pytest.raises(ValueError, match="amp: mixed precision needs device='cuda'"):
        train(model, small_digits, _config(amp=True))
    with pytest.raises(ValueError, match="device: expected 'cpu' or 'cuda"):
        train(model, small_digits, _config(device="tpu"))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            train(model, small_digits, _config(device="cuda"))
    with pytest.raises(TypeError, match="config: expected a TrainConfig"):
        train(model, small_digits, {"lr": 0.1})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data: expected a DatasetSplit"):
        train(model, small_digits.train, _config())  # type: ignore[arg-type]
    empty = dataclasses.replace(small_digits, train=TensorDataset(torch.zeros(0, 1, 8, 8)))
    with pytest.raises(ValueError, match="empty data set"):
        train(model, empty, _config())


@pytest.mark.cuda
def test_crate_trains_on_cuda_with_amp_on_cifar_shaped_data() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 3, 32, 32, generator=g)
    y = (x[:, 0].mean(dim=(1, 2)) > 0).long()
    data = DatasetSplit(
        TensorDataset(x[:384], y[:384]),
        TensorDataset(x[384:], y[384:]),
        2,
        (3, 32, 32),
        "synthetic",
    )
    model = build_model("crate", num_classes=2, input_shape=(3, 32, 32), seed=0, dim=64, depth=2)
    result = train(
        model,
        data,
        _config(device="cuda", amp=True, epochs=5, srr_gamma=0.01),
    )
    assert result.device.startswith("cuda")
    assert next(model.parameters()).is_cuda
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert math.isfinite(gradient_noise(model, data.train, 16))
