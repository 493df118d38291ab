"""Train many models of one architecture as one computation, with a leading model axis.

:func:`train_stack` is :func:`genlab.torch.train.train` for M models at once: their parameters
are stacked (``torch.func.stack_module_state``), every forward and backward pass runs over the
model axis (``torch.func.vmap`` of ``functional_call``), and the optimizer update is one tensor
operation for all models. Each model keeps its own seed (data order), training set, learning
rate, momentum, weight decay, learning-rate schedule, epoch budget and cross-entropy target; a model that
reaches its stopping rule stops changing while the others go on, and its milestones (steps to
cross-entropy 0.1 and 0.01) are its own. The result is, per model, the :class:`TrainResult` that
training it alone gives: the same weights, losses and milestones to float tolerance (tested in
float64). What differs: dropout masks are drawn for the whole stack (same distribution, other
numbers), and float32 sums over a batch may round differently in the batched kernels.

Not stacked: SRR regularization, ``ce_check_every``, mixed precision, and models whose buffers
change in training (BatchNorm's running statistics): :func:`train_stack` refuses them, and the
caller trains those models one by one. A stack that would not fit in memory is split
(:func:`stack_sizes`, from :func:`model_bytes`: parameters, gradients, optimizer state, each
model's data and the activations a step keeps) and the parts train one after the other.

Speed. On 2 CPU cores stacking buys little for small CRATEs. 32 digits CRATEs (dim 32, depth
3) train a fixed 5 epochs 1.4x faster stacked than one by one (12.1 s against 17.2 s, ``bash
scripts/bench.sh benches/bench_stack.py``, after train() moved to PyTorch's fused optimizers),
but a whole study of 32 of them, trained to their cross-entropy
target and measured, took 99 s in stacks of 8 against 93 s one by one (``bash scripts/bench.sh
benches/bench_study.py``). The same benchmark says why: one training step of 32 stacked models
cost as much as 32 one-model steps (1.0x), and a stacked evaluation pass twice as much (0.5x).
The time goes to the work of small kernels (attention over 17 tokens, layer norms, elementwise
ops), which a model axis does not shrink; per-step overhead is at most about a fifth of a step
(1024 examples in one batch 73 ms, in 16 batches of 64 94 ms). On a GPU, where a
small model leaves the device idle, a stack is the way to fill it (``scripts/gpu-check.sh``
times both). The study uses it with ``[study] stack = N``
(:func:`genlab.study.executors.stack_units`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap
from torch.utils.data import TensorDataset

from genlab.torch.data import DatasetSplit
from genlab.torch.train import (
    EpochRecord,
    TrainConfig,
    TrainResult,
    _CEMilestones,
    _resolve_device,
    _train_result,
)

__all__ = ["SHARED_FIELDS", "StackError", "model_bytes", "stack_sizes", "train_stack"]

#: TrainConfig fields every model of a stack must share (they shape the computation).
SHARED_FIELDS = (
    "optimizer",
    "batch_size",
    "ce_check_every",
    "device",
    "amp",
    "eval_batch_size",
    "evaluate_test",
)


class StackError(ValueError):
    """Models that cannot train as one stack; the message says which field or model differs."""


def _check_stack(
    models: Sequence[nn.Module], data: Sequence[DatasetSplit], configs: Sequence[TrainConfig]
) -> None:
    if not models:
        raise StackError("models: expected at least one model, got none")
    if not (len(models) == len(data) == len(configs)):
        raise StackError(
            f"expected one data split and one config per model, got {len(models)} models, "
            f"{len(data)} data splits and {len(configs)} configs"
        )
    for field in SHARED_FIELDS:
        values = {getattr(c, field) for c in configs}
        if len(values) > 1:
            raise StackError(
                f"configs: {field} differs across the stack: {sorted(map(str, values))}"
            )
    first = configs[0]
    if first.ce_check_every is not None or first.amp:
        raise StackError("configs: ce_check_every and amp are not stacked; train these one by one")
    if any(c.srr_gamma != 0 for c in configs):
        raise StackError("configs: SRR regularization is not stacked; train these one by one")
    _check_models(models)
    _check_data(data)


def _check_models(models: Sequence[nn.Module]) -> None:
    shapes = [{k: (v.shape, v.dtype) for k, v in m.named_parameters()} for m in models]
    for i, other in enumerate(shapes[1:], start=1):
        if other != shapes[0]:
            raise StackError(f"models: model {i} has other parameters than model 0")
    for i, model in enumerate(models):
        if any(isinstance(b, Tensor) and b.numel() for b in model.buffers()):
            raise StackError(
                f"models: model {i} has buffers (BatchNorm's running statistics?), which a "
                "stacked forward cannot update; train it on its own"
            )


def _check_data(data: Sequence[DatasetSplit]) -> None:
    for name in ("train", "test"):
        sizes = {len(getattr(d, name)) for d in data}
        if len(sizes) > 1:
            raise StackError(f"data: the {name} sets differ in size across the stack: {sizes}")
        for d in data:
            part = getattr(d, name)
            if not (isinstance(part, TensorDataset) and len(part.tensors) == 2):
                raise StackError(f"data: the {name} sets must be (inputs, labels) TensorDatasets")


def _stacked_tensors(
    data: Sequence[DatasetSplit], name: str, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Each model's (inputs, labels) of one split, stacked: (M, n, ...), (M, n)."""
    inputs = torch.stack([getattr(d, name).tensors[0] for d in data]).to(device)
    labels = torch.stack([getattr(d, name).tensors[1] for d in data]).to(device)
    return inputs, labels


