//! The information plane of a layer (Saxe et al. 2018; Kolchinsky and Tracey 2017).
//!
//! For layer outputs t_i plus Gaussian noise N(0, s^2 I), with D_ij = ||t_i - t_j||^2: I_upper(X;T)
//! = -(1/N) sum_i log[(1/N) sum_j exp(-D_ij / (2 s^2))], and I_lower the same with 8 s^2. I(T;Y) =
//! H(T) - sum_c p_c H(T | Y = c), each entropy by the same pairwise estimator on the class subset
//! (the constant d/2 log(2 pi e s^2) cancels). 0 <= I_lower <= I_upper <= log N.

use std::collections::BTreeMap;

use ndarray::{ArrayView2, Axis};
use rayon::prelude::*;

use super::Element;
use super::rows;
use super::tiles::{Queries, Reducer, Transform, check_points, reduce};
use crate::error::{Error, Result};
use crate::simd::{Isa, rescale_to_common_max};

/// Per query: the smallest squared distance and, per scale c, sum_j exp(-c (D_j - min D)).
struct MultiScale<'a> {
    scales: &'a [f64],
}

struct MultiScaleState {
    lowest: f64,
    sums: Vec<f64>,
}

impl MultiScale<'_> {
    /// Folds in block sums taken relative to the block's own smallest distance `lowest`.
    fn fold(&self, into: &mut MultiScaleState, lowest: f64, sums: impl Iterator<Item = f64>) {
        if lowest == f64::INFINITY {
            return;
        }
        // Per scale c the sums are exp-sums relative to the maxima -c * lowest.
        for ((acc, &c), s) in into.sums.iter_mut().zip(self.scales).zip(sums) {
            let (_, r_into, r_block) = rescale_to_common_max(-c * into.lowest, -c * lowest);
            *acc = *acc * r_into + s * r_block;
        }
        into.lowest = into.lowest.min(lowest);
    }
}

impl Reducer for MultiScale<'_> {
    type State = MultiScaleState;

    fn empty(&self) -> MultiScaleState {
        MultiScaleState {
            lowest: f64::INFINITY,
            sums: vec![0.0; self.scales.len()],
        }
    }

    fn absorb(&self, state: &mut MultiScaleState, row: &mut [f64], _start: usize) {
        let row = &*row;
        let isa = Isa::detect();
        let lowest = rows::min_of(isa, row);
        let sums = self
            .scales
            .iter()
            .map(|&c| rows::sum_exp_below(isa, row, c, lowest));
        self.fold(state, lowest, sums);
    }

    fn merge(&self, into: &mut MultiScaleState, other: MultiScaleState) {
        self.fold(into, other.lowest, other.sums.into_iter());
    }
}

/// -(1/N) sum_i log[(1/N) sum_j exp(-c D_ij)] for each scale c: the pairwise-distance entropy
/// estimate minus the entropy of the noise.
fn pairwise_entropy<T: Element>(points: &ArrayView2<'_, T>, scales: &[f64]) -> Result<Vec<f64>> {
    let n = points.nrows();
    let transform = Transform::fit(points, None);
    let prepared = transform.apply(points)?;
    let own_points: Queries<'_, T> = Queries::Data {
        leave_one_out: false,
    };
    let states = reduce(&prepared, &transform, own_points, &MultiScale { scales });
    let log_n = (n as f64).ln();
    Ok(scales
        .iter()
        .enumerate()
        .map(|(k, &c)| {
            let total: f64 = states
                .iter()
                .map(|s| -c * s.lowest + s.sums[k].ln() - log_n)
                .sum();
            -total / n as f64
        })
        .collect())
}

/// Information-plane coordinates of one layer, one value per noise variance, in nats.
#[derive(Debug, Clone, PartialEq)]
pub struct InformationPlane {
    /// Upper bound on I(X;T) (pairwise KL estimator).
    pub i_xt_upper: Vec<f64>,
    /// Lower bound on I(X;T) (pairwise Bhattacharyya estimator).
    pub i_xt_lower: Vec<f64>,
    /// I(T;Y) with the KL estimator (empty without labels).
    pub i_ty_upper: Vec<f64>,
    /// I(T;Y) with the Bhattacharyya estimator (empty without labels).
    pub i_ty_lower: Vec<f64>,
}

fn check_noise(noise_variances: &[f64]) -> Result<()> {
    if noise_variances.is_empty() {
        return Err(Error::Empty {
            name: "noise_variance".into(),
            got: 0,
            min: 1,
        });
    }
    if let Some(v) = noise_variances
        .iter()
        .find(|v| !(v.is_finite() && **v > 0.0))
    {
        return Err(Error::invalid(
            "noise_variance",
            format!("expected positive finite variances, got {v}"),
        ));
    }
    // The kernels use 1/(2 s^2): it must be finite (a subnormal variance would make it inf, and
    // inf times the zero distance of a point to itself NaN).
    if let Some(v) = noise_variances.iter().find(|v| !(0.5 / **v).is_finite()) {
        return Err(Error::invalid(
            "noise_variance",
            format!(
                "{v:e} is too small: 1/(2 variance) overflows float64; rescale the activations"
            ),
        ));
    }
    Ok(())
}

