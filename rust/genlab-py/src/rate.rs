//! Bindings of genlab_core::rate. Token arrays arrive C-contiguous and already reshaped by
//! `genlab/rate.py` to (groups, N, d) (or (B, K, N, p) when projected), float64 or float32; U is
//! float64 of shape (K, d, p). Every function returns the per-group values and the number of
//! factorizations that needed a jitter (Python warns).

use genlab_core::rate::{
    self, ProjectedTokens, RateOptions, Rates, Sparsity, Subspaces, TokenGroups,
};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray3, PyReadonlyArray4};
use pyo3::prelude::*;
use pyo3::types::PyModule;

use crate::errors::IntoPyResult;
use crate::parallel::run;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(coding_rate, m)?)?;
    m.add_function(wrap_pyfunction!(compressed_coding_rate, m)?)?;
    m.add_function(wrap_pyfunction!(compressed_coding_rate_projected, m)?)?;
    m.add_function(wrap_pyfunction!(rate_reduction, m)?)?;
    m.add_function(wrap_pyfunction!(sparse_rate_reduction, m)?)?;
    m.add_function(wrap_pyfunction!(srr_measure, m)?)?;
    m.add_function(wrap_pyfunction!(sparsity, m)?)?;
    m.add_function(wrap_pyfunction!(jitter_scale, m)?)?;
    m.add("JITTER_TRIES", rate::JITTER_TRIES)?;
    Ok(())
}

/// The coding-rate kernels' diagonal jitter of retry `t` per unit of the largest diagonal entry.
#[pyfunction]
fn jitter_scale(side: usize, machine_epsilon: f64, t: u32) -> f64 {
    rate::jitter_scale(side, machine_epsilon, t)
}

/// Token groups of shape (groups, N, d) in the caller's float type.
#[derive(FromPyObject)]
enum TokenArray<'py> {
    F64(PyReadonlyArray3<'py, f64>),
    F32(PyReadonlyArray3<'py, f32>),
}

/// Runs `$body` (a core call returning `Result<Rates>`) with `$groups` bound to the token groups
/// of `$array`, whichever its float type, under a released GIL.
macro_rules! on_tokens {
    ($py:expr, $n_jobs:expr, $array:expr, $name:expr, |$groups:ident| $body:expr) => {
        match &$array {
            TokenArray::F64(a) => {
                let view = a.as_array();
                run($py, $n_jobs, || {
                    let $groups = TokenGroups::new($name, view)?;
                    $body
                })?
            }
            TokenArray::F32(a) => {
                let view = a.as_array();
                run($py, $n_jobs, || {
                    let $groups = TokenGroups::new($name, view)?;
                    $body
                })?
            }
        }
    };
}

type RatesOut<'py> = (Bound<'py, PyArray1<f64>>, usize);

fn output(py: Python<'_>, rates: genlab_core::Result<Rates>) -> PyResult<RatesOut<'_>> {
    let rates = rates.py()?;
    Ok((rates.values.into_pyarray(py), rates.jittered_groups))
}

/// Coding rate of every group of Z (groups, N, d): (values, jittered_groups).
#[pyfunction]
#[pyo3(signature = (z, *, eps, normalize_tokens=false, n_jobs=None))]
fn coding_rate<'py>(
    py: Python<'py>,
    z: TokenArray<'py>,
    eps: f64,
    normalize_tokens: bool,
    n_jobs: Option<i64>,
) -> PyResult<RatesOut<'py>> {
    let opts = RateOptions::new(eps, normalize_tokens).py()?;
    let rates = on_tokens!(py, n_jobs, z, "Z", |groups| rate::coding_rate(
        &groups, &opts
    ));
    output(py, rates)
}

/// The functions of Z and U, and their extra arguments.
#[derive(Clone, Copy)]
enum OverSubspaces {
    Compressed,
    Reduction,
    SparseReduction(f64, Sparsity),
    SrrMeasure(f64, Sparsity),
}

/// Runs one of the functions of Z and U with the GIL released.
fn over_subspaces<'py>(
    py: Python<'py>,
    z: TokenArray<'py>,
    u: PyReadonlyArray3<'py, f64>,
    opts: RateOptions,
    n_jobs: Option<i64>,
    which: OverSubspaces,
) -> PyResult<RatesOut<'py>> {
    let u = u.as_array();
    let rates = on_tokens!(py, n_jobs, z, "Z", |groups| {
        let u = Subspaces::new(u)?;
        match which {
            OverSubspaces::Compressed => rate::compressed_coding_rate(&groups, &u, &opts),
            OverSubspaces::Reduction => rate::rate_reduction(&groups, &u, &opts),
            OverSubspaces::SparseReduction(lam, kind) => {
                rate::sparse_rate_reduction(&groups, &u, &opts, lam, kind)
            }
            OverSubspaces::SrrMeasure(lam, kind) => {
                rate::srr_measure(&groups, &u, &opts, lam, kind)
            }
        }
    });
    output(py, rates)
}

