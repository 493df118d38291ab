//! Pair counts behind every Kendall coefficient: concordant minus discordant pairs, ties in x, in y
//! and in both, and the tie sums of the variance formula.
//!
//! Two algorithms give the same [`PairCounts`]:
//! - [`pair_counts`]: O(n log n) (Knight 1966): order the pairs by (x, y) and count the discordant
//!   pairs as the inversions of y in that order: by a bitset over y's ranks up to [`BITSET_MAX`],
//!   above it by MSD radix partitioning of the sort keys ([`super::radix`]);
//! - [`pair_counts_naive`]: O(n^2) over all pairs, faster for the tiny groups of granulated tau.

use std::sync::Mutex;

use rayon::prelude::*;

use super::radix::{KeyPair, inversions_and_ties, order_by_x};

/// Counts over the n(n-1)/2 unordered pairs of (x_i, y_i).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PairCounts {
    /// Number of observations.
    pub n: u64,
    /// Discordant pairs.
    pub discordant: u64,
    /// Pairs tied in x (including those tied in both).
    pub x_ties: u64,
    /// Pairs tied in y (including those tied in both).
    pub y_ties: u64,
    /// Pairs tied in both x and y.
    pub joint_ties: u64,
    /// Sum over x tie groups of t(t-1)(t-2), for the tie-corrected variance.
    pub x_tie_t3: f64,
    /// Sum over x tie groups of t(t-1)(2t+5).
    pub x_tie_t5: f64,
    /// Same sums for y.
    pub y_tie_t3: f64,
    /// Sum over y tie groups of t(t-1)(2t+5).
    pub y_tie_t5: f64,
    /// Number of distinct x values.
    pub distinct_x: u64,
    /// Number of distinct y values.
    pub distinct_y: u64,
}

impl PairCounts {
    /// n(n-1)/2.
    pub fn total_pairs(&self) -> u64 {
        self.n * self.n.saturating_sub(1) / 2
    }

    /// C - D. Uses total = C + D + x_ties + y_ties - joint_ties.
    pub fn concordant_minus_discordant(&self) -> i128 {
        self.total_pairs() as i128 - self.x_ties as i128 - self.y_ties as i128
            + self.joint_ties as i128
            - 2 * self.discordant as i128
    }

    /// Concordant pairs.
    pub fn concordant(&self) -> u64 {
        self.total_pairs() + self.joint_ties - self.x_ties - self.y_ties - self.discordant
    }

