//! Bindings of genlab_core::rank.

use std::sync::Mutex;

use genlab_core::rank::counts::{KENDALL_WORKSPACE_MAX_BYTES, KendallWorkspace};
use genlab_core::rank::{
    self, Alternative, Method, NanPolicy, TauOptions, Variant, across, cmi, granulated,
    grid::{Codes, Replicates},
    resampled, sign_error,
};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};

use crate::errors::{self, IntoPyResult};
use crate::parallel::run;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyKendallWorkspace>()?;
    m.add_function(wrap_pyfunction!(kendalltau, m)?)?;
    m.add_function(wrap_pyfunction!(kendalltau_many, m)?)?;
    m.add_function(wrap_pyfunction!(kendalltau_matrix, m)?)?;
    m.add_function(wrap_pyfunction!(granulated_kendall, m)?)?;
    m.add_function(wrap_pyfunction!(kendalltau_across_groups, m)?)?;
    m.add_function(wrap_pyfunction!(kendalltau_across_resampled_groups, m)?)?;
    m.add_function(wrap_pyfunction!(conditional_mutual_information, m)?)?;
    m.add_function(wrap_pyfunction!(sign_error_environments, m)?)?;
    Ok(())
}

fn options(
    variant: &str,
    method: &str,
    alternative: &str,
    nan_policy: &str,
) -> PyResult<TauOptions> {
    Ok(TauOptions {
        variant: Variant::parse(variant).py()?,
        method: Method::parse(method).py()?,
        alternative: Alternative::parse(alternative).py()?,
        nan_policy: NanPolicy::parse(nan_policy).py()?,
    })
}

/// Scratch memory of the large-n Kendall count that a caller keeps between calls (see
/// `genlab_core::rank::counts::KendallWorkspace`). A call that finds it in use by another thread
/// works with fresh memory instead of waiting.
#[pyclass(module = "genlab._core.rank", name = "KendallWorkspace")]
struct PyKendallWorkspace {
    inner: Mutex<KendallWorkspace>,
}

#[pymethods]
impl PyKendallWorkspace {
    #[new]
    #[pyo3(signature = (max_bytes=KENDALL_WORKSPACE_MAX_BYTES))]
    fn new(max_bytes: usize) -> Self {
        PyKendallWorkspace {
            inner: Mutex::new(KendallWorkspace::new(max_bytes)),
        }
    }

    /// Bytes held now.
    #[getter]
    fn nbytes(&self) -> usize {
        self.inner.try_lock().map_or(0, |w| w.bytes())
    }

    /// Frees every buffer (a call in progress keeps its own until it ends).
    fn release(&self) {
        if let Ok(mut w) = self.inner.try_lock() {
            w.release();
        }
    }

    fn __repr__(&self) -> String {
        format!("KendallWorkspace(nbytes={})", self.nbytes())
    }
}

/// Kendall's tau of two float64 arrays: (statistic, pvalue, n_used).
#[pyfunction]
#[pyo3(signature = (
    x, y, *, variant="b", method="auto", alternative="two-sided", nan_policy="propagate",
    workspace=None,
))]
#[allow(clippy::too_many_arguments)]
fn kendalltau(
    py: Python<'_>,
    x: PyReadonlyArray1<'_, f64>,
    y: PyReadonlyArray1<'_, f64>,
    variant: &str,
    method: &str,
    alternative: &str,
    nan_policy: &str,
    workspace: Option<PyRef<'_, PyKendallWorkspace>>,
) -> PyResult<(f64, f64, u64)> {
    let opts = options(variant, method, alternative, nan_policy)?;
    let (x, y) = (x.as_slice()?, y.as_slice()?);
    let shared = workspace.as_ref().map(|w| &w.inner);
    let r = run(py, None, || {
        let mut kept = shared.and_then(|m| m.try_lock().ok());
        let mut fresh = KendallWorkspace::default();
        let ws = kept.as_deref_mut().unwrap_or(&mut fresh);
        rank::kendalltau_in(x, y, &opts, ws)
    })?
    .py()?;
    Ok((r.statistic, r.pvalue, r.n_used))
}

type ManyResult<'py> = (
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<u64>>,
);

/// Kendall's tau of every column of X (n, m) against y (n): (statistics, pvalues, n_used).
#[pyfunction]
#[pyo3(signature = (
    x, y, *, variant="b", method="auto", alternative="two-sided", nan_policy="propagate",
    n_jobs=None,
))]
#[allow(clippy::too_many_arguments)]
fn kendalltau_many<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    y: PyReadonlyArray1<'py, f64>,
    variant: &str,
    method: &str,
    alternative: &str,
    nan_policy: &str,
    n_jobs: Option<i64>,
) -> PyResult<ManyResult<'py>> {
    let opts = options(variant, method, alternative, nan_policy)?;
    let (x, y) = (x.as_array(), y.as_slice()?);
    let results = run(py, n_jobs, || rank::kendalltau_many(x, y, &opts))?.py()?;
    let stats: Vec<f64> = results.iter().map(|r| r.statistic).collect();
    let pvalues: Vec<f64> = results.iter().map(|r| r.pvalue).collect();
    let n_used: Vec<u64> = results.iter().map(|r| r.n_used).collect();
    Ok((
        stats.into_pyarray(py),
        pvalues.into_pyarray(py),
        n_used.into_pyarray(py),
    ))
}

