//! Robust sign-error (Dziugaite et al. 2020, "In search of robust measures of generalization").
//!
//! An environment is a pair of configurations that differ in exactly one hyperparameter. For every
//! pair of runs (one from each configuration) the sign-error is (1 - sign(d mu) sign(d g)) / 2; the
//! environment's error is their weighted mean. With Hoeffding weighting a pair weighs (w - w_min)_+
//! with w = (1 - 2 exp(-2 n (|d g| / 2)^2))_+^2, the probability bound that the two gaps truly
//! differ when each is estimated from n samples.
//!
//! An environment's effective sample size is (sum w)^2 / sum w^2; environments below `min_ess`
//! (12 in Dziugaite et al.) are not kept: without that filter an environment made of one noisy
//! pair of runs counts as much as one of sixteen confident pairs, and the maximum sign-error of
//! nearly every measure is 1. Pairs of runs of one configuration never form an environment, so
//! replicates need no special rule here: they are the pairs of runs averaged over.

use rayon::prelude::*;

use super::NanPolicy;
use super::grid::{Codes, check_lengths, models_without_nan};
use crate::error::{Error, Result, format_bytes};

/// The most environments [`sign_error`] builds (about 3.4 GB of results at
/// [`BYTES_PER_ENVIRONMENT`]).
pub(crate) const MAX_ENVIRONMENTS: usize = 1 << 24;
/// Memory per environment: the result and its copy into the caller's arrays, roughly.
const BYTES_PER_ENVIRONMENT: f64 = 200.0;

/// How pairs of runs are weighted inside an environment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Weighting {
    /// Every pair weighs 1.
    Uniform,
    /// Hoeffding weight of the gap difference, minus `min_weight`, floored at 0.
    Hoeffding {
        /// Number of samples each gap was estimated from (e.g. the test-set size).
        n_samples: f64,
        /// Weights below this are discarded (Dziugaite et al. use 0.5).
        min_weight: f64,
    },
}

impl Weighting {
    fn weight(&self, gap_difference: f64) -> f64 {
        match *self {
            Weighting::Uniform => 1.0,
            Weighting::Hoeffding {
                n_samples,
                min_weight,
            } => {
                let half = gap_difference.abs() / 2.0;
                let w = (1.0 - 2.0 * (-2.0 * n_samples * half * half).exp())
                    .max(0.0)
                    .powi(2);
                (w - min_weight).max(0.0)
            }
        }
    }
}

/// One environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    /// The axis on which the two configurations differ.
    pub axis: usize,
    /// A model of the first configuration (the lowest index).
    pub model_a: usize,
    /// A model of the second configuration (the lowest index).
    pub model_b: usize,
    /// Weighted mean sign-error (NaN when the total weight is 0, or a run has a NaN).
    pub error: f64,
    /// Total weight of the pairs of runs (NaN when a run has a NaN).
    pub weight: f64,
    /// Effective sample size (sum w)^2 / sum w^2 (0 when the total weight is 0, NaN when a run
    /// has a NaN).
    pub effective_sample_size: f64,
    /// Whether the environment is kept: a positive total weight and an effective sample size of
    /// at least `min_ess` (up to the reference code's `numpy.isclose` tolerance).
    pub kept: bool,
    /// Number of pairs of runs.
    pub n_pairs: usize,
}

/// Whether `ess` passes `min_ess` the way the reference code decides it:
/// `isclose(ess, min_ess) or ess > min_ess` with numpy's default tolerances.
fn passes(ess: f64, min_ess: f64) -> bool {
    ess > min_ess || (ess - min_ess).abs() <= 1e-8 + 1e-5 * min_ess.abs()
}