    /// The counts of two ranked variables, given their discordant pairs and pairs tied in both.
    pub fn of_ranked(x: &Ranked, y: &Ranked, discordant: u64, joint_ties: u64) -> PairCounts {
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
pub struct TieStats {
    /// Sum of t(t-1)/2: pairs tied.
    pub pairs: u64,
    /// Sum of t(t-1)(t-2).
    pub t3: f64,
    /// Sum of t(t-1)(2t+5).
    pub t5: f64,
    /// Number of distinct values.
    pub distinct: u64,
}

impl TieStats {
    pub(super) fn add_group(&mut self, t: u64) {
        self.distinct += 1;
        if t > 1 {
            let tf = t as f64;
            self.pairs += t * (t - 1) / 2;
            self.t3 += tf * (tf - 1.0) * (tf - 2.0);
            self.t5 += tf * (tf - 1.0) * (2.0 * tf + 5.0);
        }
    }

    /// Adds the groups counted in `other`.
    pub(super) fn merge(&mut self, other: &TieStats) {
        self.pairs += other.pairs;
        self.t3 += other.t3;
        self.t5 += other.t5;
        self.distinct += other.distinct;
    }
}

/// Lengths of the runs of equal values in a sorted slice.
pub(super) fn run_lengths<T: PartialEq>(sorted: &[T]) -> impl Iterator<Item = u64> + '_ {
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
fn tied_pairs_sorting<T: Ord>(values: &mut [T]) -> u64 {
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

/// Order-preserving map from a non-NaN f64 to u64; -0.0 and 0.0 map to the same key (they compare
/// equal, as in numpy).
#[inline]
pub fn sort_key(v: f64) -> u64 {
    let v = if v == 0.0 { 0.0 } else { v };
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// A variable ranked once and reused against many others: dense ranks (0-based), the permutation
/// that sorts it, and its tie statistics.
#[derive(Debug, Clone)]
pub struct Ranked {
    /// Dense rank of each observation, in input order.
    pub ranks: Vec<u32>,
    /// Observation indices in ascending order of value (ties in index order).
    pub order: Vec<u32>,
    /// Tie statistics.
    pub ties: TieStats,
    /// `group_start[r]`: number of observations with rank < r (length distinct + 1).
    pub group_start: Vec<u32>,
}

impl Ranked {
    /// Ranks `values` (no NaN allowed; infinities are fine).
    pub fn new(values: &[f64]) -> Ranked {
        let n = values.len();
        assert!(n <= u32::MAX as usize, "more than 2^32 observations");
        let keyed = sorted_keys(values);
        let mut ranks = vec![0u32; n];
        let mut order = Vec::with_capacity(n);
        let mut ties = TieStats::default();
        let mut group_start = vec![0u32];
        let mut rank = 0u32;
        let mut run = 0u64;
        for (k, &(key, idx)) in keyed.iter().enumerate() {
            if k > 0 && key != keyed[k - 1].0 {
                ties.add_group(run);
                group_start.push(k as u32);
                rank += 1;
                run = 0;
            }
            run += 1;
            ranks[idx as usize] = rank;
            order.push(idx);
        }
        if n > 0 {
            ties.add_group(run);
            group_start.push(n as u32);
        }
        Ranked {
            ranks,
            order,
            ties,
            group_start,
        }
    }

    /// Whether any two observations tie.
    pub fn has_ties(&self) -> bool {
        self.ties.pairs > 0
    }
}

/// (sort key, index) pairs in ascending order of key, ties in index order.
///
/// Large inputs are bucket-sorted by interpolation: a monotone map of the value onto about n/8
/// buckets, one scatter, then a pdqsort of each (small) bucket, buckets in parallel. Measured at
/// n = 1e6 on the 2-core machines: about 4x less CPU than a parallel pdqsort of the whole array and
/// 7x less than an 11-bit LSD radix sort. Clumped data (one bucket holding much of the mass) only
/// make that bucket's sort larger; the result is always exact.
fn sorted_keys(values: &[f64]) -> Vec<(u64, u32)> {
    let n = values.len();
    let key_of = |i: usize, v: f64| (sort_key(v), i as u32);
    if n < PARALLEL_MIN {
        let mut keyed: Vec<(u64, u32)> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| key_of(i, v))
            .collect();
        keyed.sort_unstable();
        return keyed;
    }
    let (lo, hi) = values
        .par_chunks(PARALLEL_MIN)
        .map(|chunk| {
            chunk
                .iter()
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                })
        })
        .reduce(
            || (f64::INFINITY, f64::NEG_INFINITY),
            |a, b| (a.0.min(b.0), a.1.max(b.1)),
        );
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        let mut keyed: Vec<(u64, u32)> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| key_of(i, v))
            .collect();
        keyed.par_sort_unstable();
        return keyed;
    }
    let n_buckets = (n / 8).max(1);
    // Slightly under n_buckets / span so that hi lands in the last bucket, not one past it.
    let scale = n_buckets as f64 / span * (1.0 - 1e-12);
    let bucket_of = |v: f64| -> usize {
        if v == f64::NEG_INFINITY {
            0
        } else if v == f64::INFINITY {
            n_buckets - 1
        } else {
            (((v - lo) * scale) as usize).min(n_buckets - 1)
        }
    };
    // A parallel counting sort: each chunk of the input counts its buckets, every (chunk, bucket)
    // gets its own range of output slots, and the chunks scatter into their ranges concurrently.
    let chunk_len = n
        .div_ceil(rayon::current_num_threads().max(1))
        .max(PARALLEL_MIN);
    let counts: Vec<Vec<u32>> = values
        .par_chunks(chunk_len)
        .map(|chunk| {
            let mut c = vec![0u32; n_buckets];
            for &v in chunk {
                c[bucket_of(v)] += 1;
            }
            c
        })
        .collect();
    let mut starts = vec![0u32; n_buckets + 1];
    let mut offsets: Vec<Vec<u32>> = vec![vec![0u32; n_buckets]; counts.len()];
    let mut next = 0u32;
    for b in 0..n_buckets {
        starts[b] = next;
        for (chunk_offsets, chunk_counts) in offsets.iter_mut().zip(&counts) {
            chunk_offsets[b] = next;
            next += chunk_counts[b];
        }
    }
    starts[n_buckets] = next;
    let mut keyed = vec![(0u64, 0u32); n];
    let out = SharedSlots(keyed.as_mut_ptr());
    values
        .par_chunks(chunk_len)
        .zip(offsets)
        .enumerate()
        .for_each(|(c, (chunk, mut fill))| {
            let out = &out;
            for (k, &v) in chunk.iter().enumerate() {
                let slot = &mut fill[bucket_of(v)];
                // SAFETY: `fill` starts at this chunk's own range for each bucket (the ranges of all
                // (chunk, bucket) pairs are disjoint and tile 0..n), and advances once per element of
                // the chunk counted in that range, so every slot below n is written exactly once and
                // by one thread; `keyed` outlives the scope and is not read until it ends.
                unsafe {
                    out.0
                        .add(*slot as usize)
                        .write(key_of(c * chunk_len + k, v))
                };
                *slot += 1;
            }
        });
    // Sort buckets in parallel: split the bucket list into contiguous ranges of similar size.
    let mut rest: &mut [(u64, u32)] = &mut keyed;
    let mut pieces: Vec<&mut [(u64, u32)]> = Vec::with_capacity(n_buckets);
    for b in 0..n_buckets {
        let len = (starts[b + 1] - starts[b]) as usize;
        let (head, tail) = rest.split_at_mut(len);
        if len > 1 {
            pieces.push(head);
        }
        rest = tail;
    }
    pieces
        .par_iter_mut()
        .with_min_len(256)
        .for_each(|bucket| bucket.sort_unstable());
    keyed
}

