//! MSD radix partitioning for the large-n Kendall count ([`super::counts::pair_counts`]): ordering
//! the (x, y) key pairs by x, and counting the inversions of y's keys in that order, with the tie
//! statistics of each variable on the side.
//!
//! Both split a group of keys into classes by the top bits of `key - min` (the bit position fitted
//! to each group's span, so that clumped or exponent-heavy keys still split, and the span shrinks
//! at least `classes`-fold per level), partition it stably by class and recurse into each class.
//! The inversion count uses 16 classes and counts the pairs inverted across classes in the same
//! pass (order inside a class is kept, so the inversions inside it are those of the class on its
//! own): a level resolves 4 bits in about the passes a merge sort spends on 1.
//!
//! Tried and dropped (one-off A/B runs at n = 1e6 on the 2-core machine): classes linear in the
//! value between the group's min and max instead of key bits; no fewer passes on normal data and
//! a costlier map per key, 10-40% slower overall.

use rayon::prelude::*;

use crate::simd::Isa;

use super::counts::{PARALLEL_MIN, SharedSlots, TieStats, run_lengths, sort_count_sequential};

/// Classes of the inversion count: 16, the u32 lanes of one AVX-512 vector.
const DIGITS: usize = 16;
/// Groups up to this length are merge-sorted instead of partitioned.
const SMALL_MAX: usize = 64;

/// A monotone map from sort keys onto classes: the top bits of `key - low`.
#[derive(Debug, Clone, Copy)]
struct Classes {
    low: u64,
    shift: u32,
}

impl Classes {
    /// The map of keys spanning `min..=max` onto `count` (a power of two) classes; `None` when
    /// all keys are equal. The min and the max land in different classes, so every level splits.
    fn fit(min: u64, max: u64, count: usize) -> Option<Classes> {
        (min != max).then(|| Classes {
            low: min,
            shift: (64 - (max - min).leading_zeros()).saturating_sub(count.ilog2()),
        })
    }

    #[inline(always)]
    fn of(self, key: u64) -> usize {
        ((key - self.low) >> self.shift) as usize
    }
}

fn min_max_by<T>(items: &[T], key: impl Fn(&T) -> u64) -> (u64, u64) {
    items.iter().fold((u64::MAX, 0), |(lo, hi), item| {
        let k = key(item);
        (lo.min(k), hi.max(k))
    })
}

fn par_min_max_by<T: Sync>(items: &[T], key: impl Fn(&T) -> u64 + Sync) -> (u64, u64) {
    items
        .par_chunks(PARALLEL_MIN)
        .map(|chunk| min_max_by(chunk, &key))
        .reduce(|| (u64::MAX, 0), |a, b| (a.0.min(b.0), a.1.max(b.1)))
}

/// Length of the chunks a parallel level splits a group of `len` into: one per thread.
fn chunk_len(len: usize) -> usize {
    len.div_ceil(rayon::current_num_threads().max(1))
        .max(PARALLEL_MIN / 2)
}

/// Per-(chunk, class) start slots of a stable parallel scatter: classes in order, chunks in order
/// inside each class. Returns them with the class sizes.
fn chunk_slots<const N: usize>(chunk_sizes: &[[usize; N]]) -> (Vec<[usize; N]>, [usize; N]) {
    let mut next = vec![[0; N]; chunk_sizes.len()];
    let mut sizes = [0; N];
    let mut start = 0;
    for e in 0..N {
        for (chunk_next, chunk_size) in next.iter_mut().zip(chunk_sizes) {
            chunk_next[e] = start;
            start += chunk_size[e];
            sizes[e] += chunk_size[e];
        }
    }
    (next, sizes)
}

