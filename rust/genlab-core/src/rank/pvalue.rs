//! p-values of Kendall's tau under the null of independence, with scipy's semantics: the exact null
//! distribution of the number of discordant pairs (no ties) and the normal approximation with the
//! tie-corrected variance.

use super::Alternative;
use super::counts::PairCounts;
use crate::error::{Error, Result};
use crate::special::ndtr;

/// Largest n * c the exact recursion may cost (about a minute of work); beyond it the normal
/// approximation is exact to many digits anyway.
const EXACT_WORK_MAX: f64 = 2e10;

/// Exact p-value from the null distribution of the concordant count `c` among n observations
/// without ties (Kendall 1970). Mirrors scipy's `_kendall_p_exact` step for step, so the values
/// agree to rounding.
pub(crate) fn exact(n: u64, concordant: u64, alternative: Alternative) -> Result<f64> {
    if n == 0 {
        return Err(Error::invalid(
            "n",
            "the exact p-value needs at least one observation",
        ));
    }
    let total = n * (n - 1) / 2;
    let in_right_tail = concordant >= total - concordant;
    let c = concordant.min(total - concordant);
    let nf = n as f64;
    let mut mass_at_c = f64::NAN;
    let mut prob = if n == 1 {
        mass_at_c = 1.0;
        1.0
    } else if n == 2 {
        mass_at_c = 0.5;
        1.0
    } else if c == 0 {
        let p = if n < 171 { 2.0 / factorial(n) } else { 0.0 };
        mass_at_c = p / 2.0;
        p
    } else if c == 1 {
        mass_at_c = if n < 171 {
            (nf - 1.0) / factorial(n)
        } else {
            0.0
        };
        if n < 172 { 2.0 / factorial(n - 1) } else { 0.0 }
    } else if 4 * c == n * (n - 1) && alternative == Alternative::TwoSided {
        1.0
    } else {
        if (c as f64) * nf > EXACT_WORK_MAX {
            return Err(Error::TooLarge {
                what: format!("the exact p-value for n = {n}"),
                needed: format!("about {:.1e} operations", (c as f64) * nf),
                advice:
                    "use method=\"asymptotic\" (the normal approximation is accurate at this size)"
                        .into(),
            });
        }
        // Counts of permutations by number of inversions, truncated at c (scaled by 1/j! for
        // large n to stay finite).
        let c = c as usize;
        let mut counts = vec![0.0f64; c + 1];
        counts[0] = 1.0;
        if c >= 1 {
            counts[1] = 1.0;
        }
        let scale = n >= 171;
        for j in 3..=(n as usize) {
            let mut acc = 0.0;
            for v in counts.iter_mut() {
                acc += *v;
                *v = acc;
            }
            if scale {
                let jf = j as f64;
                counts.iter_mut().for_each(|v| *v /= jf);
            }
            if j <= c {
                for k in (j..=c).rev() {
                    counts[k] -= counts[k - j];
                }
            }
        }
        let sum = pairwise_sum(&counts);
        if scale {
            mass_at_c = counts[c] / 2.0;
            sum
        } else {
            let f = factorial(n);
            mass_at_c = counts[c] / f;
            2.0 * sum / f
        }
    };
    if alternative != Alternative::TwoSided {
        if in_right_tail == (alternative == Alternative::Greater) {
            prob /= 2.0;
        } else {
            prob = 1.0 - prob / 2.0 + mass_at_c;
        }
    }
    Ok(prob.clamp(0.0, 1.0))
}