/// A raw pointer into the output of a parallel scatter ([`sorted_keys`], the radix inversion
/// count), shared by the threads that write disjoint slots of it.
pub(super) struct SharedSlots<T>(pub(super) *mut T);
// SAFETY: the pointer is only used for writes to disjoint slots (see `sorted_keys`).
unsafe impl<T: Send> Sync for SharedSlots<T> {}

/// Below this length the sorts and the inversion count run sequentially.
pub(super) const PARALLEL_MIN: usize = 1 << 16;

/// Up to this many observations the discordant pairs are counted with a bitset (O(n^2 / 2^12)
/// vector adds, no data-dependent branch) instead of a merge sort (O(n log n) with a larger
/// constant); the bitset's u16 counters also cap it there.
pub const BITSET_MAX: usize = 1 << 15;

/// Keys the merge-based inversion count works on.
pub trait MergeKey: Copy + Ord + Send + Sync + Default {
    /// `if take_b { b } else { a }` without a branch: the compiler turns an `if` here into a jump
    /// that mispredicts on half the steps of a random merge (measured 3x slower).
    fn select(a: Self, b: Self, take_b: bool) -> Self;
}

impl MergeKey for u32 {
    #[inline(always)]
    fn select(a: u32, b: u32, take_b: bool) -> u32 {
        a ^ ((a ^ b) & (take_b as u32).wrapping_neg())
    }
}

impl MergeKey for u64 {
    #[inline(always)]
    fn select(a: u64, b: u64, take_b: bool) -> u64 {
        a ^ ((a ^ b) & (take_b as u64).wrapping_neg())
    }
}