fn sign(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Every environment of the grid with its sign-error.
pub fn sign_error(
    measure: &[f64],
    gap: &[f64],
    codes: &Codes<'_>,
    weighting: Weighting,
    min_ess: f64,
    nan_policy: NanPolicy,
) -> Result<Vec<Environment>> {
    check_lengths(measure, gap, codes)?;
    if !(min_ess >= 0.0 && min_ess.is_finite()) {
        return Err(Error::invalid(
            "min_ess",
            format!("must be a finite number >= 0, got {min_ess}"),
        ));
    }
    if let Weighting::Hoeffding {
        n_samples,
        min_weight,
    } = weighting
    {
        if !(n_samples > 0.0 && n_samples.is_finite()) {
            return Err(Error::invalid(
                "n_samples",
                format!("must be a positive number, got {n_samples}"),
            ));
        }
        if !(0.0..1.0).contains(&min_weight) {
            return Err(Error::invalid(
                "min_weight",
                format!("must be in [0, 1), got {min_weight}"),
            ));
        }
    }
    // Under "propagate" a NaN run makes the error (and weight) of its environments NaN.
    let (models, _) = models_without_nan(measure, gap, nan_policy)?;
    let pool: Vec<usize> = if nan_policy == NanPolicy::Omit {
        models
    } else {
        (0..measure.len()).collect()
    };
    // Configurations (runs sharing every code), then per axis the cells of configurations.
    let configs = codes.group_models(&pool, None);
    let representatives: Vec<usize> = configs.iter().map(|c| c[0]).collect();
    let mut config_of = vec![usize::MAX; measure.len()];
    for (position, &r) in representatives.iter().enumerate() {
        config_of[r] = position;
    }
    // Count first: a single axis of k distinct values alone has k (k - 1) / 2 environments, so a
    // small input (1e5 runs) could ask for billions of them.
    let cells: Vec<Vec<Vec<usize>>> = (0..codes.n_axes())
        .map(|axis| codes.cells(&representatives, axis))
        .collect();
    let count: u128 = cells
        .iter()
        .flatten()
        .map(|cell| (cell.len() as u128) * (cell.len() as u128).saturating_sub(1) / 2)
        .sum();
    if count > MAX_ENVIRONMENTS as u128 {
        return Err(Error::TooLarge {
            what: format!(
                "{count} environments (pairs of configurations that differ in one hyperparameter)"
            ),
            needed: format_bytes(count as f64 * BYTES_PER_ENVIRONMENT),
            advice: format!(
                "at most {MAX_ENVIRONMENTS} are compared: bin the values of an axis with many \
                 distinct values, or rank a subset of the configurations"
            ),
        });
    }
    let mut envs: Vec<(usize, usize, usize)> = Vec::with_capacity(count as usize);
    for (axis, axis_cells) in cells.iter().enumerate() {
        for cell in axis_cells {
            // Configurations in one cell differ exactly on `axis`.
            for (p, &a) in cell.iter().enumerate() {
                for &b in &cell[p + 1..] {
                    envs.push((axis, config_of[a], config_of[b]));
                }
            }
        }
    }
    Ok(envs
        .par_iter()
        .map(|&(axis, a, b)| {
            let (mut weighted, mut total, mut total_sq, mut n_pairs) = (0.0, 0.0, 0.0, 0usize);
            let mut has_nan = false;
            for &i in &configs[a] {
                for &j in &configs[b] {
                    let dg = gap[i] - gap[j];
                    let dm = measure[i] - measure[j];
                    if dg.is_nan() || dm.is_nan() {
                        has_nan = true;
                    }
                    let w = weighting.weight(dg);
                    weighted += w * (1.0 - sign(dm) * sign(dg)) / 2.0;
                    total += w;
                    total_sq += w * w;
                    n_pairs += 1;
                }
            }
            let error = if has_nan {
                f64::NAN
            } else if total > 0.0 {
                weighted / total
            } else {
                f64::NAN
            };
            let effective_sample_size = if has_nan {
                f64::NAN
            } else if total > 0.0 {
                total * total / total_sq
            } else {
                0.0
            };
            Environment {
                axis,
                model_a: configs[a][0],
                model_b: configs[b][0],
                error,
                weight: if has_nan { f64::NAN } else { total },
                effective_sample_size,
                kept: !has_nan && total > 0.0 && passes(effective_sample_size, min_ess),
                n_pairs,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayView2;

    #[test]
    fn environments_of_a_small_grid() {
        // 2 x 2 grid with 2 seeds each: 4 environments (2 per axis), 4 pairs of runs each.
        let mut data = Vec::new();
        let mut gap = Vec::new();
        for a in 0..2 {
            for b in 0..2 {
                for s in 0..2 {
                    data.extend([a, b]);
                    gap.push(a as f64 + 2.0 * b as f64 + 0.1 * s as f64);
                }
            }
        }
        let codes = Codes::new(ArrayView2::from_shape((8, 2), &data).unwrap()).unwrap();
        let envs = sign_error(
            &gap,
            &gap,
            &codes,
            Weighting::Uniform,
            4.0,
            NanPolicy::Propagate,
        )
        .unwrap();
        assert_eq!(envs.len(), 4);
        assert!(envs.iter().all(|e| e.error == 0.0 && e.n_pairs == 4));
        // Uniform weights: the effective sample size is the number of pairs of runs.
        assert!(
            envs.iter()
                .all(|e| e.effective_sample_size == 4.0 && e.kept)
        );
        let strict = sign_error(
            &gap,
            &gap,
            &codes,
            Weighting::Uniform,
            12.0,
            NanPolicy::Propagate,
        )
        .unwrap();
        assert!(strict.iter().all(|e| !e.kept));
        let flipped: Vec<f64> = gap.iter().map(|g| -g).collect();
        let envs = sign_error(
            &flipped,
            &gap,
            &codes,
            Weighting::Uniform,
            0.0,
            NanPolicy::Propagate,
        )
        .unwrap();
        assert!(envs.iter().all(|e| e.error == 1.0));
    }

    #[test]
    fn hoeffding_weight_discards_tiny_differences() {
        let w = Weighting::Hoeffding {
            n_samples: 10000.0,
            min_weight: 0.5,
        };
        assert_eq!(w.weight(0.001), 0.0);
        assert!(w.weight(0.1) > 0.49);
    }
}
