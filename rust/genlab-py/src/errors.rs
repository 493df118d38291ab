//! The one place where Python exceptions are built.
//!
//! Core errors map to typed subclasses of `ValueError` (so callers can catch precisely, while code
//! written for scipy or scikit-learn still sees a `ValueError`); the bindings' own checks (a dtype
//! mix, an option the core never sees) use the helpers below. `genlab.errors` re-exports the
//! classes.

use genlab_core::Error;
use pyo3::PyErr;
use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;

create_exception!(
    genlab._core,
    InvalidArgumentError,
    PyValueError,
    "An argument has a value the function cannot accept (an option outside its set, a number out \
     of range)."
);
create_exception!(
    genlab._core,
    ShapeError,
    InvalidArgumentError,
    "Array shapes that do not fit together."
);
create_exception!(
    genlab._core,
    NonFiniteError,
    InvalidArgumentError,
    "An array that must be finite holds NaN or infinity."
);
create_exception!(
    genlab._core,
    EmptyInputError,
    InvalidArgumentError,
    "An array with too few elements."
);
create_exception!(
    genlab._core,
    TooLargeError,
    InvalidArgumentError,
    "A computation that would need more memory or time than is reasonable; the message says how \
     much and how to proceed."
);
create_exception!(
    genlab._core,
    NotPositiveDefiniteError,
    InvalidArgumentError,
    "A matrix that must be positive definite is not, even after the allowed jitter."
);
create_exception!(
    genlab._core,
    DTypeError,
    PyTypeError,
    "Arrays of dtypes that cannot be used together."
);

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add(
        "InvalidArgumentError",
        py.get_type::<InvalidArgumentError>(),
    )?;
    m.add("ShapeError", py.get_type::<ShapeError>())?;
    m.add("NonFiniteError", py.get_type::<NonFiniteError>())?;
    m.add("EmptyInputError", py.get_type::<EmptyInputError>())?;
    m.add("TooLargeError", py.get_type::<TooLargeError>())?;
    m.add(
        "NotPositiveDefiniteError",
        py.get_type::<NotPositiveDefiniteError>(),
    )?;
    m.add("DTypeError", py.get_type::<DTypeError>())?;
    Ok(())
}

/// Maps a core error to its Python exception class, with the core's message.
pub fn to_py_err(e: Error) -> PyErr {
    let message = e.to_string();
    match e {
        Error::InvalidArgument { .. } => InvalidArgumentError::new_err(message),
        Error::Shape { .. } => ShapeError::new_err(message),
        Error::NonFinite { .. } => NonFiniteError::new_err(message),
        Error::Empty { .. } => EmptyInputError::new_err(message),
        Error::TooLarge { .. } => TooLargeError::new_err(message),
        Error::NotPositiveDefinite { .. } => NotPositiveDefiniteError::new_err(message),
    }
}

/// An invalid argument found by the bindings themselves: `"{name}: {reason}"`.
pub fn invalid(name: &str, reason: impl std::fmt::Display) -> PyErr {
    InvalidArgumentError::new_err(format!("{name}: {reason}"))
}

/// Arrays whose dtypes cannot be used together.
pub fn dtype(message: impl Into<String>) -> PyErr {
    DTypeError::new_err(message.into())
}

/// A result array that could not take its shape: a bug in the bindings, never the caller's input.
pub fn internal(context: &str, e: impl std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(format!(
        "genlab internal error ({context}): {e}; please report it"
    ))
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