/// Scatters `chunks` of `src` into `dst` by class, each chunk from its own start slots.
fn scatter_parallel<T: Copy + Send + Sync, const N: usize>(
    src: &[T],
    dst: &mut [T],
    chunk_len: usize,
    next: Vec<[usize; N]>,
    key: impl Fn(&T) -> u64 + Sync,
    classes: Classes,
) {
    let target = SharedSlots(dst.as_mut_ptr());
    src.par_chunks(chunk_len)
        .zip(next)
        .for_each(|(chunk, mut next)| {
            let target = &target;
            for item in chunk {
                let slot = &mut next[classes.of(key(item))];
                // SAFETY: the (chunk, class) ranges of `chunk_slots` are disjoint and tile
                // 0..len, and `next` walks this chunk's ranges once per item counted in them, so
                // each slot of `dst` is written exactly once, by one thread, and `dst` is not read
                // until the scope ends.
                unsafe { target.0.add(*slot).write(*item) };
                *slot += 1;
            }
        });
}

/// Strict inversions (i < j with `keys[i] > keys[j]`) of `keys`, and the tie statistics of its
/// values. `keys` and `buf` (same length) are both clobbered.
pub(crate) fn inversions_and_ties(keys: &mut [u64], buf: &mut [u64]) -> (u64, TieStats) {
    assert_eq!(keys.len(), buf.len(), "scratch buffer of the wrong length");
    let mut ties = TieStats::default();
    let inversions = count_group(keys, buf, &mut ties);
    (inversions, ties)
}

/// One counting pass: the pairs inverted across digit classes, and the size of each class.
///
/// The 16 classes are 16 vector lanes in registers: per key, every lane above its digit adds its
/// count of earlier keys to the pair count, and the key's own lane counts it. Written with
/// intrinsics because the compiler, given the same lane loops in plain Rust, shuffles lanes out to
/// scalars (5.3 ns per key against 1.2 here, in a one-off timing at n = 1e6 on the 2-core machine).
fn count_across_digits(keys: &[u64], classes: Classes) -> (u64, [u64; DIGITS]) {
    #[cfg(target_arch = "x86_64")]
    match Isa::detect() {
        // SAFETY: `Isa::detect` returns Avx512 only when the CPU has AVX-512F.
        Isa::Avx512 => return unsafe { count_across_digits_avx512(keys, classes) },
        // SAFETY: `Isa::detect` returns Avx2Fma only when the CPU has AVX2 (and FMA).
        Isa::Avx2Fma => return unsafe { count_across_digits_avx2(keys, classes) },
        Isa::Baseline => {}
    }
    count_across_digits_portable(keys, classes)
}

/// Keys per block of the counting pass: its u32 lane counters hold up to block^2 / 2.
const COUNT_BLOCK: usize = 1 << 16;

/// Pairs of a later run of keys (`later[e]` of class e) with the earlier keys (`seen[e]`) that are
/// inverted: a later key of class f with every earlier key of a larger class. Adds `later` to
/// `seen`. Joins counting blocks, and the chunks of a parallel level.
fn inverted_with_earlier(seen: &mut [u64; DIGITS], later: &[u32; DIGITS]) -> u64 {
    let mut inversions = 0u64;
    let mut below = 0u64;
    for e in 0..DIGITS {
        inversions += seen[e] * below;
        below += later[e] as u64;
        seen[e] += later[e] as u64;
    }
    inversions
}

