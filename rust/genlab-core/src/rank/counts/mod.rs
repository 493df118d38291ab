//! Pair counts behind every Kendall coefficient: concordant minus discordant pairs, ties in x, in y
//! and in both, and the tie sums of the variance formula.
//!
//! Two algorithms give the same [`PairCounts`]:
//! - [`pair_counts`]: O(n log n) (Knight 1966): order the pairs by (x, y) and count the discordant
//!   pairs as the inversions of y in that order: by a bitset over y's ranks up to [`BITSET_MAX`],
//!   above it by MSD radix partitioning of the sort keys (`rank::radix`);
//! - [`pair_counts_naive`]: O(n^2) over all pairs, faster for the tiny groups of granulated tau.
//!
//! By job: this file holds the count types and the dispatch between the paths; `ranking` the
//! ranking sort ([`Ranked`]), `merge` the merge-sort inversion count, `bitset` the bitset count,
//! `workspace` the scratch memory.

mod bitset;
mod merge;
mod ranking;
mod workspace;

use rayon::prelude::*;

use super::radix::{inversions_and_ties, order_by_x};
pub use bitset::BITSET_MAX;
use bitset::{discordant_bitset, joint_ties_in_runs, ordinals_in_visit_order};
pub(crate) use merge::{count_inversions, sort_count_sequential};
pub use ranking::Ranked;
pub(crate) use ranking::{PARALLEL_MIN, SharedSlots, sort_key};
pub use workspace::{KENDALL_WORKSPACE_MAX_BYTES, KendallWorkspace, Scratch};

/// Counts over the n(n-1)/2 unordered pairs of (x_i, y_i).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PairCounts {
    /// Number of observations.
    pub(crate) n: u64,
    /// Discordant pairs.
    pub(crate) discordant: u64,
    /// Pairs tied in x (including those tied in both).
    pub x_ties: u64,
    /// Pairs tied in y (including those tied in both).
    pub y_ties: u64,
    /// Pairs tied in both x and y.
    pub(crate) joint_ties: u64,
    /// Sum over x tie groups of t(t-1)(t-2), for the tie-corrected variance.
    pub(crate) x_tie_t3: f64,
    /// Sum over x tie groups of t(t-1)(2t+5).
    pub(crate) x_tie_t5: f64,
    /// Same sums for y.
    pub(crate) y_tie_t3: f64,
    /// Sum over y tie groups of t(t-1)(2t+5).
    pub(crate) y_tie_t5: f64,
    /// Number of distinct x values.
    pub(crate) distinct_x: u64,
    /// Number of distinct y values.
    pub(crate) distinct_y: u64,
}

impl PairCounts {
    /// n(n-1)/2.
    pub(crate) fn total_pairs(&self) -> u64 {
        self.n * self.n.saturating_sub(1) / 2
    }

    /// C - D. Uses total = C + D + x_ties + y_ties - joint_ties.
    pub fn concordant_minus_discordant(&self) -> i128 {
        self.total_pairs() as i128 - self.x_ties as i128 - self.y_ties as i128
            + self.joint_ties as i128
            - 2 * self.discordant as i128
    }

    /// The counts of two ranked variables, given their discordant pairs and pairs tied in both.
    pub(crate) fn of_ranked(
        x: &Ranked,
        y: &Ranked,
        discordant: u64,
        joint_ties: u64,
    ) -> PairCounts {
        PairCounts {
            n: x.ranks.len() as u64,
            discordant,
            x_ties: x.ties.pairs,
            y_ties: y.ties.pairs,
            joint_ties,
            x_tie_t3: x.ties.t3,
            x_tie_t5: x.ties.t5,
            y_tie_t3: y.ties.t3,
            y_tie_t5: y.ties.t5,
            distinct_x: x.ties.distinct,
            distinct_y: y.ties.distinct,
        }
    }
}

/// Tie statistics of one variable, from the sizes of its tie groups.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct TieStats {
    /// Sum of t(t-1)/2: pairs tied.
    pub(crate) pairs: u64,
    /// Sum of t(t-1)(t-2).
    pub(crate) t3: f64,
    /// Sum of t(t-1)(2t+5).
    pub(crate) t5: f64,
    /// Number of distinct values.
    pub(crate) distinct: u64,
}

