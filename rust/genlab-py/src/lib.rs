//! Thin PyO3 bindings of genlab-core: the extension module `genlab._core`.
//!
//! Each submodule (`genlab._core.rank`, `.rate`, `.kde`, `.attention`, `.spectrum`) mirrors the
//! core module of the same name and exports each kernel under the core function's name. A
//! binding converts arrays (zero-copy views taken before the GIL is released), runs the kernel
//! under `py.detach` in the right thread pool, and maps errors to Python exceptions in one place
//! ([`errors`]). No numerics here.

use pyo3::prelude::*;

mod attention;
mod errors;
mod kde;
mod parallel;
mod rank;
mod rate;
mod spectrum;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    parallel::register(m)?;
    add_submodule(m, "rank", rank::register)?;
    add_submodule(m, "rate", rate::register)?;
    add_submodule(m, "kde", kde::register)?;
    add_submodule(m, "attention", attention::register)?;
    add_submodule(m, "spectrum", spectrum::register)?;
    Ok(())
}

/// Adds `genlab._core.<name>`, filled by `register`: the bindings of one core module, under the
/// core function's own name.
fn add_submodule(
    parent: &Bound<'_, PyModule>,
    name: &str,
    register: fn(&Bound<'_, PyModule>) -> PyResult<()>,
) -> PyResult<()> {
    let py = parent.py();
    let qualified = format!("genlab._core.{name}");
    // The qualified __name__ makes reprs, pickles and error tracebacks say where a function lives.
    let module = PyModule::new(py, &qualified)?;
    register(&module)?;
    parent.add(name, &module)?;
    // An extension's submodule is not a package on disk: `import genlab._core.rank` (and
    // `from genlab._core.rank import ...`) find it only through sys.modules.
    py.import("sys")?
        .getattr("modules")?
        .set_item(&qualified, &module)?;
    Ok(())
}
