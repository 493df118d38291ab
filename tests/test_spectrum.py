"""genlab.spectrum: power-law fits of eigenvalue spectra against a direct numpy transcription of
the rule (WeightWatcher's fit: MLE exponent per candidate xmin, the KS-minimizing one; its
small-sample rule below 20 values)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from genlab import errors
from genlab.spectrum import power_law_fit, power_law_fit_many


def _reference(values: np.ndarray) -> tuple[float, float, float, int]:
    """(alpha, xmin, D, n_tail), one candidate at a time, as the rule is written."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    logs = np.log(x)
    return _reference_fit(x, logs)


def _reference_fit(x: np.ndarray, logs: np.ndarray) -> tuple[float, float, float, int]:
    size = len(x)
    candidates = []
    for i in range(size - 1):
        n = size - i
        s = logs[i:].sum() - n * logs[i]
        if size < 20:
            if n < 8 or s <= 1e-12:
                continue
            alpha = 1 + (n - 1) / s
            if alpha <= 1:
                continue
        else:
            alpha = 1 + n / s if x[i] < x[-1] else math.nan  # equal values: no exponent
        if alpha > 1 and math.isfinite(alpha):
            cdf = 1 - (x[i:] / x[i]) ** (1 - alpha)
            d = float(np.max(np.abs(cdf - np.arange(n) / n)))
        else:
            d = 1.0
        objective = d - 0.868 / math.sqrt(n) if size < 20 else d
        candidates.append((objective, i, alpha, d))
    if not candidates:  # small sample, no tail of 8 qualifies: the whole spectrum
        n, s = size, logs.sum() - size * logs[0]
        alpha = 1 + (n - 1) / s
        d = float(np.max(np.abs(1 - (x / x[0]) ** (1 - alpha) - np.arange(n) / n)))
        return alpha, float(x[0]), d, n
    _, i, alpha, d = min(candidates, key=lambda c: (c[0], c[1]))
    return alpha, float(x[i]), d, size - i


def _spectra() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = [
        (1 - rng.random(500)) ** (-1 / 1.5),  # Pareto, density x^(-2.5)
        rng.lognormal(size=200),
        np.linalg.eigvalsh((w := rng.standard_t(3, size=(300, 100))).T @ w),  # heavy-tailed W
        np.linalg.eigvalsh((g := rng.normal(size=(300, 60))).T @ g),  # Marchenko-Pastur bulk
        np.round(rng.lognormal(size=120), 1) + 0.1,  # many ties
        rng.lognormal(size=15),  # small-sample rule
        rng.lognormal(size=19),
        rng.lognormal(size=9),  # one small tail qualifies
        rng.lognormal(size=5),  # none: the whole spectrum
    ]
    return out


@pytest.mark.parametrize("index", range(9))
def test_fits_match_the_rule_written_directly(index: int) -> None:
    values = _spectra()[index]
    fit = power_law_fit(values)
    alpha, xmin, d, n_tail = _reference(values)
    assert fit.n_tail == n_tail
    assert fit.xmin == xmin
    assert fit.alpha == pytest.approx(alpha, rel=1e-10)
    assert fit.ks_distance == pytest.approx(d, rel=1e-9, abs=1e-12)
    assert fit.sigma == pytest.approx((alpha - 1) / math.sqrt(n_tail), rel=1e-10)


def test_a_pareto_sample_gives_its_exponent_and_order_does_not_matter() -> None:
    rng = np.random.default_rng(1)
    sample = (1 - rng.random(20_000)) ** (-1 / 2.0)  # density x^(-3)
    fit = power_law_fit(sample)
    assert fit.alpha == pytest.approx(3.0, abs=0.1)
    assert power_law_fit(rng.permutation(sample)) == fit


def test_many_is_one_by_one() -> None:
    spectra = _spectra()
    assert power_law_fit_many(spectra, n_jobs=2) == [power_law_fit(s) for s in spectra]
    assert power_law_fit_many([]) == []


def test_bad_spectra_are_named() -> None:
    good = np.arange(1.0, 30.0)
    with pytest.raises(errors.InvalidArgumentError, match=r"spectra\[1\].*not positive"):
        power_law_fit_many([good, np.array([1.0, 0.0, 2.0])])
    with pytest.raises(errors.NonFiniteError, match=r"spectra\[0\]"):
        power_law_fit_many([np.array([1.0, np.nan, 3.0])])
    with pytest.raises(errors.InvalidArgumentError, match="all values are equal"):
        power_law_fit(np.full(25, 3.0))
    with pytest.raises(errors.EmptyInputError, match=r"at least 2"):
        power_law_fit([1.0])
    with pytest.raises(errors.ShapeError, match="1-D"):
        power_law_fit(np.ones((3, 3)))
    with pytest.raises(TypeError, match="sequence of 1-D arrays"):
        power_law_fit_many(good)  # type: ignore[arg-type]