fn count_across_digits_portable(keys: &[u64], classes: Classes) -> (u64, [u64; DIGITS]) {
    let mut sizes = [0u64; DIGITS];
    let mut inversions = 0u64;
    for block in keys.chunks(COUNT_BLOCK) {
        let mut in_block = [0u32; DIGITS];
        let mut pairs = [0u32; DIGITS];
        for &k in block {
            let d = classes.of(k);
            for e in 0..DIGITS {
                pairs[e] += in_block[e] & ((e > d) as u32).wrapping_neg();
                in_block[e] += (e == d) as u32;
            }
        }
        inversions += pairs.iter().map(|&p| p as u64).sum::<u64>()
            + inverted_with_earlier(&mut sizes, &in_block);
    }
    (inversions, sizes)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn count_across_digits_avx512(keys: &[u64], classes: Classes) -> (u64, [u64; DIGITS]) {
    use std::arch::x86_64::*;
    let one = _mm512_set1_epi32(1);
    let mut sizes = [0u64; DIGITS];
    let mut inversions = 0u64;
    for block in keys.chunks(COUNT_BLOCK) {
        let mut in_block = _mm512_setzero_si512();
        let mut pairs = _mm512_setzero_si512();
        for &k in block {
            let d = classes.of(k);
            // Lane masks straight from the digit: no broadcast or compare needed.
            let above: __mmask16 = (0xfffe_u32 << d) as u16;
            let own: __mmask16 = 1 << d;
            pairs = _mm512_mask_add_epi32(pairs, above, pairs, in_block);
            in_block = _mm512_mask_add_epi32(in_block, own, in_block, one);
        }
        let (mut in_block_lanes, mut pairs_lanes) = ([0u32; DIGITS], [0u32; DIGITS]);
        // SAFETY: each array is 16 u32, one 512-bit vector; unaligned stores.
        unsafe {
            _mm512_storeu_si512(in_block_lanes.as_mut_ptr().cast(), in_block);
            _mm512_storeu_si512(pairs_lanes.as_mut_ptr().cast(), pairs);
        }
        inversions += pairs_lanes.iter().map(|&p| p as u64).sum::<u64>()
            + inverted_with_earlier(&mut sizes, &in_block_lanes);
    }
    (inversions, sizes)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn count_across_digits_avx2(keys: &[u64], classes: Classes) -> (u64, [u64; DIGITS]) {
    use std::arch::x86_64::*;
    let lanes = [
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15),
    ];
    let mut sizes = [0u64; DIGITS];
    let mut inversions = 0u64;
    for block in keys.chunks(COUNT_BLOCK) {
        let mut in_block = [_mm256_setzero_si256(); 2];
        let mut pairs = [_mm256_setzero_si256(); 2];
        for &k in block {
            let d = _mm256_set1_epi32(classes.of(k) as i32);
            for h in 0..2 {
                // Digits are below 16, so the signed compares are exact; an all-ones lane is -1.
                let above = _mm256_cmpgt_epi32(lanes[h], d);
                let own = _mm256_cmpeq_epi32(lanes[h], d);
                pairs[h] = _mm256_add_epi32(pairs[h], _mm256_and_si256(above, in_block[h]));
                in_block[h] = _mm256_sub_epi32(in_block[h], own);
            }
        }
        let (mut in_block_lanes, mut pairs_lanes) = ([0u32; DIGITS], [0u32; DIGITS]);
        // SAFETY: each array is 16 u32, two 256-bit vectors; unaligned stores.
        unsafe {
            for h in 0..2 {
                _mm256_storeu_si256(in_block_lanes.as_mut_ptr().add(8 * h).cast(), in_block[h]);
                _mm256_storeu_si256(pairs_lanes.as_mut_ptr().add(8 * h).cast(), pairs[h]);
            }
        }
        inversions += pairs_lanes.iter().map(|&p| p as u64).sum::<u64>()
            + inverted_with_earlier(&mut sizes, &in_block_lanes);
    }
    (inversions, sizes)
}

fn count_group(src: &mut [u64], dst: &mut [u64], ties: &mut TieStats) -> u64 {
    let len = src.len();
    if len <= SMALL_MAX {
        let inversions = sort_count_sequential(src, dst);
        for t in run_lengths(src) {
            ties.add_group(t);
        }
        return inversions;
    }
    let parallel = len >= PARALLEL_MIN;
    let (min, max) = if parallel {
        par_min_max_by(src, |&k| k)
    } else {
        min_max_by(src, |&k| k)
    };
    match Classes::fit(min, max, DIGITS) {
        None => {
            ties.add_group(len as u64);
            0
        }
        Some(classes) if parallel => count_level_parallel(src, dst, ties, classes),
        Some(classes) => count_level(src, dst, ties, classes),
    }
}

/// One level of [`count_group`]: count across classes, scatter `src` into `dst`, recurse.
fn count_level(src: &mut [u64], dst: &mut [u64], ties: &mut TieStats, classes: Classes) -> u64 {
    let (mut inversions, sizes) = count_across_digits(src, classes);
    let mut next = [0usize; DIGITS];
    let mut start = 0;
    for (slot, &size) in next.iter_mut().zip(&sizes) {
        *slot = start;
        start += size as usize;
    }
    for &k in src.iter() {
        let slot = &mut next[classes.of(k)];
        dst[*slot] = k;
        *slot += 1;
    }
    let mut start = 0;
    for &size in &sizes {
        let end = start + size as usize;
        if size > 0 {
            inversions += count_group(&mut dst[start..end], &mut src[start..end], ties);
        }
        start = end;
    }
    inversions
}

/// [`count_level`] for large groups: the counting pass and the scatter run on chunks in
/// parallel, then the classes are counted in parallel.
fn count_level_parallel(
    src: &mut [u64],
    dst: &mut [u64],
    ties: &mut TieStats,
    classes: Classes,
) -> u64 {
    let len = src.len();
    let chunk_len = chunk_len(len);
    let per_chunk: Vec<(u64, [u64; DIGITS])> = src
        .par_chunks(chunk_len)
        .map(|chunk| count_across_digits(chunk, classes))
        .collect();
    let mut inversions = 0u64;
    let mut seen = [0u64; DIGITS];
    for (within, chunk_sizes) in &per_chunk {
        let chunk_sizes = chunk_sizes.map(|size| size as u32);
        inversions += within + inverted_with_earlier(&mut seen, &chunk_sizes);
    }
    let chunk_sizes: Vec<[usize; DIGITS]> = per_chunk
        .iter()
        .map(|(_, sizes)| sizes.map(|s| s as usize))
        .collect();
    let (next, sizes) = chunk_slots(&chunk_sizes);
    scatter_parallel(src, dst, chunk_len, next, |&k| k, classes);
    let mut parts: Vec<(&mut [u64], &mut [u64])> = Vec::with_capacity(DIGITS);
    let (mut dst_rest, mut src_rest) = (dst, src);
    for &size in &sizes {
        let (d, d_tail) = dst_rest.split_at_mut(size);
        let (s, s_tail) = src_rest.split_at_mut(size);
        if size > 0 {
            parts.push((d, s));
        }
        (dst_rest, src_rest) = (d_tail, s_tail);
    }
    let per_class: Vec<(u64, TieStats)> = parts
        .into_par_iter()
        .map(|(d, s)| {
            let mut class_ties = TieStats::default();
            (count_group(d, s, &mut class_ties), class_ties)
        })
        .collect();
    // Merged in key order, as the sequential recursion would add them.
    for (class_inversions, class_ties) in per_class {
        inversions += class_inversions;
        ties.merge(&class_ties);
    }
    inversions
}

/// A pair of sort keys: x's and y's.
pub(crate) type KeyPair = (u64, u64);

/// Most classes per level of the sort (a histogram of this many counters stays in L1).
const SORT_CLASSES: usize = 256;
/// Groups up to this length are finished with a comparison sort.
const SORT_SMALL_MAX: usize = 48;

/// Classes for a sort group of `len` keys: about 16 keys per class, from 4 to 256.
fn sort_classes(len: usize) -> usize {
    (len / 16).next_power_of_two().clamp(4, SORT_CLASSES)
}

/// Writes y's keys in the order of x (pairs tied in x ordered by y) into `y_in_x_order`; returns
/// the tie statistics of x and the number of pairs tied in both. `pairs` and `scratch` (same
/// length) are clobbered.
///
/// An MSD radix sort on x's key (up to 256 classes per level); y's keys travel with x's, so no
/// gather by index follows. Equal x keys never part, so x's tie groups and the joint ties are
/// counted where each group is finished.
pub(crate) fn order_by_x(
    pairs: &mut [KeyPair],
    scratch: &mut [KeyPair],
    y_in_x_order: &mut [u64],
) -> (TieStats, u64) {
    assert_eq!(
        pairs.len(),
        scratch.len(),
        "scratch buffer of the wrong length"
    );
    assert_eq!(
        pairs.len(),
        y_in_x_order.len(),
        "output of the wrong length"
    );
    let mut x_ties = TieStats::default();
    let mut joint_ties = 0u64;
    let out = SortOut {
        y_in_x_order,
        x_ties: &mut x_ties,
        joint_ties: &mut joint_ties,
    };
    sort_group(pairs, scratch, out);
    (x_ties, joint_ties)
}

/// Where a sort group's results go: its slice of the output, and the running tie counts.
struct SortOut<'a> {
    y_in_x_order: &'a mut [u64],
    x_ties: &'a mut TieStats,
    joint_ties: &'a mut u64,
}

