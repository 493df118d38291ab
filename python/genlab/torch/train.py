"""Train a classifier on CPU or CUDA, to a cross-entropy target or an epoch budget.

:func:`train` runs mini-batch training with SGD, SGD with momentum, Adam or AdamW, an optional
learning-rate schedule and weight decay, stops when the cross-entropy on the whole training set
reaches ``ce_target`` (Jiang et al.'s control for training progress) or when the epoch budget is
spent, and records what the complexity measures need: the initial weights, the per-epoch history,
the optimization-based measures (steps to reach cross-entropy 0.1, steps from 0.1 to 0.01,
gradient noise at the end) and the final losses, accuracies and gaps.

Optional SRR regularization (Hu et al., NeurIPS 2024): the training objective becomes
``CE + srr_gamma * SRR`` with the differentiable SRR measure of one randomly chosen layer per step
("random-layer", the paper's efficient form) or the mean over all layers ("all-layers"); see
:func:`genlab.torch.srr.srr_penalty`.

Runs are deterministic on the CPU for a given ``seed`` (data order, dropout, the regularized
layer); the model's initialization is seeded by :func:`genlab.torch.models.build_model`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from genlab._validation import check_bool, check_choice, check_fraction, check_int, check_real
from genlab.errors import InvalidArgumentError
from genlab.torch._flatness import _chunks, _Forward
from genlab.torch._modules import evaluation_mode
from genlab.torch.data import Batches, DatasetSplit

__all__ = [
    "EpochRecord",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "gradient_noise",
    "gradient_noise_stack",
    "train",
]

_OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
_SCHEDULES = ("none", "cosine", "step")
_SRR_MODES = ("random-layer", "all-layers")
# The cross-entropy milestones of Jiang et al.'s optimization-based measures.
_CE_FIRST, _CE_SECOND = 0.1, 0.01


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training settings (all keyword, all with defaults).

    Attributes
    ----------
    optimizer : {"sgd", "momentum", "adam", "adamw"}
        Plain SGD, SGD with ``momentum``, Adam, or AdamW (decoupled weight decay).
    lr : float
        Initial learning rate.
    momentum : float
        Momentum of the "momentum" optimizer.
    weight_decay : float
        L2 penalty (coupled for "sgd", "momentum", "adam"; decoupled for "adamw").
    batch_size : int
        Mini-batch size.
    epochs : int
        Epoch budget.
    schedule : {"none", "cosine", "step"}
        Learning-rate schedule, updated once per epoch: constant; cosine annealing from ``lr`` to 0
        over ``epochs``; or multiplied by ``step_gamma`` every ``step_epochs`` epochs.
    step_epochs, step_gamma : int, float
        Period and factor of the "step" schedule.
    ce_target : float or None
        Stop as soon as the cross-entropy on the whole training set (evaluation mode) is at most
        this; None trains for the whole budget.
    ce_check_every : int or None
        Check the training cross-entropy every this many optimizer steps (None: at the end of every
        epoch). The optimization-based measures have this resolution.
    seed : int
        Seed of the data order, dropout and the regularized layer.
    device : str
        "cpu", "cuda" or "cuda:N".
    amp : bool
        Mixed precision (float16 autocast with gradient scaling); CUDA only.
    srr_gamma : float
        Weight of the SRR regularizer (0 disables it).
    srr_mode : {"random-layer", "all-layers"}
        Regularize one uniformly chosen layer per step, or the mean over layers.
    srr_eps : float
        Quantization error epsilon of the coding rates in the regularizer (epsilon, not
        epsilon squared).
    srr_normalize_tokens : bool
        Normalize every token to unit l2 norm (within each head) before the coding rates.
    eval_batch_size : int
        Batch size of evaluation passes.
    evaluate_test : bool
        Evaluate the test set at every epoch (it is always evaluated at the end).
    """

    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int = 100
    schedule: str = "none"
    step_epochs: int = 30
    step_gamma: float = 0.1
    ce_target: float | None = 0.01
    ce_check_every: int | None = None
    seed: int = 0
    device: str = "cpu"
    amp: bool = False
    srr_gamma: float = 0.0
    srr_mode: str = "random-layer"
    srr_eps: float = 0.5
    srr_normalize_tokens: bool = False
    eval_batch_size: int = 1024
    evaluate_test: bool = True

    def __post_init__(self) -> None:
        check_choice(self.optimizer, "optimizer", _OPTIMIZERS)
        check_choice(self.schedule, "schedule", _SCHEDULES)
        check_choice(self.srr_mode, "srr_mode", _SRR_MODES)
        for name in ("batch_size", "epochs", "step_epochs", "eval_batch_size"):
            check_int(getattr(self, name), name, minimum=1)
        check_int(self.seed, "seed", minimum=0)
        if self.ce_check_every is not None:
            check_int(self.ce_check_every, "ce_check_every", minimum=1)
        for name in ("lr", "srr_eps"):
            check_real(getattr(self, name), name, positive=True)
        for name in ("weight_decay", "srr_gamma"):
            check_real(getattr(self, name), name, nonnegative=True)
        # A momentum of 1 or more never forgets a gradient (the steps grow without bound); a step
        # factor of 0 stops training at the first step boundary.
        check_fraction(self.momentum, "momentum", zero=True)
        check_real(self.step_gamma, "step_gamma", positive=True)
        for name in ("amp", "srr_normalize_tokens", "evaluate_test"):
            check_bool(getattr(self, name), name)
        if self.ce_target is not None:
            check_real(self.ce_target, "ce_target", positive=True)
        if not isinstance(self.device, str):
            raise TypeError(f"device: expected a str, got {type(self.device).__name__}")
        try:
            kind = torch.device(self.device).type
        except RuntimeError:
            kind = ""
        if kind not in ("cpu", "cuda"):
            raise InvalidArgumentError(
                f"device: expected 'cpu' or 'cuda[:N]', got {self.device!r}"
            ) from None


