//! Conditional-mutual-information score (Jiang et al. 2020; the PGDL competition score).
//!
//! Over every ordered pair of distinct models (i, j): V_mu = sign(mu_i - mu_j), V_g = sign(g_i - g_j)
//! (three values each), U_S = the codes of the axes in S of both models. For each subset S,
//! score(S) = I(V_mu; V_g | U_S) / H(V_g | U_S); the score of the measure is the minimum over the
//! subsets with a defined score (H(V_g | U_S) > 0). Natural logarithms; the ratio does not depend on
//! the base.

use std::collections::HashMap;

use rayon::prelude::*;

use super::NanPolicy;
use super::grid::{Codes, check_lengths, models_without_nan};
use crate::error::{Error, Result};

/// Score of one conditioning subset.
#[derive(Debug, Clone, PartialEq)]
pub struct SubsetScore {
    /// Axes conditioned on (indices into the hyperparameter columns).
    pub axes: Vec<usize>,
    /// I(V_mu; V_g | U_S), nats.
    pub mutual_information: f64,
    /// H(V_g | U_S), nats.
    pub gap_entropy: f64,
    /// The ratio (NaN when H(V_g | U_S) = 0).
    pub score: f64,
}

/// Above this many (condition x 9) cells the joint table is a hash map instead of a dense array.
const DENSE_TABLE_MAX: usize = 1 << 24;

fn sign_code(a: f64, b: f64) -> usize {
    if a > b {
        2
    } else if a < b {
        0
    } else {
        1
    }
}

/// All subsets of 0..k with size in [min_size, max_size], in order of size then lexicographic.
pub fn subsets(k: usize, min_size: usize, max_size: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for size in min_size..=max_size.min(k) {
        let mut comb: Vec<usize> = (0..size).collect();
        loop {
            out.push(comb.clone());
            // Advance to the next combination in lexicographic order.
            let mut i = size;
            while i > 0 && comb[i - 1] == k - size + i - 1 {
                i -= 1;
            }
            if i == 0 {
                break;
            }
            comb[i - 1] += 1;
            for j in i..size {
                comb[j] = comb[j - 1] + 1;
            }
        }
    }
    out
}

/// Mutual information and conditional entropy from per-condition 3 x 3 tables of counts.
fn information<'a>(tables: impl Iterator<Item = &'a [u64; 9]>) -> (f64, f64) {
    let mut total = 0u64;
    let mut mi = 0.0;
    let mut h = 0.0;
    for t in tables {
        let nu: u64 = t.iter().sum();
        if nu == 0 {
            continue;
        }
        total += nu;
        let nu_f = nu as f64;
        let mut row = [0u64; 3];
        let mut col = [0u64; 3];
        for a in 0..3 {
            for b in 0..3 {
                row[a] += t[a * 3 + b];
                col[b] += t[a * 3 + b];
            }
        }
        // Accumulate count-weighted terms; divided by the total number of pairs at the end.
        for a in 0..3 {
            for b in 0..3 {
                let c = t[a * 3 + b];
                if c > 0 {
                    let cf = c as f64;
                    mi += cf * (cf * nu_f / (row[a] as f64 * col[b] as f64)).ln();
                }
            }
        }
        for &cb in &col {
            if cb > 0 {
                let p = cb as f64 / nu_f;
                h -= cb as f64 * p.ln();
            }
        }
    }
    if total == 0 {
        return (f64::NAN, f64::NAN);
    }
    (mi / total as f64, h / total as f64)
}

/// Per-subset conditional-MI scores for every subset of axes with size in [min_size, max_size].
pub fn conditional_mutual_information(
    measure: &[f64],
    gap: &[f64],
    codes: &Codes<'_>,
    min_size: usize,
    max_size: usize,
    nan_policy: NanPolicy,
) -> Result<Vec<SubsetScore>> {
    check_lengths(measure, gap, codes)?;
    if min_size > max_size {
        return Err(Error::invalid(
            "min_subset_size",
            format!("must be <= max_subset_size ({max_size}), got {min_size}"),
        ));
    }
    let (models, has_nan) = models_without_nan(measure, gap, nan_policy)?;
    let all_subsets = subsets(codes.n_axes(), min_size, max_size);
    if has_nan && nan_policy == NanPolicy::Propagate {
        return Ok(all_subsets
            .into_iter()
            .map(|axes| SubsetScore {
                axes,
                mutual_information: f64::NAN,
                gap_entropy: f64::NAN,
                score: f64::NAN,
            })
            .collect());
    }
    let mu: Vec<f64> = models.iter().map(|&i| measure[i]).collect();
    let g: Vec<f64> = models.iter().map(|&i| gap[i]).collect();
    let n = models.len();
    Ok(all_subsets
        .into_par_iter()
        .map(|axes| {
            let (ids, k) = codes.subset_ids(&models, &axes);
            let (mi, h) = if k.saturating_mul(k).saturating_mul(9) <= DENSE_TABLE_MAX {
                let mut tables = vec![[0u64; 9]; k * k];
                for i in 0..n {
                    let base = ids[i] * k;
                    for j in 0..n {
                        if i != j {
                            let cell = sign_code(mu[i], mu[j]) * 3 + sign_code(g[i], g[j]);
                            tables[base + ids[j]][cell] += 1;
                        }
                    }
                }
                information(tables.iter())
            } else {
                let mut tables: HashMap<(usize, usize), [u64; 9]> = HashMap::new();
                for i in 0..n {
                    for j in 0..n {
                        if i != j {
                            let cell = sign_code(mu[i], mu[j]) * 3 + sign_code(g[i], g[j]);
                            tables.entry((ids[i], ids[j])).or_insert([0; 9])[cell] += 1;
                        }
                    }
                }
                information(tables.values())
            };
            let score = if h > 0.0 { mi / h } else { f64::NAN };
            SubsetScore {
                axes,
                mutual_information: mi,
                gap_entropy: h,
                score,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_enumerated_in_order() {
        assert_eq!(
            subsets(3, 0, 2),
            vec![
                vec![],
                vec![0],
                vec![1],
                vec![2],
                vec![0, 1],
                vec![0, 2],
                vec![1, 2]
            ]
        );
        assert_eq!(subsets(2, 2, 5), vec![vec![0, 1]]);
    }

    #[test]
    fn edge_scores() {
        // 3 x 3 x 2 grid; gap depends on all axes.
        let mut data = Vec::new();
        let mut gap = Vec::new();
        let mut axis0 = Vec::new();
        for a in 0..3 {
            for b in 0..3 {
                for c in 0..2 {
                    data.extend([a, b, c]);
                    gap.push(
                        a as f64
                            + 0.37 * b as f64
                            + 0.011 * c as f64
                            + 0.001 * ((a * 7 + b * 3 + c) % 5) as f64,
                    );
                    axis0.push(a as f64);
                }
            }
        }
        let codes = Codes::new(&data, 18, 3).unwrap();
        let min_score = |m: &[f64]| {
            conditional_mutual_information(m, &gap, &codes, 0, 2, NanPolicy::Propagate)
                .unwrap()
                .iter()
                .map(|s| s.score)
                .filter(|s| !s.is_nan())
                .fold(f64::INFINITY, f64::min)
        };
        assert!((min_score(&gap) - 1.0).abs() < 1e-12);
        assert!(min_score(&axis0).abs() < 1e-12);
        assert!(min_score(&[5.0; 18]).abs() < 1e-12);
    }
}
