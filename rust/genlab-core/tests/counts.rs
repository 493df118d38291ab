//! Properties of the Kendall pair counts: every fast path equals an independent count.
//!
//! - small and medium inputs (the all-pairs path up to `NAIVE_MAX`, the bitset path up to
//!   `BITSET_MAX`) against the O(n^2) count over every pair;
//! - large inputs (the radix path above `BITSET_MAX`) against the merge-sort count of
//!   `pair_counts_ranked`, a different algorithm on the same ranks;
//! - counts over pairs of different groups against the pairwise definition.
//!
//! Values come from a small set so that ties in x, in y and in both are common, with signed zeros
//! and infinities among them (NaN never reaches the counts: callers apply the NaN policy first).

use genlab_core::rank::across::pair_counts_across;
use genlab_core::rank::counts::{
    BITSET_MAX, NAIVE_MAX, Ranked, Scratch, pair_counts, pair_counts_naive, pair_counts_ranked,
};
use genlab_core::rank::{Variant, statistic};
use proptest::prelude::*;

const LEVELS: [f64; 9] = [
    f64::NEG_INFINITY,
    -2.5,
    -1.0,
    -0.0,
    0.0,
    0.5,
    1.0,
    7.0,
    f64::INFINITY,
];

/// Pairs (x, y) drawn from `levels` values each (fewer levels, more ties).
fn pairs(
    len: std::ops::Range<usize>,
    levels: usize,
) -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
    len.prop_flat_map(move |n| {
        let value = (0..levels).prop_map(|i| LEVELS[i % LEVELS.len()] + (i / LEVELS.len()) as f64);
        (
            prop::collection::vec(value.clone(), n),
            prop::collection::vec(value, n),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn small_and_bitset_paths_equal_the_all_pairs_count(
        (x, y) in pairs(0..(4 * NAIVE_MAX), 9),
    ) {
        prop_assert_eq!(pair_counts(&x, &y), pair_counts_naive(&x, &y));
    }

    #[test]
    fn bitset_path_with_many_distinct_values(
        (x, y) in pairs(NAIVE_MAX..1200, 400),
    ) {
        prop_assert_eq!(pair_counts(&x, &y), pair_counts_naive(&x, &y));
    }

    #[test]
    fn tau_b_is_bounded_and_symmetric((x, y) in pairs(2..300, 6)) {
        let xy = statistic(&pair_counts(&x, &y), Variant::B);
        let yx = statistic(&pair_counts(&y, &x), Variant::B);
        prop_assert!(xy.is_nan() || (-1.0..=1.0).contains(&xy));
        prop_assert!(xy == yx || (xy.is_nan() && yx.is_nan()));
    }

    #[test]
    fn counts_across_groups_equal_the_pairwise_definition(
        (x, y) in pairs(0..80, 6),
        seed in 0u64..1000,
    ) {
        let groups: Vec<usize> = (0..x.len())
            .map(|i| ((i as u64 * 7 + seed) % 5) as usize)
            .collect();
        let got = pair_counts_across(&x, &y, &groups);
        let (mut pairs, mut cmd, mut tx, mut ty) = (0u64, 0i128, 0u64, 0u64);
        for i in 0..x.len() {
            for j in i + 1..x.len() {
                if groups[i] == groups[j] {
                    continue;
                }
                let c = pair_counts_naive(&[x[i], x[j]], &[y[i], y[j]]);
                pairs += 1;
                cmd += c.concordant_minus_discordant();
                tx += c.x_ties;
                ty += c.y_ties;
            }
        }
        prop_assert_eq!(
            (got.pairs, got.concordant_minus_discordant, got.x_ties, got.y_ties),
            (pairs, cmd, tx, ty)
        );
    }
}

proptest! {
    // Each case counts ~35,000 pairs of observations twice; a handful of cases covers the radix
    // path's levels without slowing the suite.
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn radix_path_equals_the_merge_count(
        (x, y) in pairs((BITSET_MAX + 1)..(BITSET_MAX + 2500), 5000),
    ) {
        let merge = pair_counts_ranked(&Ranked::new(&x), &Ranked::new(&y), &mut Scratch::default());
        prop_assert_eq!(pair_counts(&x, &y), merge);
    }
}
