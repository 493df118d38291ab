"""genlab.torch.srr: layer-wise SRR equals genlab.rate on the same tokens (taken from the
intermediates and from forward hooks), its summaries, and the differentiable regularizer."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from genlab import rate as np_rate  # noqa: E402
from genlab.torch import rate as trate  # noqa: E402
from genlab.torch.data import load_dataset  # noqa: E402
from genlab.torch.measures import MEASURES  # noqa: E402
from genlab.torch.models import LayerIntermediates, build_model  # noqa: E402
from genlab.torch.srr import (  # noqa: E402
    SRR_PRESETS,
    SRRProfile,
    SRRSettings,
    layer_srr,
    measure_srr,
    srr_penalty,
)

# One thread: these models are tiny, and on a shared 2-core machine a second thread only spins.
torch.set_num_threads(1)
F64 = torch.float64


@pytest.fixture(scope="module")
def images() -> Any:
    return load_dataset("digits").test.tensors[0][:40]


def _crate(variant: str = "crate", **kw: Any) -> Any:
    options: dict[str, Any] = {"dim": 16, "depth": 3, "heads": 4}
    options.update(kw)
    return build_model(variant, num_classes=10, input_shape=(1, 8, 8), seed=0, **options)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("variant", ["crate", "crate-n"])
def test_output_convention_equals_genlab_rate(images: Any, variant: str, normalize: bool) -> None:
    model = _crate(variant)
    profile = measure_srr(model, images, eps=0.5, normalize_tokens=normalize, batch_size=16)
    with torch.no_grad():
        _, layers = model(images, return_intermediates=True)
    for i, layer in enumerate(layers):
        Z = layer.output.double().numpy()
        U = layer.subspaces.detach().double().numpy()
        kw = {"eps": 0.5, "normalize_tokens": normalize}
        r = np_rate.coding_rate(Z, **kw)
        rc = np_rate.compressed_coding_rate(Z, U, **kw)
        sp = np_rate.sparsity(Z)
        srr = np_rate.srr_measure(Z, U, **kw)
        assert profile.coding_rate[i] == pytest.approx(r.mean(), rel=1e-6)
        assert profile.compressed_coding_rate[i] == pytest.approx(rc.mean(), rel=1e-6)
        assert profile.sparsity[i] == pytest.approx(sp.mean(), rel=1e-12)
        assert profile.srr_measure[i] == pytest.approx(srr.mean(), rel=1e-6, abs=1e-6)
        assert profile.srr_measure_std[i] == pytest.approx(srr.std(ddof=1), rel=1e-5)
        assert profile.compressed_coding_rate_std[i] == pytest.approx(rc.std(ddof=1), rel=1e-5)
    assert profile.n_samples == 40
    assert profile.depth == 3
    assert profile.convention == "output"
    assert profile.normalize_tokens is normalize


@pytest.mark.parametrize("normalize", [False, True])
def test_crate_convention_equals_rate_of_hooked_qkv(images: Any, normalize: bool) -> None:
    model = _crate()
    hooked: list[Any] = []
    handles = [
        layer.attention.qkv.register_forward_hook(
            lambda _m, _i, out: hooked.append(out.detach().clone())
        )
        for layer in model.layers
    ]
    profile = measure_srr(
        model, images, eps=0.1, normalize_tokens=normalize, convention="crate", batch_size=64
    )
    for h in handles:
        h.remove()
    assert len(hooked) == 3
    with torch.no_grad():
        _, layers = model(images, return_intermediates=True)
    for i, qkv_out in enumerate(hooked):
        heads = qkv_out.reshape(40, 17, 4, 4).permute(0, 2, 1, 3).double().numpy()  # (B, K, N, p)
        rc = np_rate.compressed_coding_rate_projected(heads, eps=0.1, normalize_tokens=normalize)
        assert profile.compressed_coding_rate[i] == pytest.approx(rc.mean(), rel=1e-6)
        normalized = layers[i].normalized_input.double().numpy()
        r = np_rate.coding_rate(normalized, eps=0.1, normalize_tokens=normalize)
        sp = np_rate.sparsity(layers[i].output.double().numpy())
        assert profile.coding_rate[i] == pytest.approx(r.mean(), rel=1e-6)
        assert profile.srr_measure[i] == pytest.approx((sp + rc - r).mean(), rel=1e-6)


def test_inputs_forms_and_subsets(images: Any) -> None:
    model = _crate(depth=2)
    labels = torch.zeros(len(images), dtype=torch.int64)
    from_tensor = measure_srr(model, images, batch_size=7)
    from_loader = measure_srr(model, DataLoader(TensorDataset(images, labels), batch_size=9))
    from_dataset = measure_srr(model, TensorDataset(images, labels), batch_size=11)
    from_list = measure_srr(model, [images[:20], images[20:]])
    for other in (from_loader, from_dataset, from_list):
        np.testing.assert_allclose(other.srr_measure, from_tensor.srr_measure, rtol=1e-10)
    first = measure_srr(model, images, max_samples=13, batch_size=5)
    assert first.n_samples == 13
    np.testing.assert_allclose(
        first.srr_measure, measure_srr(model, images[:13]).srr_measure, rtol=1e-10
    )
    subset = measure_srr(model, TensorDataset(images, labels), max_samples=10, seed=3)
    again = measure_srr(model, TensorDataset(images, labels), max_samples=10, seed=3)
    assert subset.n_samples == 10
    np.testing.assert_array_equal(subset.srr_measure, again.srr_measure)
    assert model.training  # measurement leaves the mode as it was


def test_summary_and_measure_names(images: Any) -> None:
    profile = measure_srr(_crate(), images)
    summary = profile.summary()
    srr_names = {n for n, info in MEASURES.items() if info.group == "srr"}
    assert set(summary) == srr_names
    assert summary["srr_measure_last"] == profile.srr_measure[-1]
    assert summary["compressed_coding_rate_mean"] == pytest.approx(
        profile.compressed_coding_rate.mean()
    )
    assert summary["rate_reduction_last"] == pytest.approx(
        profile.coding_rate[-1] - profile.compressed_coding_rate[-1]
    )
    assert isinstance(profile, SRRProfile)


def test_mlp_has_identity_subspaces(images: Any) -> None:
    mlp = build_model("mlp", num_classes=10, input_shape=(1, 8, 8), seed=0, width=16)
    profile = measure_srr(mlp, images)
    np.testing.assert_allclose(profile.compressed_coding_rate, profile.coding_rate, rtol=1e-12)
    np.testing.assert_allclose(profile.srr_measure, profile.sparsity, rtol=1e-9)


def _penalty_inputs() -> tuple[Any, Any]:
    model = _crate(dim=8, heads=2, depth=2).double()
    x = torch.rand(6, 1, 8, 8, dtype=F64)
    return model, x


def test_penalty_values_and_gradient_flow() -> None:
    model, x = _penalty_inputs()
    _, layers = model(x, return_intermediates=True)
    per_layer = [
        trate.srr_measure(la.output, la.subspaces, eps=0.5, sparsity="l1").mean() for la in layers
    ]
    total = srr_penalty(layers, eps=0.5, mode="all-layers")
    assert total.item() == pytest.approx(sum(v.item() for v in per_layer) / 2, rel=1e-12)
    chosen = random.Random(4).randrange(2)
    single = srr_penalty(layers, eps=0.5, rng=random.Random(4))
    assert single.item() == pytest.approx(per_layer[chosen].item(), rel=1e-12)
    total.backward()
    for layer in model.layers:
        grad = layer.attention.qkv.weight.grad
        assert grad is not None
        assert float(grad.abs().sum()) > 0
        assert layer.ista.weight.grad is not None
    assert model.patch_embedding[1].weight.grad is not None


def test_penalty_is_at_least_float32() -> None:
    # under mixed precision the layer outputs are float16; the penalty must not be
    z = torch.relu(torch.randn(3, 5, 4)).half()
    layer = LayerIntermediates(z, z, z[:, None], None, z, torch.eye(4).half()[None])
    penalty = srr_penalty([layer], eps=0.5)
    assert penalty.dtype == torch.float32
    expected = trate.srr_measure(z.double(), torch.eye(4, dtype=F64)[None], eps=0.5, sparsity="l1")
    assert penalty.item() == pytest.approx(expected.mean().item(), rel=1e-6)


def test_penalty_gradient_matches_finite_differences() -> None:
    model, x = _penalty_inputs()
    weight = model.layers[0].attention.qkv.weight
    direction = torch.randn_like(weight)

    def penalty() -> Any:
        _, layers = model(x, return_intermediates=True)
        return srr_penalty(layers, eps=0.5, mode="all-layers")

    penalty().backward()
    analytic = float((weight.grad * direction).sum())
    h = 1e-6
    with torch.no_grad():
        weight += h * direction
        up = penalty().item()
        weight -= 2 * h * direction
        down = penalty().item()
        weight += h * direction
    assert analytic == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8)


def test_errors(images: Any) -> None:
    plain = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    with pytest.raises(TypeError, match="model: expected a genlab model"):
        measure_srr(plain, images)
    model = _crate(depth=1)
    with pytest.raises(ValueError, match="convention: expected one of"):
        measure_srr(model, images, convention="hooks")
    with pytest.raises(ValueError, match="eps: expected a finite number > 0 \\(epsilon itself"):
        measure_srr(model, images, eps=0.0)
    with pytest.raises(ValueError, match="max_samples"):
        measure_srr(model, images, max_samples=0)
    with pytest.raises(ValueError, match="at least one image"):
        measure_srr(model, images[:0])
    with pytest.raises(TypeError, match="batches of tensors"):
        measure_srr(model, [np.zeros((2, 1, 8, 8))])
    with pytest.raises(ValueError, match="layers: expected at least one layer"):
        srr_penalty([], eps=0.5)
    _, layers = model(images[:2], return_intermediates=True)
    with pytest.raises(ValueError, match="mode: expected one of"):
        srr_penalty(layers, eps=0.5, mode="last")
    with pytest.raises(ValueError, match="convention"):
        layer_srr(layers[0], eps=0.5, convention="x")
    with pytest.raises(ValueError, match="sparsity_normalization: expected one of"):
        measure_srr(model, images, sparsity_normalization="percent")
    with pytest.raises(TypeError, match="normalize_tokens: expected a bool"):
        SRRSettings("crate", 0.1, "no", "fraction")  # type: ignore[arg-type]


@pytest.mark.parametrize("convention", ["output", "crate"])
def test_sparsity_as_a_fraction_of_the_entries(images: Any, convention: str) -> None:
    model = _crate(depth=2)
    per_token = measure_srr(model, images, convention=convention)
    fraction = measure_srr(model, images, convention=convention, sparsity_normalization="fraction")
    d = 16
    np.testing.assert_allclose(fraction.sparsity, per_token.sparsity / d, rtol=1e-12)
    np.testing.assert_allclose(fraction.coding_rate, per_token.coding_rate, rtol=1e-12)
    np.testing.assert_allclose(
        fraction.srr_measure,
        per_token.srr_measure - per_token.sparsity + per_token.sparsity / d,
        rtol=1e-9,
    )
    assert fraction.sparsity_normalization == "fraction"


def test_crate_preset_is_the_authors_measurement_script() -> None:
    # Their script: R^c of qkv(LN(Z)) per head, tokens unit-normalized, eps^2 = 0.01 passed as
    # "eps" (so eps = 0.1 here), sparsity as a fraction of the entries.
    assert SRR_PRESETS["crate"] == SRRSettings("crate", 0.1, True, "fraction")
    assert SRR_PRESETS["output"] == SRRSettings("output", 0.5, False, "token")


@pytest.mark.cuda
def test_measure_and_penalty_on_cuda(images: Any) -> None:
    model = _crate().cuda()
    profile = measure_srr(model, images)
    cpu = measure_srr(model.cpu(), images)
    np.testing.assert_allclose(profile.srr_measure, cpu.srr_measure, rtol=1e-4, atol=1e-4)
    model.cuda()
    _, layers = model(images.cuda(), return_intermediates=True)
    penalty = srr_penalty(layers, eps=0.5)
    penalty.backward()
    assert penalty.is_cuda
    assert math.isfinite(penalty.item())
