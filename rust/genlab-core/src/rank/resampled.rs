//! Kendall's tau across groups over many resamples of the groups at once (the bootstrap of a
//! ranking, which resamples configurations with all their runs).
//!
//! A resample holds `c_g` copies of each group g. Only pairs of runs of different groups count
//! (as in [`super::across`]; two copies of one group do not pair either), so every count over a
//! resample is a weighted sum over pairs of groups, `sum_{g < h} c_g c_h M(g, h)`, where M(g, h)
//! is the count over the pairs (i in g, j in h). Counting M once (n^2 / 2 comparisons) and then
//! every resample as a quadratic form (one matrix product for all of them) replaces B Kendall
//! computations on B resampled data sets. When the groups are many, M (k^2 entries) costs more
//! than counting each resample afresh (B n log n), and the resamples are counted one by one.
//! Both give the same integer counts, hence bit-identical taus.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::across::{
    AcrossInputs, CrossPairCounts, check_across_inputs, kept_runs, pair_counts_across,
};
use super::cmi::dense_ranks;
use super::{NanPolicy, Variant};
use crate::error::{Error, Result};

/// tau of every column of X (n observations, m columns) against `y` over the pairs of runs of
/// different groups, in each resample: row b of `counts` (B resamples x k groups) says how many
/// copies of each group resample b holds. Returns a (B, m) array. Groups are ids in [0, k); NaN
/// as in [`super::across::kendalltau_across_groups`] (omit: per column; propagate: that
/// column's taus are NaN).
pub fn kendalltau_across_resampled_groups(
    x: ArrayView2<'_, f64>,
    y: &[f64],
    groups: &[i64],
    counts: ArrayView2<'_, i64>,
    variant: Variant,
    nan_policy: NanPolicy,
) -> Result<Array2<f64>> {
    let AcrossInputs { groups, columns } = check_across_inputs(x, y, groups, variant, nan_policy)?;
    let k = counts.ncols();
    if let Some(&g) = groups.iter().find(|&&g| g >= k) {
        return Err(Error::invalid(
            "groups",
            format!("group id {g} has no column in counts, which has {k} (one per group)"),
        ));
    }
    if let Some(&c) = counts.iter().find(|&&c| c < 0) {
        return Err(Error::invalid(
            "counts",
            format!("expected copies >= 0, got {c}"),
        ));
    }
    let resamples = Resamples::new(counts);
    let draws = resamples.copies.len();
    let per_column: Vec<Vec<f64>> = columns
        .par_iter()
        .map(|column| {
            let Some(keep) = kept_runs(column, y, nan_policy) else {
                return Ok(vec![f64::NAN; draws]);
            };
            let runs = GroupedRuns::new(&keep, column, y, &groups, k);
            let totals = if counting_by_group_pairs(keep.len(), k, draws, variant) {
                runs.totals_by_group_pairs(&resamples, variant)
            } else {
                runs.totals_one_by_one(&resamples.copies)
            };
            totals.iter().map(|t| t.statistic(variant)).collect()
        })
        .collect::<Result<_>>()?;
    Ok(Array2::from_shape_fn((draws, columns.len()), |(b, j)| {
        per_column[j][b]
    }))
}

/// The resamples: copies of each group per resample, and the same as a matrix of floats for
/// the quadratic forms (made once, at its first use, for every column that counts by pairs of
/// groups).
struct Resamples {
    copies: Vec<Vec<u64>>,
    matrix: std::sync::OnceLock<Mat<f64>>,
}

impl Resamples {
    /// From counts checked to be >= 0.
    fn new(counts: ArrayView2<'_, i64>) -> Self {
        let copies = counts
            .rows()
            .into_iter()
            .map(|row| row.iter().map(|&c| c.unsigned_abs()).collect())
            .collect();
        Resamples {
            copies,
            matrix: std::sync::OnceLock::new(),
        }
    }

    fn matrix(&self, k: usize) -> &Mat<f64> {
        self.matrix.get_or_init(|| {
            Mat::<f64>::from_fn(self.copies.len(), k, |b, g| self.copies[b][g] as f64)
        })
    }
}

