//! The polynomial method (Alman and Song, ICLR 2024), made concrete.
//!
//! exp(t) on [-T, T] is replaced by p(t) = sum_m a_m t^m (Taylor, or a Chebyshev interpolant
//! converted to monomials). With x_l = s q_l k1_l k2_l, the multinomial expansion of
//! p(sum_l x_l) over multi-indices alpha (|alpha| <= g) factorizes the n x n^2 weight matrix:
//!
//! p(s <q_i, k1_j, k2_k>) = sum_alpha w_alpha (s q_i)^alpha k1_j^alpha k2_k^alpha,
//! w_alpha = a_|alpha| |alpha|! / alpha!,
//!
//! with rank r = C(d + g, g). Appending a column of ones to V1 and V2 (its output column is the
//! softmax denominator z_i), the output for query i is
//!
//! O_i = [sum_alpha w_alpha (s q_i)^alpha A_i[alpha] * B_i[alpha]] / z_i,
//! A_i = sum_{j seen by i} k1_j^alpha (v1_j, 1), B_i = sum_{k seen by i} k2_k^alpha (v2_k, 1),
//!
//! O(n r dv) time and no n^2 object. Without a mask A and B are the same for every query; with a
//! causal or windowed mask they are running sums. Long running sums with subtractions lose
//! accuracy, so the states are rebuilt at the start of every block of queries from per-block
//! totals (additions only) and slide only inside a block.
//!
//! The error is governed by the logit range T, not by d: if p(t) / e^t - 1 lies in [lo, hi] on
//! [-T, T] with lo > -1, then every output entry is within (hi - lo) / (1 + lo) times
//! max_{j,k} |v1_j v2_k| of the exact one (the weights' relative errors cancel in the normalized
//! sum up to their spread). [`poly_plan`] picks the degree from a tolerance with that bound,
//! and refuses tolerances it cannot reach.
//!
//! By job: `approximation` (the polynomial and its error), `monomials` (the expansion's
//! multi-indices), `planner` (degree, rank and refusals), `kernel` (the blocked computation).

mod approximation;
mod kernel;
mod monomials;
mod planner;

pub use approximation::{Basis, ExpPolynomial};
pub use kernel::tensor_attention_poly;
pub use monomials::{MonomialTable, monomial_table};
pub use planner::{PolyPlan, PolyRequest, poly_plan};

/// Highest degree considered: beyond it the monomial form of a Chebyshev interpolant loses more
/// to rounding than the degree gains, and ranks are out of reach for any useful d.
pub(crate) const MAX_DEGREE: usize = 32;

#[cfg(test)]
mod tests {
    use super::super::exact::tests::{CAUSAL, NO_MASK, Sample, max_abs_diff, naive_tensor};
    use super::monomials::rank;
    use super::*;
    use crate::attention::{Dims, Mask};

    #[test]
    fn table_enumerates_each_multi_index_once_with_its_multinomial() {
        let table = MonomialTable::new(3, 4);
        assert_eq!(table.rank(), rank(3, 4).unwrap());
        assert_eq!(table.rank(), 35);
        // sum over |alpha| = m of multinomial * x^alpha = (x1 + x2 + x3)^m.
        let x = [0.3, -1.2, 2.0];
        let mut mono = vec![0.0; table.rank()];
        table.monomials(&x, &mut mono);
        for m in 0..=4 {
            let s: f64 = (table.level_start[m]..table.level_start[m + 1])
                .map(|a| table.multinomial[a] * mono[a])
                .sum();
            assert!((s - (x.iter().sum::<f64>()).powi(m as i32)).abs() < 1e-12);
        }
        assert_eq!(rank(64, 10), Some(718_406_958_841));
        assert_eq!(rank(1000, 32), None);
        // d near usize::MAX: d + m must not wrap around to a small rank.
        assert_eq!(rank(usize::MAX, 6), None);
        assert_eq!(rank(usize::MAX - 1, 1), Some(usize::MAX));
    }

