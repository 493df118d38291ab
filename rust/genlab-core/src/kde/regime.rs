//! Which statistics a Gaussian KDE obeys (Biroli and Mezard 2024).
//!
//! n points in d dimensions, alpha = log n / d. With r = sigma^2 / h^2 and
//! g(r) = 1/2 log(1 + r) - r / (2 (1 + r)^2), the covariance eigenvalues lambda_j and t = 1/h^2,
//! (1/d) sum_j g(lambda_j t*) = alpha defines h_G = 1/sqrt(t*); h_CLT = sqrt(2) h_G; and
//! h_KL^2 = (1/d) sum_j lambda_j (2 + t* lambda_j) / (1 + t* lambda_j)^2. Above h_CLT every point
//! contributes (central limit), between h_G and h_CLT the estimate is heavy-tailed, below h_G a few
//! points dominate (extreme values). Per query, 1/Y2 with Y2 = sum_i p_i^2 counts the points that
//! effectively contribute.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par, Side};
use ndarray::ArrayView2;

use super::density::{self, DensityOptions};
use super::kernels::Kernel;
use super::tiles::{Transform, check_points};
use super::{Element, Scale};
use crate::error::{Error, Result};

/// The regime of a bandwidth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regime {
    /// h >= h_CLT: every point contributes; the central limit theorem holds.
    CentralLimit,
    /// h_G <= h < h_CLT: heavy-tailed (alpha-stable) fluctuations.
    HeavyTailed,
    /// h < h_G: a few points dominate (extreme-value statistics).
    ExtremeValue,
}

impl Regime {
    /// The label used in Python: "clt", "heavy_tailed" or "extreme_value".
    pub fn label(self) -> &'static str {
        match self {
            Regime::CentralLimit => "clt",
            Regime::HeavyTailed => "heavy_tailed",
            Regime::ExtremeValue => "extreme_value",
        }
    }
}

/// g(r) = 1/2 log(1 + r) - r / (2 (1 + r)^2): increasing from g(0) = 0 to infinity.
pub(crate) fn g(r: f64) -> f64 {
    0.5 * r.ln_1p() - r / (2.0 * (1.0 + r) * (1.0 + r))
}

/// (h_G, h_CLT, h_KL) of `n` points whose covariance has eigenvalues `eigenvalues`.
pub(crate) fn regime_bandwidths(eigenvalues: &[f64], n: usize) -> Result<(f64, f64, f64)> {
    if n < 2 {
        return Err(Error::Empty {
            name: "data points".into(),
            got: n,
            min: 2,
        });
    }
    crate::error::check_finite("eigenvalues", eigenvalues)?;
    let d = eigenvalues.len() as f64;
    let lambda: Vec<f64> = eigenvalues.iter().map(|&l| l.max(0.0)).collect();
    let top = lambda.iter().copied().fold(0.0, f64::max);
    if top <= 0.0 {
        return Err(Error::invalid(
            "data",
            "the covariance is zero (all points identical): the regimes are undefined",
        ));
    }
    let alpha = (n as f64).ln() / d;
    let excess = |log_t: f64| {
        let t = log_t.exp();
        lambda.iter().map(|&l| g(l * t)).sum::<f64>() / d - alpha
    };
    // Bracket log t*: g is increasing, zero at t = 0 and unbounded.
    let mut lo = -(top.ln()) - 10.0;
    while excess(lo) > 0.0 {
        lo -= 10.0;
    }
    let mut hi = -(top.ln()) + 10.0;
    while excess(hi) < 0.0 {
        hi += 10.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if excess(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-14 * (1.0 + mid.abs()) {
            break;
        }
    }
    let t = (0.5 * (lo + hi)).exp();
    let h_g = 1.0 / t.sqrt();
    // Each term l (2 + t l) / (1 + t l)^2 / d, ordered so that no intermediate overflows for
    // eigenvalues near the largest float (data near 1e154).
    let h_kl_sq = lambda
        .iter()
        .map(|&l| {
            let tl = t * l;
            (l / (1.0 + tl)) * ((2.0 + tl) / (1.0 + tl)) / d
        })
        .sum::<f64>();
    Ok((h_g, std::f64::consts::SQRT_2 * h_g, h_kl_sq.sqrt()))
}

/// Report of [`regime`].
#[derive(Debug, Clone, PartialEq)]
pub struct RegimeReport {
    /// log n / d.
    pub alpha: f64,
    /// Below h_G a few points dominate.
    pub h_g: f64,
    /// Above h_CLT = sqrt(2) h_G every point contributes.
    pub h_clt: f64,
    /// The KL-optimal bandwidth predicted for Gaussian data with this covariance.
    pub h_kl: f64,
    /// The bandwidth examined.
    pub(crate) bandwidth: f64,
    /// Effective number of contributing points 1/Y2, per query.
    pub inverse_y2: Vec<f64>,
    /// Eigenvalues of the data covariance, ascending.
    pub eigenvalues: Vec<f64>,
    /// Where `bandwidth` falls.
    pub regime: Regime,
}

/// Eigenvalues (ascending) of the sample covariance of `data` (n >= 2).
fn covariance_spectrum<T: Element>(data: &ArrayView2<'_, T>) -> Result<Vec<f64>> {
    let (n, d) = data.dim();
    let points = Transform::fit(data, None).apply(data)?;
    let x = MatRef::from_row_major_slice(points.values.as_slice(), n, d);
    // The nonzero eigenvalues of X^T X / (n - 1) (d x d) are those of X X^T / (n - 1) (n x n):
    // with more features than points the smaller matrix gives them, and the other d - n are 0.
    // (A d x d covariance of 2 points of 100,000 features would need 80 GB.)
    let side = n.min(d);
    let (a, b) = if d <= n {
        (x.transpose(), x)
    } else {
        (x, x.transpose())
    };
    let mut gram = vec![0.0; side * side];
    matmul(
        MatMut::from_column_major_slice_mut(&mut gram, side, side),
        Accum::Replace,
        a,
        b,
        1.0 / (n as f64 - 1.0),
        Par::rayon(0),
    );
    let nonzero = MatRef::from_column_major_slice(gram.as_slice(), side, side)
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|e| {
            Error::invalid(
                "data",
                format!("the covariance eigenvalues did not converge ({e:?})"),
            )
        })?;
    // Ascending, as the eigensolver gives them: the zeros first.
    let mut eigenvalues = vec![0.0; d - side];
    eigenvalues.extend(nonzero);
    Ok(eigenvalues)
}

