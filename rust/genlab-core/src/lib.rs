//! genlab-core: the numerical kernels of genlab, in pure Rust (no Python).
//!
//! Module map (each formula lives in exactly one place):
//! - [`rank`]: Kendall tau (O(n log n), scipy semantics), batched forms, granulated Kendall Psi,
//!   conditional-mutual-information score, robust sign-error.
//! - [`rate`]: coding rates and sparse rate reduction over token groups.
//! - [`kde`]: exact streaming kernel density estimation in high dimensions.
//! - [`attention`]: tensor (triple-wise) attention, exact and polynomial.
//!
//! Every public function validates its input and returns [`Error`] instead of panicking; the
//! bindings crate maps the error to a Python exception in one place.

pub mod attention;
pub mod error;
pub mod kde;
pub mod rank;
pub mod rate;
pub mod special;

pub use error::{Error, Result};
