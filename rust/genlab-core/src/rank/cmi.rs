//! Conditional-mutual-information score (Jiang et al. 2020; the PGDL competition score).
//!
//! genlab's rule ([`Convention::Genlab`]): over every ordered pair of runs (i, j) of different
//! configurations (replicates: see [`Replicates`]), V_mu = sign(mu_i - mu_j), V_g = sign(g_i - g_j)
//! (three values each, sign(0) = 0), U_S = the codes of the axes in S of both runs. For each
//! subset S, score(S) = I(V_mu; V_g | U_S) / H(V_g | U_S), both pooled over the conditions with
//! weights p(U_S); the score of the measure is the minimum over the subsets with a defined score
//! (H(V_g | U_S) > 0). Natural logarithms (the ratio does not depend on the base).
//!
//! The PGDL competition's program ([`Convention::Pgdl`]) differs in four ways, reproduced exactly:
//! two-valued signs, self-pairs counted, per-cell averages instead of pooling, |S| = 2 only.
//!
//! Neither score sees orientation: a measure that orders every pair exactly backwards carries as
//! much information about the gap as a perfect one and scores 1 too.

use rayon::prelude::*;

use super::NanPolicy;
use super::grid::{Codes, ConfigurationMeans, Replicates, check_lengths, models_without_nan};
use crate::error::{Error, Result, parse_option};

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

/// Most conditioning subsets one call enumerates (each costs a pass over every ordered pair of
/// runs): past it a call would run for hours and hold every subset's table.
pub(crate) const MAX_SUBSETS: u128 = 1 << 20;

/// Refuses conditioning-subset counts above [`MAX_SUBSETS`] before anything is enumerated.
fn check_subset_count(k: usize, min_size: usize, max_size: usize, n: usize) -> Result<()> {
    let mut count: u128 = 0;
    let mut binomial: u128 = 1; // C(k, s), s = 0, 1, ...
    for s in 0..=max_size.min(k) {
        if s > 0 {
            binomial = binomial * (k - s + 1) as u128 / s as u128;
        }
        if s >= min_size {
            count = count.saturating_add(binomial);
        }
    }
    if count <= MAX_SUBSETS {
        return Ok(());
    }
    Err(Error::TooLarge {
        what: format!(
            "max_subset_size: conditioning on every subset of up to {max_size} of the {k} axes"
        ),
        needed: format!(
            "{count} subsets, each a pass over the {} ordered pairs of runs",
            n.saturating_mul(n.saturating_sub(1))
        ),
        advice: format!(
            "at most {MAX_SUBSETS} are enumerated; lower max_subset_size (Jiang et al. use 2)"
        ),
    })
}

/// All subsets of 0..k with size in [min_size, max_size], in order of size then lexicographic.
pub(crate) fn subsets(k: usize, min_size: usize, max_size: usize) -> Vec<Vec<usize>> {
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

/// Mutual information and conditional entropy pooled over per-condition 3 x 3 tables of counts,
/// accumulated one table at a time (so that the tables never need to be held together).
#[derive(Default)]
struct Information {
    total: u64,
    mi: f64,
    h: f64,
}

impl Information {
    /// Adds `copies` conditions that each have the table `t`.
    fn add_copies(&mut self, t: &[u64; 9], copies: u64) {
        let nu: u64 = t.iter().sum();
        if nu == 0 {
            return;
        }
        self.total += copies * nu;
        let nu_f = nu as f64;
        let weight = copies as f64;
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
                    self.mi += weight * cf * (cf * nu_f / (row[a] as f64 * col[b] as f64)).ln();
                }
            }
        }
        for &cb in &col {
            if cb > 0 {
                let p = cb as f64 / nu_f;
                self.h -= weight * cb as f64 * p.ln();
            }
        }
    }

    /// (I, H), NaN when no pair was counted.
    fn finish(self) -> (f64, f64) {
        if self.total == 0 {
            return (f64::NAN, f64::NAN);
        }
        (self.mi / self.total as f64, self.h / self.total as f64)
    }
}

/// Which rule turns the pairs of models into the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convention {
    /// genlab's rule (see the module docs): three-valued signs, ordered pairs of runs of
    /// different configurations, I(V_mu; V_g | U_S) / H(V_g | U_S) pooled over the conditions,
    /// natural logarithms, every subset S within the size bounds.
    Genlab,
    /// The PGDL competition's scoring program, exactly: for every pair of distinct
    /// hyperparameters, two-valued signs (a tie counts as "not greater"), every ordered pair of
    /// models *including a model with itself*, MI and H(V_g) in bits per cell (a cell is the four
    /// values of the two hyperparameters in both models; the entropy adds 1e-12 inside its
    /// logarithm as the program does), each averaged over the cells, then divided.
    Pgdl,
}

