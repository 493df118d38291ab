"""The PyTorch layer of genlab (optional extra ``genlab[torch]``).

Everything in this subpackage imports torch; nothing outside it does. Submodules are imported on
demand (``from genlab.torch import rate``) so that ``import genlab`` never pulls in torch.

Submodules:

- ``models``: CRATE and its variants, a small MLP and a small CNN, with per-layer intermediates;
- ``data``: scikit-learn's digits (embedded), CIFAR-10/100 and MNIST through torchvision;
- ``train``: the training loop (CPU/CUDA, cross-entropy target, optional SRR regularization);
- ``srr``: layer-wise sparse rate reduction measurement and the SRR regularizer;
- ``measures``: the complexity measures of Jiang et al. (2020) and the SRR family;
- ``rate``: differentiable coding rates, rate reduction, sparse rate reduction and the SRR measure;
- ``attention``: tensor attention with autograd on CPU and CUDA, and ``TensorAttention``.
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch installed
    raise ImportError(
        "genlab.torch needs PyTorch: install it with `pip install 'genlab[torch]'` "
        "(or `pip install torch`)"
    ) from exc