@dataclasses.dataclass
class _Optimizer:
    """The update of torch.optim's SGD (with momentum) and Adam/AdamW, per model, vectorized."""

    kind: str
    lr: Tensor  # (M,), this epoch's learning rates
    momentum: Sequence[float]
    weight_decay: Sequence[float]
    state: dict[str, dict[str, Tensor]] = dataclasses.field(default_factory=dict)
    steps: Tensor | None = None  # (M,), Adam's bias-correction step count per model

    def keep(self, rows: Tensor, kept: list[int]) -> None:
        """Only the models at ``rows`` (their positions ``kept``) go on."""
        self.momentum = [self.momentum[row] for row in kept]
        self.weight_decay = [self.weight_decay[row] for row in kept]
        if self.steps is not None:
            self.steps = self.steps[rows.cpu()]
        for state in self.state.values():
            for name, value in state.items():
                state[name] = value[rows]

    @torch.no_grad()
    def update(self, params: dict[str, Tensor], grads: dict[str, Tensor], active: Tensor) -> None:
        """One step, in place, for the models in ``active`` (a bool (M,)); the others keep
        everything."""
        any_param = next(iter(params.values()))
        dtype, device = any_param.dtype, any_param.device
        lr_all = self.lr.to(dtype=dtype, device=device)
        wd_all = torch.tensor(self.weight_decay, dtype=dtype, device=device)
        mu_all = torch.tensor(self.momentum, dtype=dtype, device=device)
        corrections = None
        if self.kind in ("adam", "adamw"):
            assert self.steps is not None
            self.steps = self.steps + active.to(self.steps.dtype)
            step = self.steps.clamp(min=1).to(dtype=dtype, device=device)
            corrections = (1 - 0.9**step, (1 - 0.999**step).sqrt())
        for name, p in params.items():
            shape = (-1, *([1] * (p.dim() - 1)))
            keep, lr, wd = active.view(shape), lr_all.view(shape), wd_all.view(shape)
            state = self.state.setdefault(name, {})
            if corrections is None:
                new = self._sgd_step(p, grads[name], state, keep, lr, wd, mu_all.view(shape))
            else:
                first, second = (c.view(shape) for c in corrections)
                new = self._adam_step(p, grads[name], state, keep, lr, wd, first, second)
            p.copy_(torch.where(keep, new, p))

    def _sgd_step(
        self,
        p: Tensor,
        g: Tensor,
        state: dict[str, Tensor],
        keep: Tensor,
        lr: Tensor,
        wd: Tensor,
        mu: Tensor,
    ) -> Tensor:
        g = g + wd * p
        if self.kind == "momentum":
            buf = state.get("momentum")
            # torch.optim.SGD: the first step's buffer is the gradient itself.
            new_buf = g.clone() if buf is None else mu * buf + g
            state["momentum"] = new_buf if buf is None else torch.where(keep, new_buf, buf)
            g = new_buf
        return p - lr * g

    def _adam_step(
        self,
        p: Tensor,
        g: Tensor,
        state: dict[str, Tensor],
        keep: Tensor,
        lr: Tensor,
        wd: Tensor,
        correction1: Tensor,
        correction2_sqrt: Tensor,
    ) -> Tensor:
        # torch.optim.Adam couples the decay into the gradient; AdamW decays the weights.
        if self.kind == "adam":
            g = g + wd * p
            decayed = p
        else:
            decayed = p * (1 - lr * wd)
        m = state.get("exp_avg", torch.zeros_like(p))
        v = state.get("exp_avg_sq", torch.zeros_like(p))
        new_m = m + (g - m) * (1 - 0.9)
        new_v = v * 0.999 + g * g * (1 - 0.999)
        denom = new_v.sqrt() / correction2_sqrt + 1e-8
        state["exp_avg"] = torch.where(keep, new_m, m)
        state["exp_avg_sq"] = torch.where(keep, new_v, v)
        return decayed - (lr / correction1) * new_m / denom


