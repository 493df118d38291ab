//! The bitset count of discordant pairs (up to [`BITSET_MAX`] observations), and the helpers that
//! prepare its input from two ranked variables.

use super::ranking::Ranked;
use super::tied_pairs_sorting;

/// Up to this many observations the discordant pairs are counted with a bitset (O(n^2 / 2^12)
/// vector adds, no data-dependent branch) instead of a merge sort (O(n log n) with a larger
/// constant); the bitset's u16 counters also cap it there.
pub const BITSET_MAX: usize = 1 << 15;

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
pub(crate) fn discordant_bitset(ordinals: &[u32], run_bounds: Option<&[u32]>) -> u64 {
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
pub(super) fn ordinals_in_visit_order(seq: &mut [u32], y: &Ranked, next: &mut Vec<u32>) {
    next.clear();
    next.extend_from_slice(&y.group_start[..y.group_start.len().saturating_sub(1)]);
    for r in seq.iter_mut() {
        let slot = &mut next[*r as usize];
        *r = *slot;
        *slot += 1;
    }
}

/// Pairs tied in both variables inside runs of tied x (`run_bounds` as in [`discordant_bitset`]):
/// sorts each run's y ranks in place.
pub(super) fn joint_ties_in_runs(seq: &mut [u32], run_bounds: &[u32]) -> u64 {
    run_bounds
        .windows(2)
        .map(|b| tied_pairs_sorting(&mut seq[b[0] as usize..b[1] as usize]))
        .sum()
}
