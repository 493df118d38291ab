//! Power-law fits of eigenvalue spectra: the heavy-tail exponent of a layer's empirical spectral
//! density (Martin and Mahoney's alpha, as WeightWatcher fits it).
//!
//! For the sorted positive eigenvalues x_1 <= ... <= x_N of W^T W, every x_i but the largest is a
//! candidate xmin. Its tail x_i..x_N (n = N - i + 1 values, ties kept) gets the continuous
//! maximum-likelihood exponent alpha = 1 + n / sum_{j >= i} log(x_j / x_i) (Clauset, Shalizi and
//! Newman 2009) and the Kolmogorov-Smirnov distance
//! D = max_k |1 - (x_{i+k} / x_i)^(1 - alpha) - k / n| (k = 0..n-1: the empirical CDF just
//! below each tail point); a tail of equal values has no exponent and D = 1. The fit is the
//! candidate with the smallest D (the first, on ties), with sigma = (alpha - 1) / sqrt(n). A
//! spectrum of equal values has no tail to fit: an error.
//!
//! Spectra of fewer than 20 values use WeightWatcher's small-sample rule instead: only tails of
//! at least 8 values, the bias-corrected exponent 1 + (n - 1) / sum log(x_j / x_i), and the xmin
//! that minimizes D - 0.868 / sqrt(n) (when no tail qualifies, the whole spectrum).
//!
//! One fit is O(N^2) (the KS distance of every candidate); [`power_law_fit_many`] fits many
//! spectra (layers, models) in parallel.

use rayon::prelude::*;

use crate::error::{Error, Result, check_finite};

/// Spectra shorter than this use the small-sample rule (module docs).
const SMALL_SPECTRUM: usize = 20;
/// Smallest tail the small-sample rule considers.
const SMALL_MIN_TAIL: usize = 8;

/// A power-law fit of one spectrum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerLawFit {
    /// The exponent alpha of the tail's density x^(-alpha).
    pub alpha: f64,
    /// The smallest eigenvalue of the fitted tail.
    pub xmin: f64,
    /// The Kolmogorov-Smirnov distance between the tail and the fitted law.
    pub ks_distance: f64,
    /// (alpha - 1) / sqrt(n): the exponent's standard error.
    pub sigma: f64,
    /// Eigenvalues in the tail (x >= xmin).
    pub n_tail: usize,
}

/// Fits one spectrum (module docs). Errors: fewer than 2 values, a value that is not finite
/// and positive, every value equal.
pub fn power_law_fit(eigenvalues: &[f64]) -> Result<PowerLawFit> {
    check_spectrum("eigenvalues", eigenvalues)?;
    let mut x = eigenvalues.to_vec();
    x.sort_unstable_by(f64::total_cmp);
    let logs: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    // suffix[i] = sum_{j >= i} log x_j
    let mut suffix = vec![0.0; x.len() + 1];
    for i in (0..x.len()).rev() {
        suffix[i] = suffix[i + 1] + logs[i];
    }
    let fit = if x.len() < SMALL_SPECTRUM {
        fit_small(&x, &logs, &suffix)
    } else {
        fit_standard(&x, &logs, &suffix)
    };
    fit.ok_or_else(|| {
        Error::invalid(
            "eigenvalues",
            "all values are equal: there is no tail to fit a power law to",
        )
    })
}

/// Fits every spectrum, in parallel; the first invalid one is the error (named by index).
pub fn power_law_fit_many(spectra: &[&[f64]]) -> Result<Vec<PowerLawFit>> {
    spectra
        .par_iter()
        .enumerate()
        .map(|(k, s)| {
            power_law_fit(s).map_err(|e| match e {
                Error::InvalidArgument { reason, .. } => {
                    Error::invalid(format!("spectra[{k}]"), reason)
                }
                Error::Empty { got, min, .. } => Error::Empty {
                    name: format!("spectra[{k}]"),
                    got,
                    min,
                },
                Error::NonFinite { index, .. } => Error::NonFinite {
                    name: format!("spectra[{k}]"),
                    index,
                },
                other => other,
            })
        })
        .collect()
}

fn check_spectrum(name: &str, values: &[f64]) -> Result<()> {
    if values.len() < 2 {
        return Err(Error::Empty {
            name: name.to_string(),
            got: values.len(),
            min: 2,
        });
    }
    check_finite(name, values)?;
    if let Some(i) = values.iter().position(|&v| v <= 0.0) {
        return Err(Error::invalid(
            name,
            format!(
                "value {} at index {i} is not positive; fit the nonzero eigenvalues",
                values[i]
            ),
        ));
    }
    Ok(())
}

/// sum_{j >= i} log(x_j / x_i): the tail's log-sum relative to its smallest value.
fn tail_sum(logs: &[f64], suffix: &[f64], i: usize) -> f64 {
    let n = (logs.len() - i) as f64;
    suffix[i] - n * logs[i]
}