/// Number of strict inversions (i < j with s[i] > s[j]); sorts `s` in place. `buf` must have the
/// same length as `s`. Parallel (rayon) above a size threshold.
pub fn count_inversions<T: MergeKey>(s: &mut [T], buf: &mut [T]) -> u64 {
    assert_eq!(s.len(), buf.len(), "scratch buffer of the wrong length");
    sort_count(s, buf, false)
}

/// Merge sort counting inversions; the sorted result lands in `buf` if `into_buf`, else in `s`.
/// Halves are sorted into the other array and merged back, so no level copies.
fn sort_count<T: MergeKey>(s: &mut [T], buf: &mut [T], into_buf: bool) -> u64 {
    let n = s.len();
    if n < PARALLEL_MIN {
        let inversions = sort_count_sequential(s, buf);
        if into_buf {
            buf.copy_from_slice(s);
        }
        return inversions;
    }
    let mid = n / 2;
    let (a, b) = {
        let (sl, sr) = s.split_at_mut(mid);
        let (bl, br) = buf.split_at_mut(mid);
        rayon::join(
            || sort_count(sl, bl, !into_buf),
            || sort_count(sr, br, !into_buf),
        )
    };
    let cross = if into_buf {
        let (l, r) = s.split_at(mid);
        merge_count_parallel(l, r, buf)
    } else {
        let (l, r) = buf.split_at(mid);
        merge_count_parallel(l, r, s)
    };
    a + b + cross
}

/// Bottom-up merge sort counting inversions; result in `s`.
pub(super) fn sort_count_sequential<T: MergeKey>(s: &mut [T], buf: &mut [T]) -> u64 {
    let n = s.len();
    let mut inversions = 0u64;
    for block in s.chunks_mut(8) {
        inversions += sort_block_count(block);
    }
    let mut width = 8;
    let mut in_s = true;
    while width < n {
        {
            let (src, dst): (&[T], &mut [T]) = if in_s { (s, buf) } else { (buf, s) };
            let mut start = 0;
            while start < n {
                let mid = (start + width).min(n);
                let end = (start + 2 * width).min(n);
                inversions += merge_count(&src[start..mid], &src[mid..end], &mut dst[start..end]);
                start = end;
            }
        }
        in_s = !in_s;
        width *= 2;
    }
    if !in_s {
        s.copy_from_slice(buf);
    }
    inversions
}

/// Sorts a block of at most 8 keys and returns its inversions: all pairs compared (branch-free),
/// then an optimal 19-comparator sorting network for full blocks.
#[inline]
fn sort_block_count<T: MergeKey>(a: &mut [T]) -> u64 {
    let mut inversions = 0u64;
    for i in 0..a.len() {
        for j in (i + 1)..a.len() {
            inversions += (a[i] > a[j]) as u64;
        }
    }
    if a.len() == 8 {
        const NETWORK: [(usize, usize); 19] = [
            (0, 2),
            (1, 3),
            (4, 6),
            (5, 7),
            (0, 4),
            (1, 5),
            (2, 6),
            (3, 7),
            (0, 1),
            (2, 3),
            (4, 5),
            (6, 7),
            (2, 4),
            (3, 5),
            (1, 4),
            (3, 6),
            (1, 2),
            (3, 4),
            (5, 6),
        ];
        for (i, j) in NETWORK {
            let (lo, hi) = (a[i].min(a[j]), a[i].max(a[j]));
            a[i] = lo;
            a[j] = hi;
        }
    } else {
        a.sort_unstable();
    }
    inversions
}

/// Above this many outputs, a merge splits into two merges that run on two threads.
const PARALLEL_MERGE_MIN: usize = 1 << 17;

