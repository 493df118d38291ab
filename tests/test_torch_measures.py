"""genlab.torch.measures: closed forms on tiny networks (norms vs numpy/torch.linalg, path-norm of
a 2-layer ReLU net, margins on a hand-made batch), flatness searches on toys with known answers,
and compute_measures end to end."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from genlab.errors import DegenerateDataWarning, NumericalWarning  # noqa: E402
from genlab.torch.data import DatasetSplit, load_dataset  # noqa: E402
from genlab.torch.measures import (  # noqa: E402
    MEASURES,
    MeasureInfo,
    MeasureSettings,
    compute_measures,
    margins,
    pacbayes_sigma,
    path_norm,
    sharpness_alpha,
    spectral_norm,
    weight_tensors,
)
from genlab.torch.models import CRATE_VARIANTS, build_model  # noqa: E402
from genlab.torch.train import TrainConfig, TrainResult, train  # noqa: E402

# One thread: these models are tiny, and on a shared 2-core machine a second thread only spins.
torch.set_num_threads(1)
F64 = torch.float64
FAST = MeasureSettings(
    flatness_samples=128, search_depth=6, draws=2, ascent_steps=2, srr_samples=64
)


@pytest.fixture(scope="module")
def digits() -> DatasetSplit:
    return load_dataset("digits", train_size=300)


@pytest.fixture(scope="module")
def trained_mlp(digits: DatasetSplit) -> tuple[Any, TrainResult]:
    model = build_model("mlp", num_classes=10, input_shape=(1, 8, 8), seed=0, width=32, depth=2)
    result = train(model, digits, TrainConfig(optimizer="adam", lr=1e-2, epochs=40, ce_target=0.01))
    return model, result


def test_registry() -> None:
    assert len(MEASURES) >= 40
    numbers = {info.jiang for info in MEASURES.values() if info.jiang is not None}
    expected = {20, 22, *range(29, 45), 48, 49, 50, 51, 52, 53, 56, 57, 58, 59, 60, 61}
    assert numbers == expected
    for name, info in MEASURES.items():
        assert isinstance(info, MeasureInfo)
        assert info.name == name
        assert info.orientation in (-1, 1)
        assert info.description
        assert info.group
    with pytest.raises(TypeError):
        MEASURES["new"] = MEASURES["params"]  # type: ignore[index]


def test_weight_tensors() -> None:
    mlp = build_model("mlp", num_classes=3, input_shape=(1, 8, 8), depth=2)
    names = [n for n, _ in weight_tensors(mlp)]
    assert names == ["hidden.0.weight", "hidden.1.weight", "head.weight"]
    for variant in CRATE_VARIANTS:
        crate = build_model(variant, num_classes=3, input_shape=(1, 8, 8), dim=16, depth=2)
        names = [n for n, _ in weight_tensors(crate)]
        per_layer = 3 if variant in ("crate", "crate-fix") else 2  # qkv, [out_proj], ISTA
        assert len(names) == 2 + 2 * per_layer, variant  # + patch embedding and head
        assert "layers.0.ista.weight" in names
        assert "cls_token" not in names
    cnn = build_model("cnn", num_classes=3, input_shape=(1, 8, 8), width=4)
    shapes = [w.shape for _, w in weight_tensors(cnn)]
    assert shapes == [(4, 9), (4, 36), (3, 4)]  # conv kernels reshaped to (out, -1)


def test_spectral_norm_matches_svd() -> None:
    rng = np.random.default_rng(0)
    for shape in [(5, 3), (3, 7), (4, 2, 3, 3)]:
        w = rng.normal(size=shape)
        expected = np.linalg.svd(w.reshape(shape[0], -1), compute_uv=False)[0]
        assert spectral_norm(torch.tensor(w)) == pytest.approx(expected, rel=1e-12)


def test_margins_on_a_hand_made_batch() -> None:
    logits = torch.tensor([[3.0, 1.0, 0.5], [0.0, 2.0, 2.5], [1.0, 1.0, -4.0], [0.0, 0.0, 9.0]])
    labels = torch.tensor([0, 1, 1, 2])
    identity = nn.Identity()
    got = margins(identity, TensorDataset(logits, labels), batch_size=3)
    assert got.tolist() == [2.0, -0.5, 0.0, 9.0]


def _tiny_trained(digits: DatasetSplit, family: str = "mlp") -> tuple[Any, TrainResult]:
    options = {"width": 6, "depth": 2} if family == "mlp" else {"dim": 8, "depth": 1, "heads": 2}
    model = build_model(family, num_classes=10, input_shape=(1, 8, 8), seed=1, **options)
    config = TrainConfig(optimizer="adam", lr=1e-2, epochs=3, ce_target=None, gradient_noise=False)
    return model, train(model, digits, config)


def test_norm_measures_against_closed_forms(digits: DatasetSplit) -> None:
    model, result = _tiny_trained(digits)
    names = [
        n
        for n, i in MEASURES.items()
        if i.group in ("count", "spectral", "frobenius", "distance", "margin")
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        got = compute_measures(model, result, digits, names=names)
    ws = [model.hidden[0].weight, model.hidden[1].weight, model.head.weight]
    w0 = [result.initial_state[k] for k in ("hidden.0.weight", "hidden.1.weight", "head.weight")]
    a = [w.detach().double().numpy() for w in ws]
    a0 = [w.double().numpy() for w in w0]
    spec = np.array([np.linalg.norm(x, 2) ** 2 for x in a])
    fro = np.array([np.linalg.norm(x, "fro") ** 2 for x in a])
    d = 3
    x, y = digits.train.tensors
    with torch.no_grad():
        logits = model(x).double()
    correct = logits[torch.arange(len(y)), y]
    others = logits.clone()
    others[torch.arange(len(y)), y] = -np.inf
    gamma = float(np.quantile((correct - others.max(1).values).numpy(), 0.1))
    lg = 2 * math.log(gamma) if gamma > 0 else math.nan
    expected = {
        "params": sum(p.numel() for p in model.parameters()),
        "inverse_margin": 1 / gamma**2 if gamma > 0 else math.nan,
        "log_prod_of_spec": np.log(spec).sum(),
        "log_prod_of_spec_over_margin": np.log(spec).sum() - lg,
        "fro_over_spec": (fro / spec).sum(),
        "log_sum_of_spec": math.log(d) + np.log(spec).sum() / d,
        "log_sum_of_spec_over_margin": math.log(d) + (np.log(spec).sum() - lg) / d,
        "log_spec_orig_main": np.log(spec).sum() - lg + math.log((fro / spec).sum()),
        "log_spec_init_main": np.log(spec).sum()
        - lg
        + math.log(
            sum(
                np.linalg.norm(x - x0, "fro") ** 2 / s for x, x0, s in zip(a, a0, spec, strict=True)
            )
        ),
        "log_prod_of_fro": np.log(fro).sum(),
        "log_prod_of_fro_over_margin": np.log(fro).sum() - lg,
        "log_sum_of_fro": math.log(d) + np.log(fro).sum() / d,
        "log_sum_of_fro_over_margin": math.log(d) + (np.log(fro).sum() - lg) / d,
        "fro_dist": sum(np.linalg.norm(x - x0, "fro") ** 2 for x, x0 in zip(a, a0, strict=True)),
        "dist_spec_init": sum(np.linalg.norm(x - x0, 2) ** 2 for x, x0 in zip(a, a0, strict=True)),
        "param_norm": fro.sum(),
    }
    assert got.keys() == set(names)
    assert list(got) == names
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, nan_ok=True), key


def test_path_norm_of_a_two_layer_relu_net() -> None:
    torch.manual_seed(3)
    net = build_model("mlp", num_classes=4, input_shape=(5,), width=7, depth=1)
    W1, b1 = net.hidden[0].weight.detach().double(), net.hidden[0].bias.detach().double()
    W2, b2 = net.head.weight.detach().double(), net.head.bias.detach().double()
    # sum over paths input -> hidden -> output of squared weights, biases as paths from a unit
    hidden = (W1**2).sum(1) + b1**2
    expected = float(((W2**2) @ hidden + b2**2).sum())
    assert path_norm(net, (5,)) == pytest.approx(expected, rel=1e-12)
    # the model itself is untouched
    assert torch.equal(net.hidden[0].weight.double(), W1)


@settings(max_examples=20, deadline=None)
@given(
    scales=st.lists(st.floats(0.1, 10.0), min_size=7, max_size=7),
    seed=st.integers(0, 1000),
)
def test_path_norm_is_invariant_to_relu_rescaling(scales: list[float], seed: int) -> None:
    # scaling hidden unit j by c_j > 0 (its weights and bias) and its outgoing weights by 1 / c_j
    # leaves a ReLU network's function and its path-norm unchanged
    torch.manual_seed(seed)
    net = build_model("mlp", num_classes=3, input_shape=(5,), width=7, depth=1).double()
    before = path_norm(net, (5,))
    c = torch.tensor(scales, dtype=F64)
    x = torch.randn(4, 5, dtype=F64)
    with torch.no_grad():
        out = net(x)
        net.hidden[0].weight.mul_(c[:, None])
        net.hidden[0].bias.mul_(c)
        net.head.weight.div_(c[None, :])
        assert torch.allclose(net(x), out)
    assert path_norm(net, (5,)) == pytest.approx(before, rel=1e-9)


def test_path_norm_of_crate_is_sign_free() -> None:
    c = build_model("crate-c", num_classes=3, input_shape=(1, 8, 8), dim=8, heads=2, depth=2)
    n = build_model("crate-n", num_classes=3, input_shape=(1, 8, 8), dim=8, heads=2, depth=2)
    n.load_state_dict(c.state_dict())
    value = path_norm(c, (1, 8, 8))
    assert value > 0
    assert math.isfinite(value)
    assert path_norm(n, (1, 8, 8)) == pytest.approx(value, rel=1e-12)
    # the parameters outside ISTA enter squared: flipping the sign of the qkv weights (which also
    # flips the head tokens, leaving the attention weights unchanged) changes nothing
    flipped = build_model("crate-c", num_classes=3, input_shape=(1, 8, 8), dim=8, heads=2, depth=2)
    state = c.state_dict()
    flipped.load_state_dict(
        {k: -v if k.endswith("qkv.weight") or k == "cls_token" else v for k, v in state.items()}
    )
    assert path_norm(flipped, (1, 8, 8)) == pytest.approx(value, rel=1e-12)


class _NoiseToy(nn.Module):
    """Two classes; example i is classified correctly iff s(theta) < t_i, where
    s = mean(theta^2) - offset. Under weight noise s grows by the mean noise variance."""

    def __init__(self, dim: int, value: float) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.full((dim,), value, dtype=F64))
        self.offset = value**2

    def forward(self, x: Any) -> Any:
        s = (self.theta**2).mean() - self.offset
        return torch.stack([torch.zeros_like(x[:, 0]), x[:, 0] - s], dim=1)


def _toy_data() -> tuple[Any, Any]:
    thresholds = torch.arange(1, 101, dtype=F64) / 100  # accuracy(s) = fraction of t_i > s
    return thresholds[:, None], torch.ones(100, dtype=torch.int64)


def test_pacbayes_sigma_on_a_toy_with_a_known_answer() -> None:
    x, y = _toy_data()
    # theta = 0, u ~ N(0, sigma^2): s ~ sigma^2, so the accuracy drops by 0.1 at sigma = sqrt(0.1)
    # (a variance passed as a standard deviation would give 0.1 ** 0.25 = 0.56 instead)
    found = pacbayes_sigma(_NoiseToy(20000, 0.0), x, y, seed=1)
    assert found.converged
    assert found.accuracy == 1.0
    assert abs(found.deviation - 0.1) < 0.01
    assert 0.31 < found.scale < 0.35  # drop within 0.1 +- 0.01: 0.10 <= sigma^2 < 0.12


def test_magnitude_aware_sigma_scales_with_the_weights() -> None:
    x, y = _toy_data()
    # theta = 2, variance sigma^2 theta^2 + eps^2: s ~ 4 sigma^2 + eps^2 -> sigma = sqrt(0.1 / 4)
    # (0.158; deviations of 0.1 +- 0.01 plus Monte Carlo noise give about 0.145 to 0.172). Passing
    # the variance where torch.normal wants a standard deviation would give 4 sigma^4 = 0.1, 0.40.
    found = pacbayes_sigma(_NoiseToy(100000, 2.0), x, y, magnitude_eps=1e-3, seed=2)
    assert found.converged
    assert 0.145 < found.scale < 0.172


def test_sharpness_on_the_toy() -> None:
    x, y = _toy_data()
    # worst case in |u_i| <= alpha is a corner: s = alpha^2 -> alpha' = sqrt(0.1)
    found = sharpness_alpha(_NoiseToy(1000, 0.0), x, y, ascent_steps=3, seed=0)
    assert found.converged
    assert 0.31 < found.scale < 0.35
    # magnitude-aware box alpha (|w| + eps) around theta = 2: s = (2 + b)^2 - 4, b = alpha (2 + eps)
    mag = sharpness_alpha(_NoiseToy(1000, 2.0), x, y, magnitude_eps=1e-3, ascent_steps=3)

    def alpha(drop: float) -> float:
        return (math.sqrt(4 + drop) - 2) / 2.001

    assert mag.converged
    assert alpha(0.10) <= mag.scale < alpha(0.12)


class _Constant(nn.Module):
    """Ignores its parameter: no noise ever moves its accuracy."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(3, dtype=F64))

    def forward(self, x: Any) -> Any:
        return torch.stack([torch.zeros_like(x[:, 0]), x[:, 0] + 0 * self.w.sum()], dim=1)