    #[test]
    fn fits_order_as_documented_and_converge() {
        let bound = |basis, g, t| ExpPolynomial::fit(basis, g, t).error_bound(1.1e-16);
        for g in [4, 6, 8, 10] {
            let (taylor, cheb, minimax) = (
                bound(Basis::Taylor, g, 1.0),
                bound(Basis::Chebyshev, g, 1.0),
                bound(Basis::Minimax, g, 1.0),
            );
            assert!(
                minimax < cheb && cheb < taylor / 9.0,
                "g={g}: {taylor} {cheb} {minimax}"
            );
        }
        // At T = 3 the interpolant dips below zero near -T up to degree 4; the relative fit stays
        // positive and falls with the degree.
        assert!(bound(Basis::Chebyshev, 4, 3.0).is_infinite());
        let mut previous = f64::INFINITY;
        for g in [2, 4, 6, 8, 10, 12] {
            let minimax = bound(Basis::Minimax, g, 3.0);
            assert!(minimax < previous && minimax < bound(Basis::Taylor, g, 3.0));
            previous = minimax;
        }
        assert!(previous < 1e-6, "{previous}");
        // Degree 0 is the constant 1: weights e^t off by a factor in [e^-T, e^T].
        let p = ExpPolynomial::fit(Basis::Chebyshev, 0, 1.0);
        assert_eq!(p.coefficients, vec![1.0]);
        assert!((p.error_bound(1e-16) - ((2.0f64).exp() - 1.0)).abs() < 1e-6);
    }

    fn request(t: f64, degree: Option<usize>, tol: Option<f64>) -> PolyRequest {
        PolyRequest {
            logit_range: t,
            d: 4,
            degree,
            tol,
            basis: Basis::Chebyshev,
            unit_roundoff: f64::EPSILON / 2.0,
            bytes_per_rank: 100.0,
            memory_limit: 1e9,
        }
    }

    #[test]
    fn planner_picks_the_smallest_degree_and_refuses_what_it_cannot_reach() {
        let plan = poly_plan(&request(1.0, None, Some(1e-4))).unwrap();
        let below = ExpPolynomial::fit(Basis::Chebyshev, plan.degree - 1, 1.0);
        assert!(plan.error_bound <= 1e-4 && below.error_bound(f64::EPSILON / 2.0) > 1e-4);
        assert_eq!(plan.rank, rank(4, plan.degree).unwrap());
        let e = poly_plan(&request(8.0, None, Some(1e-14))).unwrap_err();
        assert!(e.to_string().contains("out of reach"), "{e}");
        // The interpolant is not positive at T = 8 below degree 16: the search must go past that.
        let plan = poly_plan(&request(8.0, None, Some(1e-2))).unwrap();
        assert!(plan.degree >= 16 && plan.error_bound <= 1e-2);
        let mut single = request(12.0, None, Some(1e-2));
        single.unit_roundoff = f64::from(f32::EPSILON) / 2.0;
        let e = poly_plan(&single).unwrap_err().to_string();
        assert!(e.contains("no degree up to 32"), "{e}");
        let e = poly_plan(&request(8.0, Some(1), None)).unwrap_err();
        assert!(e.to_string().contains("not positive"), "{e}");
        let e = poly_plan(&request(1.0, Some(2), Some(1e-6))).unwrap_err();
        assert!(e.to_string().contains("above tol"), "{e}");
        let mut big = request(1.0, Some(12), None);
        big.d = 64;
        let e = poly_plan(&big).unwrap_err().to_string();
        assert!(e.contains("would need") && e.contains("TiB"), "{e}");
        assert!(poly_plan(&request(1.0, None, None)).is_err());
        assert!(poly_plan(&request(f64::NAN, Some(2), None)).is_err());
    }

    #[test]
    fn polynomial_attention_is_within_its_bound_with_every_mask() {
        let data = Sample::new(
            Dims {
                batch: 2,
                n: 37,
                d: 3,
                dv: 2,
            },
            4,
            0.8,
        );
        let x = data.inputs();
        for mask in [NO_MASK, CAUSAL, Mask::parse("window", 5, 17).unwrap()] {
            let want = naive_tensor(&x, 0.9, mask);
            let mut previous = f64::INFINITY;
            for g in [0, 2, 4, 8] {
                let (got, plan) =
                    tensor_attention_poly(&x, 0.9, mask, Some(g), None, Basis::Chebyshev, 1e12)
                        .unwrap();
                let err = max_abs_diff(&got, &want);
                assert!(
                    err <= plan.error_bound,
                    "{mask:?} g={g}: {err} > {}",
                    plan.error_bound
                );
                assert!(err < previous);
                previous = err;
            }
            assert!(previous < 1e-7, "{mask:?}: {previous}");
        }
    }
}
