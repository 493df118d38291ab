//! Exact weighted log-density: a streaming log-sum-exp of kernel log-values over the data.
//!
//! log rho(x) = LSE_i(log w_i - E(x - y_i)) - log sum_i w_i + log_norm, where E is the kernel's
//! energy (-log kernel) and log_norm its normalization. With leave-one-out the query's own point is
//! skipped and the weight sum loses its weight.

use ndarray::ArrayView2;

use super::kernels::Kernel;
use super::rows;
use super::tiles::{Queries, Reducer, Transform, check_points, reduce};
use super::{Element, Scale};
use crate::error::{Error, Result};
use crate::simd::{Isa, rescale_to_common_max};

/// Running log-sum-exp: sum_i exp(v_i) = exp(max) * sum, and sum_i exp(2 v_i) = exp(2 max) *
/// sum_sq.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LogSumExp {
    pub(crate) max: f64,
    pub(crate) sum: f64,
    pub(crate) sum_sq: f64,
}

impl LogSumExp {
    pub(crate) const EMPTY: LogSumExp = LogSumExp {
        max: f64::NEG_INFINITY,
        sum: 0.0,
        sum_sq: 0.0,
    };

    /// Folds in `other` at the common maximum.
    pub(crate) fn merge(&mut self, other: LogSumExp) {
        if other.max == f64::NEG_INFINITY {
            return;
        }
        let (max, r_self, r_other) = rescale_to_common_max(self.max, other.max);
        *self = LogSumExp {
            max,
            sum: self.sum * r_self + other.sum * r_other,
            sum_sq: self.sum_sq * r_self * r_self + other.sum_sq * r_other * r_other,
        };
    }

    /// log sum_i exp(v_i) (-inf when empty).
    pub(crate) fn value(&self) -> f64 {
        self.max + self.sum.ln()
    }

    /// log of Y2 = sum_i p_i^2 with p_i = exp(v_i) / sum_j exp(v_j).
    pub(crate) fn log_y2(&self) -> f64 {
        self.sum_sq.ln() - 2.0 * self.sum.ln()
    }
}

/// Folds one row of squared distances into a [`LogSumExp`] of log w_j - E(distance).
struct DensityReducer<'a> {
    kernel: Kernel,
    h: f64,
    log_weights: Option<&'a [f64]>,
    second_moment: bool,
}

impl Reducer for DensityReducer<'_> {
    type State = LogSumExp;

    fn empty(&self) -> LogSumExp {
        LogSumExp::EMPTY
    }

    fn absorb(&self, state: &mut LogSumExp, row: &mut [f64], start: usize) {
        let isa = Isa::detect();
        // Terms are exp(-scale * (x - min x)) over x = row: squared distances with scale 1/(2h^2)
        // for the unweighted Gaussian (no rewrite needed), energies with scale 1 otherwise.
        // 1/(2h^2) underflows to 0 for h > ~1e154, and 0 times the +inf that marks an excluded
        // point is NaN: the smallest normal number keeps every finite term at exp(-0) = 1 (as
        // it is at such h) and excluded points at 0.
        let gaussian_scale = (0.5 / self.h / self.h).max(f64::MIN_POSITIVE);
        let scale = match (self.kernel, self.log_weights) {
            (Kernel::Gaussian, None) => gaussian_scale,
            (Kernel::Gaussian, Some(lw)) => {
                rows::gaussian_energies(isa, row, gaussian_scale, &lw[start..start + row.len()]);
                1.0
            }
            (kernel, lw) => {
                for (j, x) in row.iter_mut().enumerate() {
                    *x = kernel.energy(*x, self.h) - lw.map_or(0.0, |lw| lw[start + j]);
                }
                1.0
            }
        };
        let lowest = rows::min_of(isa, row);
        if lowest == f64::INFINITY {
            return;
        }
        let (sum, sum_sq) = if self.second_moment {
            rows::sum_exp_below_with_squares(isa, row, scale, lowest)
        } else {
            (rows::sum_exp_below(isa, row, scale, lowest), 0.0)
        };
        state.merge(LogSumExp {
            max: -scale * lowest,
            sum,
            sum_sq,
        });
    }

    fn merge(&self, into: &mut LogSumExp, other: LogSumExp) {
        into.merge(other);
    }
}

/// Validated weights: their logs (None when all equal, the fast path) and their sum.
pub(crate) struct Weights {
    pub(crate) log: Option<Vec<f64>>,
    pub(crate) values: Option<Vec<f64>>,
    pub(crate) total: f64,
}