def test_search_warns_when_it_does_not_converge() -> None:
    x, y = _toy_data()
    with pytest.warns(NumericalWarning, match="PAC-Bayes sigma search did not converge"):
        found = pacbayes_sigma(_Constant(), x, y, search_depth=5, draws=1)
    assert not found.converged
    assert found.steps == 5
    # Geometric bisection over [2 * 2**-24, 2], always growing: the last midpoint is 2**(1 - 24/32).
    assert found.scale == pytest.approx(2.0 * 2 ** (-24 / 2**5))
    with pytest.warns(NumericalWarning, match="sharpness alpha search did not converge"):
        sharpness_alpha(_Constant(), x, y, search_depth=3, ascent_steps=1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target_drop": 0.1, "tolerance": 0.2}, "0 < tolerance < target_drop < 1"),
        ({"search_depth": 0}, "search_depth"),
        ({"draws": 0}, "draws"),
        ({"sigma_max": 0.0}, "upper bound"),
        ({"magnitude_eps": -1.0}, "magnitude_eps"),
    ],
)
def test_search_errors(kwargs: dict[str, Any], match: str) -> None:
    x, y = _toy_data()
    with pytest.raises(ValueError, match=match):
        pacbayes_sigma(_Constant(), x, y, **kwargs)
    with pytest.raises(ValueError, match="same positive number of examples"):
        pacbayes_sigma(_Constant(), x, y[:3])