/// Information-plane coordinates of one layer's activations (N x d) for every noise variance;
/// `labels` (N class codes) adds I(T;Y).
pub(crate) fn information_plane<T: Element>(
    activations: ArrayView2<'_, T>,
    labels: Option<&[i64]>,
    noise_variances: &[f64],
) -> Result<InformationPlane> {
    check_noise(noise_variances)?;
    check_points(&activations, "activations", None, 1)?;
    let n = activations.nrows();
    // Upper bound: c = 1/(2 s^2); lower bound: c = 1/(8 s^2).
    let scales: Vec<f64> = noise_variances
        .iter()
        .map(|v| 0.5 / v)
        .chain(noise_variances.iter().map(|v| 0.125 / v))
        .collect();
    let s = noise_variances.len();
    let all = pairwise_entropy(&activations, &scales)?;
    let (mut i_ty_upper, mut i_ty_lower) = (Vec::new(), Vec::new());
    if let Some(labels) = labels {
        if labels.len() != n {
            return Err(Error::shape(
                "labels",
                format!("one label per activation row ({n})"),
                format!("{} labels", labels.len()),
            ));
        }
        let mut classes: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (i, &c) in labels.iter().enumerate() {
            classes.entry(c).or_default().push(i);
        }
        let mut conditional = vec![0.0; 2 * s];
        for members in classes.values() {
            let subset = activations.select(Axis(0), members);
            let p = members.len() as f64 / n as f64;
            for (acc, h) in conditional
                .iter_mut()
                .zip(pairwise_entropy(&subset.view(), &scales)?)
            {
                *acc += p * h;
            }
        }
        let mutual: Vec<f64> = all.iter().zip(&conditional).map(|(a, c)| a - c).collect();
        i_ty_upper = mutual[..s].to_vec();
        i_ty_lower = mutual[s..].to_vec();
    }
    Ok(InformationPlane {
        i_xt_upper: all[..s].to_vec(),
        i_xt_lower: all[s..].to_vec(),
        i_ty_upper,
        i_ty_lower,
    })
}

/// `information_plane` of many layers (or epochs), in parallel.
pub fn information_plane_many<T: Element>(
    activations: &[ArrayView2<'_, T>],
    labels: Option<&[i64]>,
    noise_variances: &[f64],
) -> Result<Vec<InformationPlane>> {
    activations
        .par_iter()
        .map(|a| information_plane(a.view(), labels, noise_variances))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn identical_points_give_zero_and_far_points_give_log_n() {
        let same = Array2::<f64>::ones((20, 4));
        let plane = information_plane(same.view(), None, &[0.1, 1.0]).unwrap();
        assert!(plane.i_xt_upper.iter().all(|v| v.abs() < 1e-12));
        let far = Array2::from_shape_fn((20, 2), |(i, j)| (i * 1000 + j) as f64);
        let plane = information_plane(far.view(), None, &[0.1]).unwrap();
        assert!((plane.i_xt_upper[0] - 20f64.ln()).abs() < 1e-12);
        assert!((plane.i_xt_lower[0] - 20f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn two_far_clusters_carry_one_bit_about_their_labels() {
        let points = Array2::from_shape_fn((30, 3), |(i, _)| if i < 15 { 0.0 } else { 1e3 });
        let labels: Vec<i64> = (0..30).map(|i| i64::from(i >= 15)).collect();
        let plane = information_plane(points.view(), Some(&labels), &[1.0]).unwrap();
        let ln2 = std::f64::consts::LN_2;
        assert!((plane.i_xt_upper[0] - ln2).abs() < 1e-12);
        assert!((plane.i_ty_upper[0] - ln2).abs() < 1e-12);
        assert!((plane.i_ty_lower[0] - ln2).abs() < 1e-12);
    }

    #[test]
    fn bounds_are_ordered_and_match_a_naive_double_sum() {
        let points = Array2::from_shape_fn((1500, 3), |(i, j)| {
            ((i * 7 + j * 13) % 17) as f64 * 0.3 + i as f64 * 1e-3
        });
        let variances = [0.05, 0.5];
        let plane = information_plane(points.view(), None, &variances).unwrap();
        for (k, &v) in variances.iter().enumerate() {
            let naive = |c: f64| {
                let n = points.nrows();
                let mut total = 0.0;
                for i in 0..n {
                    let mut s = 0.0;
                    for j in 0..n {
                        let sq: f64 = points
                            .row(i)
                            .iter()
                            .zip(points.row(j))
                            .map(|(a, b)| (a - b) * (a - b))
                            .sum();
                        s += (-c * sq).exp();
                    }
                    total += (s / n as f64).ln();
                }
                -total / n as f64
            };
            assert!((plane.i_xt_upper[k] - naive(0.5 / v)).abs() < 1e-10);
            assert!((plane.i_xt_lower[k] - naive(0.125 / v)).abs() < 1e-10);
            assert!(0.0 <= plane.i_xt_lower[k] && plane.i_xt_lower[k] <= plane.i_xt_upper[k]);
            assert!(plane.i_xt_upper[k] <= 1500f64.ln());
        }
        assert!(information_plane(points.view(), None, &[0.0]).is_err());
        assert!(information_plane(points.view(), Some(&[0, 1]), &[1.0]).is_err());
    }
}
