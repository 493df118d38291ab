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
from genlab.torch import measures as measures_module  # noqa: E402
from genlab.torch.data import DatasetSplit, load_dataset  # noqa: E402
from genlab.torch.measures import (  # noqa: E402
    ADJUSTED_SUFFIX,
    MEASURES,
    MeasureInfo,
    MeasureSettings,
    canonical_form,
    compute_measures,
    margins,
    measure_model,
    pacbayes_sigma,
    path_norm,
    sharpness_alpha,
    spectral_norm,
    weight_tensors,
)
from genlab.torch.models import CRATE_VARIANTS, build_model  # noqa: E402
from genlab.torch.srr import SRR_PRESETS  # noqa: E402
from genlab.torch.train import TrainConfig, TrainResult, gradient_noise, train  # noqa: E402

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
    assert len(MEASURES) >= 70
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
    config = TrainConfig(optimizer="adam", lr=1e-2, epochs=3, ce_target=None)
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
        got = compute_measures(model, digits, train_result=result, names=names)
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
        "params": sum(x.size for x in a),  # the entries of the weight tensors, as Jiang et al.
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


@settings(max_examples=20)
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
        values = compute_measures(model, digits, train_result=result, settings=FAST)
    assert list(values) == list(MEASURES)
    for name, value in values.items():
        assert isinstance(value, float)
        assert math.isfinite(value), name
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert values["steps_to_ce_0_1"] == result.steps_to_ce_0_1
    assert values["gradient_noise"] == gradient_noise(model, digits.train, 64)
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
        values = compute_measures(model, digits, train_result=result, names=names, settings=FAST)
    assert list(values) == names
    assert all(math.isfinite(v) for v in values.values())


def test_undefined_values_are_nan(digits: DatasetSplit) -> None:
    model, result = _tiny_trained(digits)
    assert result.steps_to_ce_0_1 is None
    values = compute_measures(model, digits, train_result=result, names=["steps_to_ce_0_1"])
    assert math.isnan(values["steps_to_ce_0_1"])
    # an untrained network has a negative 10th-percentile margin
    untrained = build_model("mlp", num_classes=10, input_shape=(1, 8, 8), seed=1, width=6)
    with pytest.warns(DegenerateDataWarning, match="margin"):
        values = compute_measures(
            untrained, digits, train_result=result, names=["inverse_margin", "log_prod_of_fro"]
        )
    assert math.isnan(values["inverse_margin"])
    assert math.isfinite(values["log_prod_of_fro"])
    # no warning when no requested measure divides by the margin (warnings are errors here)
    assert (
        compute_measures(untrained, digits, train_result=result, names=["path_norm"])["path_norm"]
        > 0
    )


def test_compute_measures_errors(digits: DatasetSplit) -> None:
    model, result = _tiny_trained(digits)
    with pytest.raises(ValueError, match="unknown measure\\(s\\) 'vc_dim'"):
        compute_measures(model, digits, train_result=result, names=["params", "vc_dim"])
    with pytest.raises(TypeError, match="train_result: expected a TrainResult"):
        compute_measures(model, digits, train_result={})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data: expected a DatasetSplit, a torch Dataset"):
        compute_measures(model, 42)
    # genlab 0.1's compute_measures(model, result, data): Python's own TypeError for three
    # positional arguments, and a pointer to the keyword when the result comes second.
    with pytest.raises(TypeError, match="takes 2 positional arguments but 3 were given"):
        compute_measures(model, result, digits)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="the training result is now a keyword argument"):
        compute_measures(model, result)
    with pytest.raises(TypeError, match="initial_state: expected a state dict"):
        compute_measures(model, digits, initial_state=[1, 2])  # type: ignore[arg-type]
    x, y = digits.train.tensors  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="data: 5 inputs but 4 labels"):
        compute_measures(model, (x[:5], y[:4]))
    with pytest.raises(ValueError, match="data: the training set is empty"):
        compute_measures(model, (x[:0], y[:0]))
    other = build_model("cnn", num_classes=10, input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="initial_state: does not fit this model"):
        compute_measures(other, digits, train_result=result, names=["fro_dist"])
    with pytest.raises(ValueError, match="initial_state: has no entry"):
        compute_measures(other, digits, train_result=result, names=["pacbayes_init"], settings=FAST)
    wider = build_model("mlp", num_classes=10, input_shape=(1, 8, 8), width=7)
    with pytest.raises(ValueError, match="initial_state: does not fit this model"):
        compute_measures(wider, digits, train_result=result, names=["fro_dist"])


