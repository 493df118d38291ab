"""genlab.torch.models: CRATE variants against a naive per-head reference, parameter sharing,
intermediates, the MLP and CNN, build_model."""

from __future__ import annotations

import math
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

from genlab.torch.models import (  # noqa: E402
    CNN,
    CRATE,
    CRATE_VARIANTS,
    ISTA,
    MLP,
    MODEL_FAMILIES,
    MSSA,
    build_model,
)

# One thread: these models are tiny, and on a shared 2-core machine a second thread only spins.
torch.set_num_threads(1)
F64 = torch.float64
SHAPE = (1, 8, 8)
TINY: dict[str, Any] = {
    "image_size": 8,
    "patch_size": 2,
    "in_channels": 1,
    "num_classes": 3,
    "dim": 8,
    "depth": 1,
    "heads": 2,
    "dim_head": 4,
}


def _crate(variant: str, **kw: Any) -> Any:
    options: dict[str, Any] = {"dim": 16, "depth": 3, "heads": 4, "dim_head": 4}
    options.update(kw)
    return build_model(variant, num_classes=10, input_shape=SHAPE, seed=0, **options).double()


def _naive_mssa(mssa: Any, x: Any) -> Any:
    """MSSA written from the formulas, head by head, with U_k = W^T[:, k p:(k+1) p]."""
    W = mssa.qkv.weight
    p, heads = mssa.dim_head, mssa.heads
    out_heads = []
    for k in range(heads):
        U_k = W.t()[:, k * p : (k + 1) * p]  # (dim, p)
        XU = x @ U_k  # (B, N, p)
        A = torch.softmax(XU @ XU.transpose(-1, -2) / math.sqrt(p), dim=-1) @ XU
        out_heads.append((A, U_k))
    concat = torch.cat([A for A, _ in out_heads], dim=-1)
    if mssa.output_map == "linear" or mssa.output_map == "frozen-linear":
        return concat @ mssa.out_proj.weight.t() + mssa.out_proj.bias
    if mssa.output_map == "qkv":  # the same linear map x -> x W^T, applied again
        return concat @ W.t()
    if mssa.output_map == "qkv-adjoint":  # sum_k A_k U_k^T
        return sum(A @ U_k.t() for A, U_k in out_heads)
    return concat


@pytest.mark.parametrize("variant", CRATE_VARIANTS)
def test_crate_shapes_and_intermediates(variant: str) -> None:
    model = _crate(variant)
    x = torch.rand(5, *SHAPE, dtype=F64)
    logits, layers = model(x, return_intermediates=True)
    assert logits.shape == (5, 10)
    assert torch.equal(logits, model(x))
    assert len(layers) == model.depth == 3
    for i, layer in enumerate(layers):
        assert layer.layer_input.shape == (5, 17, 16)  # 16 patches of 2 x 2 + class token
        assert layer.head_tokens.shape == (5, 4, 17, 4)
        assert layer.output.shape == (5, 17, 16)
        assert layer.subspaces.shape == (4, 16, 4)
        if i + 1 < len(layers):
            assert torch.equal(layers[i + 1].layer_input, layer.output)
        block = model.layers[i]
        normalized = block.attention_norm(layer.layer_input)
        assert torch.allclose(layer.normalized_input, normalized)
        # head tokens are qkv(LN(Z)) reshaped per head, and equal LN(Z) U_k
        projected = torch.einsum("bnd,kdp->bknp", normalized, layer.subspaces)
        assert torch.allclose(layer.head_tokens, projected)
        # Z_half = Z + s MSSA(LN(Z)) against the naive MSSA; Z_next = ISTA(LN(Z_half))
        sign = -1.0 if variant == "crate-n" else 1.0
        expected_half = layer.layer_input + sign * _naive_mssa(block.attention, normalized)
        assert torch.allclose(layer.after_attention, expected_half, atol=1e-12)
        assert torch.allclose(layer.output, block.ista(block.ista_norm(expected_half)), atol=1e-12)
    # the head reads the class token of the last layer
    assert torch.allclose(logits, model.head(layers[-1].output[:, 0]))


def _layer_params(model: Any) -> int:
    return sum(p.numel() for p in model.layers[0].parameters())


def test_parameter_counts_per_variant() -> None:
    dim, inner = 16, 16
    counts = {v: _layer_params(_crate(v)) for v in CRATE_VARIANTS}
    tied = counts["crate-t"]
    for v in ("crate-c", "crate-n", "crate-identity"):
        assert counts[v] == tied
    # the separate projection adds inner * dim weights and dim biases
    assert counts["crate"] == counts["crate-fix"] == tied + inner * dim + dim
    for v in ("crate-t", "crate-c", "crate-n", "crate-identity"):
        assert _crate(v).layers[0].attention.out_proj is None


