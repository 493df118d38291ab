//! Discordant pairs between every two of many tie-free columns at once, as a binary Gram matrix.
//!
//! For an observation pair a < b, write g_c(a, b) = [x_c[a] > x_c[b]]. Without ties, the pair is
//! discordant between columns i and j exactly when g_i(a, b) != g_j(a, b), so
//! D(i, j) = popcount(G_i XOR G_j), where G_c is the bit vector of g_c over the n(n-1)/2 pairs.
//! Building the G_c costs O(m n^2 / 64) word operations; the m(m-1)/2 XOR-popcounts cost
//! O(m^2 n^2 / 128) bit operations, which a vector popcount (AVX-512 VPOPCNTDQ: 512 bits per
//! instruction) turns into far fewer instructions than m(m-1)/2 merge sorts of n log n steps each,
//! as long as n is moderate (see [`MAX_OBSERVATIONS`]).
//!
//! The pair triangle is cut into blocks of rows a; a block's bits for all m columns stay in the
//! core's L2 cache while every column pair is counted over it, so memory is O(m x block), never
//! O(m n^2). Blocks run in parallel, each thread adding into its own m x m counts.

#[cfg(target_arch = "x86_64")]
use rayon::prelude::*;

use crate::simd::Isa;

/// Bits of one block of the pair triangle, for all columns, kept near this size (bytes) so that
/// they stay in L2 while every column pair is counted over them.
#[cfg(target_arch = "x86_64")]
const BLOCK_BYTES: usize = 384 * 1024;

/// The Gram count needs at least this many columns to share the cost of building the bits...
const MIN_COLUMNS: usize = 8;
/// ...and at most this many observations: the popcounts grow as n^2 per column pair against
/// n log n for a merge count. Both cut-offs come from a one-off timing sweep on the 2-core
/// AVX-512 machines while this was written (Gram vs merge, noisy: n = 2000, m = 100 about 12 vs
/// 36 ms; n = 5000, m = 50 about 25 vs 35 ms; n = 10000, m = 30 about 44 vs 29 ms); the kept
/// benchmark is benches/bench_rank.py's 2000 x 100 case against pandas.
const MAX_OBSERVATIONS: usize = 6000;

/// Whether the CPU has the 512-bit popcount (AVX-512 F, BW and VPOPCNTDQ). Without it the Gram
/// count was slower than per-pair merge counts in the same sweep (an AVX2 build of this kernel:
/// about 54 vs 36 ms at n = 2000, m = 100), so it is not offered.
fn has_vector_popcount() -> bool {
    Isa::detect().has_vector_popcount()
}

/// Discordant pairs between every two columns, as the upper triangle of an m x m row-major matrix
/// (entries (i, j) with i < j are set, the rest are 0), when the Gram count is faster than
/// per-pair counts on this CPU for these sizes; `None` otherwise. `ranks[c]` are column c's
/// ranks: a permutation of 0..n (tie-free columns only).
pub(crate) fn discordant_gram_if_faster(ranks: &[&[u32]]) -> Option<Vec<u64>> {
    let n = ranks.first().map_or(0, |r| r.len());
    let pays_off = ranks.len() >= MIN_COLUMNS && (64..=MAX_OBSERVATIONS).contains(&n);
    if !(pays_off && has_vector_popcount()) {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        Some(discordant_gram(ranks, BLOCK_BYTES))
    }
    #[cfg(not(target_arch = "x86_64"))]
    None
}

