//! The one place where core errors become Python exceptions.

use genlab_core::Error;
use pyo3::PyErr;
use pyo3::exceptions::PyValueError;

/// Maps a core error to a Python exception. Every variant is a `ValueError`: each one means an
/// argument had a value (shape, content, option) the function cannot accept.
pub fn to_py_err(e: Error) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// `.py()` on a core result: converts the error with [`to_py_err`].
pub trait IntoPyResult<T> {
    /// Converts the error into a Python exception.
    fn py(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPyResult<T> for genlab_core::Result<T> {
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(to_py_err)
    }
}
