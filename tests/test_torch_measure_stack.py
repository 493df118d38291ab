"""Measuring many models at once (the flatness searches over a stack, measure_models) against
measuring each model alone."""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from genlab.errors import NumericalWarning  # noqa: E402
from genlab.torch.data import DatasetSplit, load_dataset  # noqa: E402
from genlab.torch.measures import (  # noqa: E402
    MeasureSettings,
    measure_model,
    measure_models,
    pacbayes_sigma,
    pacbayes_sigma_stack,
    sharpness_alpha,
    sharpness_alpha_stack,
)
from genlab.torch.models import build_model  # noqa: E402
from genlab.torch.train import TrainConfig, train  # noqa: E402


def _float64(split: DatasetSplit) -> DatasetSplit:
    def as64(part: TensorDataset) -> TensorDataset:
        x, y = part.tensors
        return TensorDataset(x.double(), y)

    return dataclasses.replace(split, train=as64(split.train), test=as64(split.test))


@pytest.fixture(scope="module")
def trained() -> tuple[list[nn.Module], list[DatasetSplit], list]:
    """Three small float64 CRATEs, each trained a little on its own training subset (float64:
    the stacked and the single forward pass then agree far below any accuracy threshold)."""
    models, data, results = [], [], []
    for seed in (0, 1, 2):
        split = _float64(load_dataset("digits", train_size=120, seed=seed))
        model = build_model(
            ("crate", "crate", "crate")[seed],
            num_classes=10,
            input_shape=split.input_shape,
            seed=seed,
            dim=16,
            depth=2,
            heads=2,
            patch_size=4,
        ).double()
        config = TrainConfig(optimizer="adam", lr=0.01, epochs=3 + seed, ce_target=None, seed=seed)
        results.append(train(model, split, config))
        models.append(model)
        data.append(split)
    return models, data, results


def _inputs(data: list[DatasetSplit], n: int = 96) -> tuple[list, list]:
    return (
        [d.train.tensors[0][:n] for d in data],  # type: ignore[attr-defined]
        [d.train.tensors[1][:n] for d in data],  # type: ignore[attr-defined]
    )


@pytest.mark.parametrize("magnitude_eps", [None, 1e-3])
def test_stacked_pacbayes_search_gives_each_model_its_own_search(trained, magnitude_eps) -> None:
    models, data, _ = trained
    xs, ys = _inputs(data)
    options = {"magnitude_eps": magnitude_eps, "search_depth": 8, "draws": 4, "batch_size": 40}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericalWarning)
        alone = [
            pacbayes_sigma(m, x, y, seed=s, **options)
            for m, x, y, s in zip(models, xs, ys, (5, 6, 7), strict=True)
        ]
        together = pacbayes_sigma_stack(models, xs, ys, seeds=[5, 6, 7], **options)
    assert together == alone
    assert len({a.steps for a in alone} | {a.scale for a in alone}) > 2  # not all the same


@pytest.mark.parametrize("magnitude_eps", [None, 1e-3])
def test_stacked_sharpness_search_gives_each_model_its_own_search(trained, magnitude_eps) -> None:
    models, data, _ = trained
    xs, ys = _inputs(data)
    options = {"magnitude_eps": magnitude_eps, "search_depth": 8, "ascent_steps": 3}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericalWarning)
        alone = [
            sharpness_alpha(m, x, y, seed=s, batch_size=50, **options)
            for m, x, y, s in zip(models, xs, ys, (1, 2, 3), strict=True)
        ]
        together = sharpness_alpha_stack(models, xs, ys, seeds=[1, 2, 3], batch_size=50, **options)
    assert together == alone


def test_a_stacked_search_leaves_the_models_as_they_were(trained) -> None:
    models, data, _ = trained
    before = [copy.deepcopy(m.state_dict()) for m in models]
    for model, mode in zip(models, (False, True, False), strict=True):
        model.train(mode)
    xs, ys = _inputs(data, 32)
    with pytest.warns(NumericalWarning, match="did not converge for model"):
        sharpness_alpha_stack(models, xs, ys, seeds=[0, 0, 0], search_depth=2, ascent_steps=1)
    assert [m.training for m in models] == [False, True, False]
    models[1].eval()
    for state, model in zip(before, models, strict=True):
        for name, value in model.state_dict().items():
            assert torch.equal(value, state[name]), name