/// Matrix (m, m) of pairwise Kendall taus between the columns of X (n, m).
#[pyfunction]
#[pyo3(signature = (x, *, variant="b", nan_policy="omit", memory_limit=f64::INFINITY, n_jobs=None))]
fn kendalltau_matrix<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    variant: &str,
    nan_policy: &str,
    memory_limit: f64,
    n_jobs: Option<i64>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let variant = Variant::parse(variant).py()?;
    let nan_policy = NanPolicy::parse(nan_policy).py()?;
    let x = x.as_array();
    let matrix = run(py, n_jobs, || {
        rank::kendalltau_matrix(x, variant, nan_policy, memory_limit)
    })?
    .py()?;
    Ok(matrix.into_pyarray(py))
}

fn codes_of<'a>(codes: &'a PyReadonlyArray2<'_, i64>) -> PyResult<Codes<'a>> {
    Codes::new(codes.as_array()).py()
}

/// Granulated Kendall coefficient, as a dict: axis_psi, cells_used, cells_skipped (arrays per
/// axis), psi, overall_tau, n_used, n_configurations.
#[pyfunction]
#[pyo3(signature = (
    measure, gap, codes, *, variant="a", replicates="pairs", nan_policy="raise", n_jobs=None,
))]
#[allow(clippy::too_many_arguments)]
fn granulated_kendall<'py>(
    py: Python<'py>,
    measure: PyReadonlyArray1<'py, f64>,
    gap: PyReadonlyArray1<'py, f64>,
    codes: PyReadonlyArray2<'py, i64>,
    variant: &str,
    replicates: &str,
    nan_policy: &str,
    n_jobs: Option<i64>,
) -> PyResult<Bound<'py, PyDict>> {
    let variant = Variant::parse(variant).py()?;
    let replicates = Replicates::parse(replicates).py()?;
    let nan_policy = NanPolicy::parse(nan_policy).py()?;
    let codes = codes_of(&codes)?;
    let (measure, gap) = (measure.as_slice()?, gap.as_slice()?);
    let g = run(py, n_jobs, || {
        granulated::granulated_kendall(measure, gap, &codes, variant, replicates, nan_policy)
    })?
    .py()?;
    let used: Vec<u64> = g.cells_used.iter().map(|&c| c as u64).collect();
    let skipped: Vec<u64> = g.cells_skipped.iter().map(|&c| c as u64).collect();
    let out = PyDict::new(py);
    out.set_item("axis_psi", g.axis_psi.into_pyarray(py))?;
    out.set_item("cells_used", used.into_pyarray(py))?;
    out.set_item("cells_skipped", skipped.into_pyarray(py))?;
    out.set_item("psi", g.psi)?;
    out.set_item("overall_tau", g.overall_tau)?;
    out.set_item("n_used", g.n_used)?;
    out.set_item("n_configurations", g.n_configurations)?;
    Ok(out)
}

/// tau of every column of X (n, m) against y (n) over the pairs whose groups differ.
#[pyfunction]
#[pyo3(signature = (x, y, groups, *, variant="a", nan_policy="omit", n_jobs=None))]
#[allow(clippy::too_many_arguments)]
fn kendalltau_across_groups<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    y: PyReadonlyArray1<'py, f64>,
    groups: PyReadonlyArray1<'py, i64>,
    variant: &str,
    nan_policy: &str,
    n_jobs: Option<i64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let variant = Variant::parse(variant).py()?;
    let nan_policy = NanPolicy::parse(nan_policy).py()?;
    let (x, y, groups) = (x.as_array(), y.as_slice()?, groups.as_slice()?);
    let taus = run(py, n_jobs, || {
        across::kendalltau_across_groups(x, y, groups, variant, nan_policy)
    })?
    .py()?;
    Ok(taus.into_pyarray(py))
}

/// tau of every column of X (n, m) against y (n) over the pairs whose groups differ, in each
/// resample of the groups (counts: B resamples x k groups, copies of each group): a (B, m) array.
#[pyfunction]
#[pyo3(signature = (x, y, groups, counts, *, variant="a", nan_policy="omit", n_jobs=None))]
#[allow(clippy::too_many_arguments)]
fn kendalltau_across_resampled_groups<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    y: PyReadonlyArray1<'py, f64>,
    groups: PyReadonlyArray1<'py, i64>,
    counts: PyReadonlyArray2<'py, i64>,
    variant: &str,
    nan_policy: &str,
    n_jobs: Option<i64>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let variant = Variant::parse(variant).py()?;
    let nan_policy = NanPolicy::parse(nan_policy).py()?;
    let (x, y, groups, counts) = (
        x.as_array(),
        y.as_slice()?,
        groups.as_slice()?,
        counts.as_array(),
    );
    let taus = run(py, n_jobs, || {
        resampled::kendalltau_across_resampled_groups(x, y, groups, counts, variant, nan_policy)
    })?
    .py()?;
    Ok(taus.into_pyarray(py))
}

