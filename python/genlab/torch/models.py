"""CRATE (the white-box transformer of Yu et al.) and its variants, plus a small MLP and CNN.

Every model here is a classifier ``forward(x) -> logits`` whose ``forward(x,
return_intermediates=True)`` also returns, per layer, the tensors that sparse-rate-reduction (SRR)
measurement needs (:class:`LayerIntermediates`), taken from the one forward pass (no second
implementation of the layer).

CRATE layer ``l`` (tokens as rows, class token included), ``docs/formulas/crate.md``::

    Z_half = Z + s * MSSA(LN(Z))          s = +1 (s = -1 for "crate-n")
    Z_next = ISTA(LN(Z_half))             no residual around ISTA (as in the released code)

    MSSA(X):  W = qkv(X) = X U_[K]        one projection, Q = K = V, U_[K] = (U_1 .. U_K)
              A_k = softmax((X U_k)(X U_k)^T / sqrt(p)) (X U_k)   per head k, p = dim_head
              concat_k(A_k) -> output map (per variant) -> dropout
    ISTA(x) = relu(x + eta (D^T x - D^T D x) - eta lambda)         D: learned dim x dim dictionary

The "model type" axis of the SRR paper (Hu, Zou, Xu, NeurIPS 2024) changes only the output map of
MSSA and the sign ``s``; see :data:`CRATE_VARIANTS` and :class:`CRATE`.

Use :func:`build_model` to build any family by name (the study harness does).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, overload

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab._validation import check_fraction, check_int, check_real

__all__ = [
    "CNN",
    "CRATE",
    "CRATE_VARIANTS",
    "ISTA",
    "MLP",
    "MODEL_FAMILIES",
    "MSSA",
    "CRATELayer",
    "IntermediatesModel",
    "LayerIntermediates",
    "build_model",
    "model_options",
]

#: The CRATE variants of the SRR paper's "model type" axis.
CRATE_VARIANTS: tuple[str, ...] = (
    "crate",
    "crate-t",
    "crate-c",
    "crate-n",
    "crate-fix",
    "crate-identity",
)
#: Every family :func:`build_model` accepts.
MODEL_FAMILIES: tuple[str, ...] = (*CRATE_VARIANTS, "mlp", "cnn")

# How each variant maps the concatenated head outputs (B, N, K p) back to (B, N, dim).
_OUTPUT_MAPS = {
    "crate": "linear",
    "crate-t": "qkv",
    "crate-c": "qkv-adjoint",
    "crate-n": "qkv-adjoint",
    "crate-fix": "frozen-linear",
    "crate-identity": "identity",
}
# Output maps that only type-check when heads * dim_head == dim.
_SQUARE_OUTPUT_MAPS = ("qkv", "identity")


@dataclasses.dataclass(frozen=True)
class LayerIntermediates:
    """The tensors of one layer that SRR measurement uses, from the model's own forward pass.

    Tokens are rows. For CRATE, ``B`` images, ``N`` tokens (class token first), ``d = dim``,
    ``K = heads``, ``p = dim_head``.

    Attributes
    ----------
    layer_input : Tensor, shape (B, N, d)
        ``Z^l``, the input of the layer.
    normalized_input : Tensor, shape (B, N, d)
        ``LN(Z^l)``, the tokens MSSA projects (equal to ``layer_input`` for models without
        normalization).
    head_tokens : Tensor, shape (B, K, N, p)
        The projected tokens ``LN(Z^l) U_k`` per head: the qkv projection reshaped per head, the
        tensor CRATE's authors hook to measure the compressed coding rate ``R^c``.
    after_attention : Tensor of shape (B, N, d), or None
        ``Z^{l+1/2} = Z^l + s MSSA(LN(Z^l))`` (None for models without attention).
    output : Tensor, shape (B, N, d_out)
        ``Z^{l+1}``: the ISTA output for CRATE (whose sparsity SRR counts), the post-ReLU
        activations for the MLP and the CNN.
    subspaces : Tensor, shape (K, d_out, p)
        ``U_[K]`` of the layer, ``U_k = W^T[:, k p:(k+1) p]`` for the qkv weight ``W`` (a view of
        the weight, so differentiable); for the MLP and the CNN, which have none, one identity
        subspace ``(1, d_out, d_out)``.
    """

    layer_input: Tensor
    normalized_input: Tensor
    head_tokens: Tensor
    after_attention: Tensor | None
    output: Tensor
    subspaces: Tensor


class IntermediatesModel(nn.Module):
    """Base of genlab's classifiers: ``forward(x, return_intermediates=False)``.

    With ``return_intermediates=True`` the forward pass returns ``(logits,
    tuple_of_LayerIntermediates)``, one entry per layer, in order.
    """

    #: Number of layers that report intermediates.
    depth: int

    @overload
    def forward(self, x: Tensor, return_intermediates: Literal[False] = ...) -> Tensor: ...

    @overload
    def forward(
        self, x: Tensor, return_intermediates: Literal[True]
    ) -> tuple[Tensor, tuple[LayerIntermediates, ...]]: ...

    def forward(
        self, x: Tensor, return_intermediates: bool = False
    ) -> Tensor | tuple[Tensor, tuple[LayerIntermediates, ...]]:
        logits, layers = self._forward_layers(x)
        return (logits, layers) if return_intermediates else logits

    def _forward_layers(self, x: Tensor) -> tuple[Tensor, tuple[LayerIntermediates, ...]]:
        raise NotImplementedError


class MSSA(nn.Module):
    """Multi-head subspace self-attention with one shared projection (Q = K = V).

    Input ``X`` of shape (B, N, dim) (already layer-normalized). ``qkv`` is
    ``nn.Linear(dim, heads * dim_head, bias=False)``; its weight ``W`` (shape (K p, dim)) holds the
    subspace bases: ``U_[K] = W^T`` and ``X U_k`` is head ``k``'s slice of ``qkv(X)``. Per head,
    ``A_k = softmax((X U_k)(X U_k)^T * p^-0.5) (X U_k)``, with dropout on the attention weights as
    in the released code. The concatenated heads ``C`` (B, N, K p) then go through the output map:

    - ``"linear"``: a learnable ``nn.Linear(K p, dim)`` with bias (``out_proj``);
    - ``"frozen-linear"``: the same layer with ``requires_grad=False`` (kept at its random init);
    - ``"qkv"``: ``C W^T``, the *same* linear map ``qkv`` applied again (needs ``K p == dim``);
    - ``"qkv-adjoint"``: ``C W = sum_k A_k U_k^T``, the adjoint (transpose) of the input
      projection, the form derived from the coding-rate objective;
    - ``"identity"``: ``C`` itself (needs ``K p == dim``).

    Dropout follows the output map in every case.
    """

    def __init__(
        self, dim: int, heads: int, dim_head: int, *, dropout: float, output_map: str
    ) -> None:
        super().__init__()
        inner = heads * dim_head
        if output_map in _SQUARE_OUTPUT_MAPS and inner != dim:
            raise ValueError(
                f"output map {output_map!r} needs heads * dim_head == dim, got heads={heads}, "
                f"dim_head={dim_head} (heads * dim_head = {inner}) and dim={dim}"
            )
        self.heads = heads
        self.dim_head = dim_head
        self.output_map = output_map
        self.scale = dim_head**-0.5
        self.qkv = nn.Linear(dim, inner, bias=False)
        self.attend_dropout = nn.Dropout(dropout)
        self.out_dropout = nn.Dropout(dropout)
        self.out_proj: nn.Linear | None = None
        if output_map in ("linear", "frozen-linear"):
            self.out_proj = nn.Linear(inner, dim)
            if output_map == "frozen-linear":
                self.out_proj.requires_grad_(False)

    def subspaces(self) -> Tensor:
        """``U_[K]`` as shape (K, dim, p): ``U_k = W^T[:, k p:(k+1) p]``, a view of ``qkv.weight``."""
        dim = self.qkv.weight.shape[1]
        return self.qkv.weight.view(self.heads, self.dim_head, dim).transpose(1, 2)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(MSSA(x), head_tokens)``; ``head_tokens`` has shape (B, K, N, p)."""
        batch, n_tokens, _ = x.shape
        heads = self.qkv(x).view(batch, n_tokens, self.heads, self.dim_head).transpose(1, 2)
        attn = torch.softmax(heads @ heads.transpose(-1, -2) * self.scale, dim=-1)
        mixed = self.attend_dropout(attn) @ heads
        concat = mixed.transpose(1, 2).reshape(batch, n_tokens, self.heads * self.dim_head)
        return self.out_dropout(self._output(concat)), heads

    def _output(self, concat: Tensor) -> Tensor:
        if self.out_proj is not None:
            return self.out_proj(concat)  # type: ignore[no-any-return]
        if self.output_map == "qkv":
            return F.linear(concat, self.qkv.weight)
        if self.output_map == "qkv-adjoint":
            return F.linear(concat, self.qkv.weight.t())
        return concat


