"""compute_measures on classifiers genlab did not build: a residual CNN with BatchNorm and a
ViT-style transformer with LayerNorm, both defined here, trained by a plain PyTorch loop and
measured from a DataLoader; what is unavailable without the initial weights or the training
record is NaN with one warning."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

pytest.importorskip("torch")

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from genlab.errors import MeasureUnavailableWarning
from genlab.torch.data import DatasetSplit, load_dataset
from genlab.torch.measures import MEASURES, MeasureSettings, compute_measures, weight_tensors

FAST = MeasureSettings(draws=2, search_depth=4, ascent_steps=1, flatness_samples=64)
# FAST's four bisection steps stop before a flatness search converges, which it says.
pytestmark = pytest.mark.filterwarnings("ignore::genlab.errors.NumericalWarning")
# Every measure of these groups needs only the model and its training data.
NORM_GROUPS = ("count", "margin", "spectral", "frobenius", "distance", "path")
NORMS = [n for n, info in MEASURES.items() if info.group in NORM_GROUPS]


class Block(nn.Module):
    """conv-BN-ReLU-conv-BN plus the identity (registration order is data flow)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + x)


class SmallResNet(nn.Module):
    def __init__(self, channels: int = 6, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)
        self.block = Block(channels)
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(torch.relu(self.bn(self.stem(x))))
        return self.head(out.mean(dim=(2, 3)))


class SmallViT(nn.Module):
    """4 x 4 patches of an 8 x 8 image, a class token, one pre-norm transformer layer."""

    def __init__(self, dim: int = 16, classes: int = 10) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(16, dim), nn.LayerNorm(dim))
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.position = nn.Parameter(0.02 * torch.randn(1, 5, dim))
        self.norm1 = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, num_heads=2, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        patches = x.reshape(-1, 2, 4, 2, 4).permute(0, 1, 3, 2, 4).reshape(-1, 4, 16)
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), self.embed(patches)], dim=1)
        tokens = tokens + self.position
        h = self.norm1(tokens)
        tokens = tokens + self.attention(h, h, h, need_weights=False)[0]
        tokens = tokens + self.mlp(self.norm2(tokens))
        return self.head(tokens[:, 0])


@pytest.fixture(scope="module")
def digits() -> DatasetSplit:
    return load_dataset("digits", train_size=300)


def _train(
    model: nn.Module, loader: DataLoader[Any], *, steps: int = 150, lr: float = 3e-3
) -> dict[str, Any]:
    """A plain PyTorch loop; returns the initial state."""
    torch.manual_seed(0)
    initial = copy.deepcopy(model.state_dict())
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    done = 0
    while done < steps:
        for x, y in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
            done += 1
            if done == steps:
                break
    model.eval()
    return initial


@pytest.fixture(scope="module")
def resnet(digits: DatasetSplit) -> tuple[nn.Module, dict[str, Any], DataLoader[Any]]:
    torch.manual_seed(0)
    model = SmallResNet(channels=12)
    loader = DataLoader(digits.train, batch_size=50, shuffle=True)
    return model, _train(model, loader, steps=200, lr=1e-2), loader


def test_a_residual_cnn_with_batchnorm_from_a_dataloader(
    resnet: tuple[nn.Module, dict[str, Any], DataLoader[Any]],
) -> None:
    model, initial, loader = resnet
    names = [*NORMS, "pacbayes_flatness", "gradient_noise"]
    values = compute_measures(model, loader, initial_state=initial, names=names, settings=FAST)
    assert all(math.isfinite(values[n]) for n in names), values
    # params counts the Conv and Linear weights (BatchNorm parameters are not weight tensors).
    expected = sum(
        m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    )
    assert values["params"] == expected
    assert values["fro_dist"] > 0


def test_the_data_forms_agree(
    resnet: tuple[nn.Module, dict[str, Any], DataLoader[Any]], digits: DatasetSplit
) -> None:
    model, initial, loader = resnet
    names = ["param_norm", "inverse_margin", "path_norm", "fro_dist"]
    x, y = digits.train.tensors  # type: ignore[attr-defined]
    forms = [digits, digits.train, loader, (x, y), TensorDataset(x, y)]
    results = [compute_measures(model, f, initial_state=initial, names=names) for f in forms]
    for other in results[1:]:
        assert other == pytest.approx(results[0], rel=1e-12)