impl Convention {
    /// From "genlab" or "pgdl".
    pub fn parse(value: &str) -> Result<Self> {
        parse_option(
            "convention",
            value,
            &[("genlab", Convention::Genlab), ("pgdl", Convention::Pgdl)],
        )
    }
}

fn nan_scores(all_subsets: Vec<Vec<usize>>) -> Vec<SubsetScore> {
    all_subsets
        .into_iter()
        .map(|axes| SubsetScore {
            axes,
            mutual_information: f64::NAN,
            gap_entropy: f64::NAN,
            score: f64::NAN,
        })
        .collect()
}

/// genlab's rule over the runs `models`; pairs of runs of one configuration are skipped when
/// `skip_same_configuration`.
fn genlab_scores(
    measure: &[f64],
    gap: &[f64],
    codes: &Codes<'_>,
    models: &[usize],
    all_subsets: Vec<Vec<usize>>,
    skip_same_configuration: bool,
) -> Vec<SubsetScore> {
    let mu: Vec<f64> = models.iter().map(|&i| measure[i]).collect();
    let g: Vec<f64> = models.iter().map(|&i| gap[i]).collect();
    let (x, y) = (dense_ranks(&mu), dense_ranks(&g));
    let (config, _) = codes.configuration_ids(models);
    all_subsets
        .into_par_iter()
        .map(|axes| {
            let (ids, k) = codes.subset_ids(models, &axes);
            // The runs of each condition; then one table per ordered pair of conditions, built
            // and folded in one at a time, in (condition, condition) order: memory O(n) however
            // many conditions there are (a table per pair would be O(k^2), and with one
            // condition per run that is billions of tables).
            let mut members: Vec<Vec<usize>> = vec![Vec::new(); k];
            for (i, &id) in ids.iter().enumerate() {
                members[id].push(i);
            }
            let sorted: Vec<Option<SortedRuns>> = members
                .iter()
                .map(|runs| {
                    (runs.len() > COUNT_BY_SORTING_ABOVE).then(|| SortedRuns::new(runs, &x, &y))
                })
                .collect();
            let mut info = Information::default();
            // The pairs (j in s, i in f) have the signs of (i in f, j in s) reversed in both
            // variables: the same information, so each unordered pair of conditions is counted
            // once and added twice.
            for (f, first) in members.iter().enumerate() {
                for (s, second) in members.iter().enumerate().skip(f) {
                    let table = match (&sorted[f], &sorted[s]) {
                        (Some(a), Some(b)) => {
                            let mut table = sign_table(a, b);
                            if f == s {
                                remove_uncounted_pairs(
                                    &mut table,
                                    first,
                                    &x,
                                    &y,
                                    &config,
                                    skip_same_configuration,
                                );
                            }
                            table
                        }
                        _ => pair_by_pair_table(
                            first,
                            second,
                            &x,
                            &y,
                            &config,
                            skip_same_configuration,
                        ),
                    };
                    info.add_copies(&table, if f == s { 1 } else { 2 });
                }
            }
            let (mi, h) = info.finish();
            let score = if h > 0.0 { mi / h } else { f64::NAN };
            SubsetScore {
                axes,
                mutual_information: mi,
                gap_entropy: h,
                score,
            }
        })
        .collect()
}

/// Conditions with at most this many runs are counted pair by pair (cheaper there than sorting).
const COUNT_BY_SORTING_ABOVE: usize = 64;

/// The table of the ordered pairs (i in `first`, j in `second`) that count: i != j, and not of
/// one configuration when `skip_same_configuration`. One comparison per pair.
fn pair_by_pair_table(
    first: &[usize],
    second: &[usize],
    x: &[u32],
    y: &[u32],
    config: &[usize],
    skip_same_configuration: bool,
) -> [u64; 9] {
    let mut table = [0u64; 9];
    for &i in first {
        for &j in second {
            if i != j && !(skip_same_configuration && config[i] == config[j]) {
                table[rank_sign(x[i], x[j]) * 3 + rank_sign(y[i], y[j])] += 1;
            }
        }
    }
    table
}