/// Whether counting per pair of groups (M once, then a product) is cheaper than counting each
/// resample: n^2 / 2 comparisons, and per count matrix k^2 entries to build and B k^2
/// multiply-adds, against B n log2 n steps of the O(n log n) count. The constants are the costs
/// relative to one comparison, measured on one core with n = 10,000 (k from 500 to 5,000, B from
/// 50 to 1,000); either choice gives the same taus. Above `MAX_GROUPS` the k^2 matrices would
/// not be worth their memory.
fn counting_by_group_pairs(n: usize, k: usize, draws: usize, variant: Variant) -> bool {
    const MAX_GROUPS: usize = 4096;
    const MULTIPLY_ADD: f64 = 0.065;
    const MATRIX_ENTRY: f64 = 19.0;
    const COUNT_STEP: f64 = 23.0;
    if k > MAX_GROUPS {
        return false;
    }
    let matrices = if variant == Variant::A { 1.0 } else { 3.0 };
    let (n, k, draws) = (n as f64, k as f64, draws as f64);
    let by_pairs = matrices * (n * n / 2.0 + k * k * (MATRIX_ENTRY + draws * MULTIPLY_ADD));
    let one_by_one = draws * n * n.log2().max(1.0) * COUNT_STEP;
    by_pairs <= one_by_one
}

/// One column's kept runs, grouped: the dense ranks of x and of y (comparing ranks gives the
/// signs that comparing the values gives, and integer comparisons vectorize), group by group.
struct GroupedRuns {
    x: Vec<u32>,
    y: Vec<u32>,
    /// Group g's runs are `x[start[g]..start[g + 1]]` (and the same of `y`).
    start: Vec<usize>,
}

impl GroupedRuns {
    fn new(keep: &[usize], x: &[f64], y: &[f64], groups: &[usize], k: usize) -> Self {
        let mut start = vec![0usize; k + 1];
        for &i in keep {
            start[groups[i] + 1] += 1;
        }
        for g in 0..k {
            start[g + 1] += start[g];
        }
        let x_ranks = dense_ranks(&keep.iter().map(|&i| x[i]).collect::<Vec<_>>());
        let y_ranks = dense_ranks(&keep.iter().map(|&i| y[i]).collect::<Vec<_>>());
        let mut next = start.clone();
        let (mut xs, mut ys) = (vec![0u32; keep.len()], vec![0u32; keep.len()]);
        for (r, &i) in keep.iter().enumerate() {
            xs[next[groups[i]]] = x_ranks[r];
            ys[next[groups[i]]] = y_ranks[r];
            next[groups[i]] += 1;
        }
        GroupedRuns {
            x: xs,
            y: ys,
            start,
        }
    }

    fn groups(&self) -> usize {
        self.start.len() - 1
    }

    fn group(&self, g: usize) -> (&[u32], &[u32]) {
        let runs = self.start[g]..self.start[g + 1];
        (&self.x[runs.clone()], &self.y[runs])
    }

    /// Pair counts of every resample from the counts per pair of groups.
    fn totals_by_group_pairs(
        &self,
        resamples: &Resamples,
        variant: Variant,
    ) -> Vec<CrossPairCounts> {
        let weights = &resamples.copies;
        let k = self.groups();
        let ties = variant != Variant::A;
        let rows: Vec<GroupRow> = (0..k).into_par_iter().map(|g| self.row(g, ties)).collect();
        let symmetric = |entry: fn(&GroupRow, usize) -> f64| {
            Mat::<f64>::from_fn(k, k, |g, h| match g.cmp(&h) {
                std::cmp::Ordering::Less => entry(&rows[g], h - g - 1),
                std::cmp::Ordering::Greater => entry(&rows[h], g - h - 1),
                std::cmp::Ordering::Equal => 0.0,
            })
        };
        let w = resamples.matrix(k);
        // sum_{g<h} w_g w_h M(g, h) = w^T M w / 2 for a symmetric M with a zero diagonal. Every
        // term is an integer below 2^53, so the floating-point sums are exact.
        let halved_forms = |m: &Mat<f64>| -> Vec<f64> {
            let mut wm = Mat::<f64>::zeros(weights.len(), k);
            matmul(
                wm.as_mut(),
                Accum::Replace,
                w.as_ref(),
                m.as_ref(),
                1.0,
                Par::Seq,
            );
            (0..weights.len())
                .map(|b| (0..k).map(|g| wm[(b, g)] * w[(b, g)]).sum::<f64>() / 2.0)
                .collect()
        };
        let cmd = halved_forms(&symmetric(|r, h| r.concordant_minus_discordant[h] as f64));
        let (x_ties, y_ties) = if ties {
            (
                halved_forms(&symmetric(|r, h| r.x_ties[h] as f64)),
                halved_forms(&symmetric(|r, h| r.y_ties[h] as f64)),
            )
        } else {
            (vec![0.0; weights.len()], vec![0.0; weights.len()])
        };
        let sizes: Vec<u128> = (0..k).map(|g| self.group(g).0.len() as u128).collect();
        weights
            .iter()
            .enumerate()
            .map(|(b, w)| {
                // Pairs of runs of different groups: (sum w n)^2 minus the same-group pairs.
                let total: u128 = w.iter().zip(&sizes).map(|(&c, &s)| c as u128 * s).sum();
                let same: u128 = w
                    .iter()
                    .zip(&sizes)
                    .map(|(&c, &s)| (c as u128 * s).pow(2))
                    .sum();
                CrossPairCounts {
                    pairs: ((total * total - same) / 2) as u64,
                    concordant_minus_discordant: cmd[b] as i128,
                    x_ties: x_ties[b] as u64,
                    y_ties: y_ties[b] as u64,
                }
            })
            .collect()
    }

