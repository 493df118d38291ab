//! Exact kernel density estimation in high dimensions.
//!
//! Formulas: `docs/formulas/kde.md` (Biroli and Mezard 2024 for the regimes; Kolchinsky and Tracey
//! 2017, Saxe et al. 2018 for the information plane).
//!
//! - [`log_density`]: exact weighted log-density of m queries against n data points, squared
//!   distances by blocked GEMM (faer), streaming log-sum-exp over data blocks, parallel over query
//!   blocks, float64 accumulation (float32 input accepted), leave-one-out, full-covariance Gaussian
//!   kernels by whitening with the Cholesky factor; the six kernels of scikit-learn.
//! - `bandwidth`: leave-one-out likelihood cross-validation over log h on one k-nearest-neighbour
//!   distance pass, and the nearest-neighbour rule.
//! - [`regime`]: h_G, h_CLT, h_KL from the covariance spectrum and the per-query effective number
//!   of contributing points 1/Y2.
//! - `information`: the pairwise-distance bounds of the information plane.
//!
//! Data and queries enter as (rows, d) ndarray views of any strides, as every multi-dimensional
//! array of the core does (the kernel's Cholesky factor too); weights and labels as slices.
//! Memory is O(threads x tile) beyond one transformed copy of the data, never O(m x n).

mod bandwidth;
mod density;
mod information;
mod kernels;
mod regime;
mod rows;
mod tiles;

pub use bandwidth::{LooCv, LooCvOptions, loo_cv_bandwidth, nearest_neighbor_bandwidth};
pub use density::{DensityOptions, log_density};
pub use information::{InformationPlane, information_plane_many};
pub use kernels::Kernel;
pub use regime::{Regime, RegimeReport, regime};

use ndarray::ArrayView2;

use crate::element::Element;

/// The kernel's scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale<'a> {
    /// Isotropic bandwidth h > 0.
    Bandwidth(f64),
    /// Full kernel covariance given by its lower Cholesky factor L (d x d, positive diagonal, any
    /// strides); Gaussian kernel only. The kernel is N(0, L L^T).
    Cholesky(ArrayView2<'a, f64>),
}
