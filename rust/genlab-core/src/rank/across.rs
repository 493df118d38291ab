//! Kendall counts over the pairs of observations that belong to different groups.
//!
//! With replicate runs (several seeds of one configuration), a pair of runs of the *same*
//! configuration says nothing about how configurations are ordered: counting it pulls every
//! coefficient toward 0 (with 2 seeds and a two-valued axis a configuration-perfect measure would
//! score psi = 2/3). The study's coefficients therefore count only pairs whose groups (their
//! configurations, or within a granulated cell their value of the varied axis) differ.
//!
//! Every count in [`PairCounts`] is a sum over pairs, so the counts across groups are the counts
//! over all pairs minus the counts within each group: O(n log n) for the whole set plus the small
//! within-group counts, never O(n^2).

use ndarray::ArrayView2;
use rayon::prelude::*;

use super::counts::{PairCounts, pair_counts};
use super::{NanPolicy, Variant, columns_of};
use crate::error::{Error, Result};

/// Counts over the pairs (i, j) with `group[i] != group[j]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CrossPairCounts {
    /// Pairs whose groups differ.
    pub pairs: u64,
    /// Concordant minus discordant pairs among them.
    pub concordant_minus_discordant: i128,
    /// Pairs among them tied in x (including those tied in both).
    pub x_ties: u64,
    /// Pairs among them tied in y (including those tied in both).
    pub y_ties: u64,
}

impl CrossPairCounts {
    fn over_all_pairs(c: &PairCounts) -> Self {
        CrossPairCounts {
            pairs: c.total_pairs(),
            concordant_minus_discordant: c.concordant_minus_discordant(),
            x_ties: c.x_ties,
            y_ties: c.y_ties,
        }
    }

    /// Removes the pairs counted in `within` (a subset of the pairs counted here).
    fn remove(&mut self, within: &PairCounts) {
        self.pairs -= within.total_pairs();
        self.concordant_minus_discordant -= within.concordant_minus_discordant();
        self.x_ties -= within.x_ties;
        self.y_ties -= within.y_ties;
    }

    /// tau over these pairs: tau-a `(C - D) / pairs` (0 for a constant variable), or tau-b
    /// `(C - D) / sqrt((pairs - T_x)(pairs - T_y))` (NaN for a constant variable). NaN when there
    /// are no pairs. tau-c is defined over all n(n-1)/2 pairs of n observations, not over a subset
    /// of them, so it is an error here.
    pub(crate) fn statistic(&self, variant: Variant) -> Result<f64> {
        if variant == Variant::C {
            return Err(tau_c_unsupported());
        }
        if self.pairs == 0 {
            return Ok(f64::NAN);
        }
        let cmd = self.concordant_minus_discordant as f64;
        let tau = match variant {
            Variant::A => cmd / self.pairs as f64,
            _ if self.x_ties == self.pairs || self.y_ties == self.pairs => return Ok(f64::NAN),
            _ => {
                let product =
                    (self.pairs - self.x_ties) as u128 * (self.pairs - self.y_ties) as u128;
                cmd / (product as f64).sqrt()
            }
        };
        Ok(tau.clamp(-1.0, 1.0))
    }
}

/// The error for tau-c over pairs across groups.
pub(crate) fn tau_c_unsupported() -> Error {
    Error::invalid(
        "variant",
        "tau-c is defined over all pairs of n observations, not over the pairs of runs with \
         different configurations; use variant \"a\" or \"b\", or replicates=\"average\"",
    )
}