    /// The counts of group g's runs against each later group's (entry h - g - 1 is group h).
    fn row(&self, g: usize, ties: bool) -> GroupRow {
        let later = self.groups() - g - 1;
        let mut row = GroupRow {
            concordant_minus_discordant: vec![0; later],
            x_ties: vec![0; if ties { later } else { 0 }],
            y_ties: vec![0; if ties { later } else { 0 }],
        };
        let (first_x, first_y) = self.group(g);
        for (e, h) in (g + 1..self.groups()).enumerate() {
            let (second_x, second_y) = self.group(h);
            let mut cmd = 0i64;
            for (&xi, &yi) in first_x.iter().zip(first_y) {
                // Over one run of g against every run of h: a loop of integer compares that
                // the compiler vectorizes.
                let sum: i32 = second_x
                    .iter()
                    .zip(second_y)
                    .map(|(&xj, &yj)| sign(xi, xj) * sign(yi, yj))
                    .sum();
                cmd += i64::from(sum);
            }
            row.concordant_minus_discordant[e] = cmd;
            if ties {
                for (&xi, &yi) in first_x.iter().zip(first_y) {
                    row.x_ties[e] += second_x.iter().filter(|&&xj| xj == xi).count() as u64;
                    row.y_ties[e] += second_y.iter().filter(|&&yj| yj == yi).count() as u64;
                }
            }
        }
        row
    }

    /// Pair counts of every resample, each counted on its runs (copies of a group share its id,
    /// so they do not pair with each other).
    fn totals_one_by_one(&self, weights: &[Vec<u64>]) -> Vec<CrossPairCounts> {
        weights
            .par_iter()
            .map(|w| {
                let (mut x, mut y, mut ids) = (Vec::new(), Vec::new(), Vec::new());
                for (g, &copies) in w.iter().enumerate() {
                    let (gx, gy) = self.group(g);
                    for _ in 0..copies {
                        x.extend(gx.iter().map(|&v| f64::from(v)));
                        y.extend(gy.iter().map(|&v| f64::from(v)));
                        ids.extend(std::iter::repeat_n(g, gx.len()));
                    }
                }
                pair_counts_across(&x, &y, &ids)
            })
            .collect()
    }
}

/// Counts of one group against each later group.
struct GroupRow {
    concordant_minus_discordant: Vec<i64>,
    x_ties: Vec<u64>,
    y_ties: Vec<u64>,
}

