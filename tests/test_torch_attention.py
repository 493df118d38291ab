"""genlab.torch.attention: agreement with the Rust kernels and a numpy reference, gradients,
dtypes, the TensorAttention module in a small transformer, errors, and CUDA (skipped without)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from genlab import attention as rust  # noqa: E402
from genlab.torch.attention import (  # noqa: E402
    TensorAttention,
    attention_weights,
    logit_bound,
    tensor_attention,
)

EXACT = ("materialized", "chunked")
MASKS = [None, "causal", (2, 5)]


def make(
    lead: tuple[int, ...],
    n: int,
    d: int,
    dv: int,
    *,
    seed: int = 0,
    spread: float = 0.5,
    dtype: torch.dtype = torch.float64,
    requires_grad: bool = False,
) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(5):
        width = d if i < 3 else dv
        x = torch.randn(*lead, n, width, generator=g, dtype=torch.float64) * (
            spread if i < 3 else 1.0
        )
        out.append(x.to(dtype).requires_grad_(requires_grad))
    return out


def numpy_of(xs: list[torch.Tensor]) -> list[np.ndarray]:
    return [x.detach().to(torch.float64).numpy() for x in xs]


def options(method: str) -> dict[str, object]:
    if method == "chunked":
        return {"method": method, "chunk_size": 3}
    if method == "poly":
        return {"method": method, "degree": 8, "basis": "minimax", "logit_range": 4.0}
    return {"method": method}


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("method", EXACT)
def test_exact_paths_agree_with_rust(method: str, mask: object) -> None:
    x = make((2, 3), 11, 4, 3)
    got = tensor_attention(*x, mask=mask, **options(method))  # type: ignore[arg-type]
    want = rust.tensor_attention(*numpy_of(x), mask=mask)  # type: ignore[arg-type]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("mask", MASKS)
def test_polynomial_path_agrees_with_rust(mask: object) -> None:
    x = make((2,), 13, 3, 2, spread=0.4)
    got = tensor_attention(*x, mask=mask, method="poly", degree=6)  # type: ignore[arg-type]
    res = rust.tensor_attention_poly(*numpy_of(x), mask=mask, degree=6)  # type: ignore[arg-type]
    np.testing.assert_allclose(got.numpy(), res.output, rtol=1e-10, atol=1e-12)
    exact = rust.tensor_attention(*numpy_of(x), mask=mask)  # type: ignore[arg-type]
    assert np.abs(got.numpy() - exact).max() < 1e-3


def test_logit_bound_agrees_with_rust() -> None:
    x = make((3,), 9, 4, 1, spread=1.5)
    assert logit_bound(*x[:3]) == pytest.approx(rust.logit_bound(*numpy_of(x[:3])), rel=1e-12)


def test_default_exact_picks_materialized_or_chunked_and_both_agree() -> None:
    x = make((), 70, 3, 2)  # 70^3 > 2^18: still materialized; compare both explicitly
    a = tensor_attention(*x)
    b = tensor_attention(*x, method="chunked", chunk_size=16)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("method", [*EXACT, "poly"])
def test_gradcheck_float64(method: str, mask: object) -> None:
    x = make((1,), 5, 3, 2, requires_grad=True)
    opts = options(method)
    assert torch.autograd.gradcheck(lambda *a: tensor_attention(*a, mask=mask, **opts), x)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", [*EXACT, "poly"])
def test_gradcheck_with_key_padding(method: str) -> None:
    x = make((2,), 5, 2, 2, seed=1, requires_grad=True)
    pad = torch.tensor([[False, True, False, False, True], [True, False, False, False, False]])
    opts = options(method)
    assert torch.autograd.gradcheck(
        lambda *a: tensor_attention(*a, key_padding_mask=pad, mask=(3, 2), **opts),
        x,  # type: ignore[arg-type]
    )


def test_chunked_dropout_backward_matches_its_forward() -> None:
    from genlab.torch.attention import _ChunkedTensorAttention, _Masks

    x = make((1,), 6, 2, 2, seed=2, requires_grad=True)
    masks = _Masks("causal", 6, torch.device("cpu"), None)
    assert torch.autograd.gradcheck(
        lambda *a: _ChunkedTensorAttention.apply(*a, 0.7, masks, 4, 0.25, 12345), x
    )


def test_chunked_and_materialized_gradients_agree_on_larger_input() -> None:
    grads = []
    for method in EXACT:
        x = make((2,), 24, 4, 3, seed=3, requires_grad=True)
        out = tensor_attention(*x, mask=(7, 24), method=method, chunk_size=5)
        (out * torch.linspace(-1, 1, 3, dtype=torch.float64)).sum().backward()
        grads.append([t.grad for t in x])
    for a, b in zip(*grads, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)


def test_padded_keys_are_left_out_of_both_key_sets() -> None:
    x = make((), 9, 3, 2, seed=4, spread=0.5)
    pad = torch.tensor([False, True, False, False, True, False, False, False, True])
    q, k1, k2, v1, v2 = numpy_of(x)
    logits = np.einsum("il,jl,kl->ijk", q, k1, k2) / math.sqrt(3)
    keep = ~pad.numpy()
    logits = np.where(keep[None, :, None] & keep[None, None, :], logits, -np.inf).reshape(9, 81)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w = (w / w.sum(-1, keepdims=True)).reshape(9, 9, 9)
    want = np.einsum("ijk,jc,kc->ic", w, v1, v2)
    for method in [*EXACT, "poly"]:
        opts = options(method) if method != "poly" else {"method": "poly", "degree": 10}
        got = tensor_attention(*x, key_padding_mask=pad, **opts)  # type: ignore[arg-type]
        np.testing.assert_allclose(
            got.numpy(), want, rtol=1e-6 if method == "poly" else 1e-12, atol=1e-8
        )


def test_fully_padded_query_gets_zero_without_nan() -> None:
    x = make((2,), 4, 2, 2, requires_grad=True)
    pad = torch.tensor([[True] * 4, [False] * 4])
    for method in [*EXACT, "poly"]:
        opts = options(method)
        out = tensor_attention(*x, key_padding_mask=pad, **opts)  # type: ignore[arg-type]
        assert torch.equal(out[0], torch.zeros_like(out[0]))
        out.sum().backward()
        assert all(torch.isfinite(t.grad).all() for t in x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("method", [*EXACT, "poly"])
def test_low_precision_inputs(dtype: torch.dtype, method: str) -> None:
    x = make((2,), 10, 4, 3, seed=5, dtype=dtype, requires_grad=True)
    opts = options(method)
    out = tensor_attention(*x, mask="causal", **opts)  # type: ignore[arg-type]
    assert out.dtype == dtype
    want = tensor_attention(*(t.detach().double() for t in x), mask="causal", **opts)  # type: ignore[arg-type]
    tol = 1e-5 if dtype == torch.float32 else 3e-2
    np.testing.assert_allclose(out.detach().double().numpy(), want.numpy(), atol=tol, rtol=tol)
    out.float().sum().backward()
    assert all(t.grad is not None and t.grad.dtype == dtype for t in x)


def test_dropout_is_random_in_training_and_reproducible_with_the_seed() -> None:
    x = make((), 12, 3, 2, seed=6)
    base = tensor_attention(*x)
    for method in EXACT:
        torch.manual_seed(0)
        a = tensor_attention(*x, method=method, dropout_p=0.5, chunk_size=5)
        torch.manual_seed(0)
        b = tensor_attention(*x, method=method, dropout_p=0.5, chunk_size=5)
        assert torch.equal(a, b)
        assert not torch.allclose(a, base)


def test_attention_weights_are_a_joint_softmax() -> None:
    x = make((2,), 6, 3, 1, seed=7)
    w = attention_weights(*x[:3], mask="causal")
    assert w.shape == (2, 6, 6, 6)
    np.testing.assert_allclose(w.sum(dim=(-1, -2)).numpy(), 1.0, rtol=1e-12)
    assert float(w[:, 2, 3:, :].abs().max()) == 0.0  # j > i is masked
    out = torch.einsum("bijk,bjc,bkc->bic", w, x[3], x[4])
    np.testing.assert_allclose(out.numpy(), tensor_attention(*x, mask="causal").numpy(), rtol=1e-12)


# ------------------------------------------------------------------ module


@pytest.mark.parametrize("batch_first", [True, False])
def test_module_shapes_and_options(batch_first: bool) -> None:
    torch.manual_seed(0)
    attn = TensorAttention(12, 3, batch_first=batch_first, kdim=5, vdim=7)
    shape = (2, 8) if batch_first else (8, 2)
    q, k, v = torch.randn(*shape, 12), torch.randn(*shape, 5), torch.randn(*shape, 7)
    out, w = attn(q, k, v)
    assert out.shape == (*shape, 12)
    assert w is None
    out, w = attn(q, k, v, need_weights=True, is_causal=True, attn_mask=torch.zeros(8, 8))
    assert w is not None
    assert w.shape == (2, 8, 8, 8)
    _, w_heads = attn(q, k, v, need_weights=True, average_attn_weights=False)
    assert w_heads is not None
    assert w_heads.shape == (2, 3, 8, 8, 8)
    pad = torch.zeros(2, 8, dtype=torch.bool)
    pad[0, -3:] = True
    padded, _ = attn(q, k, v, key_padding_mask=pad)
    assert torch.isfinite(padded).all()
    unbatched, _ = attn(
        q[0] if batch_first else q[:, 0],
        k[0] if batch_first else k[:, 0],
        v[0] if batch_first else v[:, 0],
    )
    np.testing.assert_allclose(
        unbatched.detach().numpy(),
        (attn(q, k, v)[0][0] if batch_first else attn(q, k, v)[0][:, 0]).detach().numpy(),
        rtol=1e-5,
        atol=1e-6,
    )


def test_module_heads_match_the_functional_form() -> None:
    torch.manual_seed(1)
    attn = TensorAttention(8, 2, batch_first=True, mask=(3, 4), dtype=torch.float64)
    x = torch.randn(3, 7, 8, dtype=torch.float64)
    out, _ = attn(x)

    def heads(p: nn.Linear) -> torch.Tensor:
        return p(x).view(3, 7, 2, 4).transpose(1, 2)

    o = tensor_attention(
        heads(attn.q_proj),
        heads(attn.k1_proj),
        heads(attn.k2_proj),
        heads(attn.v1_proj),
        heads(attn.v2_proj),
        mask=(3, 4),
    )
    want = attn.out_proj(o.transpose(1, 2).reshape(3, 7, 8))
    np.testing.assert_allclose(out.detach().numpy(), want.detach().numpy(), rtol=1e-12)


class _NoAttention(nn.Module):
    """A self-attention slot that contributes nothing: the baseline attention must beat."""

    batch_first = True
    in_proj_bias = None
    _qkv_same_embed_dim = False

    def forward(
        self, query: torch.Tensor, *args: object, **kwargs: object
    ) -> tuple[torch.Tensor, None]:
        return torch.zeros_like(query), None


def _train(
    attn: nn.Module | None, dtype: torch.dtype = torch.float32, steps: int = 30
) -> list[float]:
    """Train a pre-norm encoder layer (its self-attention replaced by ``attn``) to output, at
    every position, the mean of the first two features over the prefix: a causal average that a
    per-token network cannot compute."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(
        8, 2, dim_feedforward=16, dropout=0.0, batch_first=True, norm_first=True
    )
    if attn is not None:
        layer.self_attn = attn
    head = nn.Linear(8, 2)
    layer, head = layer.to(dtype), head.to(dtype)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 8, 8, generator=g).to(dtype)
    y = torch.cumsum(x[:, :, :2], 1) / torch.arange(1, 9, dtype=dtype)[None, :, None]
    causal = nn.Transformer.generate_square_subsequent_mask(8, dtype=dtype)
    opt = torch.optim.Adam([*layer.parameters(), *head.parameters()], lr=1e-2)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(head(layer(x, src_mask=causal, is_causal=True)), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    layer.eval()  # inference goes through the replacement, not MultiheadAttention's fused path
    with torch.no_grad():
        assert torch.isfinite(layer(x[:2], src_mask=causal, is_causal=True)).all()
    return losses


@pytest.fixture(scope="module")
def baselines() -> dict[str, float]:
    return {
        "multihead": min(_train(None)[-5:]),
        "no attention": min(_train(_NoAttention())[-5:]),
    }


@pytest.mark.parametrize("method", ["exact", "chunked", "poly"])
def test_tiny_transformer_trains_with_tensor_attention_in_place_of_multihead(
    method: str, baselines: dict[str, float]
) -> None:
    if method == "poly":
        # The polynomial method needs bounded logits: a smaller scale, float64 (rounding sets
        # the floor of the error bound, and float32's is too high at logit ranges near 4).
        attn = TensorAttention(
            8, 2, batch_first=True, method="poly", basis="minimax", tol=1e-2, scale=0.25
        )
        losses = _train(attn, torch.float64)
    else:
        losses = _train(TensorAttention(8, 2, batch_first=True, method=method))
    last = min(losses[-5:])
    assert last < 0.4 * losses[0], losses
    assert last < 0.85 * baselines["no attention"], (last, baselines)
    assert baselines["multihead"] < 0.85 * baselines["no attention"]


# ------------------------------------------------------------------ errors


def test_functional_errors() -> None:
    x = make((), 4, 2, 2)
    with pytest.raises(TypeError, match=r"q: expected a torch\.Tensor"):
        tensor_attention(x[0].numpy(), *x[1:])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="floating-point"):
        tensor_attention(x[0].long(), *x[1:])
    with pytest.raises(TypeError, match="k1: expected dtype"):
        tensor_attention(x[0], x[1].float(), *x[2:])
    with pytest.raises(ValueError, match=r"k2: expected shape \(\.\.\., 4, 2\)"):
        tensor_attention(x[0], x[1], x[2][:3], *x[3:])
    with pytest.raises(ValueError, match=r"v2: expected shape \(\.\.\., 4, 2\)"):
        tensor_attention(*x[:4], torch.ones(4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="n, d and dv >= 1"):
        tensor_attention(*(t[:0] for t in x))
    with pytest.raises(ValueError, match="do not broadcast"):
        tensor_attention(x[0].expand(2, 4, 2), x[1].expand(3, 4, 2), *x[2:])
    bad = x[3].clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="v1: contains NaN"):
        tensor_attention(*x[:3], bad, x[4])
    with pytest.raises(ValueError, match="method"):
        tensor_attention(*x, method="flash")
    with pytest.raises(ValueError, match="basis"):
        tensor_attention(*x, method="poly", basis="pade")
    with pytest.raises(ValueError, match="dropout_p"):
        tensor_attention(*x, dropout_p=1.0)
    with pytest.raises(ValueError, match="polynomial method never forms"):
        tensor_attention(*x, method="poly", degree=2, dropout_p=0.1)
    with pytest.raises(ValueError, match="method='poly' only"):
        tensor_attention(*x, degree=3)
    with pytest.raises(ValueError, match="degree: expected a non-negative integer"):
        tensor_attention(*x, method="poly", degree=-1)
    with pytest.raises(ValueError, match="logit_range applies"):
        tensor_attention(*x, logit_range=1.0)
    with pytest.raises(ValueError, match="does not bound the logits"):
        tensor_attention(*x, method="poly", degree=4, logit_range=1e-3)
    with pytest.raises(ValueError, match="chunk_size"):
        tensor_attention(*x, method="chunked", chunk_size=0)
    with pytest.raises(ValueError, match=r"mask\[0\]"):
        tensor_attention(*x, mask=(0, 2))
    with pytest.raises(ValueError, match="key_padding_mask"):
        tensor_attention(*x, key_padding_mask=torch.zeros(5, dtype=torch.bool))
    with pytest.raises(ValueError, match="out of reach"):
        tensor_attention(*make((), 6, 3, 1, spread=3.0), method="poly", tol=1e-13)