class ISTA(nn.Module):
    """One ISTA step on a learned dictionary: ``relu(x + eta (D^T x - D^T D x) - eta lambda)``.

    ``weight`` is ``D`` (dim x dim), initialized with ``torch.nn.init.kaiming_uniform_`` and its
    defaults (as in the released CRATE code). In the row convention of ``F.linear`` the map is
    ``relu(x M^T + b)`` with ``M = I + eta D^T - eta D^T D`` and ``b = -eta lambda``
    (:meth:`effective_linear`).
    """

    def __init__(self, dim: int, *, step: float = 0.1, lambd: float = 0.1) -> None:
        super().__init__()
        self.step = check_real(step, "step", positive=True)
        self.lambd = check_real(lambd, "lambd", nonnegative=True)
        self.weight = nn.Parameter(torch.empty(dim, dim))
        nn.init.kaiming_uniform_(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        # One (dim x dim) product per token, not three: the step is affine in x.
        matrix, bias = self.effective_linear()
        return F.relu(F.linear(x, matrix, bias))

    def effective_linear(self) -> tuple[Tensor, Tensor]:
        """``(M, b)`` with ``ISTA(x) = relu(F.linear(x, M, b))``: the step as one affine map."""
        d = self.weight
        eye = torch.eye(d.shape[0], dtype=d.dtype, device=d.device)
        matrix = eye + self.step * d.t() - self.step * (d.t() @ d)
        bias = torch.full((d.shape[0],), -self.step * self.lambd, dtype=d.dtype, device=d.device)
        return matrix, bias


class CRATELayer(nn.Module):
    """One CRATE layer: ``Z_half = Z + s MSSA(LN(Z))``, ``Z_next = ISTA(LN(Z_half))``.

    ``residual_sign`` is ``s`` (+1, or -1 for "crate-n").
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int,
        *,
        dropout: float,
        output_map: str,
        residual_sign: float,
        ista_step: float,
        ista_lambda: float,
    ) -> None:
        super().__init__()
        self.residual_sign = residual_sign
        self.attention_norm = nn.LayerNorm(dim)
        self.attention = MSSA(dim, heads, dim_head, dropout=dropout, output_map=output_map)
        self.ista_norm = nn.LayerNorm(dim)
        self.ista = ISTA(dim, step=ista_step, lambd=ista_lambda)

    def forward(self, z: Tensor) -> tuple[Tensor, LayerIntermediates]:
        normalized = self.attention_norm(z)
        update, head_tokens = self.attention(normalized)
        z_half = z + self.residual_sign * update
        z_next = self.ista(self.ista_norm(z_half))
        return z_next, LayerIntermediates(
            layer_input=z,
            normalized_input=normalized,
            head_tokens=head_tokens,
            after_attention=z_half,
            output=z_next,
            subspaces=self.attention.subspaces(),
        )


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{name}: expected positive sizes, got {value!r}")
    return pair[0], pair[1]


class CRATE(IntermediatesModel):
    """CRATE image classifier in one of the SRR paper's variants.

    Patch embedding ``LN(patch_dim) -> Linear(patch_dim, dim) -> LN(dim)`` on non-overlapping
    ``patch_size`` patches, a learned class token prepended, a learned positional embedding added
    (both ``torch.randn`` initialized, as in the released code), ``depth`` :class:`CRATELayer`
    layers, and the head ``LN(dim) -> Linear(dim, num_classes)`` on the class token.

    Variants (only the MSSA output map and the residual sign differ; see :class:`MSSA`):

    - ``"crate"``: the released implementation: a separate learnable output projection
      ``nn.Linear(heads * dim_head, dim)`` with bias, then dropout; ``Z + MSSA``. (The released
      code drops the projection when ``heads == 1 and dim_head == dim``; here it is always there,
      so the variant alone decides the output map.)
    - ``"crate-t"``: no separate output matrix: the concatenated heads are re-projected with the
      *same* qkv weight used as the input projection (the same linear map applied again,
      ``C W^T``); shape-valid only when ``heads * dim_head == dim``; ``Z + MSSA``.
    - ``"crate-c"``: output tied to ``U_[K]``, the adjoint (transpose) of the input projection
      (``C W = sum_k A_k U_k^T``), the form derived from the compression objective; ``Z + MSSA``.
    - ``"crate-n"``: as "crate-c" with the sign of the MSSA update flipped: ``Z - MSSA``.
    - ``"crate-fix"``: as "crate", but the output projection (weight and bias) stays at its random
      initialization (``requires_grad=False``, so no optimizer ever changes it).
    - ``"crate-identity"``: identity output projection (needs ``heads * dim_head == dim``);
      ``Z + MSSA``.

    Parameters
    ----------
    variant : str
        One of :data:`CRATE_VARIANTS`.
    image_size : int or (int, int)
        Input height and width; each must be divisible by the patch size.
    patch_size : int or (int, int)
        Patch height and width.
    in_channels : int
        Image channels.
    num_classes : int
        Number of classes.
    dim : int
        Token dimension ``d``.
    depth : int
        Number of CRATE layers.
    heads : int
        Number of heads (subspaces) ``K``.
    dim_head : int
        Head dimension ``p``.
    dropout : float
        Dropout on attention weights and after the MSSA output map.
    emb_dropout : float
        Dropout on the embedded tokens.
    ista_step : float
        ISTA step size ``eta``.
    ista_lambda : float
        ISTA sparsity weight ``lambda``.

    Raises
    ------
    ValueError
        For an unknown variant, a size that does not divide into patches, a non-positive size, or
        ``heads * dim_head != dim`` for "crate-t" and "crate-identity".

    Examples
    --------
    >>> import torch
    >>> from genlab.torch.models import CRATE
    >>> model = CRATE("crate-n", image_size=8, patch_size=2, in_channels=1, num_classes=10,
    ...               dim=32, depth=2, heads=4, dim_head=8)
    >>> logits, layers = model(torch.zeros(5, 1, 8, 8), return_intermediates=True)
    >>> logits.shape, layers[0].head_tokens.shape
    (torch.Size([5, 10]), torch.Size([5, 4, 17, 8]))
    """

    def __init__(
        self,
        variant: str = "crate",
        *,
        image_size: int | Sequence[int],
        patch_size: int | Sequence[int],
        in_channels: int,
        num_classes: int,
        dim: int,
        depth: int,
        heads: int,
        dim_head: int,
        dropout: float = 0.0,
        emb_dropout: float = 0.0,
        ista_step: float = 0.1,
        ista_lambda: float = 0.1,
    ) -> None:
        super().__init__()
        if variant not in CRATE_VARIANTS:
            accepted = ", ".join(repr(v) for v in CRATE_VARIANTS)
            raise ValueError(f"variant: expected one of {accepted}, got {variant!r}")
        image_h, image_w = _pair(image_size, "image_size")
        patch_h, patch_w = _pair(patch_size, "patch_size")
        if image_h % patch_h or image_w % patch_w:
            raise ValueError(
                f"patch_size: the image ({image_h} x {image_w}) must divide into whole "
                f"{patch_h} x {patch_w} patches"
            )
        for name, value in (
            ("in_channels", in_channels),
            ("num_classes", num_classes),
            ("dim", dim),
            ("depth", depth),
            ("heads", heads),
            ("dim_head", dim_head),
        ):
            check_int(value, name, minimum=1)
        dropout = check_fraction(dropout, "dropout", zero=True)
        emb_dropout = check_fraction(emb_dropout, "emb_dropout", zero=True)
        # Checked under the names CRATE takes them by (ISTA checks them again as step, lambd).
        check_real(ista_step, "ista_step", positive=True)
        check_real(ista_lambda, "ista_lambda", nonnegative=True)
        self.variant = variant
        self.depth = depth
        self.patch_size = (patch_h, patch_w)
        num_patches = (image_h // patch_h) * (image_w // patch_w)
        patch_dim = in_channels * patch_h * patch_w
        self.patch_embedding = nn.Sequential(
            nn.LayerNorm(patch_dim), nn.Linear(patch_dim, dim), nn.LayerNorm(dim)
        )
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, dim))
        self.emb_dropout = nn.Dropout(emb_dropout)
        self.layers = nn.ModuleList(
            CRATELayer(
                dim,
                heads,
                dim_head,
                dropout=dropout,
                output_map=_OUTPUT_MAPS[variant],
                residual_sign=-1.0 if variant == "crate-n" else 1.0,
                ista_step=ista_step,
                ista_lambda=ista_lambda,
            )
            for _ in range(depth)
        )
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))

    def _patches(self, images: Tensor) -> Tensor:
        # (B, C, H, W) -> (B, num_patches, ph * pw * C), patch pixels ordered (ph, pw, C).
        batch, channels, height, width = images.shape
        ph, pw = self.patch_size
        x = images.reshape(batch, channels, height // ph, ph, width // pw, pw)
        x = x.permute(0, 2, 4, 3, 5, 1)
        return x.reshape(batch, (height // ph) * (width // pw), ph * pw * channels)

    def _forward_layers(self, x: Tensor) -> tuple[Tensor, tuple[LayerIntermediates, ...]]:
        if x.dim() != 4:
            raise ValueError(
                f"x: expected images of shape (B, C, H, W), got shape {tuple(x.shape)}"
            )
        tokens = self.patch_embedding(self._patches(x))
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        z = self.emb_dropout(torch.cat((cls, tokens), dim=1) + self.pos_embedding)
        layers = []
        for layer in self.layers:
            z, record = layer(z)
            layers.append(record)
        return self.head(z[:, 0]), tuple(layers)


def _plain_layer(tokens: Tensor, output: Tensor) -> LayerIntermediates:
    """Intermediates of a layer without normalization or subspaces (MLP, CNN)."""
    width = output.shape[-1]
    eye = torch.eye(width, dtype=output.dtype, device=output.device)
    return LayerIntermediates(
        layer_input=tokens,
        normalized_input=tokens,
        head_tokens=tokens.unsqueeze(1),
        after_attention=None,
        output=output,
        subspaces=eye.unsqueeze(0),
    )


class MLP(IntermediatesModel):
    """A fully connected ReLU network: flatten, ``depth`` x (Linear -> ReLU -> dropout), Linear.

    For SRR each sample is one token: layer ``l`` reports its input ``h^{l-1}`` as shape
    (B, 1, d_in), ``head_tokens`` as that token under one head with the identity projection
    (B, 1, 1, d_in), its post-ReLU output as (B, 1, width), and one identity subspace. The
    compressed coding rate then equals the coding rate, so the SRR measure reduces to sparsity.

    Parameters
    ----------
    input_shape : sequence of int
        Shape of one input (flattened).
    num_classes : int
        Number of classes.
    width : int
        Hidden units per layer.
    depth : int
        Number of hidden layers.
    dropout : float
        Dropout after every hidden ReLU.
    """

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        num_classes: int,
        width: int = 128,
        depth: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        in_features = math.prod(check_int(s, "input_shape", minimum=1) for s in input_shape)
        check_int(num_classes, "num_classes", minimum=1)
        check_int(width, "width", minimum=1)
        self.depth = check_int(depth, "depth", minimum=1)
        self.hidden = nn.ModuleList(
            nn.Linear(in_features if i == 0 else width, width) for i in range(depth)
        )
        self.dropout = nn.Dropout(check_fraction(dropout, "dropout", zero=True))
        self.head = nn.Linear(width, num_classes)

    def _forward_layers(self, x: Tensor) -> tuple[Tensor, tuple[LayerIntermediates, ...]]:
        h = x.flatten(1)
        layers = []
        for linear in self.hidden:
            token = h.unsqueeze(1)
            h = F.relu(linear(h))
            layers.append(_plain_layer(token, h.unsqueeze(1)))
            h = self.dropout(h)
        return self.head(h), tuple(layers)


class CNN(IntermediatesModel):
    """A small convolutional ReLU network.

    ``depth`` x (Conv2d(kernel_size, padding "same") -> ReLU), global average pooling, dropout,
    Linear. For SRR the spatial positions are the tokens: layer ``l`` reports its input as
    (B, H W, C_in), ``head_tokens`` as those tokens under one head with the identity projection
    (B, 1, H W, C_in), its post-ReLU output as (B, H W, width), and one identity subspace (so
    R^c = R and the SRR measure reduces to sparsity).

    Parameters
    ----------
    input_shape : (int, int, int)
        ``(channels, height, width)`` of one input.
    num_classes : int
        Number of classes.
    width : int
        Channels of every convolution.
    depth : int
        Number of convolutions.
    kernel_size : int
        Odd kernel size.
    dropout : float
        Dropout before the linear head.
    """

    def __init__(
        self,
        *,
        input_shape: Sequence[int],
        num_classes: int,
        width: int = 32,
        depth: int = 2,
        kernel_size: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(
                f"input_shape: expected (channels, height, width), got {tuple(input_shape)}"
            )
        channels = check_int(input_shape[0], "input_shape", minimum=1)
        check_int(num_classes, "num_classes", minimum=1)
        check_int(width, "width", minimum=1)
        if check_int(kernel_size, "kernel_size", minimum=1) % 2 == 0:
            raise ValueError(f"kernel_size: expected an odd size, got {kernel_size}")
        self.depth = check_int(depth, "depth", minimum=1)
        self.convs = nn.ModuleList(
            nn.Conv2d(channels if i == 0 else width, width, kernel_size, padding=kernel_size // 2)
            for i in range(depth)
        )
        self.dropout = nn.Dropout(check_fraction(dropout, "dropout", zero=True))
        self.head = nn.Linear(width, num_classes)

    def _forward_layers(self, x: Tensor) -> tuple[Tensor, tuple[LayerIntermediates, ...]]:
        if x.dim() != 4:
            raise ValueError(
                f"x: expected images of shape (B, C, H, W), got shape {tuple(x.shape)}"
            )
        layers = []
        for conv in self.convs:
            tokens = x.flatten(2).transpose(1, 2)
            x = F.relu(conv(x))
            layers.append(_plain_layer(tokens, x.flatten(2).transpose(1, 2)))
        return self.head(self.dropout(x.mean(dim=(2, 3)))), tuple(layers)


def _crate_builder(
    variant: str, num_classes: int, input_shape: tuple[int, ...]
) -> Callable[..., IntermediatesModel]:
    if len(input_shape) != 3:
        raise ValueError(
            f"input_shape: CRATE needs images (channels, height, width), got {input_shape}"
        )
    channels, height, width = input_shape
    default_patch = 2 if max(height, width) <= 16 else 4

    def build(
        *,
        dim: int = 32,
        depth: int = 4,
        heads: int = 4,
        dim_head: int | None = None,
        patch_size: int | Sequence[int] = default_patch,
        dropout: float = 0.0,
        emb_dropout: float = 0.0,
        ista_step: float = 0.1,
        ista_lambda: float = 0.1,
    ) -> IntermediatesModel:
        if dim_head is None:
            # dim // heads needs both checked first (heads=0 would divide by zero).
            check_int(dim, "dim", minimum=1)
            check_int(heads, "heads", minimum=1)
            if dim % heads:
                raise ValueError(
                    f"dim_head: not given and dim={dim} is not divisible by heads={heads}; "
                    "pass dim_head"
                )
            dim_head = dim // heads
        return CRATE(
            variant,
            image_size=(height, width),
            patch_size=patch_size,
            in_channels=channels,
            num_classes=num_classes,
            dim=dim,
            depth=depth,
            heads=heads,
            dim_head=dim_head,
            dropout=dropout,
            emb_dropout=emb_dropout,
            ista_step=ista_step,
            ista_lambda=ista_lambda,
        )

    return build


def build_model(
    family: str,
    *,
    num_classes: int,
    input_shape: Sequence[int],
    seed: int | None = None,
    **options: Any,
) -> IntermediatesModel:
    """Build a classifier of ``family`` for inputs of ``input_shape``.

    Parameters
    ----------
    family : str
        One of :data:`MODEL_FAMILIES`: a CRATE variant (see :class:`CRATE`), "mlp" or "cnn".
    num_classes : int
        Number of classes.
    input_shape : sequence of int
        Shape of one input, ``(channels, height, width)`` for images.
    seed : int, optional
        Seed of the parameter initialization (the global torch RNG is left untouched). None
        draws from the global RNG.
    **options
        The family's options, with these defaults:

        - CRATE variants: ``dim=32, depth=4, heads=4, dim_head=dim // heads,
          patch_size=2 (images up to 16 px) or 4, dropout=0.0, emb_dropout=0.0, ista_step=0.1,
          ista_lambda=0.1``;
        - "mlp": ``width=128, depth=2, dropout=0.0``;
        - "cnn": ``width=32, depth=2, kernel_size=3, dropout=0.0``.

    Returns
    -------
    IntermediatesModel
        A ``torch.nn.Module`` (float32, on the CPU) supporting ``return_intermediates``.

    Raises
    ------
    ValueError
        For an unknown family or an invalid option value.
    TypeError
        For an option the family does not take (the message lists the accepted ones).

    Examples
    --------
    >>> from genlab.torch.models import build_model
    >>> model = build_model("crate-c", num_classes=10, input_shape=(1, 8, 8), depth=2, seed=0)
    >>> sum(p.numel() for p in model.parameters())
    5554
    """
    if family not in MODEL_FAMILIES:
        accepted = ", ".join(repr(f) for f in MODEL_FAMILIES)
        raise ValueError(f"family: expected one of {accepted}, got {family!r}")
    shape = tuple(input_shape)
    builder: Callable[..., IntermediatesModel]
    if family == "mlp":
        builder = _family_builder(MLP, num_classes, shape)
    elif family == "cnn":
        builder = _family_builder(CNN, num_classes, shape)
    else:
        builder = _crate_builder(family, num_classes, shape)
    _check_options(family, builder, options)
    if seed is None:
        return builder(**options)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder(**options)


def _family_builder(
    cls: type[MLP] | type[CNN], num_classes: int, input_shape: tuple[int, ...]
) -> Callable[..., IntermediatesModel]:
    def build(**options: Any) -> IntermediatesModel:
        return cls(input_shape=input_shape, num_classes=num_classes, **options)

    # Expose the class's keyword options (minus the ones build_model fills in) for checking.
    build.__signature__ = _options_signature(cls)  # type: ignore[attr-defined]
    return build


def _options_signature(cls: type[nn.Module]) -> inspect.Signature:
    params = [
        p
        for name, p in inspect.signature(cls).parameters.items()
        if name not in ("input_shape", "num_classes")
    ]
    return inspect.Signature(params)


def model_options(family: str) -> dict[str, Any]:
    """The keyword options ``build_model(family, ...)`` accepts, with their defaults.

    Defaults that depend on the input (CRATE's ``patch_size``) are shown for 32 x 32 images.

    Examples
    --------
    >>> from genlab.torch.models import model_options
    >>> sorted(model_options("mlp"))
    ['depth', 'dropout', 'width']
    """
    if family not in MODEL_FAMILIES:
        accepted = ", ".join(repr(f) for f in MODEL_FAMILIES)
        raise ValueError(f"family: expected one of {accepted}, got {family!r}")
    shape = (3, 32, 32)
    if family == "mlp":
        builder = _family_builder(MLP, 10, shape)
    elif family == "cnn":
        builder = _family_builder(CNN, 10, shape)
    else:
        builder = _crate_builder(family, 10, shape)
    return {
        name: None if p.default is inspect.Parameter.empty else p.default
        for name, p in inspect.signature(builder).parameters.items()
    }


def _check_options(family: str, builder: Callable[..., Any], options: dict[str, Any]) -> None:
    accepted = list(inspect.signature(builder).parameters)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(
            f"build_model({family!r}): unknown option(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(accepted)}"
        )