def test_crate_t_reuses_the_qkv_weight() -> None:
    model = _crate("crate-t")
    attention = model.layers[0].attention
    x = torch.randn(2, 17, 16, dtype=F64)
    out, _ = attention(x)
    out.sum().backward()
    grad_both_uses = attention.qkv.weight.grad.clone()
    # detaching the output use removes part of the gradient: the weight is used twice
    attention.qkv.weight.grad = None
    heads = attention.qkv(x).view(2, 17, 4, 4).transpose(1, 2)
    attn = torch.softmax(heads @ heads.transpose(-1, -2) * 0.5, dim=-1) @ heads
    concat = attn.transpose(1, 2).reshape(2, 17, 16)
    F.linear(concat, attention.qkv.weight.detach()).sum().backward()
    assert not torch.allclose(grad_both_uses, attention.qkv.weight.grad)
    # and the re-projection is the same map qkv (W), not its transpose
    assert torch.allclose(out, attention.qkv(concat))


def test_crate_fix_output_projection_gets_no_gradient() -> None:
    model = _crate("crate-fix")
    out_proj = model.layers[0].attention.out_proj
    assert not out_proj.weight.requires_grad
    assert not out_proj.bias.requires_grad
    before = out_proj.weight.detach().clone()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    loss = F.cross_entropy(model(torch.rand(4, *SHAPE, dtype=F64)), torch.arange(4))
    loss.backward()
    optimizer.step()
    assert out_proj.weight.grad is None
    assert out_proj.bias.grad is None
    assert torch.equal(out_proj.weight, before)
    assert model.layers[0].attention.qkv.weight.grad is not None


def test_crate_identity_has_no_output_projection() -> None:
    attention = _crate("crate-identity").layers[0].attention
    names = [n for n, _ in attention.named_parameters()]
    assert names == ["qkv.weight"]
    x = torch.randn(3, 17, 16, dtype=F64)
    out, heads = attention(x)
    attn = torch.softmax(heads @ heads.transpose(-1, -2) * 0.5, dim=-1) @ heads
    assert torch.allclose(out, attn.transpose(1, 2).reshape(3, 17, 16))


def test_crate_c_and_n_differ_only_in_sign() -> None:
    c, n = _crate("crate-c"), _crate("crate-n")
    n.load_state_dict(c.state_dict())
    x = torch.rand(2, *SHAPE, dtype=F64)
    _, lc = c(x, return_intermediates=True)
    _, ln = n(x, return_intermediates=True)
    z = lc[0].layer_input
    assert torch.allclose(lc[0].after_attention - z, -(ln[0].after_attention - z))


@pytest.mark.parametrize("variant", ["crate-t", "crate-identity"])
def test_square_output_maps_need_inner_equal_dim(variant: str) -> None:
    with pytest.raises(ValueError, match="heads \\* dim_head == dim"):
        _crate(variant, dim=16, heads=2, dim_head=4)
    # the tied adjoint and a separate projection work with any head size
    for ok in ("crate", "crate-c", "crate-n", "crate-fix"):
        model = _crate(ok, dim=16, heads=2, dim_head=4)
        assert model(torch.rand(1, *SHAPE, dtype=F64)).shape == (1, 10)


def test_mssa_rejects_bad_output_map_sizes() -> None:
    with pytest.raises(ValueError, match="got heads=3, dim_head=4"):
        MSSA(16, 3, 4, dropout=0.0, output_map="identity")


def test_ista_matches_formula_and_effective_linear() -> None:
    torch.manual_seed(0)
    ista = ISTA(6, step=0.2, lambd=0.3).double()
    bound = math.sqrt(6 / 6)  # kaiming_uniform_ with its defaults: sqrt(6 / fan_in)
    assert ista.weight.abs().max() <= bound
    x = torch.randn(5, 6, dtype=F64)
    D = ista.weight
    expected = torch.stack(
        [torch.relu(z + 0.2 * (D.t() @ z - D.t() @ D @ z) - 0.2 * 0.3) for z in x]
    )
    assert torch.allclose(ista(x), expected)
    matrix, bias = ista.effective_linear()
    assert torch.allclose(ista(x), torch.relu(F.linear(x, matrix, bias)))


