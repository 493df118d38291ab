//! Bindings of genlab_core::kde. Arrays arrive as float64 or float32 (never mixed within a call:
//! genlab.kde casts them to one dtype) and are read in place, whatever their strides.

use genlab_core::Element;
use genlab_core::kde::{self, DensityOptions, Kernel, LooCvOptions, Scale};
use ndarray::{Array2, ArrayView2};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};

use crate::errors::{self, IntoPyResult};
use crate::parallel::run;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(log_density, m)?)?;
    m.add_function(wrap_pyfunction!(loo_cv_bandwidth, m)?)?;
    m.add_function(wrap_pyfunction!(nearest_neighbor_bandwidth, m)?)?;
    m.add_function(wrap_pyfunction!(regime, m)?)?;
    m.add_function(wrap_pyfunction!(information_plane_many, m)?)?;
    Ok(())
}

/// A 2-D float array of either precision.
#[derive(FromPyObject)]
enum Floats<'py> {
    F64(PyReadonlyArray2<'py, f64>),
    F32(PyReadonlyArray2<'py, f32>),
}

fn mixed_dtypes() -> PyErr {
    errors::dtype("data and queries: expected the same dtype (both float64 or both float32)")
}

/// Calls `$body` with `$data: ArrayView2<T>` and `$queries: Option<ArrayView2<T>>` of one dtype.
macro_rules! with_views {
    ($data:expr, $queries:expr, |$d:ident, $q:ident| $body:expr) => {
        match ($data, $queries) {
            (Floats::F64(a), None) => {
                let $d = a.as_array();
                let $q: Option<ArrayView2<'_, f64>> = None;
                $body
            }
            (Floats::F64(a), Some(Floats::F64(b))) => {
                let ($d, $q) = (a.as_array(), Some(b.as_array()));
                $body
            }
            (Floats::F32(a), None) => {
                let $d = a.as_array();
                let $q: Option<ArrayView2<'_, f32>> = None;
                $body
            }
            (Floats::F32(a), Some(Floats::F32(b))) => {
                let ($d, $q) = (a.as_array(), Some(b.as_array()));
                $body
            }
            _ => return Err(mixed_dtypes()),
        }
    };
}

/// Exact log-density at each query (None: at the data points). Exactly one of `bandwidth` (an
/// isotropic h) and `cholesky` (lower factor of a full Gaussian kernel covariance).
#[pyfunction]
#[pyo3(signature = (
    data, queries=None, *, bandwidth=None, cholesky=None, weights=None, kernel="gaussian",
    leave_one_out=false, n_jobs=None,
))]
#[allow(clippy::too_many_arguments)]
fn log_density<'py>(
    py: Python<'py>,
    data: Floats<'py>,
    queries: Option<Floats<'py>>,
    bandwidth: Option<f64>,
    cholesky: Option<PyReadonlyArray2<'py, f64>>,
    weights: Option<PyReadonlyArray1<'py, f64>>,
    kernel: &str,
    leave_one_out: bool,
    n_jobs: Option<i64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let kernel = Kernel::parse(kernel).py()?;
    let scale = match (bandwidth, &cholesky) {
        (Some(h), None) => Scale::Bandwidth(h),
        (None, Some(l)) => Scale::Cholesky(l.as_array()),
        _ => {
            return Err(errors::invalid(
                "bandwidth, cholesky",
                "expected exactly one of them",
            ));
        }
    };
    let weights: Option<Vec<f64>> = weights.map(|w| w.as_array().to_vec());
    let options = DensityOptions {
        kernel,
        scale,
        leave_one_out,
    };
    let values = with_views!(data, queries, |d, q| run(py, n_jobs, || {
        kde::log_density(d, q, weights.as_deref(), &options)
    })?
    .py()?);
    Ok(values.into_pyarray(py))
}

/// Leave-one-out CV bandwidth, as a dict: bandwidth, score, truncated_score,
/// truncation_error_bound, n_neighbors, exact, at_boundary, log_bandwidths, scores.
#[pyfunction]
#[pyo3(signature = (data, *, n_neighbors=None, bounds=None, n_jobs=None))]
fn loo_cv_bandwidth<'py>(
    py: Python<'py>,
    data: Floats<'py>,
    n_neighbors: Option<usize>,
    bounds: Option<(f64, f64)>,
    n_jobs: Option<i64>,
) -> PyResult<Bound<'py, PyDict>> {
    let options = LooCvOptions {
        n_neighbors,
        bounds,
    };
    let cv = with_views!(data, None::<Floats<'py>>, |d, _q| run(py, n_jobs, || {
        kde::loo_cv_bandwidth(d, &options)
    })?
    .py()?);
    let out = PyDict::new(py);
    out.set_item("bandwidth", cv.bandwidth)?;
    out.set_item("score", cv.score)?;
    out.set_item("truncated_score", cv.truncated_score)?;
    out.set_item("truncation_error_bound", cv.truncation_error_bound)?;
    out.set_item("n_neighbors", cv.n_neighbors)?;
    out.set_item("exact", cv.exact)?;
    out.set_item("at_boundary", cv.at_boundary)?;
    out.set_item("log_bandwidths", cv.log_bandwidths.into_pyarray(py))?;
    out.set_item("scores", cv.scores.into_pyarray(py))?;
    Ok(out)
}