/// [`merge_count`], split along the merge path into parallel pieces when large.
fn merge_count_parallel<T: MergeKey>(left: &[T], right: &[T], out: &mut [T]) -> u64 {
    let (nl, nr) = (left.len(), right.len());
    if nl + nr < PARALLEL_MERGE_MIN {
        return merge_count(left, right, out);
    }
    let half = (nl + nr) / 2;
    let (a, b) = merge_path_split(left, right, half);
    let (out1, out2) = out.split_at_mut(half);
    let (x, y) = rayon::join(
        || merge_count_parallel(&left[..a], &right[..b], out1),
        || merge_count_parallel(&left[a..], &right[b..], out2),
    );
    x + y + ((nl - a) * b) as u64
}

/// Merges sorted `left` and `right` into `out` (stable: ties take `left` first), returning the
/// pairs (l in left, r in right) with l > r.
///
/// The merge is split at its midpoint along the merge path into two independent merges that run
/// interleaved: a single merge is latency-bound (each step's loads wait on the previous
/// comparison), two chains keep the core busy. Pairs across the split need no comparison: with
/// the split at (a, b), left[..a] <= right[b..] and left[a..] > right[..b].
#[inline]
fn merge_count<T: MergeKey>(left: &[T], right: &[T], out: &mut [T]) -> u64 {
    let (nl, nr) = (left.len(), right.len());
    if nl + nr < 64 {
        return merge_count_from(left, right, out, 0, 0, 0);
    }
    let half = (nl + nr) / 2;
    let (a, b) = merge_path_split(left, right, half);
    let (o1, o2) = out.split_at_mut(half);
    let (l1, r1, l2, r2) = (&left[..a], &right[..b], &left[a..], &right[b..]);
    let (mut i1, mut j1, mut k1, mut inv1) = (0usize, 0usize, 0usize, 0u64);
    let (mut i2, mut j2, mut k2, mut inv2) = (0usize, 0usize, 0usize, 0u64);
    while i1 < l1.len() && j1 < r1.len() && i2 < l2.len() && j2 < r2.len() {
        let (a1, b1) = (l1[i1], r1[j1]);
        let (a2, b2) = (l2[i2], r2[j2]);
        let (t1, t2) = (b1 < a1, b2 < a2);
        o1[k1] = T::select(a1, b1, t1);
        o2[k2] = T::select(a2, b2, t2);
        inv1 += ((l1.len() - i1) & (t1 as usize).wrapping_neg()) as u64;
        inv2 += ((l2.len() - i2) & (t2 as usize).wrapping_neg()) as u64;
        j1 += t1 as usize;
        i1 += 1 - t1 as usize;
        j2 += t2 as usize;
        i2 += 1 - t2 as usize;
        k1 += 1;
        k2 += 1;
    }
    ((nl - a) * b) as u64
        + inv1
        + inv2
        + merge_count_from(l1, r1, o1, i1, j1, k1)
        + merge_count_from(l2, r2, o2, i2, j2, k2)
}

/// The split (a, b) with a + b = k such that merging left[..a] with right[..b] yields the first k
/// outputs of the stable merge.
fn merge_path_split<T: MergeKey>(left: &[T], right: &[T], k: usize) -> (usize, usize) {
    // Smallest a with left[a] > right[k - a - 1]: a tie keeps the left element in the first part.
    let mut lo = k.saturating_sub(right.len());
    let mut hi = k.min(left.len());
    while lo < hi {
        let a = (lo + hi) / 2;
        if left[a] <= right[k - a - 1] {
            lo = a + 1;
        } else {
            hi = a;
        }
    }
    (lo, k - lo)
}

/// Finishes a merge from positions (i, j, k); returns the inversions it adds.
#[inline]
fn merge_count_from<T: MergeKey>(
    left: &[T],
    right: &[T],
    out: &mut [T],
    mut i: usize,
    mut j: usize,
    mut k: usize,
) -> u64 {
    let (nl, nr) = (left.len(), right.len());
    let mut inversions = 0u64;
    while i < nl && j < nr {
        let (a, b) = (left[i], right[j]);
        let t = b < a;
        out[k] = T::select(a, b, t);
        inversions += ((nl - i) & (t as usize).wrapping_neg()) as u64;
        j += t as usize;
        i += 1 - t as usize;
        k += 1;
    }
    out[k..k + nl - i].copy_from_slice(&left[i..]);
    k += nl - i;
    out[k..].copy_from_slice(&right[j..]);
    inversions
}

