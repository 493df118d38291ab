//! The ranking sort: f64 values to order-preserving integer keys, dense ranks and tie groups
//! ([`Ranked`]), with a parallel bucket sort for large inputs.

use rayon::prelude::*;

use super::TieStats;

/// Order-preserving map from a non-NaN f64 to u64; -0.0 and 0.0 map to the same key (they compare
/// equal, as in numpy).
#[inline]
pub(crate) fn sort_key(v: f64) -> u64 {
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
    pub(crate) ranks: Vec<u32>,
    /// Observation indices in ascending order of value (ties in index order).
    pub(crate) order: Vec<u32>,
    /// Tie statistics.
    pub(crate) ties: TieStats,
    /// `group_start[r]`: number of observations with rank < r (length distinct + 1).
    pub(crate) group_start: Vec<u32>,
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
    pub(crate) fn has_ties(&self) -> bool {
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
pub(super) fn sorted_keys(values: &[f64]) -> Vec<(u64, u32)> {
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
                // SAFETY: `fill` starts at this chunk's own range for each bucket (the ranges of
                // all (chunk, bucket) pairs are disjoint and tile 0..n), and advances once per
                // element of the chunk counted in that range, so every slot below n is written
                // exactly once and by one thread; `keyed` outlives the scope and is not read until
                // it ends.
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
pub(crate) struct SharedSlots<T>(pub(crate) *mut T);
// SAFETY: the pointer is only used for writes to disjoint slots (see `sorted_keys`).
unsafe impl<T: Send> Sync for SharedSlots<T> {}

/// Below this length the sorts and the inversion count run sequentially.
pub(crate) const PARALLEL_MIN: usize = 1 << 16;