def test_patch_order_and_class_token() -> None:
    model = CRATE(**{**TINY, "image_size": 4, "in_channels": 2})
    images = torch.arange(32, dtype=torch.float32).reshape(1, 2, 4, 4)
    patches = model._patches(images)
    assert patches.shape == (1, 4, 8)
    # first patch: rows 0-1, columns 0-1, pixels in (row, column, channel) order
    assert patches[0, 0].tolist() == [0, 16, 1, 17, 4, 20, 5, 21]
    assert patches[0, 1].tolist() == [2, 18, 3, 19, 6, 22, 7, 23]


def test_mlp_and_cnn_intermediates() -> None:
    mlp = MLP(input_shape=SHAPE, num_classes=10, width=12, depth=3)
    x = torch.rand(4, *SHAPE)
    logits, layers = mlp(x, return_intermediates=True)
    assert logits.shape == (4, 10)
    assert len(layers) == 3
    assert layers[0].layer_input.shape == (4, 1, 64)
    assert layers[0].head_tokens.shape == (4, 1, 1, 64)
    assert layers[1].layer_input.shape == (4, 1, 12)
    assert torch.equal(layers[0].output, layers[1].layer_input)
    assert torch.equal(layers[0].subspaces, torch.eye(12)[None])
    assert layers[0].after_attention is None
    assert bool((layers[0].output >= 0).all())

    cnn = CNN(input_shape=SHAPE, num_classes=10, width=5, depth=2)
    logits, layers = cnn(x, return_intermediates=True)
    assert logits.shape == (4, 10)
    assert len(layers) == 2
    assert layers[0].layer_input.shape == (4, 64, 1)
    assert layers[0].output.shape == (4, 64, 5)
    assert layers[1].head_tokens.shape == (4, 1, 64, 5)
    expected = torch.relu(cnn.convs[0](x)).flatten(2).transpose(1, 2)
    assert torch.allclose(layers[0].output, expected)


@pytest.mark.parametrize("family", MODEL_FAMILIES)
def test_build_model_is_seeded_and_leaves_the_global_rng(family: str) -> None:
    state = torch.random.get_rng_state()
    a = build_model(family, num_classes=3, input_shape=SHAPE, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = build_model(family, num_classes=3, input_shape=SHAPE, seed=1)
    c = build_model(family, num_classes=3, input_shape=SHAPE, seed=2)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb), name
    pairs = zip(a.parameters(), c.parameters(), strict=True)
    assert any(not torch.equal(pa, pc) for pa, pc in pairs)


def test_build_model_options() -> None:
    model = build_model("crate", num_classes=4, input_shape=(3, 32, 32), dim=24, heads=3, depth=1)
    assert model.patch_size == (4, 4)  # default patch for images above 16 px
    assert model.layers[0].attention.dim_head == 8
    mlp = build_model("mlp", num_classes=4, input_shape=SHAPE, width=7, depth=1)
    assert mlp.hidden[0].out_features == 7
    cnn = build_model("cnn", num_classes=4, input_shape=SHAPE, kernel_size=5)
    assert cnn.convs[0].kernel_size == (5, 5)


@pytest.mark.parametrize(
    ("family", "options", "error", "match"),
    [
        ("transformer", {}, ValueError, "family: expected one of"),
        ("crate", {"width": 3}, TypeError, "unknown option\\(s\\) width; accepted: dim"),
        ("mlp", {"heads": 3}, TypeError, "unknown option\\(s\\) heads"),
        ("cnn", {"kernel_size": 4}, ValueError, "odd"),
        ("crate", {"dim": 10, "heads": 4}, ValueError, "dim_head"),
        ("crate", {"patch_size": 3}, ValueError, "whole 3 x 3 patches"),
        ("crate", {"depth": 0}, ValueError, "depth: expected a positive int"),
        ("crate", {"dim": 16.0}, TypeError, "dim: expected an int"),
        ("crate", {"dropout": 1.5}, ValueError, "dropout"),
        ("mlp", {"width": -1}, ValueError, "width"),
    ],
)
def test_build_model_errors(family: str, options: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        build_model(family, num_classes=10, input_shape=SHAPE, **options)


def test_crate_errors() -> None:
    with pytest.raises(ValueError, match="variant: expected one of"):
        CRATE("crate-x", **TINY)
    with pytest.raises(ValueError, match="CRATE needs images"):
        build_model("crate", num_classes=2, input_shape=(64,))
    model = _crate("crate")
    with pytest.raises(ValueError, match="x: expected images of shape"):
        model(torch.rand(2, 64, dtype=F64))