/// From the table of every ordered pair of one condition's runs (self-pairs included), removes
/// the pairs that do not count: each run with itself, and with `skip_same_configuration` the
/// pairs of runs of one configuration (a configuration lies inside one condition).
fn remove_uncounted_pairs(
    table: &mut [u64; 9],
    runs: &[usize],
    x: &[u32],
    y: &[u32],
    config: &[usize],
    skip_same_configuration: bool,
) {
    table[4] -= runs.len() as u64; // (=, =): every self-pair
    if !skip_same_configuration {
        return;
    }
    let mut by_configuration = runs.to_vec();
    by_configuration.sort_unstable_by_key(|&i| config[i]);
    for replicates in by_configuration.chunk_by(|&a, &b| config[a] == config[b]) {
        for &i in replicates {
            for &j in replicates {
                if i != j {
                    table[rank_sign(x[i], x[j]) * 3 + rank_sign(y[i], y[j])] -= 1;
                }
            }
        }
    }
}

/// The code of sign(a - b) in a table: 0 for -, 1 for 0, 2 for +.
fn rank_sign(a: u32, b: u32) -> usize {
    match a.cmp(&b) {
        std::cmp::Ordering::Greater => 2,
        std::cmp::Ordering::Less => 0,
        std::cmp::Ordering::Equal => 1,
    }
}

/// Dense ranks of `values` (equal values share a rank, -0.0 equals 0.0): comparing ranks gives
/// the same signs as comparing the values, which are finite here.
pub(super) fn dense_ranks(values: &[f64]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_unstable_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0u32; values.len()];
    let mut rank = 0u32;
    for w in 0..order.len() {
        if w > 0 && values[order[w]] != values[order[w - 1]] {
            rank += 1;
        }
        ranks[order[w]] = rank;
    }
    ranks
}

/// The runs of one condition, sorted for the counting of [`sign_table`]: (x, y) = the ranks of
/// (measure, gap), once in (x, y) order and once in (y, x) order.
struct SortedRuns {
    by_x: Vec<(u32, u32)>,
    by_y: Vec<(u32, u32)>,
    /// The distinct y values, ascending (the Fenwick tree's coordinates).
    distinct_y: Vec<u32>,
}

impl SortedRuns {
    fn new(runs: &[usize], x: &[u32], y: &[u32]) -> Self {
        let mut by_x: Vec<(u32, u32)> = runs.iter().map(|&i| (x[i], y[i])).collect();
        by_x.sort_unstable();
        let mut by_y: Vec<(u32, u32)> = by_x.iter().map(|&(a, b)| (b, a)).collect();
        by_y.sort_unstable();
        let mut distinct_y: Vec<u32> = by_y.iter().map(|&(b, _)| b).collect();
        distinct_y.dedup();
        SortedRuns {
            by_x,
            by_y,
            distinct_y,
        }
    }
}

/// Counts of (first < key, first == key) in a slice sorted by its first field.
fn below_and_equal(sorted: &[(u32, u32)], key: u32) -> (usize, usize) {
    let lo = sorted.partition_point(|&(a, _)| a < key);
    let hi = lo + sorted[lo..].partition_point(|&(a, _)| a == key);
    (lo, hi - lo)
}