/// Compressed coding rate of every group of Z (groups, N, d) over U (K, d, p).
#[pyfunction]
#[pyo3(signature = (z, u, *, eps, normalize_tokens=false, n_jobs=None))]
fn compressed_coding_rate<'py>(
    py: Python<'py>,
    z: TokenArray<'py>,
    u: PyReadonlyArray3<'py, f64>,
    eps: f64,
    normalize_tokens: bool,
    n_jobs: Option<i64>,
) -> PyResult<RatesOut<'py>> {
    let opts = RateOptions::new(eps, normalize_tokens).py()?;
    over_subspaces(py, z, u, opts, n_jobs, OverSubspaces::Compressed)
}

/// Projected tokens of shape (B, K, N, p) in the caller's float type.
#[derive(FromPyObject)]
enum ProjectedArray<'py> {
    F64(PyReadonlyArray4<'py, f64>),
    F32(PyReadonlyArray4<'py, f32>),
}

/// Compressed coding rate of already-projected tokens ZU (B, K, N, p): one value per b.
#[pyfunction]
#[pyo3(signature = (zu, *, eps, normalize_tokens=false, n_jobs=None))]
fn compressed_coding_rate_projected<'py>(
    py: Python<'py>,
    zu: ProjectedArray<'py>,
    eps: f64,
    normalize_tokens: bool,
    n_jobs: Option<i64>,
) -> PyResult<RatesOut<'py>> {
    let opts = RateOptions::new(eps, normalize_tokens).py()?;
    macro_rules! projected {
        ($a:expr) => {{
            let view = $a.as_array();
            run(py, n_jobs, || {
                rate::compressed_coding_rate_projected(&ProjectedTokens::new("ZU", view)?, &opts)
            })?
        }};
    }
    let rates = match &zu {
        ProjectedArray::F64(a) => projected!(a),
        ProjectedArray::F32(a) => projected!(a),
    };
    output(py, rates)
}

/// Rate reduction R - R^c of every group of Z over U.
#[pyfunction]
#[pyo3(signature = (z, u, *, eps, normalize_tokens=false, n_jobs=None))]
fn rate_reduction<'py>(
    py: Python<'py>,
    z: TokenArray<'py>,
    u: PyReadonlyArray3<'py, f64>,
    eps: f64,
    normalize_tokens: bool,
    n_jobs: Option<i64>,
) -> PyResult<RatesOut<'py>> {
    let opts = RateOptions::new(eps, normalize_tokens).py()?;
    over_subspaces(py, z, u, opts, n_jobs, OverSubspaces::Reduction)
}

/// Sparse rate reduction R - R^c - lam * sparsity of every group of Z over U.
#[pyfunction]
#[pyo3(signature = (z, u, *, eps, lam, sparsity="l0", normalize_tokens=false, n_jobs=None))]
#[allow(clippy::too_many_arguments)]
fn sparse_rate_reduction<'py>(
    py: Python<'py>,
    z: TokenArray<'py>,
    u: PyReadonlyArray3<'py, f64>,
    eps: f64,
    lam: f64,
    sparsity: &str,
    normalize_tokens: bool,
    n_jobs: Option<i64>,
) -> PyResult<RatesOut<'py>> {
    let opts = RateOptions::new(eps, normalize_tokens).py()?;
    let which = OverSubspaces::SparseReduction(lam, Sparsity::parse(sparsity).py()?);
    over_subspaces(py, z, u, opts, n_jobs, which)
}

/// The SRR measure of Hu et al., lam * sparsity + R^c - R, of every group of Z over U.
#[pyfunction]
#[pyo3(signature = (z, u, *, eps, lam=1.0, sparsity="l0", normalize_tokens=false, n_jobs=None))]
#[allow(clippy::too_many_arguments)]
fn srr_measure<'py>(
    py: Python<'py>,
    z: TokenArray<'py>,
    u: PyReadonlyArray3<'py, f64>,
    eps: f64,
    lam: f64,
    sparsity: &str,
    normalize_tokens: bool,
    n_jobs: Option<i64>,
) -> PyResult<RatesOut<'py>> {
    let opts = RateOptions::new(eps, normalize_tokens).py()?;
    let which = OverSubspaces::SrrMeasure(lam, Sparsity::parse(sparsity).py()?);
    over_subspaces(py, z, u, opts, n_jobs, which)
}

/// Per-token sparsity (||Z||_0 / N or ||Z||_1 / N) of every group of Z.
#[pyfunction]
#[pyo3(signature = (z, *, kind="l0", n_jobs=None))]
fn sparsity<'py>(
    py: Python<'py>,
    z: TokenArray<'py>,
    kind: &str,
    n_jobs: Option<i64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let kind = Sparsity::parse(kind).py()?;
    let values = on_tokens!(py, n_jobs, z, "Z", |groups| {
        rate::sparsity(&groups, kind)
    });
    Ok(values.py()?.into_pyarray(py))
}