@dataclasses.dataclass(frozen=True)
class EpochRecord:
    """One epoch of training (also what the ``progress`` callback receives).

    Attributes
    ----------
    epoch : int
        1-based epoch number.
    epochs : int
        The epoch budget.
    step : int
        Optimizer steps taken so far.
    lr : float
        Learning rate used during the epoch.
    objective : float
        Mean training objective over the epoch's mini-batches (CE, plus the SRR term when
        regularizing), in training mode.
    srr_penalty : float or None
        Mean SRR term over the epoch's mini-batches (None without regularization).
    train_loss, train_accuracy : float
        Cross-entropy and accuracy on the whole training set, evaluation mode.
    test_loss, test_accuracy : float or None
        The same on the test set (None when ``evaluate_test`` is off).
    seconds : float
        Wall time of the epoch, evaluations included.
    """

    epoch: int
    epochs: int
    step: int
    lr: float
    objective: float
    srr_penalty: float | None
    train_loss: float
    train_accuracy: float
    test_loss: float | None
    test_accuracy: float | None
    seconds: float


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns; the model itself is trained in place.

    Attributes
    ----------
    history : tuple of EpochRecord
        One record per epoch run.
    converged : bool
        The training cross-entropy reached ``ce_target`` (False when it is None).
    diverged : bool
        Training stopped on a non-finite loss.
    epochs, steps : int
        Epochs and optimizer steps run.
    train_loss, train_accuracy, test_loss, test_accuracy : float
        Final cross-entropy and accuracy on the whole training and test sets (evaluation mode).
    loss_gap : float
        ``test_loss - train_loss`` (the SRR paper's gap).
    error_gap : float
        0-1 error gap, ``(1 - test_accuracy) - (1 - train_accuracy)``.
    initial_state : dict of str to Tensor
        The model's ``state_dict`` before the first step (CPU copies), for distance measures.
    steps_to_ce_0_1 : int or None
        Optimizer steps until the training cross-entropy first reached 0.1 (None if never).
    steps_ce_0_1_to_0_01 : int or None
        Steps from there until it first reached 0.01 (None if either was never reached).
    wall_time : float
        Seconds, evaluations included.
    device : str
        Device the model trained on.
    config : TrainConfig
        The settings.
    """

    history: tuple[EpochRecord, ...]
    converged: bool
    diverged: bool
    epochs: int
    steps: int
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    loss_gap: float
    error_gap: float
    initial_state: dict[str, Tensor]
    steps_to_ce_0_1: int | None
    steps_ce_0_1_to_0_01: int | None
    wall_time: float
    device: str
    config: TrainConfig


def _resolve_device(config: TrainConfig) -> torch.device:
    device = torch.device(config.device)  # a cpu or cuda device: TrainConfig checked it
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device: {config.device!r} requested but CUDA is not available "
            "(no GPU, or a CPU-only torch build); use device='cpu'"
        )
    if config.amp and device.type != "cuda":
        raise ValueError("amp: mixed precision needs device='cuda'; set amp=False on the CPU")
    return device


def _as_batches(data: Dataset[Any] | Batches, device: torch.device) -> Batches:
    return data if isinstance(data, Batches) else Batches(data, device)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Dataset[Any],
    *,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``dataset``, in evaluation mode.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier returning logits.
    dataset : torch.utils.data.Dataset
        Items ``(input, label)``.
    batch_size : int
        Evaluation batch size.
    device : str or torch.device, optional
        Where to run (default: the device of the model's first parameter).

    Returns
    -------
    (float, float)
        Cross-entropy (natural log, mean over examples) and accuracy in [0, 1].
    """
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    return _evaluate(model, _as_batches(dataset, dev), batch_size)


@torch.no_grad()
def _evaluate(model: nn.Module, batches: Batches, batch_size: int) -> tuple[float, float]:
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), dtype=torch.float64, device=batches.device)
    correct = torch.zeros((), dtype=torch.int64, device=batches.device)
    count = 0
    for xb, yb in batches.iterate(batch_size):
        logits = model(xb).float()
        total_loss += F.cross_entropy(logits, yb, reduction="sum").double()
        correct += (logits.argmax(dim=1) == yb).sum()
        count += len(yb)
    model.train(was_training)
    if count == 0:
        raise ValueError("dataset: expected at least one example, got an empty data set")
    return float(total_loss) / count, int(correct) / count