/// The 3 x 3 table of (sign(mu_i - mu_j), sign(g_i - g_j)) over every ordered pair (i in
/// `first`, j in `second`), self-pairs included, in O((a + b) log b) instead of a * b.
///
/// Per i, binary searches give the row sums (how many j have a smaller, equal, larger measure),
/// the column sums (the same for the gap) and the cells with a tie in one variable; a sweep in
/// measure order with a Fenwick tree over the gap counts the pairs smaller in both (>, >) and
/// the pairs at most equal in both; the four remaining cells follow from the sums.
fn sign_table(first: &SortedRuns, second: &SortedRuns) -> [u64; 9] {
    const LT: usize = 0;
    const EQ: usize = 1;
    const GT: usize = 2;
    let b = second.by_x.len() as u64;
    let mut t = [0u64; 9];
    let mut fenwick = vec![0u32; second.distinct_y.len() + 1];
    let add = |tree: &mut Vec<u32>, y: u32, distinct: &[u32]| {
        let mut p = distinct.partition_point(|&v| v < y) + 1;
        while p < tree.len() {
            tree[p] += 1;
            p += p & p.wrapping_neg();
        }
    };
    // How many inserted j have a gap below `y` (or at most `y` with `inclusive`).
    let count = |tree: &[u32], y: u32, inclusive: bool, distinct: &[u32]| -> u64 {
        let mut p = if inclusive {
            distinct.partition_point(|&v| v <= y)
        } else {
            distinct.partition_point(|&v| v < y)
        };
        let mut s = 0u64;
        while p > 0 {
            s += u64::from(tree[p]);
            p -= p & p.wrapping_neg();
        }
        s
    };
    let (mut inserted, mut gg, mut at_most_both) = (0usize, 0u64, 0u64);
    let runs = &first.by_x;
    let mut start = 0;
    while start < runs.len() {
        let xi = runs[start].0;
        let end = start + runs[start..].partition_point(|&(a, _)| a == xi);
        // j with a smaller measure, then the (>, >) counts of this measure value's runs.
        while inserted < second.by_x.len() && second.by_x[inserted].0 < xi {
            add(&mut fenwick, second.by_x[inserted].1, &second.distinct_y);
            inserted += 1;
        }
        for &(_, yi) in &runs[start..end] {
            gg += count(&fenwick, yi, false, &second.distinct_y);
        }
        while inserted < second.by_x.len() && second.by_x[inserted].0 == xi {
            add(&mut fenwick, second.by_x[inserted].1, &second.distinct_y);
            inserted += 1;
        }
        for &(_, yi) in &runs[start..end] {
            at_most_both += count(&fenwick, yi, true, &second.distinct_y);
        }
        start = end;
    }
    let (mut row, mut col) = ([0u64; 3], [0u64; 3]);
    for &(xi, yi) in runs {
        let (x_below, x_equal) = below_and_equal(&second.by_x, xi);
        let (y_below, y_equal) = below_and_equal(&second.by_y, yi);
        row[GT] += x_below as u64;
        row[EQ] += x_equal as u64;
        col[GT] += y_below as u64;
        col[EQ] += y_equal as u64;
        // Ties in the measure, split by the gap (the segment is sorted by gap).
        let x_tied = &second.by_x[x_below..x_below + x_equal];
        let below = x_tied.partition_point(|&(_, v)| v < yi);
        let equal = x_tied[below..].partition_point(|&(_, v)| v == yi);
        t[EQ * 3 + GT] += below as u64;
        t[EQ * 3 + EQ] += equal as u64;
        t[EQ * 3 + LT] += (x_equal - below - equal) as u64;
        // Ties in the gap, split by the measure.
        let y_tied = &second.by_y[y_below..y_below + y_equal];
        let below = y_tied.partition_point(|&(_, v)| v < xi);
        let equal = y_tied[below..].partition_point(|&(_, v)| v == xi);
        t[GT * 3 + EQ] += below as u64;
        t[LT * 3 + EQ] += (y_equal - below - equal) as u64;
    }
    let a = runs.len() as u64;
    row[LT] = a * b - row[GT] - row[EQ];
    col[LT] = a * b - col[GT] - col[EQ];
    // Pairs larger in both: all, minus those at most equal in the measure or in the gap, plus
    // those at most equal in both (counted twice).
    let ll = a * b + at_most_both - (row[GT] + row[EQ]) - (col[GT] + col[EQ]);
    t[GT * 3 + GT] = gg;
    t[LT * 3 + LT] = ll;
    t[GT * 3 + LT] = row[GT] - gg - t[GT * 3 + EQ];
    t[LT * 3 + GT] = row[LT] - ll - t[LT * 3 + EQ];
    t
}

/// Entropy in bits of a distribution given by counts, as the PGDL program computes it (1e-12
/// inside the logarithm, so a certain outcome scores about -1.4e-12 rather than 0).
fn pgdl_entropy(counts: [f64; 2]) -> f64 {
    let total = counts[0] + counts[1];
    -counts
        .iter()
        .map(|c| {
            let p = c / total;
            p * (p + 1e-12).log2()
        })
        .sum::<f64>()
}

/// MI (bits) between the two sign variables of one 2 x 2 table `t[gap][measure]`, and the
/// entropy of the gap's sign, as the PGDL program computes them.
fn pgdl_cell(t: &[u64; 4]) -> (f64, f64) {
    let total = t.iter().sum::<u64>() as f64;
    let gap_sums = [(t[0] + t[1]) as f64, (t[2] + t[3]) as f64];
    let measure_sums = [(t[0] + t[2]) as f64, (t[1] + t[3]) as f64];
    let mut mi = 0.0;
    for a in 0..2 {
        for b in 0..2 {
            let joint = t[a * 2 + b] as f64 / total;
            if joint != 0.0 {
                mi += joint * (joint / (gap_sums[a] / total * (measure_sums[b] / total))).log2();
            }
        }
    }
    (mi, pgdl_entropy(gap_sums))
}