/// sign(a - b) as -1, 0 or 1.
fn sign(a: u32, b: u32) -> i32 {
    i32::from(a > b) - i32::from(a < b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rank::across::kendalltau_across_groups;
    use ndarray::array;
    use proptest::prelude::*;

    /// The resample written out (copies of a group keep its id), ranked by the plain function.
    fn expanded(
        x: ArrayView2<'_, f64>,
        y: &[f64],
        groups: &[i64],
        copies: &[i64],
        variant: Variant,
    ) -> Vec<f64> {
        let mut rows = Vec::new();
        for (g, &c) in copies.iter().enumerate() {
            for _ in 0..c {
                rows.extend((0..y.len()).filter(|&i| groups[i] == g as i64));
            }
        }
        let xs = x.select(ndarray::Axis(0), &rows);
        let ys: Vec<f64> = rows.iter().map(|&i| y[i]).collect();
        let gs: Vec<i64> = rows.iter().map(|&i| groups[i]).collect();
        kendalltau_across_groups(xs.view(), &ys, &gs, variant, NanPolicy::Omit).unwrap()
    }

    fn both_ways(
        x: ArrayView2<'_, f64>,
        y: &[f64],
        groups: &[i64],
        counts: ArrayView2<'_, i64>,
        variant: Variant,
    ) -> (Vec<Vec<CrossPairCounts>>, Vec<Vec<CrossPairCounts>>) {
        let k = counts.ncols();
        let resamples = Resamples::new(counts);
        let ids: Vec<usize> = groups.iter().map(|&g| g as usize).collect();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for column in x.columns() {
            let column = column.to_vec();
            let keep = kept_runs(&column, y, NanPolicy::Omit).unwrap();
            let runs = GroupedRuns::new(&keep, &column, y, &ids, k);
            a.push(runs.totals_by_group_pairs(&resamples, variant));
            b.push(runs.totals_one_by_one(&resamples.copies));
        }
        (a, b)
    }

    proptest! {
        #[test]
        fn both_countings_agree_with_the_resample_written_out(
            n in 2usize..24,
            k in 1usize..6,
            seed in any::<u64>(),
            tau_b in any::<bool>(),
        ) {
            // Small integer values: many ties in x and y; a few NaN.
            let mut state = seed | 1;
            let mut next = |m: u64| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state % m
            };
            let x = Array2::from_shape_fn((n, 2), |_| {
                if next(9) == 0 { f64::NAN } else { next(4) as f64 }
            });
            let y: Vec<f64> = (0..n).map(|_| next(3) as f64).collect();
            let groups: Vec<i64> = (0..n).map(|_| next(k as u64) as i64).collect();
            let counts = Array2::from_shape_fn((3, k), |_| next(3) as i64);
            let variant = if tau_b { Variant::B } else { Variant::A };
            let (by_pairs, mut one_by_one) =
                both_ways(x.view(), &y, &groups, counts.view(), variant);
            if !tau_b {
                // tau-a does not use the ties, and counting by pairs of groups skips them.
                for t in one_by_one.iter_mut().flatten() {
                    (t.x_ties, t.y_ties) = (0, 0);
                }
            }
            prop_assert_eq!(&by_pairs, &one_by_one);
            let taus = kendalltau_across_resampled_groups(
                x.view(), &y, &groups, counts.view(), variant, NanPolicy::Omit,
            ).unwrap();
            for (b, copies) in counts.rows().into_iter().enumerate() {
                let want = expanded(x.view(), &y, &groups, copies.as_slice().unwrap(), variant);
                let got = taus.row(b).to_vec();
                prop_assert_eq!(
                    got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                );
            }
        }
    }

    #[test]
    fn errors_and_nan_policies() {
        let x = array![[1.0], [f64::NAN], [3.0], [2.0]];
        let y = [0.0, 1.0, 2.0, 3.0];
        let counts = array![[1i64, 1], [2, 0]];
        let run = |groups: &[i64], counts: ArrayView2<'_, i64>, policy| {
            kendalltau_across_resampled_groups(x.view(), &y, groups, counts, Variant::A, policy)
        };
        let omit = run(&[0, 0, 1, 1], counts.view(), NanPolicy::Omit).unwrap();
        assert_eq!(omit[(0, 0)], 1.0);
        assert!(
            omit[(1, 0)].is_nan(),
            "one group drawn twice: no pair across groups"
        );
        assert!(run(&[0, 0, 1, 1], counts.view(), NanPolicy::Propagate).unwrap()[(0, 0)].is_nan());
        assert!(run(&[0, 0, 1, 1], counts.view(), NanPolicy::Raise).is_err());
        let e = run(&[0, 0, 1, 2], counts.view(), NanPolicy::Omit).unwrap_err();
        assert!(
            e.to_string().contains("group id 2 has no column in counts"),
            "{e}"
        );
        let negative = array![[1i64, -1]];
        let e = run(&[0, 0, 1, 1], negative.view(), NanPolicy::Omit).unwrap_err();
        assert_eq!(e.to_string(), "counts: expected copies >= 0, got -1");
        let e = kendalltau_across_resampled_groups(
            x.view(),
            &y,
            &[0, 0, 1, 1],
            counts.view(),
            Variant::C,
            NanPolicy::Omit,
        );
        assert!(e.is_err());
    }

    #[test]
    fn the_cost_model_picks_matrices_for_few_groups_and_recounts_for_many() {
        assert!(counting_by_group_pairs(10_000, 500, 1000, Variant::A));
        assert!(!counting_by_group_pairs(10_000, 10_000, 1000, Variant::A));
        assert!(!counting_by_group_pairs(100_000, 5000, 1000, Variant::B));
    }
}