/// (axes, mutual_information, gap_entropy, score) of one conditioning subset.
type SubsetRow = (Vec<usize>, f64, f64, f64);

/// Conditional-MI scores per conditioning subset: list of (axes, mutual_information, gap_entropy,
/// score).
#[pyfunction]
#[pyo3(signature = (
    measure, gap, codes, *, convention="genlab", replicates="pairs", min_subset_size=0,
    max_subset_size=2, nan_policy="raise", n_jobs=None,
))]
#[allow(clippy::too_many_arguments)]
fn conditional_mutual_information(
    py: Python<'_>,
    measure: PyReadonlyArray1<'_, f64>,
    gap: PyReadonlyArray1<'_, f64>,
    codes: PyReadonlyArray2<'_, i64>,
    convention: &str,
    replicates: &str,
    min_subset_size: usize,
    max_subset_size: usize,
    nan_policy: &str,
    n_jobs: Option<i64>,
) -> PyResult<Vec<SubsetRow>> {
    let convention = cmi::Convention::parse(convention).py()?;
    let replicates = Replicates::parse(replicates).py()?;
    let nan_policy = NanPolicy::parse(nan_policy).py()?;
    let codes = codes_of(&codes)?;
    let (measure, gap) = (measure.as_slice()?, gap.as_slice()?);
    let scores = run(py, n_jobs, || {
        cmi::conditional_mutual_information(
            measure,
            gap,
            &codes,
            convention,
            replicates,
            min_subset_size,
            max_subset_size,
            nan_policy,
        )
    })?
    .py()?;
    Ok(scores
        .into_iter()
        .map(|s| (s.axes, s.mutual_information, s.gap_entropy, s.score))
        .collect())
}

/// Sign-error environments, as a dict of arrays: axis, model_a, model_b, error, weight,
/// effective_sample_size, kept, n_pairs.
#[pyfunction]
#[pyo3(name = "sign_error", signature = (
    measure, gap, codes, *, weighting="none", n_samples=None, min_weight=0.5, min_ess=12.0,
    nan_policy="raise", n_jobs=None,
))]
#[allow(clippy::too_many_arguments)]
fn sign_error_environments<'py>(
    py: Python<'py>,
    measure: PyReadonlyArray1<'py, f64>,
    gap: PyReadonlyArray1<'py, f64>,
    codes: PyReadonlyArray2<'py, i64>,
    weighting: &str,
    n_samples: Option<f64>,
    min_weight: f64,
    min_ess: f64,
    nan_policy: &str,
    n_jobs: Option<i64>,
) -> PyResult<Bound<'py, PyDict>> {
    let nan_policy = NanPolicy::parse(nan_policy).py()?;
    let weighting = match (weighting, n_samples) {
        ("none", _) => sign_error::Weighting::Uniform,
        ("hoeffding", Some(n_samples)) => sign_error::Weighting::Hoeffding {
            n_samples,
            min_weight,
        },
        ("hoeffding", None) => {
            return Err(errors::invalid(
                "n_samples",
                "weighting=\"hoeffding\" needs the number of samples each gap was estimated from",
            ));
        }
        (other, _) => {
            return Err(errors::invalid(
                "weighting",
                format!("expected one of \"none\", \"hoeffding\", got \"{other}\""),
            ));
        }
    };
    let codes = codes_of(&codes)?;
    let (measure, gap) = (measure.as_slice()?, gap.as_slice()?);
    let envs = run(py, n_jobs, || {
        sign_error::sign_error(measure, gap, &codes, weighting, min_ess, nan_policy)
    })?
    .py()?;
    let out = PyDict::new(py);
    let column =
        |f: &dyn Fn(&sign_error::Environment) -> u64| -> Vec<u64> { envs.iter().map(f).collect() };
    out.set_item("axis", column(&|e| e.axis as u64).into_pyarray(py))?;
    out.set_item("model_a", column(&|e| e.model_a as u64).into_pyarray(py))?;
    out.set_item("model_b", column(&|e| e.model_b as u64).into_pyarray(py))?;
    out.set_item("n_pairs", column(&|e| e.n_pairs as u64).into_pyarray(py))?;
    let error: Vec<f64> = envs.iter().map(|e| e.error).collect();
    let weight: Vec<f64> = envs.iter().map(|e| e.weight).collect();
    let ess: Vec<f64> = envs.iter().map(|e| e.effective_sample_size).collect();
    let kept: Vec<bool> = envs.iter().map(|e| e.kept).collect();
    out.set_item("error", error.into_pyarray(py))?;
    out.set_item("weight", weight.into_pyarray(py))?;
    out.set_item("effective_sample_size", ess.into_pyarray(py))?;
    out.set_item("kept", kept.into_pyarray(py))?;
    Ok(out)
}