/// Regime diagnostics of a Gaussian KDE with bandwidth `bandwidth` on `data`; 1/Y2 is evaluated at
/// `queries` (None: at every data point, leaving it out).
pub fn regime<T: Element>(
    data: ArrayView2<'_, T>,
    queries: Option<ArrayView2<'_, T>>,
    bandwidth: f64,
) -> Result<RegimeReport> {
    check_points(&data, "data", None, 2)?;
    let options = DensityOptions {
        kernel: Kernel::Gaussian,
        scale: Scale::Bandwidth(bandwidth),
        leave_one_out: queries.is_none(),
    };
    let evaluation = density::evaluate(&data, queries.as_ref(), None, &options, true)?;
    let eigenvalues = covariance_spectrum(&data)?;
    let (h_g, h_clt, h_kl) = regime_bandwidths(&eigenvalues, data.nrows())?;
    let regime = if bandwidth >= h_clt {
        Regime::CentralLimit
    } else if bandwidth >= h_g {
        Regime::HeavyTailed
    } else {
        Regime::ExtremeValue
    };
    Ok(RegimeReport {
        alpha: (data.nrows() as f64).ln() / data.ncols() as f64,
        h_g,
        h_clt,
        h_kl,
        bandwidth,
        inverse_y2: evaluation.log_y2.iter().map(|l| (-l).exp()).collect(),
        eigenvalues,
        regime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn isotropic_spectrum_reduces_to_the_closed_form() {
        // sigma^2 = 4, d = 10, n = e^5: g(r_G) = 0.5, h_G = sigma / sqrt(r_G).
        let sigma2 = 4.0;
        let n = 5f64.exp().round() as usize;
        let alpha = (n as f64).ln() / 10.0;
        let (h_g, h_clt, h_kl) = regime_bandwidths(&[sigma2; 10], n).unwrap();
        let r_g = sigma2 / (h_g * h_g);
        assert!((g(r_g) - alpha).abs() < 1e-12);
        assert!((h_clt / h_g - std::f64::consts::SQRT_2).abs() < 1e-15);
        let want_kl = (sigma2 * (2.0 + r_g) / ((1.0 + r_g) * (1.0 + r_g))).sqrt();
        assert!((h_kl - want_kl).abs() < 1e-12);
        assert!(h_kl < h_g);
        assert!(regime_bandwidths(&[0.0; 3], 10).is_err());
        assert!(regime_bandwidths(&[1.0; 3], 1).is_err());
    }

    #[test]
    fn inverse_y2_counts_contributing_points() {
        // Two far clusters of 50 identical points: a huge bandwidth sees all 99 others, a tiny one
        // sees the 49 identical ones.
        let data = Array2::from_shape_fn(
            (100, 3),
            |(i, j)| if i < 50 { 0.0 } else { 100.0 + j as f64 },
        );
        let wide = regime(data.view(), None, 1e6).unwrap();
        assert!(wide.inverse_y2.iter().all(|v| (v - 99.0).abs() < 1e-6));
        assert_eq!(wide.regime, Regime::CentralLimit);
        let narrow = regime(data.view(), None, 1.0).unwrap();
        assert!(narrow.inverse_y2.iter().all(|v| (v - 49.0).abs() < 1e-9));
        assert_eq!(narrow.eigenvalues.len(), 3);
    }
}