/// The PGDL program's rule for every pair of axes (a < b; the program's two orders give the
/// same value). Cells never observed are skipped (the program, which enumerates every
/// combination of values, would return NaN for them; on a full grid there are none).
fn pgdl_scores(
    measure: &[f64],
    gap: &[f64],
    codes: &Codes<'_>,
    models: &[usize],
) -> Vec<SubsetScore> {
    let mu: Vec<f64> = models.iter().map(|&i| measure[i]).collect();
    let g: Vec<f64> = models.iter().map(|&i| gap[i]).collect();
    let n = models.len();
    subsets(codes.n_axes(), 2, 2)
        .into_par_iter()
        .map(|axes| {
            let (ia, ka) = codes.subset_ids(models, &axes[..1]);
            let (ib, _) = codes.subset_ids(models, &axes[1..]);
            // The runs of each value pair (a, b), grouped by a and sorted by b. A cell is
            // (a_i, a_j, b_i, b_j); visiting (a_i, a_j) and then the b groups of each in order
            // gives the cells in sorted order (a fixed order keeps the sums, and so the score,
            // reproducible) with one table in memory at a time.
            let mut groups: Vec<Vec<(usize, Vec<usize>)>> = vec![Vec::new(); ka];
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_unstable_by_key(|&i| (ia[i], ib[i]));
            for i in order {
                let row = &mut groups[ia[i]];
                match row.last_mut() {
                    Some((b, members)) if *b == ib[i] => members.push(i),
                    _ => row.push((ib[i], vec![i])),
                }
            }
            let (mut mi, mut h, mut count) = (0.0, 0.0, 0usize);
            for first in &groups {
                for second in &groups {
                    for (_, runs_i) in first {
                        for (_, runs_j) in second {
                            let mut t = [0u64; 4];
                            for &i in runs_i {
                                for &j in runs_j {
                                    // "+" only when strictly greater; a model is also paired with
                                    // itself.
                                    let gap_sign = usize::from(g[i] <= g[j]);
                                    let measure_sign = usize::from(mu[i] <= mu[j]);
                                    t[gap_sign * 2 + measure_sign] += 1;
                                }
                            }
                            let (cell_mi, cell_h) = pgdl_cell(&t);
                            mi += cell_mi;
                            h += cell_h;
                            count += 1;
                        }
                    }
                }
            }
            let (mi, h) = (mi / count as f64, h / count as f64);
            SubsetScore {
                axes,
                mutual_information: mi,
                gap_entropy: h,
                score: if h > 0.0 { mi / h } else { f64::NAN },
            }
        })
        .collect()
}

