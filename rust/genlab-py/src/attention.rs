//! Bindings of genlab_core::attention.

use genlab_core::attention::{
    self, AttentionInputs, Basis, KeyWindow, Mask, PolyPlan, PolyRequest, TensorInputs,
};
use numpy::{IntoPyArray, PyArray3, PyReadonlyArray3};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};

use crate::errors::IntoPyResult;
use crate::parallel::run;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(tensor_attention_exact, m)?)?;
    m.add_function(wrap_pyfunction!(tensor_attention_poly, m)?)?;
    m.add_function(wrap_pyfunction!(attention_exact, m)?)?;
    m.add_function(wrap_pyfunction!(logit_bound, m)?)?;
    m.add_function(wrap_pyfunction!(poly_plan, m)?)?;
    m.add_function(wrap_pyfunction!(monomial_table, m)?)?;
    Ok(())
}

/// Exact tensor attention of (batch, n, d) queries and keys and (batch, n, dv) values.
#[pyfunction]
#[pyo3(signature = (q, k1, k2, v1, v2, *, scale, mask="none", w1=0, w2=0, n_jobs=None))]
#[allow(clippy::too_many_arguments)]
fn tensor_attention_exact<'py>(
    py: Python<'py>,
    q: PyReadonlyArray3<'py, f64>,
    k1: PyReadonlyArray3<'py, f64>,
    k2: PyReadonlyArray3<'py, f64>,
    v1: PyReadonlyArray3<'py, f64>,
    v2: PyReadonlyArray3<'py, f64>,
    scale: f64,
    mask: &str,
    w1: usize,
    w2: usize,
    n_jobs: Option<i64>,
) -> PyResult<Bound<'py, PyArray3<f64>>> {
    let mask = Mask::parse(mask, w1, w2).py()?;
    let [q, k1, k2, v1, v2] = [&q, &k1, &k2, &v1, &v2].map(|a| a.as_array());
    let out = run(py, n_jobs, || {
        let x = TensorInputs::new(q, k1, k2, v1, v2)?;
        attention::tensor_attention_exact(&x, scale, mask)
    })?
    .py()?;
    Ok(out.into_pyarray(py))
}

/// A plan as a dict: logit_range, degree, rank, error_bound, coefficients, memory_bytes.
fn plan_dict<'py>(py: Python<'py>, plan: PolyPlan) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("logit_range", plan.logit_range)?;
    out.set_item("degree", plan.degree)?;
    out.set_item("rank", plan.rank)?;
    out.set_item("error_bound", plan.error_bound)?;
    out.set_item(
        "coefficients",
        plan.polynomial.coefficients.into_pyarray(py),
    )?;
    out.set_item("memory_bytes", plan.memory_bytes)?;
    Ok(out)
}

/// Tensor attention by the polynomial method: (output, plan as a dict: logit_range, degree, rank,
/// error_bound, coefficients, memory_bytes). `memory_limit` (bytes) has no default: a rank whose
/// buffers exceed it is refused instead of failing to allocate.
#[pyfunction]
#[pyo3(signature = (
    q, k1, k2, v1, v2, *, scale, memory_limit, mask="none", w1=0, w2=0, degree=None, tol=None,
    basis="chebyshev", n_jobs=None,
))]
#[allow(clippy::too_many_arguments)]
fn tensor_attention_poly<'py>(
    py: Python<'py>,
    q: PyReadonlyArray3<'py, f64>,
    k1: PyReadonlyArray3<'py, f64>,
    k2: PyReadonlyArray3<'py, f64>,
    v1: PyReadonlyArray3<'py, f64>,
    v2: PyReadonlyArray3<'py, f64>,
    scale: f64,
    memory_limit: f64,
    mask: &str,
    w1: usize,
    w2: usize,
    degree: Option<usize>,
    tol: Option<f64>,
    basis: &str,
    n_jobs: Option<i64>,
) -> PyResult<(Bound<'py, PyArray3<f64>>, Bound<'py, PyDict>)> {
    let mask = Mask::parse(mask, w1, w2).py()?;
    let basis = Basis::parse(basis).py()?;
    let [q, k1, k2, v1, v2] = [&q, &k1, &k2, &v1, &v2].map(|a| a.as_array());
    let (out, plan) = run(py, n_jobs, || {
        let x = TensorInputs::new(q, k1, k2, v1, v2)?;
        attention::tensor_attention_poly(&x, scale, mask, degree, tol, basis, memory_limit)
    })?
    .py()?;
    Ok((out.into_pyarray(py), plan_dict(py, plan)?))
}

