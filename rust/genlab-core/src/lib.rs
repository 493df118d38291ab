//! genlab-core: the numerical kernels of genlab, in pure Rust (no Python).
//!
//! Module map (each formula lives in exactly one place):
//! - [`rank`]: Kendall tau (O(n log n), scipy semantics), batched forms, granulated Kendall Psi,
//!   conditional-mutual-information score, robust sign-error.
//! - [`rate`]: coding rates and sparse rate reduction over token groups.
//! - [`kde`]: exact streaming kernel density estimation in high dimensions.
//! - [`attention`]: tensor (triple-wise) attention, exact and polynomial.
//! - [`spectrum`]: power-law fits of eigenvalue spectra (the heavy-tail exponent of a layer).
//! - Crate-private: `simd` (the vectorizable exponential and the per-CPU compilation and dispatch
//!   of every vector kernel; [`instruction_set`] names the one in use, `GENLAB_ISA=baseline`
//!   forces the portable paths), `error` (the one error type, [`Error`], and the shared checks),
//!   `element` (the float types read, [`Element`]), `special` (the normal distribution).
//!
//! The public surface is what the bindings (`genlab-py`), the integration tests and the
//! benchmarks use, and nothing more: everything else is `pub(crate)` (`unreachable_pub` warns
//! about a `pub` item no path exports).
//!
//! Arrays cross into the core one way: 1-D data as a slice (`&[f64]`, `&[i64]`), every
//! multi-dimensional array as an ndarray view (`ArrayView2`, `ArrayView3`, `ArrayView4`); a
//! multi-dimensional result (the Kendall matrix, attention outputs) leaves as an owned array.
//!
//! Every public function validates its input and returns [`Error`] instead of panicking; the
//! bindings crate maps the error to a Python exception in one place.

// A `pub` item outside the public surface would be a public-looking item no caller can reach.
#![warn(unreachable_pub)]

pub mod attention;
mod element;
mod error;
pub mod kde;
pub mod rank;
pub mod rate;
mod simd;
mod special;
pub mod spectrum;

pub use element::Element;
pub use error::{Error, Result};
pub use simd::instruction_set;