/// Nearest-neighbour bandwidth: sqrt of the mean squared nearest-neighbour distance per coordinate.
#[pyfunction]
#[pyo3(signature = (data, *, n_jobs=None))]
fn nearest_neighbor_bandwidth(
    py: Python<'_>,
    data: Floats<'_>,
    n_jobs: Option<i64>,
) -> PyResult<f64> {
    with_views!(data, None::<Floats<'_>>, |d, _q| run(py, n_jobs, || {
        kde::nearest_neighbor_bandwidth(d)
    })?
    .py())
}

/// Regime diagnostics, as a dict: alpha, h_g, h_clt, h_kl, inverse_y2, eigenvalues, label.
#[pyfunction]
#[pyo3(signature = (data, bandwidth, queries=None, *, n_jobs=None))]
fn regime<'py>(
    py: Python<'py>,
    data: Floats<'py>,
    bandwidth: f64,
    queries: Option<Floats<'py>>,
    n_jobs: Option<i64>,
) -> PyResult<Bound<'py, PyDict>> {
    let report = with_views!(data, queries, |d, q| run(py, n_jobs, || {
        kde::regime(d, q, bandwidth)
    })?
    .py()?);
    let out = PyDict::new(py);
    out.set_item("alpha", report.alpha)?;
    out.set_item("h_g", report.h_g)?;
    out.set_item("h_clt", report.h_clt)?;
    out.set_item("h_kl", report.h_kl)?;
    out.set_item("inverse_y2", report.inverse_y2.into_pyarray(py))?;
    out.set_item("eigenvalues", report.eigenvalues.into_pyarray(py))?;
    out.set_item("label", report.regime.label())?;
    Ok(out)
}

fn planes<T: Element>(
    py: Python<'_>,
    views: &[ArrayView2<'_, T>],
    labels: Option<&[i64]>,
    noise_variances: &[f64],
    n_jobs: Option<i64>,
) -> PyResult<Vec<kde::InformationPlane>> {
    run(py, n_jobs, || {
        kde::information_plane_many(views, labels, noise_variances)
    })?
    .py()
}

/// Information plane of every activation array (same N rows), as a dict of (n_arrays, n_noise)
/// arrays: i_xt_upper, i_xt_lower, i_ty_upper, i_ty_lower (the I(T;Y) ones with 0 columns
/// without labels).
#[pyfunction]
#[pyo3(signature = (activations, noise_variances, labels=None, *, n_jobs=None))]
fn information_plane_many<'py>(
    py: Python<'py>,
    activations: Vec<Floats<'py>>,
    noise_variances: Vec<f64>,
    labels: Option<PyReadonlyArray1<'py, i64>>,
    n_jobs: Option<i64>,
) -> PyResult<Bound<'py, PyDict>> {
    let labels: Option<Vec<i64>> = labels.map(|l| l.as_array().to_vec());
    let all_f32 = activations.iter().all(|a| matches!(a, Floats::F32(_)));
    let all_f64 = activations.iter().all(|a| matches!(a, Floats::F64(_)));
    let result = if all_f64 {
        let views: Vec<ArrayView2<'_, f64>> = activations
            .iter()
            .filter_map(|a| match a {
                Floats::F64(x) => Some(x.as_array()),
                Floats::F32(_) => None,
            })
            .collect();
        planes(py, &views, labels.as_deref(), &noise_variances, n_jobs)?
    } else if all_f32 {
        let views: Vec<ArrayView2<'_, f32>> = activations
            .iter()
            .filter_map(|a| match a {
                Floats::F32(x) => Some(x.as_array()),
                Floats::F64(_) => None,
            })
            .collect();
        planes(py, &views, labels.as_deref(), &noise_variances, n_jobs)?
    } else {
        return Err(errors::dtype(
            "activations: expected arrays of one dtype (all float64 or all float32)",
        ));
    };
    let take = |f: fn(&kde::InformationPlane) -> &[f64]| {
        let cols = result.first().map_or(0, |p| f(p).len());
        let flat: Vec<f64> = result.iter().flat_map(|p| f(p).iter().copied()).collect();
        Array2::from_shape_vec((result.len(), cols), flat)
            .map(|a| a.into_pyarray(py))
            .map_err(|e| errors::internal("information plane output shape", e))
    };
    let out = PyDict::new(py);
    out.set_item("i_xt_upper", take(|p| &p.i_xt_upper)?)?;
    out.set_item("i_xt_lower", take(|p| &p.i_xt_lower)?)?;
    out.set_item("i_ty_upper", take(|p| &p.i_ty_upper)?)?;
    out.set_item("i_ty_lower", take(|p| &p.i_ty_lower)?)?;
    Ok(out)
}
