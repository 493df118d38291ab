"""The PyTorch layer of genlab (optional extra ``genlab[torch]``).

Everything in this subpackage imports torch; nothing outside it does. Submodules are imported on
demand (``from genlab.torch import rate``) so that ``import genlab`` never pulls in torch.
``rate``: differentiable coding rates, rate reduction, sparse rate reduction and the SRR measure.
``models`` (CRATE variants, MLP, CNN), ``data``, ``train``, ``srr`` (layer-wise SRR, regularizer), ``measures``.
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch installed
    raise ImportError(
        "genlab.torch needs PyTorch: install it with `pip install 'genlab[torch]'` "
        "(or `pip install torch`)"
    ) from exc
