//! Thin PyO3 bindings of genlab-core: the extension module `genlab._core`.
//!
//! Each submodule mirrors a core module: it converts arrays (zero-copy views taken before the GIL
//! is released), runs the kernel under `py.detach` in the right thread pool, and maps errors to
//! Python exceptions in one place ([`errors`]). No numerics here.

use pyo3::prelude::*;

mod attention;
mod errors;
mod kde;
mod parallel;
mod rank;
mod rate;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    parallel::register(m)?;
    rank::register(m)?;
    rate::register(m)?;
    kde::register(m)?;
    attention::register(m)?;
    Ok(())
}