/// Sorts a group that needs no more partitioning (small, or all x equal) and writes its y keys.
fn finish_group(data: &mut [KeyPair], out: SortOut<'_>) {
    data.sort_unstable();
    for (o, p) in out.y_in_x_order.iter_mut().zip(data.iter()) {
        *o = p.1;
    }
    let mut start = 0;
    while start < data.len() {
        let mut end = start + 1;
        while end < data.len() && data[end].0 == data[start].0 {
            end += 1;
        }
        out.x_ties.add_group((end - start) as u64);
        if end - start > 1 {
            *out.joint_ties += run_lengths(&data[start..end])
                .map(|t| t * (t - 1) / 2)
                .sum::<u64>();
        }
        start = end;
    }
}

fn sort_group(data: &mut [KeyPair], scratch: &mut [KeyPair], out: SortOut<'_>) {
    let len = data.len();
    if len <= SORT_SMALL_MAX {
        return finish_group(data, out);
    }
    let parallel = len >= PARALLEL_MIN;
    let (min, max) = if parallel {
        par_min_max_by(data, |p| p.0)
    } else {
        min_max_by(data, |p| p.0)
    };
    match Classes::fit(min, max, sort_classes(len)) {
        None => finish_group(data, out),
        Some(classes) if parallel => sort_level_parallel(data, scratch, out, classes),
        Some(classes) => sort_level(data, scratch, out, classes),
    }
}

