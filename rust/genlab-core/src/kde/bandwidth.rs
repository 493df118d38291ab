//! Bandwidth selection for the Gaussian kernel: leave-one-out likelihood cross-validation and the
//! nearest-neighbour rule.
//!
//! CV(h) = (1/n) sum_i log[(1/(n-1)) sum_{j != i} N(y_i - y_j; 0, h^2 I)] targets the KL-optimal
//! bandwidth. One distance pass keeps the k smallest squared distances of every point (all n - 1
//! when k >= n - 1, which makes CV exact); CV(h) is then a cheap function of h, maximized by a grid
//! over log h refined by golden-section search. With k < n - 1 the omitted terms are each at most
//! the k-th nearest one, which bounds the truncation error; the exact CV at the chosen h is
//! recomputed by a full streaming pass.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use ndarray::ArrayView2;
use rayon::prelude::*;

use super::density::{self, DensityOptions};
use super::kernels::Kernel;
use super::rows;
use super::tiles::{Points, Queries, Reducer, Transform, check_points, reduce};
use super::{Element, Scale};
use crate::error::{Error, Result, format_bytes};
use crate::simd::Isa;

/// Neighbours kept per point by default: CV is exact below 257 points.
pub(crate) const DEFAULT_NEIGHBORS: usize = 256;
/// Largest neighbour table accepted (n x k float64).
const NEIGHBOR_TABLE_BYTES: f64 = 2.0 * 1024.0 * 1024.0 * 1024.0;
/// Points of the log-h grid before refinement.
const GRID_POINTS: usize = 48;
/// Golden-section tolerance on log h.
const LOG_H_TOLERANCE: f64 = 1e-7;

#[derive(Debug, Clone, Copy)]
struct Key(f64);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0) == Ordering::Equal
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Keeps the k smallest squared distances (a max-heap of size k).
struct Nearest {
    k: usize,
}

impl Nearest {
    fn offer(&self, heap: &mut BinaryHeap<Key>, values: impl Iterator<Item = f64>) {
        let mut threshold = if heap.len() == self.k {
            heap.peek().map_or(f64::INFINITY, |k| k.0)
        } else {
            f64::INFINITY
        };
        for x in values {
            if x < threshold {
                if heap.len() == self.k {
                    heap.pop();
                }
                heap.push(Key(x));
                if heap.len() == self.k {
                    threshold = heap.peek().map_or(f64::INFINITY, |k| k.0);
                }
            }
        }
    }
}

impl Reducer for Nearest {
    type State = BinaryHeap<Key>;

    fn empty(&self) -> BinaryHeap<Key> {
        BinaryHeap::with_capacity(self.k)
    }

    fn absorb(&self, state: &mut BinaryHeap<Key>, row: &mut [f64], _start: usize) {
        self.offer(state, row.iter().copied());
    }

    fn merge(&self, into: &mut BinaryHeap<Key>, other: BinaryHeap<Key>) {
        self.offer(into, other.into_iter().map(|k| k.0));
    }
}

/// The k smallest squared distances from every data point to the others, each row ascending
/// (row-major n x k), and the centred points.
fn neighbor_table<T: Element>(data: &ArrayView2<'_, T>, k: usize) -> Result<(Vec<f64>, Points)> {
    let transform = Transform::fit(data, None);
    let points = transform.apply(data)?;
    let own_points: Queries<'_, T> = Queries::Data {
        leave_one_out: true,
    };
    let heaps = reduce(&points, &transform, own_points, &Nearest { k });
    let table = heaps
        .into_iter()
        .flat_map(|h| h.into_sorted_vec().into_iter().map(|key| key.0))
        .collect();
    Ok((table, points))
}

/// h^2 = (1/(n d)) sum_i min_{j != i} ||y_i - y_j||^2 from the nearest squared distances.
fn nearest_neighbor_rule(nearest: impl Iterator<Item = f64>, n: usize, d: usize) -> f64 {
    (nearest.sum::<f64>() / (n as f64 * d as f64)).sqrt()
}