def _build_optimizer(params: list[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    # fused: one kernel for all parameters rather than a few per tensor, which is most of an
    # optimizer step's cost for the small models of a study.
    lr, decay = config.lr, config.weight_decay
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=decay, fused=True)
    if config.optimizer == "momentum":
        return torch.optim.SGD(
            params, lr=lr, momentum=config.momentum, weight_decay=decay, fused=True
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=decay, fused=True)
    return torch.optim.AdamW(params, lr=lr, weight_decay=decay, fused=True)


def _build_schedule(
    optimizer: torch.optim.Optimizer, config: TrainConfig
) -> torch.optim.lr_scheduler.LRScheduler | None:
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=config.step_epochs, gamma=config.step_gamma
        )
    return None


def gradient_noise(model: nn.Module, batches: Dataset[Any] | Batches, batch_size: int) -> float:
    """Variance of mini-batch gradients: ``mean_b ||g_b - g_bar||^2``.

    ``g_b`` is the gradient of the mean cross-entropy of mini-batch ``b`` (the data in order,
    batches of ``batch_size``; a last partial batch is dropped unless it is the only one) with
    respect to every trainable parameter, in evaluation mode; ``g_bar`` is their mean. Accumulated
    in float64 with Welford's update, so memory stays at two parameter vectors.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    device = params[0].device if params else torch.device("cpu")
    data = _as_batches(batches, device)
    was_training = model.training
    model.eval()
    mean: Tensor | None = None
    sum_sq = 0.0
    count = 0
    n = len(data)
    for xb, yb in data.iterate(batch_size):
        if len(yb) < batch_size and n >= batch_size:
            break
        grads = torch.autograd.grad(F.cross_entropy(model(xb), yb), params)
        g = torch.cat([gr.reshape(-1) for gr in grads]).double()
        count += 1
        mean, factors = _welford(mean, g, count)
        if factors is not None:
            sum_sq += float(factors[0] @ factors[1])
    model.train(was_training)
    return sum_sq / count if count else float("nan")


def _welford(
    mean: Tensor | None, g: Tensor, count: int
) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
    """Welford's update of a running mean with its ``count``-th vector ``g``: the new mean and
    the two factors ``g - old mean``, ``g - new mean`` whose product adds to the sum of squared
    deviations (None for the first vector)."""
    if mean is None:
        return g.clone(), None
    delta = g - mean
    mean += delta / count
    return mean, (delta, g - mean)


def gradient_noise_stack(
    models: Sequence[nn.Module], inputs: Tensor, targets: Tensor, batch_size: int
) -> list[float]:
    """:func:`gradient_noise` of several models of one architecture at once, each on its own
    data (``inputs[i]``, ``targets[i]``, as many examples for every model, in order): one vmapped
    forward and backward pass per mini-batch for the whole stack. Each value is the model's own,
    to float rounding of the batched kernels and of the per-model sums.
    """
    names = [name for name, p in models[0].named_parameters() if p.requires_grad]
    per_model = [dict(m.named_parameters()) for m in models]
    params = [torch.stack([p[name].detach() for p in per_model]).requires_grad_() for name in names]
    with evaluation_mode(*models):
        forward = _Forward(models)
        rows = range(len(models))
        n = targets.shape[1]
        mean: Tensor | None = None
        sum_sq = torch.zeros(len(models), dtype=torch.float64, device=targets.device)
        count = 0
        for xb, yb in _chunks(inputs, targets, batch_size):
            if yb.shape[1] < batch_size and n >= batch_size:
                break
            logits = forward(dict(zip(names, params, strict=True)), xb, rows)
            # Each model's mean over its batch, summed over models: each gradient is its own.
            losses = F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="none")
            grads = torch.autograd.grad(losses.reshape(yb.shape).mean(dim=1).sum(), params)
            g = torch.cat([gr.flatten(1) for gr in grads], dim=1).double()
            count += 1
            mean, factors = _welford(mean, g, count)
            if factors is not None:
                sum_sq += (factors[0] * factors[1]).sum(dim=1)
    if not count:
        return [float("nan")] * len(models)
    return [float(v) / count for v in sum_sq.tolist()]


class _CEMilestones:
    """Steps at which the training cross-entropy first reached 0.1 and 0.01."""

    def __init__(self) -> None:
        self.first: int | None = None
        self.second: int | None = None

    def update(self, ce: float, step: int) -> None:
        if self.first is None and ce <= _CE_FIRST:
            self.first = step
        if self.second is None and ce <= _CE_SECOND:
            self.second = step


def train(
    model: nn.Module,
    data: DatasetSplit,
    config: TrainConfig | None = None,
    *,
    progress: Callable[[EpochRecord], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``data.train`` and evaluate it on ``data.test``.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier (any genlab model, or any module mapping inputs to logits; SRR
        regularization needs a genlab model with ``return_intermediates``). It is moved to
        ``config.device``.
    data : DatasetSplit
        From :func:`genlab.torch.data.load_dataset`.
    config : TrainConfig, optional
        Settings (defaults: ``TrainConfig()``).
    progress : callable, optional
        Called with each :class:`EpochRecord` as soon as the epoch ends (e.g. to drive a
        progress bar).

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        CUDA requested but not available, ``amp`` on the CPU, an empty data set, or SRR
        regularization on a model without intermediates.

    Examples
    --------
    >>> from genlab.torch.data import load_dataset
    >>> from genlab.torch.models import build_model
    >>> from genlab.torch.train import TrainConfig, train
    >>> data = load_dataset("digits")
    >>> model = build_model("mlp", num_classes=10, input_shape=data.input_shape, seed=0)
    >>> result = train(model, data, TrainConfig(optimizer="adam", lr=1e-3, epochs=3, ce_target=None))
    >>> result.epochs, result.train_accuracy > 0.8
    (3, True)
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a TrainConfig, got {type(config).__name__}")
    if not isinstance(data, DatasetSplit):
        raise TypeError(f"data: expected a DatasetSplit, got {type(data).__name__}")
    device = _resolve_device(config)
    started = time.perf_counter()
    initial_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    model.to(device)
    run = _Run(model, data, config, device)
    history: list[EpochRecord] = []
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(config.seed)
        model.train()
        for epoch in range(1, config.epochs + 1):
            record = run.epoch(epoch)
            history.append(record)
            if progress is not None:
                progress(record)
            if not math.isfinite(record.train_loss):
                run.diverged = True
            if run.converged or run.diverged:
                break
    final_test_loss, final_test_acc = _evaluate(model, run.test_batches, config.eval_batch_size)
    return _train_result(
        history,
        converged=run.converged,
        diverged=run.diverged,
        steps=run.step,
        test=(final_test_loss, final_test_acc),
        initial_state=initial_state,
        milestones=run.milestones,
        started=started,
        device=device,
        config=config,
    )


def _train_result(
    history: list[EpochRecord],
    *,
    converged: bool,
    diverged: bool,
    steps: int,
    test: tuple[float, float],
    initial_state: dict[str, Tensor],
    milestones: _CEMilestones,
    started: float,
    device: torch.device,
    config: TrainConfig,
) -> TrainResult:
    """The result of a finished run (also of each model of a stack, genlab.torch.stack):
    final numbers from its last epoch and ``test`` (loss, accuracy), gaps, milestones."""
    test_loss, test_acc = test
    first, second = milestones.first, milestones.second
    return TrainResult(
        history=tuple(history),
        converged=converged and not diverged,
        diverged=diverged,
        epochs=len(history),
        steps=steps,
        train_loss=history[-1].train_loss,
        train_accuracy=history[-1].train_accuracy,
        test_loss=test_loss,
        test_accuracy=test_acc,
        loss_gap=test_loss - history[-1].train_loss,
        error_gap=history[-1].train_accuracy - test_acc,
        initial_state=initial_state,
        steps_to_ce_0_1=first,
        steps_ce_0_1_to_0_01=second - first if first is not None and second is not None else None,
        wall_time=time.perf_counter() - started,
        device=str(device),
        config=config,
    )


class _Run:
    """One training run's state, advanced by named steps: an optimizer step, an epoch.

    The order in which random numbers are drawn (batch order, SRR layer choice, dropout) is part
    of the seeded contract: a run is reproducible from ``config.seed``.
    """

    def __init__(
        self, model: nn.Module, data: DatasetSplit, config: TrainConfig, device: torch.device
    ) -> None:
        self.model = model
        self.config = config
        self.train_batches = Batches(data.train, device)
        self.test_batches = Batches(data.test, device)
        if len(self.train_batches) == 0:
            raise ValueError("data.train: expected at least one example, got an empty data set")
        self.penalty_fn = _srr_penalty_fn(model, config)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = _build_optimizer(params, config)
        self.schedule = _build_schedule(self.optimizer, config)
        self.scaler = torch.amp.GradScaler("cuda") if config.amp else None
        self.order_rng = torch.Generator().manual_seed(config.seed)
        self.layer_rng = random.Random(config.seed)
        self.milestones = _CEMilestones()
        self.step = 0
        self.converged = False
        self.diverged = False

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.config.amp:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def check_ce(self) -> tuple[float, float]:
        """Training cross-entropy and accuracy now (evaluation mode), recorded as a milestone."""
        loss, acc = _evaluate(self.model, self.train_batches, self.config.eval_batch_size)
        self.milestones.update(loss, self.step)
        return loss, acc

    def optimizer_step(self, xb: Tensor, yb: Tensor) -> tuple[float, float | None] | None:
        """One step on a batch: (objective, SRR penalty or None); None if the loss is not finite."""
        self.optimizer.zero_grad(set_to_none=True)
        penalty: Tensor | None = None
        with self._autocast():
            if self.penalty_fn is None:
                loss = F.cross_entropy(self.model(xb), yb)
            else:
                logits, layers = self.model(xb, return_intermediates=True)
                loss = F.cross_entropy(logits, yb)
        if self.penalty_fn is not None:
            penalty = self.penalty_fn(layers, self.layer_rng)
            loss = loss.float() + self.config.srr_gamma * penalty
        if not torch.isfinite(loss):
            return None
        if self.scaler is not None:
            torch.autograd.backward(self.scaler.scale(loss))
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            torch.autograd.backward(loss)
            self.optimizer.step()
        self.step += 1
        return float(loss.detach()), None if penalty is None else float(penalty.detach())

    def reached_target_between_epochs(self) -> bool:
        """With ``ce_check_every``, whether the cross-entropy target is reached at this step."""
        every, target = self.config.ce_check_every, self.config.ce_target
        if every is None or self.step % every != 0:
            return False
        ce, _ = self.check_ce()
        return target is not None and ce <= target

    def epoch(self, epoch: int) -> EpochRecord:
        """One pass over the training set (it may stop early on the target or a divergence)."""
        config = self.config
        epoch_start = time.perf_counter()
        lr = float(self.optimizer.param_groups[0]["lr"])
        objective_sum = penalty_sum = 0.0
        n_batches = 0
        for xb, yb in self.train_batches.iterate(config.batch_size, generator=self.order_rng):
            stepped = self.optimizer_step(xb, yb)
            if stepped is None:
                self.diverged = True
                break
            objective, penalty = stepped
            n_batches += 1
            objective_sum += objective
            penalty_sum += penalty or 0.0
            if self.reached_target_between_epochs():
                self.converged = True
                break
        if self.schedule is not None:
            self.schedule.step()
        train_loss, train_acc = self.check_ce()
        target = config.ce_target
        self.converged = self.converged or (target is not None and train_loss <= target)
        test_loss = test_acc = None
        if config.evaluate_test:
            test_loss, test_acc = _evaluate(self.model, self.test_batches, config.eval_batch_size)
        return EpochRecord(
            epoch=epoch,
            epochs=config.epochs,
            step=self.step,
            lr=lr,
            objective=objective_sum / max(n_batches, 1),
            srr_penalty=penalty_sum / max(n_batches, 1) if self.penalty_fn is not None else None,
            train_loss=train_loss,
            train_accuracy=train_acc,
            test_loss=test_loss,
            test_accuracy=test_acc,
            seconds=time.perf_counter() - epoch_start,
        )


def _srr_penalty_fn(
    model: nn.Module, config: TrainConfig
) -> Callable[[Any, random.Random], Tensor] | None:
    if config.srr_gamma == 0:
        return None
    from genlab.torch.models import IntermediatesModel
    from genlab.torch.srr import srr_penalty

    if not isinstance(model, IntermediatesModel):
        raise ValueError(
            "config.srr_gamma: SRR regularization needs a genlab model with per-layer "
            f"intermediates (genlab.torch.models), got {type(model).__name__}"
        )

    def penalty(layers: Any, rng: random.Random) -> Tensor:
        return srr_penalty(
            layers,
            eps=config.srr_eps,
            mode=config.srr_mode,
            normalize_tokens=config.srr_normalize_tokens,
            rng=rng,
        )

    return penalty