/// One level of [`sort_group`]: histogram, stable scatter of `data` into `scratch`, recurse.
fn sort_level(data: &mut [KeyPair], scratch: &mut [KeyPair], out: SortOut<'_>, classes: Classes) {
    let mut next = [0usize; SORT_CLASSES];
    for p in data.iter() {
        next[classes.of(p.0)] += 1;
    }
    let sizes = next;
    let mut start = 0;
    for slot in next.iter_mut() {
        (*slot, start) = (start, start + *slot);
    }
    for &p in data.iter() {
        let slot = &mut next[classes.of(p.0)];
        scratch[*slot] = p;
        *slot += 1;
    }
    let mut start = 0;
    for size in sizes {
        let end = start + size;
        if size > 0 {
            let class_out = SortOut {
                y_in_x_order: &mut out.y_in_x_order[start..end],
                x_ties: &mut *out.x_ties,
                joint_ties: &mut *out.joint_ties,
            };
            sort_group(&mut scratch[start..end], &mut data[start..end], class_out);
        }
        start = end;
    }
}

/// [`sort_level`] for large groups: histograms and scatter on chunks in parallel, then the
/// classes in parallel.
fn sort_level_parallel(
    data: &mut [KeyPair],
    scratch: &mut [KeyPair],
    out: SortOut<'_>,
    classes: Classes,
) {
    let len = data.len();
    let chunk_len = chunk_len(len);
    let chunk_sizes: Vec<[usize; SORT_CLASSES]> = data
        .par_chunks(chunk_len)
        .map(|chunk| {
            let mut sizes = [0usize; SORT_CLASSES];
            for p in chunk {
                sizes[classes.of(p.0)] += 1;
            }
            sizes
        })
        .collect();
    let (next, sizes) = chunk_slots(&chunk_sizes);
    scatter_parallel(data, scratch, chunk_len, next, |p| p.0, classes);
    let mut parts = Vec::with_capacity(SORT_CLASSES);
    let (mut scratch_rest, mut data_rest, mut out_rest) = (scratch, data, out.y_in_x_order);
    for size in sizes {
        let (s, s_tail) = scratch_rest.split_at_mut(size);
        let (d, d_tail) = data_rest.split_at_mut(size);
        let (o, o_tail) = out_rest.split_at_mut(size);
        if size > 0 {
            parts.push((s, d, o));
        }
        (scratch_rest, data_rest, out_rest) = (s_tail, d_tail, o_tail);
    }
    let per_class: Vec<(TieStats, u64)> = parts
        .into_par_iter()
        .map(|(s, d, o)| {
            let (mut class_ties, mut class_joint) = (TieStats::default(), 0u64);
            let class_out = SortOut {
                y_in_x_order: o,
                x_ties: &mut class_ties,
                joint_ties: &mut class_joint,
            };
            sort_group(s, d, class_out);
            (class_ties, class_joint)
        })
        .collect();
    for (class_ties, class_joint) in per_class {
        out.x_ties.merge(&class_ties);
        *out.joint_ties += class_joint;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rank::counts::sort_key;

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 11
    }

    /// Value sets that stress the class map: continuous, heavy ties, one far outlier (most keys
    /// in one class for several levels), both signs and zeros, infinities, huge span.
    fn samples(n: usize, seed: &mut u64) -> Vec<(&'static str, Vec<f64>)> {
        let uniform = |seed: &mut u64| (lcg(seed) % (1 << 40)) as f64 / (1u64 << 30) as f64 - 512.0;
        vec![
            ("continuous", (0..n).map(|_| uniform(seed)).collect()),
            ("ties", (0..n).map(|_| (lcg(seed) % 5) as f64).collect()),
            (
                "clumped",
                (0..n)
                    .map(|i| {
                        if i % 1000 == 7 {
                            1e300
                        } else {
                            (lcg(seed) % 1000) as f64 * 1e-9
                        }
                    })
                    .collect(),
            ),
            (
                "signs and zeros",
                (0..n)
                    .map(|i| match i % 4 {
                        0 => 0.0,
                        1 => -0.0,
                        _ => uniform(seed),
                    })
                    .collect(),
            ),
            (
                "infinities",
                (0..n)
                    .map(|i| match i % 7 {
                        0 => f64::INFINITY,
                        1 => f64::NEG_INFINITY,
                        _ => uniform(seed),
                    })
                    .collect(),
            ),
            (
                "huge span",
                (0..n)
                    .map(|_| {
                        if lcg(seed).is_multiple_of(2) {
                            -1e308
                        } else {
                            f64::MIN_POSITIVE
                        }
                    })
                    .collect(),
            ),
            ("constant", vec![3.5; n]),
        ]
    }

    fn naive_inversions(keys: &[u64]) -> u64 {
        let mut count = 0;
        for i in 0..keys.len() {
            for j in (i + 1)..keys.len() {
                count += (keys[i] > keys[j]) as u64;
            }
        }
        count
    }

    fn ties_by_sorting(keys: &[u64]) -> TieStats {
        let mut sorted = keys.to_vec();
        sorted.sort_unstable();
        let mut ties = TieStats::default();
        for t in run_lengths(&sorted) {
            ties.add_group(t);
        }
        ties
    }

    fn check_inversions(keys: &[u64], expected: u64, context: &str) {
        let mut work = keys.to_vec();
        let mut buf = vec![0u64; keys.len()];
        let (inversions, ties) = inversions_and_ties(&mut work, &mut buf);
        assert_eq!(inversions, expected, "{context}");
        assert_eq!(ties, ties_by_sorting(keys), "{context}");
    }

    #[test]
    fn inversions_match_a_quadratic_count() {
        let mut seed = 11;
        for n in [0usize, 1, 2, SMALL_MAX, SMALL_MAX + 1, 300, 2000] {
            for (name, values) in samples(n, &mut seed) {
                let keys: Vec<u64> = values.iter().map(|&v| sort_key(v)).collect();
                check_inversions(&keys, naive_inversions(&keys), &format!("{name} n={n}"));
            }
        }
    }

    #[test]
    fn parallel_levels_match_the_merge_count() {
        // Above PARALLEL_MIN the top levels count and scatter by chunks on several threads.
        let mut seed = 12;
        let n = 3 * PARALLEL_MIN + 17;
        for (name, values) in samples(n, &mut seed) {
            let keys: Vec<u64> = values.iter().map(|&v| sort_key(v)).collect();
            let mut sorted = keys.clone();
            let mut buf = vec![0u64; n];
            let expected = crate::rank::counts::count_inversions(&mut sorted, &mut buf);
            check_inversions(&keys, expected, name);
        }
    }

    #[test]
    fn every_counting_kernel_agrees() {
        let mut seed = 13;
        // More keys than one counting block, so the block carry is exercised.
        let keys: Vec<u64> = (0..COUNT_BLOCK + 1000).map(|_| lcg(&mut seed)).collect();
        let classes = Classes::fit(0, 1 << 53, DIGITS).unwrap();
        let portable = count_across_digits_portable(&keys, classes);
        // Pairs inverted across classes are the strict inversions of the class sequence.
        let mut digits: Vec<u64> = keys.iter().map(|&k| classes.of(k) as u64).collect();
        let mut sizes = [0u64; DIGITS];
        for &d in &digits {
            sizes[d as usize] += 1;
        }
        let mut buf = vec![0u64; digits.len()];
        let expected = crate::rank::counts::count_inversions(&mut digits, &mut buf);
        assert_eq!(portable, (expected, sizes));
        assert_eq!(count_across_digits(&keys, classes), portable);
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                let avx2 = unsafe { count_across_digits_avx2(&keys, classes) };
                assert_eq!(avx2, portable);
            }
            if is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F.
                let avx512 = unsafe { count_across_digits_avx512(&keys, classes) };
                assert_eq!(avx512, portable);
            }
        }
    }

    #[test]
    fn order_by_x_matches_a_comparison_sort() {
        let mut seed = 14;
        for n in [0usize, 1, 5, SORT_SMALL_MAX + 1, 5000, 2 * PARALLEL_MIN + 3] {
            let xs = samples(n, &mut seed);
            let ys = samples(n, &mut seed);
            for ((x_name, x), (y_name, y)) in xs.iter().zip(ys.iter().rev()) {
                let pairs: Vec<KeyPair> = x
                    .iter()
                    .zip(y)
                    .map(|(&a, &b)| (sort_key(a), sort_key(b)))
                    .collect();
                let mut sorted = pairs.clone();
                sorted.sort_unstable();
                let expected_y: Vec<u64> = sorted.iter().map(|p| p.1).collect();
                let x_keys: Vec<u64> = pairs.iter().map(|p| p.0).collect();
                let expected_joint: u64 = run_lengths(&sorted).map(|t| t * (t - 1) / 2).sum();
                let mut work = pairs.clone();
                let mut scratch = vec![(0, 0); n];
                let mut y_in_x_order = vec![0u64; n];
                let (x_ties, joint) = order_by_x(&mut work, &mut scratch, &mut y_in_x_order);
                let context = format!("x {x_name}, y {y_name}, n={n}");
                assert_eq!(y_in_x_order, expected_y, "{context}");
                assert_eq!(x_ties, ties_by_sorting(&x_keys), "{context}");
                assert_eq!(joint, expected_joint, "{context}");
            }
        }
    }
}