def test_stacked_searches_use_each_models_buffers() -> None:
    """BatchNorm's running statistics are each model's own in the vmapped forward pass."""
    torch.manual_seed(0)
    nets = []
    for _ in range(3):
        net = nn.Sequential(nn.Linear(6, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 3))
        net[1].running_mean.normal_()
        net[1].running_var.uniform_(0.5, 2.0)
        nets.append(net.double().eval())
    xs = [torch.randn(80, 6, dtype=torch.float64) for _ in nets]
    ys = [net(x).argmax(dim=1) for net, x in zip(nets, xs, strict=True)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericalWarning)
        alone = [
            pacbayes_sigma(net, x, y, seed=4, search_depth=6, draws=3)
            for net, x, y in zip(nets, xs, ys, strict=True)
        ]
        together = pacbayes_sigma_stack(nets, xs, ys, seeds=[4] * 3, search_depth=6, draws=3)
    assert together == alone


def test_stacked_hessian_estimates_give_each_model_its_own(trained) -> None:
    from genlab.torch.hessian import (
        hessian_top_eigenvalue,
        hessian_top_eigenvalue_stack,
        hessian_trace,
        hessian_trace_stack,
    )

    models, data, _ = trained
    xs, ys = _inputs(data, 48)
    seeds = [2, 3, 4]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericalWarning)
        tops = [
            hessian_top_eigenvalue(m, x, y, seed=s, max_iterations=25, tol=1e-4, batch_size=20)
            for m, x, y, s in zip(models, xs, ys, seeds, strict=True)
        ]
        traces = [
            hessian_trace(m, x, y, seed=s, max_samples=12, min_samples=3, tol=0.2)
            for m, x, y, s in zip(models, xs, ys, seeds, strict=True)
        ]
        top_stack = hessian_top_eigenvalue_stack(
            models, xs, ys, seeds=seeds, max_iterations=25, tol=1e-4, batch_size=20
        )
        trace_stack = hessian_trace_stack(
            models, xs, ys, seeds=seeds, max_samples=12, min_samples=3, tol=0.2
        )
    for alone, together in ((tops, top_stack), (traces, trace_stack)):
        for a, b in zip(together, alone, strict=True):
            assert (a.products, a.converged) == (b.products, b.converged)
            assert a.value == pytest.approx(b.value, rel=1e-9)
            assert a.standard_error == pytest.approx(b.standard_error, rel=1e-9, nan_ok=True)
    # Different models stop after different numbers of products.
    assert len({t.products for t in top_stack}) > 1 or len({t.products for t in trace_stack}) > 1
    with pytest.raises(ValueError, match="a seed per model"):
        hessian_trace_stack(models, xs, ys, seeds=[0])


def test_stacked_search_errors(trained) -> None:
    models, data, _ = trained
    xs, ys = _inputs(data)
    with pytest.raises(ValueError, match="at least one model"):
        pacbayes_sigma_stack([], [], [], seeds=[])
    with pytest.raises(ValueError, match="a seed per model"):
        pacbayes_sigma_stack(models, xs, ys, seeds=[0])
    with pytest.raises(ValueError, match="as many examples of one shape"):
        sharpness_alpha_stack(models, [xs[0], xs[1], xs[2][:10]], ys, seeds=[0, 1, 2])
    with pytest.raises(ValueError, match="draws: expected a positive number"):
        pacbayes_sigma_stack(models, xs, ys, seeds=[0, 1, 2], draws=0)