impl Weights {
    pub(crate) fn new(weights: Option<&[f64]>, n: usize) -> Result<Self> {
        let Some(w) = weights else {
            return Ok(Weights {
                log: None,
                values: None,
                total: n as f64,
            });
        };
        if w.len() != n {
            return Err(Error::shape(
                "weights",
                format!("one weight per data point ({n})"),
                format!("{} weights", w.len()),
            ));
        }
        if let Some(i) = w.iter().position(|v| !v.is_finite() || *v < 0.0) {
            return Err(Error::invalid(
                "weights",
                format!(
                    "expected finite non-negative weights, got {} at index {i}",
                    w[i]
                ),
            ));
        }
        let total: f64 = w.iter().sum();
        if total <= 0.0 {
            return Err(Error::invalid(
                "weights",
                "expected at least one positive weight, got all zeros",
            ));
        }
        Ok(Weights {
            log: Some(w.iter().map(|v| v.ln()).collect()),
            values: Some(w.to_vec()),
            total,
        })
    }

    /// log of the weight sum seen by query `i` (`own` = its own data index under leave-one-out).
    fn log_total(&self, own: Option<usize>) -> f64 {
        match (own, &self.values) {
            (None, _) => self.total.ln(),
            (Some(_), None) => (self.total - 1.0).ln(),
            (Some(i), Some(w)) => (self.total - w[i]).ln(),
        }
    }
}

/// Options of [`log_density`].
#[derive(Debug, Clone, PartialEq)]
pub struct DensityOptions<'a> {
    /// Kernel shape.
    pub kernel: Kernel,
    /// Bandwidth or full kernel covariance.
    pub scale: Scale<'a>,
    /// Evaluate at the data points, each without its own kernel (queries must be None).
    pub leave_one_out: bool,
}

/// Log-density and log Y2 per query.
pub(crate) struct DensityEvaluation {
    pub(crate) log_density: Vec<f64>,
    pub(crate) log_y2: Vec<f64>,
}

/// Validates a lower-triangular Cholesky factor (d x d, any strides); returns its values
/// row-major and sum_j log L_jj.
fn check_cholesky(l: ArrayView2<'_, f64>, d: usize) -> Result<(Vec<f64>, f64)> {
    if l.dim() != (d, d) {
        return Err(Error::shape(
            "cholesky",
            format!("a {d} x {d} lower-triangular matrix"),
            format!("shape {:?}", l.shape()),
        ));
    }
    let l: Vec<f64> = l.iter().copied().collect();
    crate::error::check_finite("cholesky", &l)?;
    let mut log_det = 0.0;
    for i in 0..d {
        if l[i * d + i] <= 0.0 {
            return Err(Error::NotPositiveDefinite {
                what: "the kernel covariance".into(),
                detail: format!(
                    "its Cholesky factor has diagonal entry {} at {i}; expected a positive \
                     diagonal",
                    l[i * d + i]
                ),
            });
        }
        if l[i * d + i + 1..(i + 1) * d].iter().any(|&v| v != 0.0) {
            return Err(Error::invalid(
                "cholesky",
                format!(
                    "expected a lower-triangular matrix, row {i} has entries above the diagonal"
                ),
            ));
        }
        log_det += l[i * d + i].ln();
    }
    Ok((l, log_det))
}

pub(crate) fn evaluate<T: Element>(
    data: &ArrayView2<'_, T>,
    queries: Option<&ArrayView2<'_, T>>,
    weights: Option<&[f64]>,
    options: &DensityOptions<'_>,
    second_moment: bool,
) -> Result<DensityEvaluation> {
    let min_rows = if options.leave_one_out { 2 } else { 1 };
    check_points(data, "data", None, min_rows)?;
    let d = data.ncols();
    if let Some(q) = queries {
        if options.leave_one_out {
            return Err(Error::invalid(
                "queries",
                "leave_one_out evaluates at the data points themselves; pass no queries",
            ));
        }
        check_points(q, "queries", Some(d), 0)?;
    }
    let weights = Weights::new(weights, data.nrows())?;
    let (h, cholesky, log_norm) = match options.scale {
        Scale::Bandwidth(h) => {
            if !(h.is_finite() && h > 0.0) {
                return Err(Error::invalid(
                    "bandwidth",
                    format!("expected a positive finite number, got {h}"),
                ));
            }
            if !(1.0 / (h * h)).is_finite() {
                return Err(Error::invalid(
                    "bandwidth",
                    format!("{h:e} is too small: 1/h^2 overflows float64; rescale the data"),
                ));
            }
            (h, None, options.kernel.log_normalization(h, d)?)
        }
        Scale::Cholesky(l) => {
            if options.kernel != Kernel::Gaussian {
                return Err(Error::invalid(
                    "kernel",
                    "a full kernel covariance is only defined for the gaussian kernel",
                ));
            }
            let (l, log_det) = check_cholesky(l, d)?;
            (
                1.0,
                Some(l),
                Kernel::Gaussian.log_normalization(1.0, d)? - log_det,
            )
        }
    };
    if options.leave_one_out
        && let Some(w) = &weights.values
        && let Some(i) = w.iter().position(|&wi| weights.total - wi <= 0.0)
    {
        return Err(Error::invalid(
            "weights",
            format!(
                "with leave_one_out every point needs another point of positive weight; point {i} \
                 carries all the weight"
            ),
        ));
    }
    let transform = Transform::fit(data, cholesky);
    let points = transform.apply(data)?;
    let reducer = DensityReducer {
        kernel: options.kernel,
        h,
        log_weights: weights.log.as_deref(),
        second_moment,
    };
    let query_set = match queries {
        Some(q) => Queries::External(q),
        None => Queries::Data {
            leave_one_out: options.leave_one_out,
        },
    };
    let states = reduce(&points, &transform, query_set, &reducer);
    let log_density = states
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let own = options.leave_one_out.then_some(i);
            s.value() - weights.log_total(own) + log_norm
        })
        .collect();
    let log_y2 = if second_moment {
        states.iter().map(LogSumExp::log_y2).collect()
    } else {
        Vec::new()
    };
    Ok(DensityEvaluation {
        log_density,
        log_y2,
    })
}