/// The KS distance of the tail from `i` to a power law with exponent `alpha`.
fn ks_distance(logs: &[f64], i: usize, alpha: f64) -> f64 {
    let n = (logs.len() - i) as f64;
    let xmin_log = logs[i];
    logs[i..]
        .iter()
        .enumerate()
        .map(|(k, &lx)| {
            // (x / xmin)^(1 - alpha), and exactly 1 at x = xmin whatever alpha (also infinite,
            // the exponent of a tail of equal values).
            let ratio = if lx == xmin_log {
                1.0
            } else {
                ((1.0 - alpha) * (lx - xmin_log)).exp()
            };
            (1.0 - ratio - k as f64 / n).abs()
        })
        .fold(0.0, f64::max)
}

fn fit_standard(x: &[f64], logs: &[f64], suffix: &[f64]) -> Option<PowerLawFit> {
    let n_all = x.len();
    let (mut best, mut best_d, mut best_alpha) = (0, f64::INFINITY, f64::NAN);
    for i in 0..n_all - 1 {
        let n = (n_all - i) as f64;
        // A tail of equal values (sorted: its first equals its last) has no exponent; its log-sum
        // is 0 only up to rounding, so it is recognized by the values themselves.
        let alpha = if x[i] < x[n_all - 1] {
            1.0 + n / tail_sum(logs, suffix, i)
        } else {
            f64::NAN
        };
        let d = if alpha > 1.0 && alpha.is_finite() {
            ks_distance(logs, i, alpha)
        } else {
            1.0
        };
        if d < best_d {
            (best, best_d, best_alpha) = (i, d, alpha);
        }
    }
    best_alpha
        .is_finite()
        .then(|| finish(x, best, best_alpha, best_d))
}

fn fit_small(x: &[f64], logs: &[f64], suffix: &[f64]) -> Option<PowerLawFit> {
    let n_all = x.len();
    let mut best: Option<(usize, f64, f64, f64)> = None; // (i, objective, alpha, D)
    for i in 0..n_all - 1 {
        let n = (n_all - i) as f64;
        if n_all - i < SMALL_MIN_TAIL {
            continue;
        }
        let s = tail_sum(logs, suffix, i);
        if s <= 1e-12 {
            continue; // a tail of (nearly) equal values
        }
        let alpha = 1.0 + (n - 1.0) / s;
        if alpha <= 1.0 {
            continue;
        }
        let d = ks_distance(logs, i, alpha);
        let objective = d - 0.868 / n.sqrt();
        if best.is_none_or(|(_, j, _, _)| objective < j) {
            best = Some((i, objective, alpha, d));
        }
    }
    if let Some((i, _, alpha, d)) = best {
        return Some(finish(x, i, alpha, d));
    }
    // No tail qualifies: the whole spectrum (none when its values are equal).
    if x[0] == x[n_all - 1] {
        return None;
    }
    let n = n_all as f64;
    let s = tail_sum(logs, suffix, 0);
    let alpha = 1.0 + (n - 1.0) / s;
    Some(finish(x, 0, alpha, ks_distance(logs, 0, alpha)))
}

fn finish(x: &[f64], i: usize, alpha: f64, d: f64) -> PowerLawFit {
    let n_tail = x.len() - i;
    PowerLawFit {
        alpha,
        xmin: x[i],
        ks_distance: d,
        sigma: (alpha - 1.0) / (n_tail as f64).sqrt(),
        n_tail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x_k = (1 - u_k)^(-1 / (alpha - 1)): a Pareto sample with exponent alpha and xmin 1.
    fn pareto(n: usize, alpha: f64, seed: u64) -> Vec<f64> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                (1.0 - u).powf(-1.0 / (alpha - 1.0))
            })
            .collect()
    }

    #[test]
    fn recovers_the_exponent_of_a_pareto_sample() {
        let fit = power_law_fit(&pareto(20_000, 2.5, 3)).unwrap();
        assert!((fit.alpha - 2.5).abs() < 0.1, "{fit:?}");
        assert!(fit.ks_distance < 0.05, "{fit:?}");
    }

    #[test]
    fn many_equals_one_by_one_and_names_the_bad_spectrum() {
        let a = pareto(300, 3.0, 1);
        let b = pareto(12, 2.0, 2);
        let fits = power_law_fit_many(&[&a, &b]).unwrap();
        assert_eq!(fits[0], power_law_fit(&a).unwrap());
        assert_eq!(fits[1], power_law_fit(&b).unwrap());
        let err = power_law_fit_many(&[&a, &[1.0, 0.0, 2.0]]).unwrap_err();
        assert!(err.to_string().contains("spectra[1]"), "{err}");
        assert!(power_law_fit(&[1.0]).is_err());
        assert!(power_law_fit(&[1.0, f64::NAN]).is_err());
    }

    #[test]
    fn equal_values_are_an_error_and_equal_top_values_are_not_a_tail() {
        for n in [10, 30] {
            let err = power_law_fit(&vec![2.0; n]).unwrap_err();
            assert!(err.to_string().contains("all values are equal"), "{err}");
        }
        let mut x = pareto(100, 2.5, 5);
        x.push(1e6);
        x.push(1e6); // a two-value tail of equal values: skipped, not an infinite alpha
        assert!(power_law_fit(&x).unwrap().alpha.is_finite());
    }
}
