"""Stacked training (genlab.torch.stack) against training each model alone."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import TensorDataset  # noqa: E402

from genlab.torch.data import DatasetSplit, load_dataset  # noqa: E402
from genlab.torch.models import build_model  # noqa: E402
from genlab.torch.stack import StackError, train_stack  # noqa: E402
from genlab.torch.train import TrainConfig, train  # noqa: E402


def float64_split(split: DatasetSplit) -> DatasetSplit:
    def as64(part: TensorDataset) -> TensorDataset:
        x, y = part.tensors
        return TensorDataset(x.double(), y)

    return dataclasses.replace(split, train=as64(split.train), test=as64(split.test))


def models_and_data(
    family: str, seeds: list[int]
) -> tuple[list[torch.nn.Module], list[DatasetSplit]]:
    models, data = [], []
    for seed in seeds:
        # Each model its own training subset and label noise (both drawn from its seed).
        split = float64_split(load_dataset("digits", train_size=200, label_noise=0.1, seed=seed))
        model = (
            build_model(
                family,
                num_classes=10,
                input_shape=split.input_shape,
                seed=seed,
                dim=16,
                depth=2,
                heads=2,
                patch_size=4,
            )
            if family.startswith("crate")
            else build_model(family, num_classes=10, input_shape=split.input_shape, seed=seed)
        )
        models.append(model.double())
        data.append(split)
    return models, data


def clone(models: list[torch.nn.Module]) -> list[torch.nn.Module]:
    import copy

    return [copy.deepcopy(m) for m in models]


@pytest.mark.parametrize(
    ("family", "optimizer"),
    [("mlp", "adam"), ("mlp", "momentum"), ("crate", "adamw"), ("mlp", "sgd")],
)
def test_a_stack_trains_each_model_as_training_it_alone(family: str, optimizer: str) -> None:
    seeds = [0, 1, 2]
    models, data = models_and_data(family, seeds)
    configs = [
        TrainConfig(
            optimizer=optimizer,
            lr=[0.003, 0.01, 0.002][k] if optimizer.startswith("adam") else [0.05, 0.1, 0.02][k],
            weight_decay=[0.0, 1e-3, 1e-2][k],
            batch_size=32,
            epochs=[3, 4, 2][k],
            schedule="cosine" if k == 1 else "none",
            ce_target=[None, None, 1.5][k],
            seed=seed,
        )
        for k, seed in enumerate(seeds)
    ]
    alone = clone(models)
    expected = [train(m, d, c) for m, d, c in zip(alone, data, configs, strict=True)]
    got = train_stack(models, data, configs)
    for k, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert a.epochs == b.epochs, k
        assert a.steps == b.steps, k
        assert a.converged == b.converged, k
        assert (a.steps_to_ce_0_1, a.steps_ce_0_1_to_0_01) == (
            b.steps_to_ce_0_1,
            b.steps_ce_0_1_to_0_01,
        )
        for ra, rb in zip(a.history, b.history, strict=True):
            # Evaluation takes the cross-entropy of float32 logits (as train() does, for AMP):
            # the sums over a batch round in float32, in an order of the batched kernel's.
            assert ra.train_loss == pytest.approx(rb.train_loss, rel=1e-6), (k, ra.epoch)
            assert ra.test_loss == pytest.approx(rb.test_loss, rel=1e-6), (k, ra.epoch)
            assert (ra.train_accuracy, ra.test_accuracy) == (rb.train_accuracy, rb.test_accuracy)
            assert ra.objective == pytest.approx(rb.objective, rel=1e-9), (k, ra.epoch)
            assert ra.lr == pytest.approx(rb.lr, rel=1e-12)
        assert a.test_accuracy == b.test_accuracy
        for (name, pa), pb in zip(
            models[k].state_dict().items(), alone[k].state_dict().values(), strict=True
        ):
            torch.testing.assert_close(pa, pb, rtol=1e-9, atol=1e-12, msg=f"model {k} {name}")
        for name, value in a.initial_state.items():
            torch.testing.assert_close(value, b.initial_state[name], rtol=0, atol=0)


def test_what_cannot_share_a_stack_is_refused() -> None:
    models, data = models_and_data("mlp", [0, 1])
    base = TrainConfig(optimizer="adam", epochs=1, batch_size=32)
    with pytest.raises(StackError, match="batch_size differs across the stack"):
        train_stack(models, data, [base, dataclasses.replace(base, batch_size=16)])
    with pytest.raises(StackError, match="SRR regularization is not stacked"):
        train_stack(models, data, [base, dataclasses.replace(base, srr_gamma=0.1)])
    with pytest.raises(StackError, match="one data split and one config per model"):
        train_stack(models, data[:1], [base, base])
    other = build_model("mlp", num_classes=10, input_shape=(1, 8, 8), seed=0, width=32).double()
    with pytest.raises(StackError, match="model 1 has other parameters than model 0"):
        train_stack([models[0], other], data, [base, base])
    with pytest.raises(StackError, match="expected at least one model"):
        train_stack([], [], [])


def test_final_test_numbers_without_per_epoch_test_evaluation() -> None:
    """evaluate_test=False: each model's test numbers are taken when it finishes (models that
    finish early leave the stack)."""
    models, data = models_and_data("mlp", [3, 4])
    configs = [
        TrainConfig(
            optimizer="adam", lr=0.01, epochs=e, ce_target=None, seed=s, evaluate_test=False
        )
        for s, e in ((3, 2), (4, 4))
    ]
    alone = clone(models)
    expected = [train(m, d, c) for m, d, c in zip(alone, data, configs, strict=True)]
    got = train_stack(models, data, configs)
    for a, b in zip(got, expected, strict=True):
        assert a.epochs == b.epochs
        assert a.history[-1].test_loss is None
        assert a.test_loss == pytest.approx(b.test_loss, rel=1e-6)
        assert a.test_accuracy == b.test_accuracy