/// Normal-approximation p-value of C - D with the tie-corrected variance
/// var = (v0 - vt - vu)/18 + v1 + v2 (scipy's formula).
pub(crate) fn asymptotic(c: &PairCounts, alternative: Alternative) -> f64 {
    let n = c.n as f64;
    let m = n * (n - 1.0);
    let v1 = (2 * c.x_ties as u128 * c.y_ties as u128) as f64 / m;
    let t3 = c.x_tie_t3 * c.y_tie_t3;
    // For n = 2 both t3 sums are 0 and the term is 0/0; its limit is 0.
    let v2 = if t3 == 0.0 {
        0.0
    } else {
        t3 / (9.0 * m * (n - 2.0))
    };
    let var = (m * (2.0 * n + 5.0) - c.x_tie_t5 - c.y_tie_t5) / 18.0 + v1 + v2;
    let z = c.concordant_minus_discordant() as f64 / var.sqrt();
    normal_pvalue(z, alternative)
}

/// p-value of a standard-normal statistic.
pub(crate) fn normal_pvalue(z: f64, alternative: Alternative) -> f64 {
    match alternative {
        Alternative::Less => ndtr(z),
        Alternative::Greater => ndtr(-z),
        Alternative::TwoSided => 2.0 * ndtr(-z.abs()),
    }
}

/// n! as the correctly rounded f64 would be approached by repeated multiplication (n <= 170).
fn factorial(n: u64) -> f64 {
    (2..=n).fold(1.0, |acc, k| acc * k as f64)
}

/// numpy's pairwise summation (blocks of 8 accumulators up to 128 values, halving above), so that
/// sums agree with numpy's to the last bit.
pub(crate) fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |s, &v| s + v)
    } else if n <= 128 {
        let mut r = [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]];
        let full = n - n % 8;
        let mut i = 8;
        while i < full {
            for (k, rk) in r.iter_mut().enumerate() {
                *rk += a[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[full..] {
            res += v;
        }
        res
    } else {
        let mut half = n / 2;
        half -= half % 8;
        pairwise_sum(&a[..half]) + pairwise_sum(&a[half..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_small_cases_by_enumeration() {
        // Enumerate all permutations of n = 6 and compare the two-sided p-value with the count of
        // permutations at least as extreme.
        let n = 6u64;
        let mut perm: Vec<usize> = (0..n as usize).collect();
        let mut dist = [0u64; 16];
        heap_permutations(&mut perm, n as usize, &mut |p| {
            let mut inv = 0;
            for i in 0..p.len() {
                for j in i + 1..p.len() {
                    inv += (p[i] > p[j]) as usize;
                }
            }
            dist[inv] += 1;
        });
        let total: u64 = dist.iter().sum();
        for c in 0..=15u64 {
            let lo = c.min(15 - c) as usize;
            let tail: u64 = dist[..=lo].iter().sum();
            let expected = (2.0 * tail as f64 / total as f64).min(1.0);
            let got = exact(n, c, Alternative::TwoSided).unwrap();
            assert!((got - expected).abs() < 1e-14, "c={c}: {got} vs {expected}");
            // One-sided: P(C >= c) for "greater".
            let upper: u64 = dist[..=(15 - c as usize)].iter().sum();
            let greater = exact(n, c, Alternative::Greater).unwrap();
            assert!(
                (greater - upper as f64 / total as f64).abs() < 1e-14,
                "c={c}"
            );
        }
    }

    fn heap_permutations(a: &mut Vec<usize>, k: usize, f: &mut dyn FnMut(&[usize])) {
        if k == 1 {
            f(a);
            return;
        }
        for i in 0..k {
            heap_permutations(a, k - 1, f);
            if k.is_multiple_of(2) {
                a.swap(i, k - 1)
            } else {
                a.swap(0, k - 1)
            }
        }
    }

    #[test]
    fn exact_refuses_unreasonable_work() {
        assert!(matches!(
            exact(1_000_000, 100_000_000_000, Alternative::TwoSided),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn pairwise_sum_matches_plain_sum_closely() {
        let v: Vec<f64> = (0..1000).map(|i| (i as f64).sqrt()).collect();
        let plain: f64 = v.iter().sum();
        assert!((pairwise_sum(&v) - plain).abs() < 1e-9);
    }
}