def test_the_powerlaw_package_chooses_a_worse_fit() -> None:
    """What docs/formulas/spectrum.md says of powerlaw 2.0: on a heavy-tailed layer its fit has
    a larger KS distance than genlab's, which is the smallest over all candidates."""
    powerlaw = pytest.importorskip("powerlaw")
    rng = np.random.default_rng(0)
    w = rng.standard_t(3, size=(1000, 500))
    eigenvalues = np.linalg.eigvalsh(w.T @ w)
    ours = power_law_fit(eigenvalues)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = powerlaw.Fit(eigenvalues, xmax=None, verbose=False)
    assert ours.ks_distance < theirs.power_law.D
    assert ours.xmin != theirs.xmin


def test_a_layer_without_a_tail_has_no_fit() -> None:
    pytest.importorskip("torch")
    import torch

    from genlab.torch.measures import layer_spectra

    model = torch.nn.Sequential(torch.nn.Linear(4, 4, bias=False), torch.nn.Linear(4, 1))
    with torch.no_grad():
        model[0].weight.copy_(2.0 * torch.eye(4))  # four equal eigenvalues: nothing to fit
    plain, single = layer_spectra(model)
    assert plain.fit is None
    assert math.isnan(plain.alpha)
    assert math.isnan(plain.alpha_weighted)
    assert plain.lambda_max == pytest.approx(4.0)
    assert plain.stable_rank == pytest.approx(4.0)
    assert single.fit is None
    assert len(single.eigenvalues) == 1


def test_the_spectrum_measures_of_a_model() -> None:
    """The four measures are layer means of the fits of each weight's ESD; alpha and the stable
    rank do not change when a layer is scaled, log_spectral_norm moves by log10(a^2) / layers."""
    torch = pytest.importorskip("torch")
    from genlab.torch.data import load_dataset
    from genlab.torch.measures import (
        MEASURES,
        canonical_form,
        compute_measures,
        layer_spectra,
        measure_model,
        weight_tensors,
    )
    from genlab.torch.models import build_model

    names = [n for n, info in MEASURES.items() if info.group == "spectrum"]
    assert names == [
        "spectral_alpha",
        "spectral_alpha_weighted",
        "log_spectral_norm",
        "stable_rank",
    ]
    data = load_dataset("digits", train_size=100)
    model = build_model("mlp", num_classes=10, input_shape=data.input_shape, seed=0)
    got = compute_measures(model, data, names=names)
    layers = [w.numpy() for _, w in weight_tensors(canonical_form(model))]
    esds = [np.linalg.svd(w, compute_uv=False) ** 2 for w in layers]
    esds = [e[e > 1e-10 * e.max()] for e in esds]
    fits = [power_law_fit(e) for e in esds]
    assert got["spectral_alpha"] == pytest.approx(np.mean([f.alpha for f in fits]), rel=1e-9)
    weighted = [f.alpha * np.log10(e.max()) for f, e in zip(fits, esds, strict=True)]
    assert got["spectral_alpha_weighted"] == pytest.approx(np.mean(weighted), rel=1e-9)
    assert got["log_spectral_norm"] == pytest.approx(np.mean([np.log10(e.max()) for e in esds]))
    assert got["stable_rank"] == pytest.approx(np.mean([e.sum() / e.max() for e in esds]))
    # The per-layer values behind the means, as measure_model returns them with the values.
    measured = measure_model(model, data, names=names)
    assert [layer.name for layer in measured.spectra] == [n for n, _ in weight_tensors(model)]
    for layer, esd, fit in zip(measured.spectra, esds, fits, strict=True):
        np.testing.assert_allclose(layer.eigenvalues, esd, rtol=1e-9)
        assert layer.alpha == pytest.approx(fit.alpha, rel=1e-9)
        assert layer.lambda_max == pytest.approx(esd.max(), rel=1e-12)
        assert layer.stable_rank == pytest.approx(esd.sum() / esd.max(), rel=1e-12)
    assert measured.values == got
    assert [layer.alpha for layer in layer_spectra(model)] == [
        layer.alpha for layer in measured.spectra
    ]
    assert measure_model(model, data, names=["params"]).spectra == ()
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    with torch.no_grad():
        first.weight.mul_(4.0)
    scaled = compute_measures(model, data, names=names)
    assert scaled["spectral_alpha"] == pytest.approx(got["spectral_alpha"], rel=1e-6)
    assert scaled["stable_rank"] == pytest.approx(got["stable_rank"], rel=1e-6)
    shift = np.log10(16.0) / len(layers)
    assert scaled["log_spectral_norm"] == pytest.approx(got["log_spectral_norm"] + shift, rel=1e-6)