# --- conventions of the rankings issue ---------------------------------------------------------

NORM_AND_PATH = [
    n for n, i in MEASURES.items() if i.group in ("spectral", "frobenius", "distance", "path")
]


def test_norm_and_path_measures_ignore_the_scale_of_a_layer_that_feeds_a_layernorm(
    digits: DatasetSplit,
) -> None:
    # CRATE's patch embedding is LN -> Linear -> LN: multiplying that Linear (weight and bias) by
    # 10 leaves the network's function unchanged, so it must leave the measures unchanged too.
    model = build_model(
        "crate", num_classes=10, input_shape=(1, 8, 8), seed=1, dim=16, heads=2, depth=1
    )
    config = TrainConfig(optimizer="adam", lr=1e-2, epochs=80, ce_target=0.05)
    result = train(model, digits, config)
    names = NORM_AND_PATH
    before = compute_measures(model, digits, train_result=result, names=names)
    x = digits.train.tensors[0][:32]
    with torch.no_grad():
        logits = model.eval()(x)
        embed = model.patch_embedding[1]
        assert isinstance(embed, nn.Linear)
        embed.weight.mul_(10)
        embed.bias.mul_(10)
        torch.testing.assert_close(model(x), logits, rtol=0, atol=5e-3)  # LayerNorm eps
    after = compute_measures(model, digits, train_result=result, names=names)
    for name in names:
        # The margin moves a little: LayerNorm's eps makes the function invariant only nearly.
        margin = name.removesuffix(ADJUSTED_SUFFIX) in measures_module._MARGIN_DEPENDENT
        tolerance = 1e-3 if margin else 1e-6
        assert math.isfinite(before[name]), name
        assert after[name] == pytest.approx(before[name], rel=tolerance), name
    # Without the canonical form the patch embedding's squared entries would grow 100-fold.
    raw = [w for n, w in weight_tensors(model) if n.startswith("patch_embedding")]
    assert len(raw) == 1