def _lr_at(config: TrainConfig, epoch: int) -> float:
    """The learning rate of (0-based) ``epoch`` under the config's schedule."""
    if config.schedule == "cosine":
        return config.lr * (1 + math.cos(math.pi * epoch / config.epochs)) / 2
    if config.schedule == "step":
        return config.lr * config.step_gamma ** (epoch // config.step_epochs)
    return config.lr


class _Stack:
    """The stacked models, their data and their per-model training state."""

    def __init__(
        self,
        models: Sequence[nn.Module],
        data: Sequence[DatasetSplit],
        configs: Sequence[TrainConfig],
        device: torch.device,
    ) -> None:
        self.configs = list(configs)
        self.count = len(models)
        params, _ = stack_module_state([m.to(device) for m in models])
        # Leaves of the autograd graph, updated in place: one backward pass through the vmapped
        # forward gives every model's gradient (the models share no parameter), which was about
        # 1.2x faster than vmap of grad on 2 CPU cores.
        self.params = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
        self.base = copy.deepcopy(models[0]).to("meta")
        self.base.train()
        self.train_x, self.train_y = _stacked_tensors(data, "train", device)
        self.test_x, self.test_y = _stacked_tensors(data, "test", device)
        self.orders = [torch.Generator().manual_seed(c.seed) for c in configs]
        self.optimizer = _Optimizer(
            kind=configs[0].optimizer,
            lr=torch.tensor([c.lr for c in configs], dtype=torch.float64),
            momentum=[c.momentum for c in configs],
            weight_decay=[c.weight_decay for c in configs],
            steps=torch.zeros(self.count, dtype=torch.float64),
        )
        self.active = torch.ones(self.count, dtype=torch.bool, device=device)
        # Row r of every stacked tensor is model index[r]; a model that finishes leaves the stack
        # (its final weights and test numbers kept below), so that it costs nothing afterwards.
        self.index = list(range(self.count))
        self.final_params: dict[int, dict[str, Tensor]] = {}
        self.final_test: dict[int, tuple[float, float]] = {}
        # Per model (by original index).
        self.steps = [0] * self.count
        self.milestones = [_CEMilestones() for _ in configs]
        self.converged = [False] * self.count
        self.diverged = [False] * self.count

        self.logits = vmap(lambda p, x: functional_call(self.base, p, (x,)), randomness="different")

    def losses_and_grads(self, x: Tensor, y: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """Every model's mean cross-entropy on its batch (M,) and its gradients."""
        logits = self.logits(self.params, x)
        losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        losses = losses.reshape(y.shape).mean(dim=1)
        grads = torch.autograd.grad(losses.sum(), list(self.params.values()))
        return dict(zip(self.params, grads, strict=True)), losses.detach()

    @torch.no_grad()
    def evaluate(
        self, x: Tensor, y: Tensor, rows: list[int] | None = None
    ) -> tuple[list[float], list[float]]:
        """Mean cross-entropy and accuracy of every model (or of the models at ``rows``) on its
        own (x, y), evaluation mode."""
        params = self.params
        if rows is not None:
            index = torch.tensor(rows, dtype=torch.long, device=x.device)
            params = {k: v[index] for k, v in params.items()}
            x, y = x[index], y[index]
        count = y.shape[0]
        self.base.eval()
        # eval_batch_size examples per pass over the whole stack (as many as one model's pass
        # holds): larger stacked activations fall out of the caches.
        batch = max(1, self.configs[0].eval_batch_size // count)
        total = torch.zeros(count, dtype=torch.float64, device=x.device)
        correct = torch.zeros(count, dtype=torch.int64, device=x.device)
        for start in range(0, y.shape[1], batch):
            logits = self.logits(params, x[:, start : start + batch]).float()
            yb = y[:, start : start + batch]
            losses = F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="none")
            total += losses.reshape(yb.shape).sum(dim=1).double()  # a float32 sum, as train()
            correct += (logits.argmax(dim=2) == yb).sum(dim=1)
        self.base.train()
        n = y.shape[1]
        return (total / n).tolist(), (correct.double() / n).tolist()

    def epoch(self, epoch: int) -> list[tuple[int, EpochRecord]]:
        """One pass over every model's training set: (model index, record) of each model."""
        started = time.perf_counter()
        self.optimizer.lr = torch.tensor(
            [_lr_at(c, epoch - 1) for c in self.configs], dtype=torch.float64
        )
        n = self.train_y.shape[1]
        orders = torch.stack([torch.randperm(n, generator=g) for g in self.orders])
        orders = orders.to(self.train_x.device)
        rows = torch.arange(self.count, device=self.train_x.device)[:, None]
        device = self.train_x.device
        objective = torch.zeros(self.count, dtype=torch.float64, device=device)
        steps = torch.zeros(self.count, dtype=torch.int64, device=device)
        diverging = torch.zeros(self.count, dtype=torch.bool, device=device)
        batches = 0
        batch_size = self.configs[0].batch_size
        for start in range(0, n, batch_size):
            idx = orders[:, start : start + batch_size]
            grads, losses = self.losses_and_grads(self.train_x[rows, idx], self.train_y[rows, idx])
            finite = torch.isfinite(losses)
            diverging |= self.active & ~finite
            self.active &= finite
            self.optimizer.update(self.params, grads, self.active)
            objective += losses.detach().double()
            steps += self.active
            batches += 1
        train_loss, train_acc = self.evaluate(self.train_x, self.train_y)
        test_loss: list[float | None] = [None] * self.count
        test_acc: list[float | None] = [None] * self.count
        if self.configs[0].evaluate_test:
            test_loss[:], test_acc[:] = self.evaluate(self.test_x, self.test_y)
        seconds = time.perf_counter() - started
        records = []
        for row, model in enumerate(self.index):
            config = self.configs[row]
            self.steps[model] += int(steps[row])
            self.diverged[model] = self.diverged[model] or bool(diverging[row])
            self.milestones[model].update(train_loss[row], self.steps[model])
            target = config.ce_target
            self.converged[model] = target is not None and train_loss[row] <= target
            if not math.isfinite(train_loss[row]):
                self.diverged[model] = True
            finished = self.converged[model] or self.diverged[model] or epoch >= config.epochs
            self.active[row] = not finished
            records.append(
                (
                    model,
                    EpochRecord(
                        epoch=epoch,
                        epochs=config.epochs,
                        step=self.steps[model],
                        lr=float(self.optimizer.lr[row]),
                        objective=float(objective[row]) / max(batches, 1),
                        srr_penalty=None,
                        train_loss=train_loss[row],
                        train_accuracy=train_acc[row],
                        test_loss=test_loss[row],
                        test_accuracy=test_acc[row],
                        seconds=seconds,
                    ),
                )
            )
        self._release_finished()
        return records

    def _release_finished(self) -> None:
        """Keep the final weights (and test numbers) of the models that finished, and take them
        out of every stacked tensor."""
        done = [row for row in range(self.count) if not bool(self.active[row])]
        if not done:
            return
        if not self.configs[0].evaluate_test:  # the finished models' test set, once
            losses, accs = self.evaluate(self.test_x, self.test_y, done)
            for row, loss, acc in zip(done, losses, accs, strict=True):
                self.final_test[self.index[row]] = (loss, acc)
        for row in done:
            self.final_params[self.index[row]] = {
                k: v[row].detach().clone() for k, v in self.params.items()
            }
        keep = [row for row in range(self.count) if bool(self.active[row])]
        rows = torch.tensor(keep, dtype=torch.long, device=self.train_x.device)
        self.params = {k: v.detach()[rows].clone().requires_grad_() for k, v in self.params.items()}
        self.optimizer.keep(rows, keep)
        self.train_x, self.train_y = self.train_x[rows], self.train_y[rows]
        self.test_x, self.test_y = self.test_x[rows], self.test_y[rows]
        self.orders = [self.orders[row] for row in keep]
        self.configs = [self.configs[row] for row in keep]
        self.index = [self.index[row] for row in keep]
        self.active = self.active[rows]
        self.count = len(keep)


# Optimizer state tensors per parameter tensor (momentum buffer; Adam's two moments).
_STATE_TENSORS = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}


def _activation_bytes(saved: Sequence[Tensor], parameters: Sequence[Tensor]) -> int:
    """Bytes of the tensors autograd saved, each storage once (the largest view of it counts),
    the parameters' own storages left out (they are counted as parameters)."""
    own = {p.untyped_storage().data_ptr() for p in parameters}
    largest: dict[int, int] = {}
    for t in saved:
        storage = t.untyped_storage().data_ptr()
        if storage not in own:
            largest[storage] = max(largest.get(storage, 0), t.numel() * t.element_size())
    return sum(largest.values())


def model_bytes(model: nn.Module, data: DatasetSplit, config: TrainConfig) -> int:
    """Memory one model takes in a stack: its parameters with their gradients and optimizer
    state, its own copy of the training and test data, and the activations one training step
    keeps for its backward pass (measured: the tensors autograd saves in one forward pass of a
    batch, run on the CPU).
    """
    parameter_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    state = (2 + _STATE_TENSORS[config.optimizer]) * parameter_bytes
    data_tensors: list[Tensor] = [
        t for part in (data.train, data.test) for t in getattr(part, "tensors", ())
    ]
    data_bytes = sum(t.numel() * t.element_size() for t in data_tensors)
    saved: list[Tensor] = []

    def keep(t: Tensor) -> Tensor:
        saved.append(t)
        return t

    probe = copy.deepcopy(model).cpu().train()
    batch = data.train.tensors[0][: config.batch_size]  # type: ignore[attr-defined]
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        probe(batch.cpu())
    return state + data_bytes + _activation_bytes(saved, list(probe.parameters()))


def _free_bytes(device: torch.device) -> int | None:
    """Free memory of ``device`` now (None when it cannot be read)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def stack_sizes(
    models: Sequence[nn.Module],
    data: Sequence[DatasetSplit],
    configs: Sequence[TrainConfig],
    *,
    memory_limit: int | None = None,
) -> list[int]:
    """How :func:`train_stack` splits ``models`` so that each stack fits in memory: the sizes of
    the consecutive stacks it trains one after the other.

    A stack holds as many models as ``memory_limit`` bytes allow at :func:`model_bytes` each
    (at least one); ``memory_limit=None`` takes half the device's free memory (CUDA:
    ``torch.cuda.mem_get_info``; CPU: ``MemAvailable``), leaving the rest to the evaluation
    passes, the measurements and other workers. One model that does not fit alone is still
    trained, as :func:`genlab.torch.train.train` would.
    """
    _check_stack(models, data, configs)
    if memory_limit is None:
        free = _free_bytes(_resolve_device(configs[0]))
        if free is None:
            return [len(models)]
        memory_limit = free // 2
    if isinstance(memory_limit, bool) or not isinstance(memory_limit, int) or memory_limit < 1:
        raise ValueError(f"memory_limit: expected a positive number of bytes, got {memory_limit!r}")
    per_model = model_bytes(models[0], data[0], configs[0])
    fits = max(1, memory_limit // max(per_model, 1))
    full, rest = divmod(len(models), fits)
    return [fits] * full + ([rest] if rest else [])


def train_stack(
    models: Sequence[nn.Module],
    data: Sequence[DatasetSplit],
    configs: Sequence[TrainConfig],
    *,
    progress: Callable[[int, EpochRecord], None] | None = None,
    memory_limit: int | None = None,
) -> list[TrainResult]:
    """Train ``models`` (one architecture) in place as one stacked computation.

    When the whole stack would not fit in memory it is split (:func:`stack_sizes`) and the
    parts train one after the other; each model's result is the same either way.

    Parameters
    ----------
    models : sequence of torch.nn.Module
        Models with the same parameters (names, shapes, dtypes) and no training-time buffers.
    data : sequence of DatasetSplit
        Each model's data (its own training subset, label noise, ...), splits of equal sizes.
    configs : sequence of TrainConfig
        Each model's settings; :data:`SHARED_FIELDS` must be equal across the stack.
    progress : callable, optional
        Called with ``(model index, EpochRecord)`` as each model finishes an epoch.
    memory_limit : int, optional
        Bytes one stack may take (:func:`stack_sizes`); None: half the device's free memory.

    Returns
    -------
    list of TrainResult
        One per model, as :func:`genlab.torch.train.train` returns it.

    Raises
    ------
    StackError
        Models or configs that cannot share a stack (the message names what differs).
    """
    sizes = stack_sizes(models, data, configs, memory_limit=memory_limit)
    results: list[TrainResult] = []
    for size in sizes:
        start = len(results)
        part = slice(start, start + size)

        def report(index: int, record: EpochRecord, offset: int = start) -> None:
            if progress is not None:
                progress(offset + index, record)

        results += _train_one_stack(models[part], data[part], configs[part], report)
    return results


def _train_one_stack(
    models: Sequence[nn.Module],
    data: Sequence[DatasetSplit],
    configs: Sequence[TrainConfig],
    progress: Callable[[int, EpochRecord], None],
) -> list[TrainResult]:
    device = _resolve_device(configs[0])
    started = time.perf_counter()
    initial = [{k: v.detach().cpu().clone() for k, v in m.state_dict().items()} for m in models]
    stack = _Stack(models, data, configs, device)
    histories: list[list[EpochRecord]] = [[] for _ in models]
    epoch = 0
    while stack.count:
        epoch += 1
        for index, record in stack.epoch(epoch):
            histories[index].append(record)
            progress(index, record)
    results = []
    for i, model in enumerate(models):
        model.load_state_dict(stack.final_params[i], strict=False)
        history = histories[i]
        test_loss, test_acc = history[-1].test_loss, history[-1].test_accuracy
        test = (
            stack.final_test[i] if test_loss is None or test_acc is None else (test_loss, test_acc)
        )
        results.append(
            _train_result(
                history,
                converged=stack.converged[i],
                diverged=stack.diverged[i],
                steps=stack.steps[i],
                test=test,
                initial_state=initial[i],
                milestones=stack.milestones[i],
                started=started,
                device=device,
                config=configs[i],
            )
        )
    return results