def test_scaling_a_conv_that_feeds_a_batchnorm_leaves_every_norm_measure_unchanged(
    resnet: tuple[nn.Module, dict[str, Any], DataLoader[Any]],
) -> None:
    """conv weight x a with the BatchNorm's running mean x a and variance x a^2 is the same
    function (up to BatchNorm's eps); its canonical form, and so every norm measure, is the
    same."""
    model, initial, loader = resnet
    scaled = copy.deepcopy(model)
    scaled_initial = copy.deepcopy(initial)
    a = 10.0
    with torch.no_grad():
        for conv, norm in ((scaled.block.conv1, scaled.block.bn1), (scaled.stem, scaled.bn)):
            conv.weight.mul_(a)
            if conv.bias is not None:
                conv.bias.mul_(a)
            norm.running_mean.mul_(a)
            norm.running_var.mul_(a * a)
            norm.eps *= a * a  # keeps var + eps an exact multiple of a^2
    x = next(iter(loader))[0]
    torch.testing.assert_close(scaled(x), model(x), rtol=1e-4, atol=1e-5)
    distances = ("fro_dist", "dist_spec_init", "log_spec_init_main")  # need initial_state
    names = [n for n in NORMS if n.removesuffix("_adj") not in distances]  # with the _adj forms
    before = compute_measures(model, loader, names=names)
    after = compute_measures(scaled, loader, names=names)
    # Equal to float32 rounding: the weights are float32 (times 10 rounds) and the margins come
    # from the float32 model's outputs. An unfolded BatchNorm would move them by factors of 10.
    assert after == pytest.approx(before, rel=1e-5)
    # Scaled the same way at initialization too, the distances from it are unchanged as well.
    for key in ("stem.weight", "stem.bias", "block.conv1.weight"):
        scaled_initial[key] = scaled_initial[key] * a
    for key in ("bn.running_mean", "block.bn1.running_mean"):
        scaled_initial[key] = scaled_initial[key] * a
    for key in ("bn.running_var", "block.bn1.running_var"):
        scaled_initial[key] = scaled_initial[key] * a * a
    distances = ("fro_dist", "dist_spec_init")
    assert compute_measures(
        scaled, loader, initial_state=scaled_initial, names=distances
    ) == pytest.approx(
        compute_measures(model, loader, initial_state=initial, names=distances), rel=1e-5
    )


def test_a_vit_with_layernorm_and_multihead_attention(digits: DatasetSplit) -> None:
    torch.manual_seed(1)
    model = SmallViT()
    loader = DataLoader(digits.train, batch_size=50, shuffle=True)
    initial = _train(model, loader)
    names = [*NORMS, "sharpness_flatness"]
    values = compute_measures(model, loader, initial_state=initial, names=names, settings=FAST)
    assert all(math.isfinite(values[n]) for n in names), values
    # The attention's packed q/k/v projection is a weight tensor beside the Linear layers.
    named = dict(weight_tensors(model))
    assert "attention.in_proj_weight" in named
    assert named["attention.in_proj_weight"].shape == (48, 16)
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    assert values["params"] == linear + 48 * 16
    # The patch embedding feeds a LayerNorm: scaling it changes nothing the measures see.
    scaled = copy.deepcopy(model)
    with torch.no_grad():
        scaled.embed[0].weight.mul_(7.0)
        scaled.embed[0].bias.mul_(7.0)
    norms = ["param_norm", "log_prod_of_spec", "fro_over_spec"]
    assert compute_measures(scaled, loader, names=norms) == pytest.approx(
        compute_measures(model, loader, names=norms), rel=1e-9
    )


def test_what_is_not_given_is_unavailable_never_guessed(
    resnet: tuple[nn.Module, dict[str, Any], DataLoader[Any]],
) -> None:
    model, _, loader = resnet
    names = ["param_norm", "fro_dist", "fro_dist_adj", "steps_to_ce_0_1", "srr_measure_last"]
    with pytest.warns(MeasureUnavailableWarning) as caught:
        values = compute_measures(model, loader, names=names)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "without initial_state: fro_dist, fro_dist_adj" in message
    assert "without train_result: steps_to_ce_0_1" in message
    assert "without a genlab model (per-layer tokens): srr_measure_last" in message
    assert math.isfinite(values["param_norm"])
    assert all(math.isnan(values[n]) for n in names[1:])


@pytest.mark.cuda
def test_on_cuda_the_values_match_the_cpu(
    resnet: tuple[nn.Module, dict[str, Any], DataLoader[Any]], digits: DatasetSplit
) -> None:
    model, initial, _ = resnet
    names = ["param_norm", "log_prod_of_spec", "inverse_margin", "path_norm", "fro_dist"]
    cpu = compute_measures(model, digits, initial_state=initial, names=names)
    on_gpu = copy.deepcopy(model).cuda()
    gpu = compute_measures(on_gpu, digits, initial_state=initial, names=names)
    assert gpu == pytest.approx(cpu, rel=1e-4)