impl TieStats {
    pub(crate) fn add_group(&mut self, t: u64) {
        self.distinct += 1;
        if t > 1 {
            let tf = t as f64;
            self.pairs += t * (t - 1) / 2;
            self.t3 += tf * (tf - 1.0) * (tf - 2.0);
            self.t5 += tf * (tf - 1.0) * (2.0 * tf + 5.0);
        }
    }

    /// Adds the groups counted in `other`.
    pub(crate) fn merge(&mut self, other: &TieStats) {
        self.pairs += other.pairs;
        self.t3 += other.t3;
        self.t5 += other.t5;
        self.distinct += other.distinct;
    }
}

/// Lengths of the runs of equal values in a sorted slice.
pub(crate) fn run_lengths<T: PartialEq>(sorted: &[T]) -> impl Iterator<Item = u64> + '_ {
    let mut k = 0;
    std::iter::from_fn(move || {
        if k >= sorted.len() {
            return None;
        }
        let start = k;
        k += 1;
        while k < sorted.len() && sorted[k] == sorted[start] {
            k += 1;
        }
        Some((k - start) as u64)
    })
}

/// Pairs tied within a slice, after sorting it: sum of t(t-1)/2 over its runs of equal values.
pub(super) fn tied_pairs_sorting<T: Ord>(values: &mut [T]) -> u64 {
    values.sort_unstable();
    run_lengths(values).map(|t| t * (t - 1) / 2).sum()
}

/// Tie statistics of a sorted slice.
fn tie_stats_sorted<T: PartialEq>(sorted: &[T]) -> TieStats {
    let mut stats = TieStats::default();
    for t in run_lengths(sorted) {
        stats.add_group(t);
    }
    stats
}

/// Pair counts of two ranked variables of equal length.
pub fn pair_counts_ranked(x: &Ranked, y: &Ranked, scratch: &mut Scratch) -> PairCounts {
    let n = x.ranks.len();
    debug_assert_eq!(n, y.ranks.len());
    let Scratch { seq, buf } = scratch;
    seq.clear();
    seq.extend(x.order.iter().map(|&i| y.ranks[i as usize]));
    // x's tie groups, in x order, are its runs.
    let runs = &x.group_start;
    let joint_ties = if x.has_ties() {
        joint_ties_in_runs(seq, runs)
    } else {
        0
    };
    let discordant = if n <= BITSET_MAX {
        if y.has_ties() {
            ordinals_in_visit_order(seq, y, buf);
        }
        discordant_bitset(seq, x.has_ties().then_some(runs.as_slice()))
    } else {
        // Sorting each x run by y (done above) makes tied-x pairs non-inversions.
        buf.resize(n, 0);
        count_inversions(seq, buf)
    };
    PairCounts::of_ranked(x, y, discordant, joint_ties)
}

/// Pair counts of (x, y). No NaN allowed (callers apply the NaN policy first).
///
/// Small inputs compare all pairs; medium ones rank both variables and count with a bitset; large
/// ones radix-sort the (x, y) key pairs by x and count the inversions of y's keys in that order by
/// radix partitioning, so y is never sorted on its own and nothing is gathered by index.
pub fn pair_counts(x: &[f64], y: &[f64]) -> PairCounts {
    pair_counts_in(x, y, &mut KendallWorkspace::default())
}