/// The nearest-neighbour bandwidth: h^2 = (1/(n d)) sum_i min_{j != i} ||y_i - y_j||^2, cheap and
/// close to the KL-optimal bandwidth in high dimension.
pub fn nearest_neighbor_bandwidth<T: Element>(data: ArrayView2<'_, T>) -> Result<f64> {
    check_points(&data, "data", None, 2)?;
    let (n, d) = data.dim();
    let (table, _) = neighbor_table(&data, 1)?;
    let h = nearest_neighbor_rule(table.into_iter(), n, d);
    if h == 0.0 {
        return Err(Error::invalid(
            "data",
            "every point has an exact duplicate: the nearest-neighbour bandwidth is 0",
        ));
    }
    Ok(h)
}

/// Options of [`loo_cv_bandwidth`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LooCvOptions {
    /// Neighbours kept per point (None: min(n - 1, 256), `DEFAULT_NEIGHBORS`); n - 1 or more is
    /// exact.
    pub n_neighbors: Option<usize>,
    /// Search range of h (None: from the nearest-neighbour scale / 10 to 4 x the data scale).
    pub bounds: Option<(f64, f64)>,
}

/// Result of [`loo_cv_bandwidth`].
#[derive(Debug, Clone, PartialEq)]
pub struct LooCv {
    /// The bandwidth that maximizes the (truncated) cross-validated log-likelihood.
    pub bandwidth: f64,
    /// Exact leave-one-out mean log-likelihood at `bandwidth` (a full pass when truncated).
    pub score: f64,
    /// The truncated score that was maximized, at `bandwidth`.
    pub truncated_score: f64,
    /// Upper bound on score - truncated_score at `bandwidth` (0 when exact).
    pub truncation_error_bound: f64,
    /// Neighbours kept per point.
    pub n_neighbors: usize,
    /// Whether every pair was kept (k = n - 1).
    pub exact: bool,
    /// Whether the maximum lies at an end of the search range.
    pub at_boundary: bool,
    /// The search grid of log h, and the truncated score at each point.
    pub log_bandwidths: Vec<f64>,
    /// Truncated scores on the grid.
    pub scores: Vec<f64>,
}

/// Truncated CV score at log h, per point and averaged.
struct CvObjective<'a> {
    table: &'a [f64],
    k: usize,
    n: usize,
    d: usize,
}

impl CvObjective<'_> {
    /// log sum_{j in kNN(i)} exp(-D_ij / (2 h^2)) for every point.
    fn log_sums(&self, h: f64) -> Vec<f64> {
        // Divided by h twice: h * h overflows for h > ~1e154.
        let scale = 0.5 / h / h;
        let isa = Isa::detect();
        self.table
            .par_chunks(self.k)
            .map(|row| -scale * row[0] + rows::sum_exp_below(isa, row, scale, row[0]).ln())
            .collect()
    }

    fn score(&self, log_h: f64) -> f64 {
        let h = log_h.exp();
        let sums = self.log_sums(h);
        let norm = (self.n as f64 - 1.0).ln()
            + 0.5 * self.d as f64 * ((2.0 * std::f64::consts::PI).ln() + 2.0 * log_h);
        sums.iter().sum::<f64>() / self.n as f64 - norm
    }

    /// Bound on the mean log of (1 + omitted / kept): each of the n - 1 - k omitted terms is at
    /// most the k-th nearest one.
    fn truncation_bound(&self, h: f64) -> f64 {
        let omitted = self.n - 1 - self.k;
        if omitted == 0 {
            return 0.0;
        }
        let scale = 0.5 / h / h;
        let log_omitted = (omitted as f64).ln();
        let sums = self.log_sums(h);
        self.table
            .chunks(self.k)
            .zip(&sums)
            .map(|(row, log_kept)| {
                (log_omitted - scale * row[self.k - 1] - log_kept)
                    .exp()
                    .ln_1p()
            })
            .sum::<f64>()
            / self.n as f64
    }
}