/// [`discordant_gram_if_faster`]'s count, the rows cut into blocks of about `block_bytes` of bits,
/// for a CPU with [`has_vector_popcount`] and n below 2^16.
#[cfg(target_arch = "x86_64")]
fn discordant_gram(ranks: &[&[u32]], block_bytes: usize) -> Vec<u64> {
    let m = ranks.len();
    if m == 0 {
        return Vec::new();
    }
    let n = ranks[0].len();
    assert!(
        n < u16::MAX as usize,
        "ranks must fit u16 below the padding value"
    );
    assert!(
        has_vector_popcount(),
        "the Gram count needs AVX-512 VPOPCNTDQ"
    );
    let words = n.div_ceil(64);
    // Columns padded to a multiple of TILE with copies of the last (their counts are never read),
    // ranks as u16 (two 32-lane compares per word) padded to whole words with u16::MAX, which is
    // never below a rank: padding bits stay 0.
    let slots = m.div_ceil(TILE) * TILE;
    let padded: Vec<Vec<u16>> = (0..slots)
        .map(|c| {
            let r = ranks[c.min(m - 1)];
            assert_eq!(r.len(), n, "columns of equal length");
            let mut p = vec![u16::MAX; words * 64];
            p[..n].iter_mut().zip(r).for_each(|(p, &r)| *p = r as u16);
            p
        })
        .collect();
    let blocks = row_blocks(n, words, (block_bytes / 8 / slots).max(words));
    let zero = || vec![0u64; slots * slots];
    let padded_counts = blocks
        .par_iter()
        .fold(
            || (zero(), Vec::new()),
            |(mut counts, mut bits), &(a0, a1)| {
                // SAFETY: the CPU has the features `count_block` enables (asserted above).
                unsafe { count_block(&padded, a0, a1, &mut bits, &mut counts) };
                (counts, bits)
            },
        )
        .map(|(counts, _)| counts)
        .reduce(zero, |mut acc, part| {
            acc.iter_mut().zip(&part).for_each(|(a, p)| *a += p);
            acc
        });
    let mut out = vec![0u64; m * m];
    for i in 0..m {
        for j in (i + 1)..m {
            out[i * m + j] = padded_counts[i * slots + j];
        }
    }
    out
}

/// Columns per side of the micro-kernel's tile: 4 x 4 column pairs share each loaded word.
#[cfg(target_arch = "x86_64")]
const TILE: usize = 4;

/// Splits the rows 0..n-1 of the pair triangle into consecutive blocks of about `target` words
/// each (row a holds the words from (a + 1) / 64 to the end).
#[cfg(target_arch = "x86_64")]
fn row_blocks(n: usize, words: usize, target: usize) -> Vec<(usize, usize)> {
    let mut blocks = Vec::new();
    let (mut start, mut size) = (0, 0);
    for a in 0..n.saturating_sub(1) {
        size += words - (a + 1) / 64;
        if size >= target {
            blocks.push((start, a + 1));
            (start, size) = (a + 1, 0);
        }
    }
    if start < n.saturating_sub(1) {
        blocks.push((start, n - 1));
    }
    blocks
}

/// Adds the discordant pairs (a, b), a in a0..a1, b > a, of every column pair (i, j), i < j,
/// into `counts` (slots x slots, slots = padded.len()).
///
/// # Safety
/// The CPU must have AVX-512 F, BW and VPOPCNTDQ.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vpopcntdq,avx2,popcnt")]
unsafe fn count_block(
    padded: &[Vec<u16>],
    a0: usize,
    a1: usize,
    bits: &mut Vec<u64>,
    counts: &mut [u64],
) {
    let slots = padded.len();
    let words = padded[0].len() / 64;
    let len: usize = (a0..a1).map(|a| words - (a + 1) / 64).sum();
    bits.clear();
    bits.resize(slots * len, 0);
    for (column, out) in padded.iter().zip(bits.chunks_exact_mut(len)) {
        let mut k = 0;
        for a in a0..a1 {
            let pivot = column[a];
            let first = (a + 1) / 64;
            for (w, o) in (first..words).zip(&mut out[k..]) {
                *o = below_mask(column[w * 64..(w + 1) * 64].try_into().unwrap(), pivot);
            }
            // Bits for b <= a belong to earlier rows' pairs: clear them.
            out[k] &= u64::MAX << ((a + 1) % 64);
            k += words - first;
        }
    }
    let tile = |t: usize| -> [&[u64]; TILE] {
        std::array::from_fn(|p| &bits[(t * TILE + p) * len..(t * TILE + p + 1) * len])
    };
    let tiles = slots / TILE;
    for ti in 0..tiles {
        for tj in ti..tiles {
            let got = xor_popcount_tile(tile(ti), tile(tj));
            for (p, row) in got.iter().enumerate() {
                let i = ti * TILE + p;
                for (q, &g) in row.iter().enumerate() {
                    counts[i * slots + tj * TILE + q] += g;
                }
            }
        }
    }
}

/// Bit k set where chunk[k] < pivot: two 32-lane unsigned compares into mask registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vpopcntdq,avx2,popcnt")]
#[inline]
fn below_mask(chunk: &[u16; 64], pivot: u16) -> u64 {
    use std::arch::x86_64::*;
    // SAFETY: the two unaligned loads read the 64 lanes of `chunk` (the features are this
    // function's own, so its callers must have them too).
    unsafe {
        let p = _mm512_set1_epi16(pivot as i16);
        let lo = _mm512_loadu_si512(chunk.as_ptr().cast());
        let hi = _mm512_loadu_si512(chunk.as_ptr().add(32).cast());
        _mm512_cmplt_epu16_mask(lo, p) as u64 | (_mm512_cmplt_epu16_mask(hi, p) as u64) << 32
    }
}