/// [`pair_counts`] with the large-n count's scratch memory taken from `workspace` (kept there
/// between calls by a caller that counts many times).
pub(crate) fn pair_counts_in(x: &[f64], y: &[f64], workspace: &mut KendallWorkspace) -> PairCounts {
    debug_assert_eq!(x.len(), y.len());
    let n = x.len();
    if n <= NAIVE_MAX {
        return pair_counts_naive(x, y);
    }
    if n <= BITSET_MAX {
        return pair_counts_ranked(&Ranked::new(x), &Ranked::new(y), &mut Scratch::default());
    }
    let (pairs, keys) = workspace.buffers(2 * n);
    let (pairs, scratch) = pairs.split_at_mut(n);
    let (seq, buf) = keys.split_at_mut(n);
    pairs
        .par_iter_mut()
        .zip(x.par_iter().zip(y))
        .for_each(|(p, (&a, &b))| *p = (sort_key(a), sort_key(b)));
    let (x_stats, joint_ties) = order_by_x(pairs, scratch, seq);
    let (discordant, y_stats) = inversions_and_ties(seq, buf);
    workspace.trim();
    PairCounts {
        n: n as u64,
        discordant,
        x_ties: x_stats.pairs,
        y_ties: y_stats.pairs,
        joint_ties,
        x_tie_t3: x_stats.t3,
        x_tie_t5: x_stats.t5,
        y_tie_t3: y_stats.t3,
        y_tie_t5: y_stats.t5,
        distinct_x: x_stats.distinct,
        distinct_y: y_stats.distinct,
    }
}

/// Up to this length the O(n^2) count is faster than sorting.
pub const NAIVE_MAX: usize = 48;

/// Pair counts by comparing every pair, O(n^2): for tiny groups.
pub fn pair_counts_naive(x: &[f64], y: &[f64]) -> PairCounts {
    let n = x.len();
    let mut c = PairCounts {
        n: n as u64,
        ..PairCounts::default()
    };
    for i in 0..n {
        for j in (i + 1)..n {
            let dx = x[i].partial_cmp(&x[j]);
            let dy = y[i].partial_cmp(&y[j]);
            let tx = dx == Some(std::cmp::Ordering::Equal);
            let ty = dy == Some(std::cmp::Ordering::Equal);
            c.x_ties += tx as u64;
            c.y_ties += ty as u64;
            c.joint_ties += (tx && ty) as u64;
            if !tx && !ty && dx != dy {
                c.discordant += 1;
            }
        }
    }
    let xs = tie_stats_small(x);
    let ys = tie_stats_small(y);
    c.x_tie_t3 = xs.t3;
    c.x_tie_t5 = xs.t5;
    c.y_tie_t3 = ys.t3;
    c.y_tie_t5 = ys.t5;
    c.distinct_x = xs.distinct;
    c.distinct_y = ys.distinct;
    c
}

fn tie_stats_small(v: &[f64]) -> TieStats {
    let mut keys: Vec<u64> = v.iter().map(|&a| sort_key(a)).collect();
    keys.sort_unstable();
    tie_stats_sorted(&keys)
}