/// Discordant pairs of observations visited in x order: pairs (a before b, in different x runs)
/// with y[a] > y[b]. `ordinals` are y's ranks made unique (0..n) in visit order, so that among
/// tied y the earlier visit has the lower ordinal and "ordinal greater" means "y strictly
/// greater". `run_bounds` (ascending, from 0 to n) splits the visit order into runs of tied x;
/// pairs inside a run are tied in x and never discordant. `None`: no ties in x.
///
/// A bitset marks the ordinals seen so far, with counts of seen ordinals at or above each word
/// (within its block of 8 words) and at or above each block. A query is two loads and a popcount;
/// an insert updates every counter with a mask, a fixed number of whole-vector adds: a loop whose
/// length depends on the data mispredicts on every element (measured 2.5x slower).
pub fn discordant_bitset(ordinals: &[u32], run_bounds: Option<&[u32]>) -> u64 {
    const WORDS_PER_BLOCK: usize = 8;
    const LANES: usize = 8;
    assert!(
        ordinals.len() <= BITSET_MAX,
        "u16 counters need at most {BITSET_MAX} observations"
    );
    let words = ordinals.len().div_ceil(64).max(1);
    let blocks = words.div_ceil(WORDS_PER_BLOCK);
    let mut bits = vec![0u64; words];
    // within[blk][k]: seen ordinals in words k..8 of block blk (k >= 8: always 0). 16 slots so
    // that slot k + 1 exists and the update is two full vectors.
    let mut within = vec![[0u16; 2 * WORDS_PER_BLOCK]; blocks];
    // above[blk]: seen ordinals in blocks blk.. (padded with zeros to whole vectors).
    let above_len = (blocks + 1).div_ceil(LANES) * LANES;
    let mut above = vec![0u16; above_len];
    let lane_index: Vec<u16> = (0..above_len as u16).collect();
    let slot_index: [u16; 2 * WORDS_PER_BLOCK] = core::array::from_fn(|i| i as u16);
    let greater = |bits: &[u64], within: &[[u16; 16]], above: &[u16], r: u32| -> u64 {
        let (w, b) = ((r / 64) as usize, r % 64);
        let (blk, k) = (w / WORDS_PER_BLOCK, w % WORDS_PER_BLOCK);
        above[blk + 1] as u64
            + within[blk][k + 1] as u64
            + ((bits[w] >> b) >> 1).count_ones() as u64
    };
    let insert = |bits: &mut [u64], within: &mut [[u16; 16]], above: &mut [u16], r: u32| {
        let (w, b) = ((r / 64) as usize, r % 64);
        let (blk, k) = (w / WORDS_PER_BLOCK, w % WORDS_PER_BLOCK);
        bits[w] |= 1u64 << b;
        for (c, &j) in within[blk].iter_mut().zip(&slot_index) {
            *c += (j <= k as u16) as u16;
        }
        for (c, j) in above
            .chunks_exact_mut(LANES)
            .zip(lane_index.chunks_exact(LANES))
        {
            for l in 0..LANES {
                c[l] += (j[l] <= blk as u16) as u16;
            }
        }
    };
    let mut discordant = 0u64;
    match run_bounds {
        None => {
            for &r in ordinals {
                discordant += greater(&bits, &within, &above, r);
                insert(&mut bits, &mut within, &mut above, r);
            }
        }
        Some(bounds) => {
            for run in bounds.windows(2) {
                let run = &ordinals[run[0] as usize..run[1] as usize];
                for &r in run {
                    discordant += greater(&bits, &within, &above, r);
                }
                for &r in run {
                    insert(&mut bits, &mut within, &mut above, r);
                }
            }
        }
    }
    discordant
}