def test_measure_models_equals_measuring_each_model_alone(trained) -> None:
    """Every measure group (norms, margin, path, the four flatness searches, optimization,
    SRR, Hessian, calibration, spectrum, size-adjusted forms) and the SRR profiles (the
    searches' exact equality is tested on its own above)."""
    models, data, results = trained
    settings = MeasureSettings(
        flatness_samples=64,
        search_depth=6,
        draws=3,
        ascent_steps=2,
        srr_samples=32,
        hessian_samples=32,
        hessian_iterations=5,
        hessian_probes=4,
    )
    seeds = [3, 4, 5]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = [
            measure_model(
                m, d, train_result=r, seed=s, settings=settings, srr_presets=("crate", "output")
            )
            for m, d, r, s in zip(models, data, results, seeds, strict=True)
        ]
        together = measure_models(
            models,
            data,
            train_results=results,
            seeds=seeds,
            settings=settings,
            srr_presets=("crate", "output"),
        )
    for a, b in zip(together, alone, strict=True):
        assert a.values.keys() == b.values.keys()
        for name, value in b.values.items():
            got = a.values[name]
            # Sums over the model axis may round differently (the Hessians, the margin gamma,
            # the calibration error and the gradient noise come from stacked passes).
            assert got == pytest.approx(value, rel=1e-9, abs=1e-12, nan_ok=True), name
        assert a.srr_profiles.keys() == b.srr_profiles.keys()
        for preset, profile in b.srr_profiles.items():
            assert a.srr_profiles[preset].summary() == profile.summary()
        assert [s.alpha for s in a.spectra] == [s.alpha for s in b.spectra]


def test_measure_models_takes_the_stacked_paths(trained, monkeypatch) -> None:
    """The one-model functions of the stacked groups are not called by measure_models."""
    from genlab.torch import measures

    def refuse(*args, **kwargs):
        raise AssertionError("a one-model path ran inside measure_models")

    for name in ("gradient_noise", "expected_calibration_error", "margins"):
        monkeypatch.setattr(measures, name, refuse)
    monkeypatch.setitem(measures._SEARCHES, "pacbayes", refuse)
    monkeypatch.setitem(measures._SEARCHES, "sharpness", refuse)
    monkeypatch.setattr(measures, "hessian_trace", refuse)
    monkeypatch.setattr(measures, "hessian_top_eigenvalue", refuse)
    models, data, results = trained
    settings = MeasureSettings(
        flatness_samples=32,
        search_depth=2,
        draws=1,
        ascent_steps=1,
        hessian_samples=16,
        hessian_iterations=2,
        hessian_probes=2,
    )
    names = [
        "inverse_margin",
        "gradient_noise",
        "expected_calibration_error",
        "pacbayes_flatness",
        "sharpness_mag_flatness",
        "hessian_trace",
        "hessian_top_eigenvalue",
        "log_spec_orig_main",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = measure_models(
            models, data, train_results=results, seeds=[0, 1, 2], names=names, settings=settings
        )
    # Any one-model call would have raised; the searches' values are numbers.
    assert [list(m.values) for m in out] == [names] * 3
    assert all(math.isfinite(m.values["pacbayes_flatness"]) for m in out)


def test_gradient_noise_of_a_stack_is_each_models(trained) -> None:
    from genlab.torch.train import gradient_noise, gradient_noise_stack

    models, data, _ = trained
    xs, ys = _inputs(data, 100)
    alone = [
        gradient_noise(m, TensorDataset(x, y), 16) for m, x, y in zip(models, xs, ys, strict=True)
    ]
    together = gradient_noise_stack(models, torch.stack(xs), torch.stack(ys), 16)
    assert together == pytest.approx(alone, rel=1e-9)
    assert len(set(alone)) == 3


def test_measure_models_errors(trained) -> None:
    models, data, results = trained
    with pytest.raises(ValueError, match="a train result and a seed per model"):
        measure_models(models, data[:2], train_results=results, seeds=[0, 1, 2])
    with pytest.raises(ValueError, match="unknown measure"):
        measure_models(models, data, seeds=[0, 1, 2], names=["banana"])


@pytest.mark.cuda
def test_stacked_searches_on_cuda_match_each_model_alone(trained) -> None:
    models, data, _ = trained
    on_gpu = [copy.deepcopy(m).cuda() for m in models]
    xs, ys = _inputs(data)
    xs, ys = [x.cuda() for x in xs], [y.cuda() for y in ys]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericalWarning)
        alone = [
            pacbayes_sigma(m, x, y, seed=s, search_depth=6, draws=3)
            for m, x, y, s in zip(on_gpu, xs, ys, (5, 6, 7), strict=True)
        ]
        together = pacbayes_sigma_stack(on_gpu, xs, ys, seeds=[5, 6, 7], search_depth=6, draws=3)
    assert together == alone