def test_module_errors() -> None:
    with pytest.raises(ValueError, match="multiple of num_heads"):
        TensorAttention(10, 3)
    with pytest.raises(ValueError, match="method"):
        TensorAttention(8, 2, method="fast")
    with pytest.raises(ValueError, match="polynomial method cannot drop"):
        TensorAttention(8, 2, dropout=0.1, method="poly")
    with pytest.raises(ValueError, match="mask"):
        TensorAttention(8, 2, mask="upper")
    attn = TensorAttention(8, 2, batch_first=True)
    x = torch.randn(2, 5, 8)
    with pytest.raises(ValueError, match="attn_mask"):
        attn(x, x, x, attn_mask=torch.zeros(5, 5))
    with pytest.raises(ValueError, match="same sequence length"):
        attn(x, torch.randn(2, 6, 8), torch.randn(2, 6, 8))


# ------------------------------------------------------------------ CUDA


def sqnr_db(signal: torch.Tensor, approx: torch.Tensor) -> float:
    noise = (signal - approx).double().pow(2).sum()
    return 10 * math.log10(float(signal.double().pow(2).sum() / noise.clamp_min(1e-300)))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("method", [*EXACT, "poly"])
def test_cuda_matches_cpu(method: str, dtype: torch.dtype) -> None:
    x = make((2, 2), 32, 8, 8, seed=8, spread=0.5)
    opts = options(method)
    want = tensor_attention(*x, mask="causal", **opts)  # type: ignore[arg-type]
    xc = [t.to("cuda", dtype).requires_grad_() for t in x]
    out = tensor_attention(*xc, mask="causal", **opts)  # type: ignore[arg-type]
    assert out.device.type == "cuda"
    assert out.dtype == dtype
    assert sqnr_db(want, out.detach().cpu()) > (40 if dtype == torch.bfloat16 else 90)
    out.float().sum().backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in xc)


@pytest.mark.cuda
def test_cuda_module_trains() -> None:
    torch.manual_seed(0)
    attn = TensorAttention(16, 2, batch_first=True, mask="causal", dropout=0.1).cuda()
    opt = torch.optim.Adam(attn.parameters(), lr=1e-2)
    x = torch.randn(4, 24, 16, device="cuda")
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = (attn(x)[0] - x).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