/// Pair counts of (x, y) over the pairs whose `groups` differ. No NaN allowed (callers apply the
/// NaN policy first).
pub fn pair_counts_across(x: &[f64], y: &[f64], groups: &[usize]) -> CrossPairCounts {
    debug_assert!(x.len() == y.len() && x.len() == groups.len());
    let mut out = CrossPairCounts::over_all_pairs(&pair_counts(x, y));
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_unstable_by_key(|&i| groups[i]);
    let (mut gx, mut gy) = (Vec::new(), Vec::new());
    for members in order.chunk_by(|&a, &b| groups[a] == groups[b]) {
        if members.len() < 2 {
            continue;
        }
        gx.clear();
        gy.clear();
        gx.extend(members.iter().map(|&i| x[i]));
        gy.extend(members.iter().map(|&i| y[i]));
        out.remove(&pair_counts(&gx, &gy));
    }
    out
}

/// The checked inputs of a tau across groups: group ids as indices, and each column of X.
pub(crate) struct AcrossInputs {
    pub(crate) groups: Vec<usize>,
    pub(crate) columns: Vec<Vec<f64>>,
}

/// Checks X (n, m), `y` (n) and `groups` (n ids >= 0) and the variant, and applies
/// [`NanPolicy::Raise`] (an error for any NaN).
pub(crate) fn check_across_inputs(
    x: ArrayView2<'_, f64>,
    y: &[f64],
    groups: &[i64],
    variant: Variant,
    nan_policy: NanPolicy,
) -> Result<AcrossInputs> {
    let groups: Vec<usize> = groups
        .iter()
        .map(|&g| usize::try_from(g))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::invalid("groups", "expected ids >= 0"))?;
    if groups.len() != y.len() {
        return Err(Error::shape(
            "groups",
            format!("one group per observation ({})", y.len()),
            format!("length {}", groups.len()),
        ));
    }
    if x.ncols() > 0 && x.nrows() != y.len() {
        return Err(Error::shape(
            "X",
            format!("{} rows (the length of y)", y.len()),
            format!("{} rows", x.nrows()),
        ));
    }
    let columns = columns_of(x);
    for (j, column) in columns.iter().enumerate() {
        if nan_policy == NanPolicy::Raise && column.iter().any(|v| v.is_nan()) {
            return Err(Error::invalid(
                "X",
                format!("column {j} contains NaN (nan_policy=\"raise\")"),
            ));
        }
    }
    if nan_policy == NanPolicy::Raise && y.iter().any(|v| v.is_nan()) {
        return Err(Error::invalid("y", "contains NaN (nan_policy=\"raise\")"));
    }
    if variant == Variant::C {
        return Err(tau_c_unsupported());
    }
    Ok(AcrossInputs { groups, columns })
}

/// The runs of `column` that a tau counts: those where neither it nor `y` is NaN. None under
/// [`NanPolicy::Propagate`] when a run was dropped (the tau is NaN).
pub(crate) fn kept_runs(column: &[f64], y: &[f64], nan_policy: NanPolicy) -> Option<Vec<usize>> {
    let keep: Vec<usize> = (0..y.len())
        .filter(|&i| !column[i].is_nan() && !y[i].is_nan())
        .collect();
    (keep.len() == y.len() || nan_policy != NanPolicy::Propagate).then_some(keep)
}

