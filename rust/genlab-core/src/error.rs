//! The one error type of the core, and the checks every module shares. Messages name the
//! argument, what it got and what was expected, because they reach Python users verbatim.

use ndarray::{ArrayView, Dimension};
use rayon::prelude::*;

use crate::element::Element;

/// Errors returned by genlab-core. The Python bindings map every variant to `ValueError`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An option or scalar argument outside its accepted range or set.
    #[error("{name}: {reason}")]
    InvalidArgument {
        /// Name of the argument as the user passed it.
        name: String,
        /// What was wrong and what was expected.
        reason: String,
    },
    /// Array shapes that do not fit together.
    #[error("{name}: expected {expected}, got {got}")]
    Shape {
        /// Name of the argument whose shape is wrong.
        name: String,
        /// The expected shape, in words.
        expected: String,
        /// The shape received.
        got: String,
    },
    /// An array that must be finite holds NaN or infinity.
    #[error(
        "{name} contains NaN or infinity (first at flat index {index}); all values must be finite"
    )]
    NonFinite {
        /// Name of the array.
        name: String,
        /// Flat index of the first non-finite value.
        index: usize,
    },
    /// An array with too few elements.
    #[error("{name} is empty or too small: got {got} element(s), need at least {min}")]
    Empty {
        /// Name of the array.
        name: String,
        /// Number of elements received.
        got: usize,
        /// Minimum accepted.
        min: usize,
    },
    /// A computation that would need more memory or time than is reasonable.
    #[error("{what} would need {needed}; {advice}")]
    TooLarge {
        /// What would be allocated or computed.
        what: String,
        /// How much it needs, in words (e.g. "12.5 GiB").
        needed: String,
        /// How to proceed.
        advice: String,
    },
    /// A matrix that must be positive definite is not, even after the allowed jitter.
    #[error("{what} is not positive definite: {detail}")]
    NotPositiveDefinite {
        /// Which matrix.
        what: String,
        /// Where factorization failed and what to try.
        detail: String,
    },
}

/// Result type of the core.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub(crate) fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Shape`].
    pub(crate) fn shape(
        name: impl Into<String>,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        Error::Shape {
            name: name.into(),
            expected: expected.into(),
            got: got.into(),
        }
    }
}

/// Arrays are scanned for NaN/inf in chunks of this many values, in parallel when there are
/// several chunks.
pub(crate) const SCAN_CHUNK: usize = 1 << 14;

/// Whether every value is finite; a branch-free fold, so that it vectorizes.
pub(crate) fn all_finite<T: Element>(values: &[T]) -> bool {
    values
        .iter()
        .fold(true, |ok, &v| ok & v.to_f64().is_finite())
}

/// Returns [`Error::NonFinite`] for the first NaN or infinity in `values`: the one finiteness scan
/// of the core (chunked, vectorized, in parallel over chunks for large arrays).
pub(crate) fn check_finite<T: Element>(name: &str, values: &[T]) -> Result<()> {
    let bad_chunk = if values.len() > SCAN_CHUNK {
        values
            .par_chunks(SCAN_CHUNK)
            .position_first(|c| !all_finite(c))
    } else {
        Some(0).filter(|_| !all_finite(values))
    };
    let Some(chunk) = bad_chunk else {
        return Ok(());
    };
    let start = chunk * SCAN_CHUNK;
    let offset = values[start..]
        .iter()
        .position(|&v| !v.to_f64().is_finite())
        .unwrap_or(0);
    Err(Error::NonFinite {
        name: name.to_string(),
        index: start + offset,
    })
}

/// The values of `array` as one row-major slice, borrowed for as long as the view's data; an
/// [`Error::Shape`] naming `name` when the view is not in standard (C-contiguous) layout.
pub(crate) fn row_major<'a, A, D: Dimension>(
    name: &str,
    array: &ArrayView<'a, A, D>,
) -> Result<&'a [A]> {
    array.to_slice().ok_or_else(|| {
        Error::shape(
            name,
            "a C-contiguous (row-major) array",
            format!(
                "shape {:?} with element strides {:?}",
                array.shape(),
                array.strides()
            ),
        )
    })
}

/// Parses a string option against its accepted values; the error names the argument and lists
/// the accepted values.
pub(crate) fn parse_option<T: Copy>(name: &str, value: &str, choices: &[(&str, T)]) -> Result<T> {
    choices
        .iter()
        .find(|(s, _)| *s == value)
        .map(|&(_, v)| v)
        .ok_or_else(|| {
            let accepted: Vec<String> = choices.iter().map(|(s, _)| format!("\"{s}\"")).collect();
            Error::invalid(
                name,
                format!("expected one of {}, got \"{value}\"", accepted.join(", ")),
            )
        })
}

/// Formats a byte count for messages ("1.5 GiB").
pub(crate) fn format_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value.is_infinite() {
        return "unbounded memory".to_string();
    }
    if value >= 1e6 {
        // A million of the largest unit (sizes of impossible requests): scientific notation.
        return format!("{value:.3e} {}", UNITS[unit]);
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_argument() {
        let e = Error::shape("y", "length 3 (same as x)", "length 4");
        assert_eq!(
            e.to_string(),
            "y: expected length 3 (same as x), got length 4"
        );
        assert!(
            check_finite("z", &[1.0, f64::NAN])
                .unwrap_err()
                .to_string()
                .contains("index 1")
        );
        assert_eq!(format_bytes(1536.0), "1.5 KiB");
    }
}