/// Replaces y ranks (in visit order) by unique ordinals: rank r's k-th visited member gets
/// group_start[r] + k.
fn ordinals_in_visit_order(seq: &mut [u32], y: &Ranked, next: &mut Vec<u32>) {
    next.clear();
    next.extend_from_slice(&y.group_start[..y.group_start.len().saturating_sub(1)]);
    for r in seq.iter_mut() {
        let slot = &mut next[*r as usize];
        *r = *slot;
        *slot += 1;
    }
}

/// Scratch space reused across pairs in the batched forms.
#[derive(Debug, Default)]
pub struct Scratch {
    seq: Vec<u32>,
    buf: Vec<u32>,
}

/// Pairs tied in both variables inside runs of tied x (`run_bounds` as in [`discordant_bitset`]):
/// sorts each run's y ranks in place.
fn joint_ties_in_runs(seq: &mut [u32], run_bounds: &[u32]) -> u64 {
    run_bounds
        .windows(2)
        .map(|b| tied_pairs_sorting(&mut seq[b[0] as usize..b[1] as usize]))
        .sum()
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
    debug_assert_eq!(x.len(), y.len());
    let n = x.len();
    if n <= NAIVE_MAX {
        return pair_counts_naive(x, y);
    }
    if n <= BITSET_MAX {
        return pair_counts_ranked(&Ranked::new(x), &Ranked::new(y), &mut Scratch::default());
    }
    let ((x_stats, joint_ties), (discordant, y_stats)) =
        with_cached(&PAIR_BUFFERS, 2 * n, |pairs| {
            with_cached(&KEY_BUFFERS, 2 * n, |keys| {
                let (pairs, scratch) = pairs.split_at_mut(n);
                let (seq, buf) = keys.split_at_mut(n);
                pairs
                    .par_iter_mut()
                    .zip(x.par_iter().zip(y))
                    .for_each(|(p, (&a, &b))| *p = (sort_key(a), sort_key(b)));
                let by_x = order_by_x(pairs, scratch, seq);
                (by_x, inversions_and_ties(seq, buf))
            })
        });
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

/// Scratch memory of the large-n [`pair_counts`], kept between calls. Fresh memory costs a page
/// fault per 4 KiB page on first touch, on every call, as the allocator hands such blocks back to
/// the system when freed: at n = 1e6 (48 MB of buffers) about 14 ms of a 60 ms call in a one-off
/// timing on the 2-core machine; `python benches/bench_rank.py --first-call` shows the difference
/// between a first call and later ones.
static PAIR_BUFFERS: Mutex<Vec<KeyPair>> = Mutex::new(Vec::new());
/// See [`PAIR_BUFFERS`].
static KEY_BUFFERS: Mutex<Vec<u64>> = Mutex::new(Vec::new());
/// A cached buffer larger than this is freed after the call instead (n above about 1.5e6).
const CACHE_MAX_BYTES: usize = 48 << 20;

/// Runs `f` on `len` elements of scratch taken from `cache` (contents arbitrary), or freshly
/// allocated when the cache is too small or in use by another call.
fn with_cached<T: Copy + Default, R>(
    cache: &Mutex<Vec<T>>,
    len: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    let mut buffer = cache
        .try_lock()
        .map(|mut cached| std::mem::take(&mut *cached))
        .unwrap_or_default();
    if buffer.len() < len {
        buffer = vec![T::default(); len];
    }
    let result = f(&mut buffer[..len]);
    if buffer.len() * std::mem::size_of::<T>() <= CACHE_MAX_BYTES
        && let Ok(mut cached) = cache.try_lock()
        && cached.len() < buffer.len()
    {
        *cached = buffer;
    }
    result
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
pub fn pair_counts_against(columns: &[&[f64]], y: &Ranked) -> Vec<PairCounts> {
    columns
        .par_iter()
        .map_init(Scratch::default, |scratch, col| {
            pair_counts_ranked(&Ranked::new(col), y, scratch)
        })
        .collect()
}

#[cfg(test)]
mod tests {
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