/// tau of every column of X (n observations, m columns) against `y` (n), counting only pairs
/// whose `groups` (ids >= 0, one per observation) differ, in parallel over columns. NaN in a
/// column or in `y`: under [`NanPolicy::Omit`] those runs are dropped (per column), under
/// `Propagate` that column's tau is NaN, under `Raise` an error.
pub fn kendalltau_across_groups(
    x: ArrayView2<'_, f64>,
    y: &[f64],
    groups: &[i64],
    variant: Variant,
    nan_policy: NanPolicy,
) -> Result<Vec<f64>> {
    let AcrossInputs { groups, columns } = check_across_inputs(x, y, groups, variant, nan_policy)?;
    columns
        .par_iter()
        .map(|column| {
            let Some(keep) = kept_runs(column, y, nan_policy) else {
                return Ok(f64::NAN);
            };
            let x: Vec<f64> = keep.iter().map(|&i| column[i]).collect();
            let yk: Vec<f64> = keep.iter().map(|&i| y[i]).collect();
            let g: Vec<usize> = keep.iter().map(|&i| groups[i]).collect();
            pair_counts_across(&x, &yk, &g).statistic(variant)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rank::counts::pair_counts_naive;

    /// The definition, pair by pair.
    fn naive(x: &[f64], y: &[f64], groups: &[usize]) -> CrossPairCounts {
        let mut out = CrossPairCounts::default();
        for i in 0..x.len() {
            for j in i + 1..x.len() {
                if groups[i] == groups[j] {
                    continue;
                }
                let c = pair_counts_naive(&[x[i], x[j]], &[y[i], y[j]]);
                out.pairs += 1;
                out.concordant_minus_discordant += c.concordant_minus_discordant();
                out.x_ties += c.x_ties;
                out.y_ties += c.y_ties;
            }
        }
        out
    }

    #[test]
    fn matches_the_pairwise_definition() {
        let x = [1.0, 2.0, 2.0, 5.0, 3.0, 1.0, 4.0, 4.0, 0.5, 2.0];
        let y = [0.3, 0.1, 0.7, 0.7, 0.2, 0.3, 0.9, 0.1, 0.5, 0.5];
        for groups in [
            vec![0, 0, 1, 1, 2, 2, 3, 3, 4, 4],
            vec![0, 1, 2, 0, 1, 2, 0, 1, 2, 0],
            vec![7; 10],
            (0..10).collect(),
        ] {
            assert_eq!(pair_counts_across(&x, &y, &groups), naive(&x, &y, &groups));
        }
    }

    #[test]
    fn statistics_and_their_edge_cases() {
        // Two groups of replicates, perfectly ordered across groups, reversed within them.
        let x = [1.0, 0.0, 3.0, 2.0];
        let y = [0.0, 1.0, 2.0, 3.0];
        let c = pair_counts_across(&x, &y, &[0, 0, 1, 1]);
        assert_eq!(c.pairs, 4);
        assert_eq!(c.statistic(Variant::A).unwrap(), 1.0);
        assert_eq!(c.statistic(Variant::B).unwrap(), 1.0);
        assert!(c.statistic(Variant::C).is_err());
        let constant = pair_counts_across(&[1.0; 4], &y, &[0, 0, 1, 1]);
        assert_eq!(constant.statistic(Variant::A).unwrap(), 0.0);
        assert!(constant.statistic(Variant::B).unwrap().is_nan());
        let one_group = pair_counts_across(&x, &y, &[0; 4]);
        assert!(one_group.statistic(Variant::A).unwrap().is_nan());
    }

    #[test]
    fn many_columns_with_nan_policies() {
        let y = [0.0, 1.0, 2.0, 3.0];
        // Two columns, [1, 0, 3, 2] and [1, NaN, 3, 2].
        let x = ndarray::array![[1.0, 1.0], [0.0, f64::NAN], [3.0, 3.0], [2.0, 2.0]];
        let groups = [0, 0, 1, 1];
        let taus = |groups: &[i64], policy| {
            kendalltau_across_groups(x.view(), &y, groups, Variant::A, policy)
        };
        assert_eq!(taus(&groups, NanPolicy::Omit).unwrap(), vec![1.0, 1.0]);
        let propagate = taus(&groups, NanPolicy::Propagate).unwrap();
        assert!(propagate[0] == 1.0 && propagate[1].is_nan());
        assert!(taus(&groups, NanPolicy::Raise).is_err());
        assert!(taus(&[0, 1], NanPolicy::Omit).is_err());
        let e = taus(&[0, -1, 1, 1], NanPolicy::Omit).unwrap_err();
        assert_eq!(e.to_string(), "groups: expected ids >= 0");
        // Any strides: the columns of the transpose are the rows of x.
        let xt = x.t().to_owned();
        let rows = kendalltau_across_groups(xt.t(), &y, &groups, Variant::A, NanPolicy::Omit);
        assert_eq!(rows.unwrap(), vec![1.0, 1.0]);
    }
}
