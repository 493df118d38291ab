//! The six kernels of scikit-learn's `KernelDensity`, with scikit-learn's normalization.
//!
//! Each kernel is K(x) = exp(norm(h, d) + log_kernel(||x||, h)), log_kernel(0, h) = 0, with the
//! constants of `sklearn/neighbors/_binary_tree.pxi.tp` (`_log_kernel_norm`): the kernels integrate
//! to 1 over R^d. The compact kernels are zero from distance h on (strict `dist < h` inside).

use crate::error::{Error, Result, parse_option};

/// A radial kernel shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// exp(-r^2 / (2 h^2)).
    Gaussian,
    /// 1 for r < h.
    Tophat,
    /// 1 - r^2 / h^2 for r < h.
    Epanechnikov,
    /// exp(-r / h).
    Exponential,
    /// 1 - r / h for r < h.
    Linear,
    /// cos(pi r / (2 h)) for r < h.
    Cosine,
}

const LOG_PI: f64 = 1.144_729_885_849_400_2;
const LOG_2PI: f64 = 1.837_877_066_409_345_3;

/// log of the volume of the unit n-ball, pi^(n/2) / Gamma(n/2 + 1) (scikit-learn's `logVn`; the
/// formula is used at n = -1 too, through `logSn(0)` for d = 1).
fn log_unit_ball_volume(n: i64) -> f64 {
    0.5 * n as f64 * LOG_PI - libm::lgamma(0.5 * n as f64 + 1.0)
}

/// log of the surface area of the unit n-sphere in R^(n+1) (scikit-learn's `logSn`).
fn log_unit_sphere_area(n: i64) -> f64 {
    LOG_2PI + log_unit_ball_volume(n - 1)
}

impl Kernel {
    /// Every kernel, in scikit-learn's order.
    pub(crate) const ALL: [Kernel; 6] = [
        Kernel::Gaussian,
        Kernel::Tophat,
        Kernel::Epanechnikov,
        Kernel::Exponential,
        Kernel::Linear,
        Kernel::Cosine,
    ];

    /// scikit-learn's name of the kernel.
    fn name(self) -> &'static str {
        match self {
            Kernel::Gaussian => "gaussian",
            Kernel::Tophat => "tophat",
            Kernel::Epanechnikov => "epanechnikov",
            Kernel::Exponential => "exponential",
            Kernel::Linear => "linear",
            Kernel::Cosine => "cosine",
        }
    }

    /// From scikit-learn's kernel names.
    pub fn parse(value: &str) -> Result<Self> {
        parse_option("kernel", value, &Kernel::ALL.map(|k| (k.name(), k)))
    }

    /// log of the constant that makes the kernel of bandwidth `h` in `d` dimensions integrate to 1
    /// (scikit-learn's `_log_kernel_norm`, including its formula for the cosine kernel).
    pub(crate) fn log_normalization(self, h: f64, d: usize) -> Result<f64> {
        let df = d as f64;
        let di = d as i64;
        let factor = match self {
            Kernel::Gaussian => 0.5 * df * LOG_2PI,
            Kernel::Tophat => log_unit_ball_volume(di),
            Kernel::Epanechnikov => log_unit_ball_volume(di) + (2.0 / (df + 2.0)).ln(),
            Kernel::Exponential => log_unit_sphere_area(di - 1) + libm::lgamma(df),
            Kernel::Linear => log_unit_ball_volume(di) - (df + 1.0).ln(),
            Kernel::Cosine => {
                // scikit-learn's closed form for the integral of cos(pi r / 2) r^(d-1) over [0, 1].
                // It is exact for d = 1 and 3 only (d = 2 is off by a factor 2.8, and the sum is
                // negative for d = 4, 8, 12, ..., where scikit-learn returns NaN); it is kept for
                // drop-in parity, and the NaN cases are an error.
                let two_over_pi = 2.0 / std::f64::consts::PI;
                let mut sum = 0.0;
                let mut term = two_over_pi;
                for k in (1..=d).step_by(2) {
                    sum += term;
                    term *= -((d - k) as f64)
                        * ((d as f64) - (k as f64) - 1.0)
                        * two_over_pi
                        * two_over_pi;
                }
                if !(sum.is_finite() && sum > 0.0) {
                    return Err(Error::invalid(
                        "kernel",
                        format!(
                            "scikit-learn's normalization of the cosine kernel is not defined in \
                             {d} dimensions (its closed form gives {sum:e} < 0, and scikit-learn \
                             returns NaN); use another kernel"
                        ),
                    ));
                }
                sum.ln() + log_unit_sphere_area(di - 1)
            }
        };
        Ok(-factor - df * h.ln())
    }

    /// The energy -log_kernel of a point at squared distance `sq_dist` (+inf outside the support).
    #[inline]
    pub(crate) fn energy(self, sq_dist: f64, h: f64) -> f64 {
        let inside = |e: f64| if sq_dist.sqrt() < h { e } else { f64::INFINITY };
        match self {
            // Divided by h twice: h * h overflows for h > ~1e154 (and inf / inf is NaN).
            Kernel::Gaussian => 0.5 * (sq_dist / h) / h,
            Kernel::Tophat => inside(0.0),
            Kernel::Epanechnikov => inside(-(1.0 - (sq_dist / h) / h).ln()),
            Kernel::Exponential => sq_dist.sqrt() / h,
            Kernel::Linear => inside(-(1.0 - sq_dist.sqrt() / h).ln()),
            Kernel::Cosine => inside(-(0.5 * std::f64::consts::PI * sq_dist.sqrt() / h).cos().ln()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // scikit-learn: sklearn.neighbors._kd_tree.kernel_norm(h, d, kernel, return_log=True).
    #[test]
    fn normalizations_match_scikit_learn() {
        let cases = [
            (Kernel::Gaussian, 0.5, 3, -0.6773740579341823),
            (Kernel::Tophat, 0.5, 3, 0.6470295833786546),
            (Kernel::Epanechnikov, 0.5, 3, 1.5633203152528097),
            (Kernel::Exponential, 0.5, 3, -1.1447298858494004),
            (Kernel::Linear, 0.5, 3, 2.0333239444985454),
            (Kernel::Cosine, 0.5, 3, 1.663732913431804),
            (Kernel::Cosine, 2.0, 10, -18.456218554823387),
            (Kernel::Exponential, 1.0, 1, -0.6931471805599452),
            (Kernel::Cosine, 1.0, 1, -0.24156447527049035),
        ];
        for (kernel, h, d, want) in cases {
            let got = kernel.log_normalization(h, d).unwrap();
            assert!(
                (got - want).abs() < 1e-12,
                "{kernel:?} d={d}: {got} vs {want}"
            );
        }
        // scikit-learn returns NaN here; genlab says why.
        assert!(Kernel::Cosine.log_normalization(1.0, 8).is_err());
    }

    #[test]
    fn energies_are_zero_at_the_centre_and_infinite_outside_the_support() {
        for kernel in Kernel::ALL {
            assert_eq!(kernel.energy(0.0, 1.5), 0.0);
            let far = kernel.energy(9.0, 1.5);
            let compact = !matches!(kernel, Kernel::Gaussian | Kernel::Exponential);
            assert_eq!(far.is_infinite(), compact, "{kernel:?}");
        }
        assert!(Kernel::parse("box").is_err());
    }
}