def test_compute_all_measures(digits: DatasetSplit, trained_mlp: tuple[Any, TrainResult]) -> None:
    model, result = trained_mlp
    assert result.converged
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericalWarning)
        values = compute_measures(model, result, digits, settings=FAST)
    assert list(values) == list(MEASURES)
    for name, value in values.items():
        assert isinstance(value, float)
        assert math.isfinite(value), name
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert values["steps_to_ce_0_1"] == result.steps_to_ce_0_1
    assert values["gradient_noise"] == result.gradient_noise
    assert values["pacbayes_flatness"] > 0
    assert values["path_norm_over_margin"] > 0
    # the MLP has no subspaces: R^c = R and the SRR measure is the sparsity
    assert values["rate_reduction_mean"] == pytest.approx(0.0, abs=1e-9)
    assert values["srr_measure_last"] == pytest.approx(values["sparsity_last"])


def test_compute_measures_on_crate(digits: DatasetSplit) -> None:
    model, result = _tiny_trained(digits, "crate")
    names = ["path_norm", "fro_dist", "srr_measure_mean", "compressed_coding_rate_last"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        values = compute_measures(model, result, digits, names=names, settings=FAST)
    assert list(values) == names
    assert all(math.isfinite(v) for v in values.values())


def test_undefined_values_are_nan(digits: DatasetSplit) -> None:
    model, result = _tiny_trained(digits)
    assert result.steps_to_ce_0_1 is None
    values = compute_measures(model, result, digits, names=["steps_to_ce_0_1", "gradient_noise"])
    assert math.isnan(values["steps_to_ce_0_1"])
    assert math.isnan(values["gradient_noise"])
    # an untrained network has a negative 10th-percentile margin
    untrained = build_model("mlp", num_classes=10, input_shape=(1, 8, 8), seed=1, width=6)
    with pytest.warns(DegenerateDataWarning, match="margin"):
        values = compute_measures(
            untrained, result, digits, names=["inverse_margin", "log_prod_of_fro"]
        )
    assert math.isnan(values["inverse_margin"])
    assert math.isfinite(values["log_prod_of_fro"])
    # no warning when no requested measure divides by the margin (warnings are errors here)
    assert compute_measures(untrained, result, digits, names=["path_norm"])["path_norm"] > 0


def test_compute_measures_errors(digits: DatasetSplit) -> None:
    model, result = _tiny_trained(digits)
    with pytest.raises(ValueError, match="unknown measure\\(s\\) 'vc_dim'"):
        compute_measures(model, result, digits, names=["params", "vc_dim"])
    with pytest.raises(TypeError, match="result: expected a TrainResult"):
        compute_measures(model, {}, digits)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data: expected a DatasetSplit"):
        compute_measures(model, result, digits.train)  # type: ignore[arg-type]
    other = build_model("cnn", num_classes=10, input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="initial_state: has no entry"):
        compute_measures(other, result, digits, names=["fro_dist"])
    wider = build_model("mlp", num_classes=10, input_shape=(1, 8, 8), width=7)
    with pytest.raises(ValueError, match=r"initial_state: 'hidden\.0\.weight' has shape"):
        compute_measures(wider, result, digits, names=["fro_dist"])
