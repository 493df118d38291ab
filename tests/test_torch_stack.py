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


def test_model_bytes_counts_state_data_and_saved_activations() -> None:
    """Against a count by hand: a two-layer MLP keeps its input and the ReLU output for the
    backward pass (the second Linear saves the same tensor the ReLU does)."""
    from genlab.torch.stack import model_bytes

    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    x, y = torch.randn(100, 4), torch.randint(0, 3, (100,))
    split = DatasetSplit(
        train=TensorDataset(x[:70], y[:70]),
        test=TensorDataset(x[70:], y[70:]),
        num_classes=3,
        input_shape=(4,),
        name="toy",
    )
    params = (4 * 8 + 8 + 8 * 3 + 3) * 4
    data = 100 * 4 * 4 + 100 * 8  # float32 inputs, int64 labels
    activations = 32 * 4 * 4 + 32 * 8 * 4  # batch of 32: the input and the ReLU output
    for optimizer, states in (("sgd", 0), ("momentum", 1), ("adam", 2)):
        config = TrainConfig(optimizer=optimizer, batch_size=32)
        expected = (2 + states) * params + data + activations
        assert model_bytes(net, split, config) == expected, optimizer


def test_a_stack_that_does_not_fit_is_split_and_trains_the_same() -> None:
    from genlab.torch.stack import model_bytes, stack_sizes

    models, data = models_and_data("mlp", [0, 1, 2, 3, 4])
    configs = [
        TrainConfig(optimizer="adam", lr=0.01, epochs=2, ce_target=None, seed=s, batch_size=32)
        for s in range(5)
    ]
    per_model = model_bytes(models[0], data[0], configs[0])
    assert stack_sizes(models, data, configs, memory_limit=2 * per_model + 1) == [2, 2, 1]
    assert stack_sizes(models, data, configs, memory_limit=per_model // 2) == [1] * 5
    assert stack_sizes(models, data, configs, memory_limit=10 * per_model) == [5]
    assert stack_sizes(models, data, configs) == [5]  # a few MB against this machine's memory
    with pytest.raises(ValueError, match="memory_limit: expected a positive number of bytes"):
        stack_sizes(models, data, configs, memory_limit=0)

    whole = clone(models)
    expected = train_stack(whole, data, configs)
    seen: list[tuple[int, int]] = []
    got = train_stack(
        models,
        data,
        configs,
        memory_limit=2 * per_model + 1,
        progress=lambda i, record: seen.append((i, record.epoch)),
    )
    assert sorted(seen) == [(i, e) for i in range(5) for e in (1, 2)]  # indices of the whole
    for k, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert a.steps == b.steps
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-6), k
        for pa, pb in zip(models[k].parameters(), whole[k].parameters(), strict=True):
            torch.testing.assert_close(pa, pb, rtol=1e-9, atol=1e-12)


@pytest.mark.cuda
def test_a_stack_trains_on_cuda_as_on_the_cpu() -> None:
    """float64 on the GPU: the same weights and losses as the stack trained on the CPU."""
    models, data = models_and_data("crate", [0, 1, 2])
    configs = [
        TrainConfig(optimizer="adam", lr=0.01, epochs=2, ce_target=None, seed=s, batch_size=32)
        for s in range(3)
    ]
    on_cpu = clone(models)
    expected = train_stack(on_cpu, data, configs)
    got = train_stack(models, data, [dataclasses.replace(c, device="cuda") for c in configs])
    for k, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert a.device.startswith("cuda")
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-6), k
        for pa, pb in zip(models[k].parameters(), on_cpu[k].parameters(), strict=True):
            torch.testing.assert_close(pa.cpu(), pb, rtol=1e-7, atol=1e-9)
