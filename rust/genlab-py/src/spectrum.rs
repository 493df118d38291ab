//! Bindings of genlab_core::spectrum. Spectra arrive as a list of 1-D float64 arrays (any
//! lengths); the fits return as a dict of arrays, one entry per spectrum.

use genlab_core::spectrum;
use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};

use crate::errors::IntoPyResult;
use crate::parallel::run;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(power_law_fit_many, m)?)?;
    Ok(())
}

/// Power-law fits of many spectra, as a dict of arrays: alpha, xmin, ks_distance, sigma,
/// n_tail.
#[pyfunction]
#[pyo3(signature = (spectra, *, n_jobs=None))]
fn power_law_fit_many<'py>(
    py: Python<'py>,
    spectra: Vec<PyReadonlyArray1<'py, f64>>,
    n_jobs: Option<i64>,
) -> PyResult<Bound<'py, PyDict>> {
    let slices = spectra
        .iter()
        .map(|s| s.as_slice())
        .collect::<Result<Vec<&[f64]>, _>>()?;
    let fits = run(py, n_jobs, || spectrum::power_law_fit_many(&slices))?.py()?;
    let out = PyDict::new(py);
    let column = |f: fn(&spectrum::PowerLawFit) -> f64| fits.iter().map(f).collect::<Vec<f64>>();
    out.set_item("alpha", column(|f| f.alpha).into_pyarray(py))?;
    out.set_item("xmin", column(|f| f.xmin).into_pyarray(py))?;
    out.set_item("ks_distance", column(|f| f.ks_distance).into_pyarray(py))?;
    out.set_item("sigma", column(|f| f.sigma).into_pyarray(py))?;
    let n_tail: Vec<u64> = fits.iter().map(|f| f.n_tail as u64).collect();
    out.set_item("n_tail", n_tail.into_pyarray(py))?;
    Ok(out)
}