/// Exact log-density of a (weighted) kernel density estimate at each query.
///
/// `data` is n x d, `queries` m x d (None: the data points themselves), `weights` n non-negative
/// values (None: equal weights). Streaming and parallel: memory O(threads x tile), not O(m n).
/// Returns -inf where every kernel is zero (compact kernels far from the data).
pub fn log_density<T: Element>(
    data: ArrayView2<'_, T>,
    queries: Option<ArrayView2<'_, T>>,
    weights: Option<&[f64]>,
    options: &DensityOptions<'_>,
) -> Result<Vec<f64>> {
    Ok(evaluate(&data, queries.as_ref(), weights, options, false)?.log_density)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn naive(
        data: &Array2<f64>,
        queries: &Array2<f64>,
        weights: Option<&[f64]>,
        kernel: Kernel,
        h: f64,
        skip_self: bool,
    ) -> Vec<f64> {
        let (n, d) = data.dim();
        let norm = kernel.log_normalization(h, d).unwrap();
        queries
            .outer_iter()
            .enumerate()
            .map(|(i, q)| {
                let (mut total, mut wsum) = (0.0, 0.0);
                for j in 0..n {
                    if skip_self && i == j {
                        continue;
                    }
                    let w = weights.map_or(1.0, |w| w[j]);
                    let sq: f64 = q
                        .iter()
                        .zip(data.row(j))
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum();
                    total += w * (-kernel.energy(sq, h)).exp();
                    wsum += w;
                }
                (total / wsum).ln() + norm
            })
            .collect()
    }

    fn grid(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
        let mut state = seed;
        Array2::from_shape_fn((rows, cols), |_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 4.0 - 2.0
        })
    }

    #[test]
    fn matches_a_naive_sum_for_every_kernel_with_weights_and_leave_one_out() {
        // 2100 data points: several data blocks, and a split data range.
        let data = grid(2100, 3, 1);
        let queries = grid(300, 3, 2);
        let weights: Vec<f64> = (0..2100).map(|i| 0.5 + (i % 7) as f64).collect();
        for kernel in Kernel::ALL {
            for w in [None, Some(weights.as_slice())] {
                let options = DensityOptions {
                    kernel,
                    scale: Scale::Bandwidth(0.7),
                    leave_one_out: false,
                };
                let got = log_density(data.view(), Some(queries.view()), w, &options).unwrap();
                let want = naive(&data, &queries, w, kernel, 0.7, false);
                for (g, e) in got.iter().zip(&want) {
                    assert!(
                        (g - e).abs() < 1e-9 * e.abs().max(1.0),
                        "{kernel:?}: {g} vs {e}"
                    );
                }
                let loo = DensityOptions {
                    leave_one_out: true,
                    ..options
                };
                let got = log_density(data.view(), None, w, &loo).unwrap();
                let want = naive(&data, &data, w, kernel, 0.7, true);
                for (g, e) in got.iter().zip(&want) {
                    assert!(
                        (g - e).abs() < 1e-9 * e.abs().max(1.0),
                        "{kernel:?} loo: {g} vs {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn few_queries_against_many_points_split_the_data_range_and_merge() {
        // One query block, five data blocks, enough work to run in parallel: the data range is
        // split across tasks and the partial log-sum-exps are merged.
        let data = grid(5000, 120, 9);
        let queries = grid(8, 120, 10);
        let weights: Vec<f64> = (0..5000).map(|i| 1.0 + (i % 3) as f64).collect();
        let options = DensityOptions {
            kernel: Kernel::Gaussian,
            scale: Scale::Bandwidth(2.5),
            leave_one_out: false,
        };
        let got = log_density(data.view(), Some(queries.view()), Some(&weights), &options).unwrap();
        let want = naive(
            &data,
            &queries,
            Some(&weights),
            Kernel::Gaussian,
            2.5,
            false,
        );
        for (g, e) in got.iter().zip(&want) {
            assert!((g - e).abs() < 1e-10 * e.abs(), "{g} vs {e}");
        }
    }

    #[test]
    fn whitening_equals_an_isotropic_bandwidth_for_a_scaled_identity() {
        let data = grid(500, 4, 3);
        let queries = grid(20, 4, 4);
        let h = 0.3;
        let l = Array2::from_diag_elem(4, h);
        let iso = DensityOptions {
            kernel: Kernel::Gaussian,
            scale: Scale::Bandwidth(h),
            leave_one_out: false,
        };
        let full = DensityOptions {
            scale: Scale::Cholesky(l.view()),
            ..iso.clone()
        };
        let a = log_density(data.view(), Some(queries.view()), None, &iso).unwrap();
        let b = log_density(data.view(), Some(queries.view()), None, &full).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-10);
        }
    }

    #[test]
    fn log_space_survives_where_the_linear_sum_underflows() {
        // d = 512: every kernel value is below exp(-700).
        let data = grid(50, 512, 5);
        let queries = grid(5, 512, 6);
        let options = DensityOptions {
            kernel: Kernel::Gaussian,
            scale: Scale::Bandwidth(0.05),
            leave_one_out: false,
        };
        let got = log_density(data.view(), Some(queries.view()), None, &options).unwrap();
        assert!(got.iter().all(|v| v.is_finite() && *v < -1e4));
    }

    #[test]
    fn bad_input_is_an_error() {
        let data = grid(10, 2, 7);
        let ok = DensityOptions {
            kernel: Kernel::Gaussian,
            scale: Scale::Bandwidth(1.0),
            leave_one_out: false,
        };
        let q3 = grid(4, 3, 8);
        assert!(matches!(
            log_density(data.view(), Some(q3.view()), None, &ok),
            Err(Error::Shape { .. })
        ));
        for h in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-200] {
            let bad = DensityOptions {
                scale: Scale::Bandwidth(h),
                ..ok.clone()
            };
            assert!(log_density(data.view(), None, None, &bad).is_err());
        }
        let mut nan = data.clone();
        nan[[3, 1]] = f64::NAN;
        assert_eq!(
            log_density(nan.view(), None, None, &ok),
            Err(Error::NonFinite {
                name: "data".into(),
                index: 7
            })
        );
        let empty = Array2::<f64>::zeros((0, 2));
        assert!(matches!(
            log_density(empty.view(), None, None, &ok),
            Err(Error::Empty { .. })
        ));
        assert!(log_density(data.view(), None, Some(&[1.0; 3]), &ok).is_err());
        assert!(log_density(data.view(), None, Some(&[-1.0; 10]), &ok).is_err());
        let huge = data.mapv(|v| v * 1e160);
        assert!(
            log_density(huge.view(), None, None, &ok)
                .unwrap_err()
                .to_string()
                .contains("overflows")
        );
        let tiny = ndarray::array![[1e-300, 0.0], [0.0, 1e-300]];
        let whitened = DensityOptions {
            scale: Scale::Cholesky(tiny.view()),
            ..ok.clone()
        };
        assert!(matches!(
            log_density(data.view(), None, None, &whitened),
            Err(Error::NotPositiveDefinite { .. })
        ));
        let upper = ndarray::array![[1.0, 0.5], [0.0, 1.0]];
        let full = DensityOptions {
            scale: Scale::Cholesky(upper.view()),
            ..ok.clone()
        };
        assert!(log_density(data.view(), None, None, &full).is_err());
        // Any strides: the transpose of the upper factor is a lower one.
        let lower = DensityOptions {
            scale: Scale::Cholesky(upper.t()),
            ..ok.clone()
        };
        assert!(log_density(data.view(), None, None, &lower).is_ok());
        let square = Array2::from_diag_elem(3, 1.0);
        let e = log_density(
            data.view(),
            None,
            None,
            &DensityOptions {
                scale: Scale::Cholesky(square.view()),
                ..ok.clone()
            },
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            "cholesky: expected a 2 x 2 lower-triangular matrix, got shape [3, 3]"
        );
    }
}