class _ConvBN(nn.Module):
    """conv -> BatchNorm -> ReLU -> conv -> BatchNorm -> pool -> linear, as a user writes it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(6)
        self.head = nn.Linear(6, 3)

    def forward(self, x: Any) -> Any:
        h = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.head(h.mean(dim=(2, 3)))


def _with_statistics(net: _ConvBN, seed: int) -> _ConvBN:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in (net.bn1, net.bn2):
            n = bn.num_features
            bn.running_mean.copy_(torch.randn(n, generator=g))
            bn.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            bn.weight.copy_(torch.rand(n, generator=g) + 0.5)
            bn.bias.copy_(torch.randn(n, generator=g))
    return net


def test_batchnorm_is_folded_into_the_layer_before_it() -> None:
    torch.manual_seed(0)
    net = _with_statistics(_ConvBN(), 1).eval()
    canonical = canonical_form(net)
    x = torch.randn(5, 1, 6, 6)
    torch.testing.assert_close(canonical(x.double()), net(x).double(), rtol=1e-5, atol=1e-6)
    assert isinstance(canonical.bn1, nn.Identity)
    scale = net.bn1.weight / torch.sqrt(net.bn1.running_var + net.bn1.eps)
    folded = dict(weight_tensors(canonical))["conv1.weight"]
    expected = (net.conv1.weight * scale[:, None, None, None]).reshape(4, -1).double()
    torch.testing.assert_close(folded, expected.detach())
    # A rescaling that keeps the function (conv weight x c, BN statistics to match) keeps the
    # folded weights, so every weight-based measure (up to BatchNorm's eps).
    before = path_norm(net, (1, 6, 6))
    c = 7.0
    with torch.no_grad():
        net.conv1.weight.mul_(c)
        net.bn1.running_mean.mul_(c)
        net.bn1.running_var.mul_(c * c)
    again = dict(weight_tensors(canonical_form(net)))
    for name, w in weight_tensors(canonical):
        torch.testing.assert_close(again[name], w, rtol=1e-4, atol=1e-6)
    assert path_norm(net, (1, 6, 6)) == pytest.approx(before, rel=1e-4)
    # the model itself is untouched
    assert isinstance(net.bn1, nn.BatchNorm2d)


def test_params_counts_the_weight_tensors(digits: DatasetSplit) -> None:
    model, result = _tiny_trained(digits, "crate")
    got = compute_measures(model, digits, train_result=result, names=["params"])["params"]
    assert got == sum(w.numel() for _, w in weight_tensors(model))
    assert got < sum(p.numel() for p in model.parameters())  # biases, LayerNorms, tokens left out


def test_size_adjusted_forms_follow_jiangs_rule(digits: DatasetSplit) -> None:
    model, result = _tiny_trained(digits)
    base = ["params", "log_prod_of_spec", "fro_dist", "path_norm", "log_sum_of_fro"]
    names = base + [n + ADJUSTED_SUFFIX for n in base]
    got = compute_measures(model, digits, train_result=result, names=names)
    m = len(digits.train)
    for name in base:
        v = got[name]
        expected = (v - math.log(m)) / 2 if name.startswith("log_") else math.sqrt(v / m)
        assert got[name + ADJUSTED_SUFFIX] == pytest.approx(expected, rel=1e-12), name
    adjusted = {n for n in MEASURES if n.endswith(ADJUSTED_SUFFIX)}
    groups = {MEASURES[n].group for n in adjusted}
    assert groups == {"count", "margin", "spectral", "frobenius", "distance", "path", "flatness"}
    assert len(adjusted) == 30


def test_gradient_noise_uses_one_batch_size_for_every_model(digits: DatasetSplit) -> None:
    model, result = _tiny_trained(digits)
    for batch in (16, 64):
        settings = MeasureSettings(gradient_noise_batch_size=batch)
        got = compute_measures(
            model, digits, train_result=result, names=["gradient_noise"], settings=settings
        )
        assert got["gradient_noise"] == gradient_noise(model, digits.train, batch)
    with pytest.raises(ValueError, match="gradient_noise_batch_size: expected a positive"):
        MeasureSettings(gradient_noise_batch_size=0)


def test_srr_settings_and_presets(digits: DatasetSplit, monkeypatch: pytest.MonkeyPatch) -> None:
    model, result = _tiny_trained(digits, "crate")
    crate = SRR_PRESETS["crate"]
    default = MeasureSettings(srr_samples=32)
    assert default.srr_settings() == crate
    assert default.with_srr_preset("output").srr_settings() == SRR_PRESETS["output"]
    calls = []
    original = measures_module.measure_srr

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["convention"])
        return original(*args, **kwargs)

    monkeypatch.setattr(measures_module, "measure_srr", counting)
    srr_names = [n for n, i in MEASURES.items() if i.group == "srr"]
    got = measure_model(
        model,
        digits,
        train_result=result,
        names=srr_names,
        settings=default,
        srr_presets=("crate", "output"),
    )
    # The SRR family shares the "crate" preset's measurement: two measurements, not three.
    assert sorted(calls) == ["crate", "output"]
    assert set(got.srr_profiles) == {"crate", "output"}
    assert got.values == got.srr_profiles["crate"].summary()
    crate_profile = got.srr_profiles["crate"]
    assert crate_profile.eps == 0.1
    assert crate_profile.normalize_tokens
    assert (crate_profile.sparsity <= 1).all()  # a fraction of the entries
    assert (got.srr_profiles["output"].sparsity > 1).any()  # nonzeros per token
    with pytest.raises(ValueError, match="srr_convention: expected one of"):
        MeasureSettings(srr_convention="tokens")
    with pytest.raises(TypeError, match="srr_normalize_tokens: expected a bool"):
        MeasureSettings(srr_normalize_tokens="no")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="srr_presets: expected one of"):
        measure_model(model, digits, train_result=result, names=["params"], srr_presets=("paper",))