/// out[p][q] = sum over words w of popcount(a[p][w] XOR b[q][w]) (all slices of one length), with
/// VPOPCNTDQ on 512-bit words.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vpopcntdq,avx2,popcnt")]
#[inline]
fn xor_popcount_tile(a: [&[u64]; TILE], b: [&[u64]; TILE]) -> [[u64; TILE]; TILE] {
    use std::arch::x86_64::*;
    let n = a[0].len();
    assert!(a.iter().chain(&b).all(|s| s.len() == n));
    let full = n / 8 * 8;
    // SAFETY: every load reads 8 words at w + 8 <= full <= n of slices that all have length n.
    let mut out = unsafe {
        let mut acc = [[_mm512_setzero_si512(); TILE]; TILE];
        let mut w = 0;
        while w < full {
            let x: [__m512i; TILE] =
                std::array::from_fn(|p| _mm512_loadu_si512(a[p].as_ptr().add(w).cast()));
            let y: [__m512i; TILE] =
                std::array::from_fn(|q| _mm512_loadu_si512(b[q].as_ptr().add(w).cast()));
            for p in 0..TILE {
                for q in 0..TILE {
                    let c = _mm512_popcnt_epi64(_mm512_xor_si512(x[p], y[q]));
                    acc[p][q] = _mm512_add_epi64(acc[p][q], c);
                }
            }
            w += 8;
        }
        acc.map(|row| row.map(|v| _mm512_reduce_add_epi64(v) as u64))
    };
    for w in full..n {
        for (p, row) in out.iter_mut().enumerate() {
            for (q, o) in row.iter_mut().enumerate() {
                *o += (a[p][w] ^ b[q][w]).count_ones() as u64;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_discordant(x: &[u32], y: &[u32]) -> u64 {
        let n = x.len();
        let mut d = 0;
        for a in 0..n {
            for b in (a + 1)..n {
                d += ((x[a] > x[b]) != (y[a] > y[b])) as u64;
            }
        }
        d
    }

    fn permutation(n: usize, seed: u64) -> Vec<u32> {
        let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let mut keyed: Vec<(u64, u32)> = (0..n as u32)
            .map(|i| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 11, i)
            })
            .collect();
        keyed.sort_unstable();
        let mut ranks = vec![0u32; n];
        for (r, &(_, i)) in keyed.iter().enumerate() {
            ranks[i as usize] = r as u32;
        }
        ranks
    }

    #[test]
    fn gram_equals_naive_counts() {
        if !has_vector_popcount() {
            eprintln!(
                "skipped: this CPU has no AVX-512 VPOPCNTDQ, so the Gram count is never used"
            );
            return;
        }
        // Lengths around word boundaries; 9 columns (tiles padded with repeated columns); tiny
        // blocks force many of them, the default size gives one.
        let m = 9;
        for &n in &[2usize, 63, 64, 65, 130, 300] {
            let cols: Vec<Vec<u32>> = (0..m).map(|c| permutation(n, c as u64 + 7)).collect();
            let refs: Vec<&[u32]> = cols.iter().map(Vec::as_slice).collect();
            for block_bytes in [8, 4096, BLOCK_BYTES] {
                let got = discordant_gram(&refs, block_bytes);
                for i in 0..m {
                    for j in 0..m {
                        let want = if i < j {
                            naive_discordant(&cols[i], &cols[j])
                        } else {
                            0
                        };
                        assert_eq!(got[i * m + j], want, "n={n} ({i},{j}) {block_bytes}");
                    }
                }
            }
        }
        assert!(discordant_gram_if_faster(&[]).is_none());
    }

    #[test]
    fn row_blocks_cover_the_triangle_once() {
        for &(n, target) in &[(0usize, 4usize), (1, 4), (2, 1), (200, 7), (200, 1000)] {
            let words = n.div_ceil(64);
            let blocks = row_blocks(n, words, target);
            let rows: Vec<usize> = blocks.iter().flat_map(|&(a, b)| a..b).collect();
            assert_eq!(rows, (0..n.saturating_sub(1)).collect::<Vec<_>>());
        }
    }
}