/// Maximizes a unimodal `f` on [a, b] by golden-section search.
fn golden_section_max(f: impl Fn(f64) -> f64, mut a: f64, mut b: f64, tol: f64) -> f64 {
    let inv_phi = (5f64.sqrt() - 1.0) / 2.0;
    let mut c = b - inv_phi * (b - a);
    let mut e = a + inv_phi * (b - a);
    let (mut fc, mut fe) = (f(c), f(e));
    while (b - a).abs() > tol {
        if fc >= fe {
            b = e;
            e = c;
            fe = fc;
            c = b - inv_phi * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = e;
            fc = fe;
            e = a + inv_phi * (b - a);
            fe = f(e);
        }
    }
    0.5 * (a + b)
}

/// Leave-one-out likelihood cross-validation of a Gaussian kernel's bandwidth.
pub fn loo_cv_bandwidth<T: Element>(
    data: ArrayView2<'_, T>,
    options: &LooCvOptions,
) -> Result<LooCv> {
    check_points(&data, "data", None, 2)?;
    let (n, d) = data.dim();
    let k = match options.n_neighbors {
        Some(0) => {
            return Err(Error::invalid(
                "n_neighbors",
                "expected at least 1 neighbour per point, got 0",
            ));
        }
        Some(k) => k.min(n - 1),
        None => DEFAULT_NEIGHBORS.min(n - 1),
    };
    let table_bytes = n as f64 * k as f64 * 8.0;
    if table_bytes > NEIGHBOR_TABLE_BYTES {
        return Err(Error::TooLarge {
            what: format!("a table of {k} neighbours for each of {n} points"),
            needed: format_bytes(table_bytes),
            advice: "pass a smaller n_neighbors or subsample the data".into(),
        });
    }
    if let Some((lo, hi)) = options.bounds
        && !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo < hi)
    {
        return Err(Error::invalid(
            "bounds",
            format!("expected 0 < low < high, both finite, got ({lo}, {hi})"),
        ));
    }
    let (table, points) = neighbor_table(&data, k)?;
    let data_scale = (points.sq_norms.iter().sum::<f64>() / ((n as f64 - 1.0) * d as f64)).sqrt();
    if data_scale == 0.0 {
        return Err(Error::invalid(
            "data",
            "all points are identical: no bandwidth maximizes the likelihood",
        ));
    }
    let nn_scale = nearest_neighbor_rule(table.iter().step_by(k).copied(), n, d);
    // Below this bandwidth 1/h^2 overflows float64 and the likelihood cannot be evaluated.
    let min_bandwidth = 2.0 / f64::MAX.sqrt();
    if let Some((lo, _)) = options.bounds
        && lo < min_bandwidth
    {
        return Err(Error::invalid(
            "bounds",
            format!(
                "the low end {lo:e} is below {min_bandwidth:.1e}, where 1/h^2 overflows float64; \
                 rescale the data"
            ),
        ));
    }
    let (lo, hi) = options.bounds.unwrap_or_else(|| {
        let small = if nn_scale > 0.0 {
            nn_scale.min(data_scale)
        } else {
            data_scale * 1e-3
        };
        (
            (small / 10.0).max(min_bandwidth),
            nn_scale.max(data_scale) * 4.0,
        )
    });
    if lo >= hi {
        return Err(Error::invalid(
            "data",
            format!(
                "its scale ({data_scale:e}) is too small to search bandwidths in float64; \
                 rescale the data"
            ),
        ));
    }
    let objective = CvObjective {
        table: &table,
        k,
        n,
        d,
    };
    // A difference of logs: hi / lo itself can overflow.
    let step = (hi.ln() - lo.ln()) / (GRID_POINTS - 1) as f64;
    let log_bandwidths: Vec<f64> = (0..GRID_POINTS)
        .map(|i| lo.ln() + step * i as f64)
        .collect();
    let scores: Vec<f64> = log_bandwidths
        .iter()
        .map(|&lh| objective.score(lh))
        .collect();
    let best = scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    let at_boundary = best == 0 || best == GRID_POINTS - 1;
    let log_h = golden_section_max(
        |lh| objective.score(lh),
        log_bandwidths[best.saturating_sub(1)],
        log_bandwidths[(best + 1).min(GRID_POINTS - 1)],
        LOG_H_TOLERANCE,
    );
    let bandwidth = log_h.exp();
    let truncated_score = objective.score(log_h);
    let exact = k == n - 1;
    let score = if exact {
        truncated_score
    } else {
        let options = DensityOptions {
            kernel: Kernel::Gaussian,
            scale: Scale::Bandwidth(bandwidth),
            leave_one_out: true,
        };
        let loo = density::evaluate(&data, None, None, &options, false)?.log_density;
        loo.iter().sum::<f64>() / n as f64
    };
    Ok(LooCv {
        bandwidth,
        score,
        truncated_score,
        truncation_error_bound: objective.truncation_bound(bandwidth),
        n_neighbors: k,
        exact,
        at_boundary,
        log_bandwidths,
        scores,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn gaussian_sample(n: usize, d: usize, seed: u64) -> Array2<f64> {
        // Box-Muller on a linear congruential generator: deterministic, no dependency.
        let mut state = seed;
        let mut uniform = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        Array2::from_shape_fn((n, d), |_| {
            (-2.0 * uniform().ln()).sqrt() * (2.0 * std::f64::consts::PI * uniform()).cos()
        })
    }

    #[test]
    fn exact_cv_agrees_with_the_streaming_leave_one_out_density() {
        let data = gaussian_sample(300, 5, 11);
        let cv = loo_cv_bandwidth(
            data.view(),
            &LooCvOptions {
                n_neighbors: Some(1000),
                bounds: None,
            },
        )
        .unwrap();
        assert!(cv.exact && !cv.at_boundary);
        assert_eq!(cv.truncation_error_bound, 0.0);
        let options = DensityOptions {
            kernel: Kernel::Gaussian,
            scale: Scale::Bandwidth(cv.bandwidth),
            leave_one_out: true,
        };
        let loo = density::log_density(data.view(), None, None, &options).unwrap();
        let mean = loo.iter().sum::<f64>() / 300.0;
        assert!((mean - cv.score).abs() < 1e-10);
        // A maximum: nearby bandwidths score lower.
        for factor in [0.95, 1.05] {
            let options = DensityOptions {
                scale: Scale::Bandwidth(cv.bandwidth * factor),
                ..options.clone()
            };
            let loo = density::log_density(data.view(), None, None, &options).unwrap();
            assert!(loo.iter().sum::<f64>() / 300.0 < cv.score);
        }
    }

    #[test]
    fn truncation_error_is_bounded_and_small() {
        let data = gaussian_sample(600, 8, 12);
        let full = loo_cv_bandwidth(
            data.view(),
            &LooCvOptions {
                n_neighbors: None,
                bounds: None,
            },
        )
        .unwrap();
        let cut = loo_cv_bandwidth(
            data.view(),
            &LooCvOptions {
                n_neighbors: Some(40),
                bounds: None,
            },
        )
        .unwrap();
        assert!(!cut.exact && cut.n_neighbors == 40);
        let gap = cut.score - cut.truncated_score;
        assert!(gap >= 0.0 && gap <= cut.truncation_error_bound + 1e-12);
        assert!((cut.bandwidth / full.bandwidth - 1.0).abs() < 0.2);
    }

    #[test]
    fn nearest_neighbor_rule_matches_a_brute_force_minimum() {
        let data = gaussian_sample(200, 3, 13);
        let mut total = 0.0;
        for i in 0..200 {
            let mut best = f64::INFINITY;
            for j in 0..200 {
                if i != j {
                    let sq: f64 = data
                        .row(i)
                        .iter()
                        .zip(data.row(j))
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum();
                    best = best.min(sq);
                }
            }
            total += best;
        }
        let want = (total / 600.0).sqrt();
        let got = nearest_neighbor_bandwidth(data.view()).unwrap();
        assert!((got - want).abs() < 1e-10 * want);
        assert!(nearest_neighbor_bandwidth(data.slice(ndarray::s![..1, ..])).is_err());
        let twice = ndarray::concatenate![ndarray::Axis(0), data, data];
        assert!(nearest_neighbor_bandwidth(twice.view()).is_err());
    }
}