/// Pair counts of many columns against one shared, already-ranked variable, in parallel.
pub(crate) fn pair_counts_against(columns: &[&[f64]], y: &Ranked) -> Vec<PairCounts> {
    columns
        .par_iter()
        .map_init(Scratch::default, |scratch, col| {
            pair_counts_ranked(&Ranked::new(col), y, scratch)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::merge::sort_block_count;
    use super::ranking::sorted_keys;
    use super::*;

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    fn assert_counts_equal(a: &PairCounts, b: &PairCounts, context: &str) {
        assert_eq!(a.discordant, b.discordant, "{context}");
        assert_eq!(a.joint_ties, b.joint_ties, "{context}");
        assert_eq!(a.x_ties, b.x_ties, "{context}");
        assert_eq!(a.y_ties, b.y_ties, "{context}");
        assert_eq!(
            (a.distinct_x, a.distinct_y),
            (b.distinct_x, b.distinct_y),
            "{context}"
        );
        assert!(
            (a.x_tie_t5 - b.x_tie_t5).abs() <= 1e-9 * a.x_tie_t5.abs(),
            "{context}"
        );
        assert!(
            (a.y_tie_t3 - b.y_tie_t3).abs() <= 1e-9 * a.y_tie_t3.abs(),
            "{context}"
        );
    }

    #[test]
    fn every_path_agrees_with_the_naive_count() {
        let mut seed = 7;
        for n in [0usize, 1, 2, 3, 10, 49, 100, 1000] {
            for levels in [3u64, 50, 1 << 30] {
                let x: Vec<f64> = (0..n).map(|_| (lcg(&mut seed) % levels) as f64).collect();
                let y: Vec<f64> = (0..n)
                    .map(|_| (lcg(&mut seed) % levels) as f64 - 2.0)
                    .collect();
                let naive = pair_counts_naive(&x, &y);
                let ranked =
                    pair_counts_ranked(&Ranked::new(&x), &Ranked::new(&y), &mut Scratch::default());
                assert_counts_equal(&ranked, &naive, &format!("ranked n={n} levels={levels}"));
                assert_counts_equal(
                    &pair_counts(&x, &y),
                    &naive,
                    &format!("auto n={n} levels={levels}"),
                );
            }
        }
    }

    #[test]
    fn large_paths_agree_with_each_other() {
        // Above BITSET_MAX: the x-sort + merge path and the ranked merge path, both against a
        // Fenwick-tree count.
        let mut seed = 5;
        let n = 70_000;
        for (levels_x, levels_y) in [(1u64 << 40, 1u64 << 40), (7, 1 << 40), (1 << 40, 9), (5, 3)] {
            let x: Vec<f64> = (0..n).map(|_| (lcg(&mut seed) % levels_x) as f64).collect();
            let y: Vec<f64> = (0..n).map(|_| (lcg(&mut seed) % levels_y) as f64).collect();
            let big = pair_counts(&x, &y);
            let ranked =
                pair_counts_ranked(&Ranked::new(&x), &Ranked::new(&y), &mut Scratch::default());
            assert_counts_equal(&big, &ranked, &format!("levels {levels_x} {levels_y}"));
            // Independent check of the discordant count with a Fenwick tree over y ranks, x runs
            // handled by querying a whole run before inserting it.
            let (rx, ry) = (Ranked::new(&x), Ranked::new(&y));
            let mut tree = vec![0u64; ry.ties.distinct as usize + 1];
            let (mut discordant, mut seen, mut k) = (0u64, 0u64, 0);
            while k < n {
                let mut m = k + 1;
                while m < n && rx.ranks[rx.order[m] as usize] == rx.ranks[rx.order[k] as usize] {
                    m += 1;
                }
                for &i in &rx.order[k..m] {
                    let mut p = ry.ranks[i as usize] as usize + 1;
                    let mut le = 0;
                    while p > 0 {
                        le += tree[p];
                        p &= p - 1;
                    }
                    discordant += seen - le;
                }
                for &i in &rx.order[k..m] {
                    let mut p = ry.ranks[i as usize] as usize + 1;
                    while p < tree.len() {
                        tree[p] += 1;
                        p += p & p.wrapping_neg();
                    }
                    seen += 1;
                }
                k = m;
            }
            assert_eq!(big.discordant, discordant, "levels {levels_x} {levels_y}");
        }
    }

    #[test]
    fn bucket_sort_matches_a_comparison_sort() {
        let mut seed = 9;
        let n = 100_000;
        let uniform: Vec<f64> = (0..n)
            .map(|_| (lcg(&mut seed) % 1_000_000) as f64 * 1e-3)
            .collect();
        let mut with_infinities = uniform.clone();
        with_infinities[17] = f64::INFINITY;
        with_infinities[99] = f64::NEG_INFINITY;
        with_infinities[500] = -0.0;
        with_infinities[501] = 0.0;
        // Most of the mass in one bucket, one far outlier.
        let clumped: Vec<f64> = (0..n)
            .map(|i| {
                if i == 3 {
                    1e300
                } else {
                    (lcg(&mut seed) % 1000) as f64 * 1e-9
                }
            })
            .collect();
        let huge_span: Vec<f64> = (0..n)
            .map(|i| if i % 2 == 0 { -1e308 } else { 1e308 })
            .collect();
        let heavy_ties: Vec<f64> = (0..n).map(|_| (lcg(&mut seed) % 4) as f64).collect();
        for (name, v) in [
            ("uniform", &uniform),
            ("infinities", &with_infinities),
            ("clumped", &clumped),
            ("huge span", &huge_span),
            ("heavy ties", &heavy_ties),
        ] {
            let mut expected: Vec<(u64, u32)> = v
                .iter()
                .enumerate()
                .map(|(i, &x)| (sort_key(x), i as u32))
                .collect();
            expected.sort_unstable();
            assert_eq!(sorted_keys(v), expected, "{name}");
        }
    }

    #[test]
    fn bitset_count_matches_merge_count() {
        let mut seed = 21;
        for n in [
            1usize, 63, 64, 65, 257, 1000, 1025, 4097, 20_000, BITSET_MAX,
        ] {
            // A random permutation of 0..n (the ordinals), by sorting random keys.
            let mut keyed: Vec<(u64, u32)> = (0..n as u32).map(|i| (lcg(&mut seed), i)).collect();
            keyed.sort_unstable();
            let ordinals: Vec<u32> = keyed.iter().map(|p| p.1).collect();
            let mut sorted = ordinals.clone();
            let mut buf = vec![0u32; n];
            let expected = count_inversions(&mut sorted, &mut buf);
            assert_eq!(discordant_bitset(&ordinals, None), expected, "n={n}");
            // With runs: pairs inside a run never count. Runs of length 3: subtract the
            // inversions inside each run from the total.
            let bounds: Vec<u32> = (0..=n as u32)
                .step_by(3)
                .chain(std::iter::once(n as u32))
                .collect();
            let mut bounds = bounds;
            bounds.dedup();
            let inside: u64 = bounds
                .windows(2)
                .map(|w| {
                    let run = &ordinals[w[0] as usize..w[1] as usize];
                    let mut r = run.to_vec();
                    let mut b = vec![0u32; r.len()];
                    count_inversions(&mut r, &mut b)
                })
                .sum();
            assert_eq!(
                discordant_bitset(&ordinals, Some(&bounds)),
                expected - inside,
                "runs n={n}"
            );
        }
    }

    #[test]
    fn sorting_network_sorts_every_zero_one_input() {
        // Zero-one principle: a comparator network that sorts all 2^8 binary inputs sorts all.
        for mask in 0u32..256 {
            let mut a: Vec<u32> = (0..8).map(|i| (mask >> i) & 1).collect();
            let expected_inversions = (0..8)
                .map(|i| ((i + 1)..8).filter(|&j| a[i] > a[j]).count() as u64)
                .sum::<u64>();
            assert_eq!(sort_block_count(&mut a), expected_inversions);
            assert!(a.windows(2).all(|w| w[0] <= w[1]), "mask {mask}");
        }
    }

    #[test]
    fn inversions_match_quadratic_count() {
        let mut seed = 3;
        for n in [0usize, 1, 5, 33, 64, 65, 1000, 70000, 300_000] {
            let s: Vec<u32> = (0..n).map(|_| (lcg(&mut seed) % 100) as u32).collect();
            let expected: u64 = if n <= 1000 {
                (0..n)
                    .map(|i| ((i + 1)..n).filter(|&j| s[i] > s[j]).count() as u64)
                    .sum()
            } else {
                // Fenwick-tree count as the independent reference for the large case.
                let mut tree = vec![0u64; 101];
                let mut inv = 0;
                for (seen, &v) in s.iter().enumerate() {
                    let mut i = v as usize + 1;
                    let mut le = 0;
                    while i > 0 {
                        le += tree[i];
                        i &= i - 1;
                    }
                    inv += seen as u64 - le;
                    let mut i = v as usize + 1;
                    while i <= 100 {
                        tree[i] += 1;
                        i += i & i.wrapping_neg();
                    }
                }
                inv
            };
            let mut sorted = s.clone();
            let mut buf = vec![0; n];
            assert_eq!(count_inversions(&mut sorted, &mut buf), expected, "n={n}");
            assert!(sorted.windows(2).all(|w| w[0] <= w[1]));
            let mut wide: Vec<u64> = s.iter().map(|&v| u64::from(v) << 33).collect();
            let mut wide_buf = vec![0u64; n];
            assert_eq!(
                count_inversions(&mut wide, &mut wide_buf),
                expected,
                "u64 n={n}"
            );
        }
    }

    #[test]
    fn sort_key_orders_floats() {
        let v = [
            f64::NEG_INFINITY,
            -1e300,
            -1.0,
            -0.0,
            0.0,
            1e-300,
            2.0,
            f64::INFINITY,
        ];
        for w in v.windows(2) {
            assert!(sort_key(w[0]) <= sort_key(w[1]));
        }
        assert_eq!(sort_key(-0.0), sort_key(0.0));
    }
}