/// Per-subset conditional-MI scores. [`Convention::Genlab`]: every subset of axes with size in
/// [min_size, max_size], replicates entering by `replicates`. [`Convention::Pgdl`]: every pair of
/// axes (the size bounds do not apply), every ordered pair of runs as the program counts them
/// (`Replicates::Average` averages the runs of each configuration first).
#[allow(clippy::too_many_arguments)]
pub fn conditional_mutual_information(
    measure: &[f64],
    gap: &[f64],
    codes: &Codes<'_>,
    convention: Convention,
    replicates: Replicates,
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
    if convention == Convention::Pgdl && codes.n_axes() < 2 {
        return Err(Error::invalid(
            "hparams",
            format!(
                "convention \"pgdl\" conditions on pairs of hyperparameters and needs at least \
                 two axes, got {}",
                codes.n_axes()
            ),
        ));
    }
    if convention == Convention::Genlab {
        check_subset_count(codes.n_axes(), min_size, max_size, measure.len())?;
    }
    let (models, has_nan) = models_without_nan(measure, gap, nan_policy)?;
    let all_subsets = match convention {
        Convention::Genlab => subsets(codes.n_axes(), min_size, max_size),
        Convention::Pgdl => subsets(codes.n_axes(), 2, 2),
    };
    if has_nan && nan_policy == NanPolicy::Propagate {
        return Ok(nan_scores(all_subsets));
    }
    let means;
    let (measure, gap, codes, models) = match replicates {
        Replicates::Pairs => (measure, gap, *codes, models),
        Replicates::Average => {
            means = ConfigurationMeans::new(measure, gap, codes, &models);
            (
                &means.measure[..],
                &means.gap[..],
                means.codes(),
                means.all(),
            )
        }
    };
    Ok(match convention {
        Convention::Genlab => genlab_scores(
            measure,
            gap,
            &codes,
            &models,
            all_subsets,
            replicates == Replicates::Pairs,
        ),
        Convention::Pgdl => pgdl_scores(measure, gap, &codes, &models),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayView2;

    /// Runs 0..n with measure and gap ranks drawn from few values (many ties) and `configs`
    /// configurations, from a small linear congruential generator.
    fn tied_runs(
        n: usize,
        values: u32,
        configs: usize,
        seed: u64,
    ) -> (Vec<u32>, Vec<u32>, Vec<usize>) {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = |m: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % m
        };
        let x = (0..n).map(|_| next(u64::from(values)) as u32).collect();
        let y = (0..n).map(|_| next(u64::from(values)) as u32).collect();
        let config = (0..n).map(|_| next(configs as u64) as usize).collect();
        (x, y, config)
    }

    #[test]
    fn tables_by_sorting_equal_the_pair_by_pair_count() {
        for (seed, (a, b, values)) in [
            (0, 0, 3),
            (1, 70, 2),
            (90, 150, 5),
            (200, 130, 40),
            (300, 1, 1),
        ]
        .into_iter()
        .enumerate()
        {
            let (x, y, config) = tied_runs(a + b, values, 7, seed as u64);
            let first: Vec<usize> = (0..a).collect();
            let second: Vec<usize> = (a..a + b).collect();
            let sorted_first = SortedRuns::new(&first, &x, &y);
            let sorted_second = SortedRuns::new(&second, &x, &y);
            // Two conditions: no run (and no configuration) is in both, so every pair counts.
            let by_pairs = pair_by_pair_table(&first, &second, &x, &y, &config, false);
            assert_eq!(sign_table(&sorted_first, &sorted_second), by_pairs);
            assert_eq!(by_pairs.iter().sum::<u64>(), (a * b) as u64);
            for skip in [false, true] {
                // One condition with itself: self-pairs and replicate pairs removed.
                let mut within = sign_table(&sorted_first, &sorted_first);
                remove_uncounted_pairs(&mut within, &first, &x, &y, &config, skip);
                assert_eq!(
                    within,
                    pair_by_pair_table(&first, &first, &x, &y, &config, skip)
                );
            }
        }
    }

    #[test]
    fn dense_ranks_keep_ties_and_order() {
        assert_eq!(
            dense_ranks(&[2.0, -0.0, 0.0, 5.0, 2.0, -1.0]),
            vec![2, 1, 1, 3, 2, 0]
        );
    }

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
        let codes = Codes::new(ArrayView2::from_shape((18, 3), &data).unwrap()).unwrap();
        let min_score = |m: &[f64]| {
            conditional_mutual_information(
                m,
                &gap,
                &codes,
                Convention::Genlab,
                Replicates::Pairs,
                0,
                2,
                NanPolicy::Propagate,
            )
            .unwrap()
            .iter()
            .map(|s| s.score)
            .filter(|s| !s.is_nan())
            .fold(f64::INFINITY, f64::min)
        };
        assert!((min_score(&gap) - 1.0).abs() < 1e-12);
        assert!(min_score(&axis0).abs() < 1e-12);
        assert!(min_score(&[5.0; 18]).abs() < 1e-12);
        let reversed: Vec<f64> = gap.iter().map(|g| -g).collect();
        assert!((min_score(&reversed) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn pgdl_cells_and_entropy() {
        // One cell where gap and measure agree on every ordered pair of two distinct models:
        // self-pairs and the "not greater" pair fill (-gap, -measure), the other (+gap, +measure).
        let (mi, h) = pgdl_cell(&[1, 0, 0, 3]);
        let p: f64 = 0.25;
        let expected_h = -(p * (p + 1e-12).log2() + 0.75 * (0.75f64 + 1e-12).log2());
        assert!((h - expected_h).abs() < 1e-15);
        let expected_mi = p * (p / (p * p)).log2() + 0.75 * (0.75 / (0.75 * 0.75f64)).log2();
        assert!((mi - expected_mi).abs() < 1e-15);
        // A certain outcome has a tiny negative entropy, as in the program.
        assert!(pgdl_entropy([4.0, 0.0]) < 0.0 && pgdl_entropy([4.0, 0.0]) > -1e-11);
    }
}