/// Exact softmax attention of (batch, n, d) queries and keys and (batch, n, dv) values.
#[pyfunction]
#[pyo3(signature = (q, k, v, *, scale, mask="none", window=0, n_jobs=None))]
#[allow(clippy::too_many_arguments)]
fn attention_exact<'py>(
    py: Python<'py>,
    q: PyReadonlyArray3<'py, f64>,
    k: PyReadonlyArray3<'py, f64>,
    v: PyReadonlyArray3<'py, f64>,
    scale: f64,
    mask: &str,
    window: usize,
    n_jobs: Option<i64>,
) -> PyResult<Bound<'py, PyArray3<f64>>> {
    let window = KeyWindow::parse(mask, window, "window").py()?;
    let (q, k, v) = (q.as_array(), k.as_array(), v.as_array());
    let out = run(py, n_jobs, || {
        attention::attention_exact(&AttentionInputs::new(q, k, v)?, scale, window)
    })?
    .py()?;
    Ok(out.into_pyarray(py))
}

/// Upper bound on |s <q_i, k1_j, k2_k>| over a batch of (batch, n, d) arrays.
#[pyfunction]
#[pyo3(signature = (q, k1, k2, *, scale))]
fn logit_bound(
    q: PyReadonlyArray3<'_, f64>,
    k1: PyReadonlyArray3<'_, f64>,
    k2: PyReadonlyArray3<'_, f64>,
    scale: f64,
) -> PyResult<f64> {
    attention::logit_bound(q.as_array(), k1.as_array(), k2.as_array(), scale).py()
}

/// The polynomial for a logit range, as a dict: logit_range, degree, rank, error_bound,
/// coefficients, memory_bytes.
#[pyfunction]
#[pyo3(signature = (
    logit_range, d, *, degree=None, tol=None, basis="chebyshev", unit_roundoff=f64::EPSILON / 2.0,
    bytes_per_rank=0.0, memory_limit=f64::INFINITY,
))]
#[allow(clippy::too_many_arguments)]
fn poly_plan<'py>(
    py: Python<'py>,
    logit_range: f64,
    d: usize,
    degree: Option<usize>,
    tol: Option<f64>,
    basis: &str,
    unit_roundoff: f64,
    bytes_per_rank: f64,
    memory_limit: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let request = PolyRequest {
        logit_range,
        d,
        degree,
        tol,
        basis: Basis::parse(basis).py()?,
        unit_roundoff,
        bytes_per_rank,
        memory_limit,
    };
    let plan = attention::poly_plan(&request).py()?;
    plan_dict(py, plan)
}

/// The multi-indices of width d up to `degree`, as a dict of arrays: parent, variable,
/// multinomial, level_start.
#[pyfunction]
fn monomial_table(py: Python<'_>, d: usize, degree: usize) -> PyResult<Bound<'_, PyDict>> {
    let t = attention::monomial_table(d, degree).py()?;
    let to_i64 = |xs: Vec<u32>| xs.into_iter().map(i64::from).collect::<Vec<_>>();
    let level_start: Vec<i64> = t.level_start.iter().map(|&x| x as i64).collect();
    let out = PyDict::new(py);
    out.set_item("parent", to_i64(t.parent).into_pyarray(py))?;
    out.set_item("variable", to_i64(t.variable).into_pyarray(py))?;
    out.set_item("multinomial", t.multinomial.into_pyarray(py))?;
    out.set_item("level_start", level_start.into_pyarray(py))?;
    Ok(out)
}
