//! The multi-indices of the multinomial expansion: the rank C(d + g, g) and the table that
//! enumerates them with their multinomial coefficients.

use super::MAX_DEGREE;
use crate::error::{Error, Result, format_bytes};

/// Number of multi-indices alpha in N^d with |alpha| <= g: C(d + g, g). None when it does not
/// fit in usize.
pub(crate) fn rank(d: usize, degree: usize) -> Option<usize> {
    // In u128 and checked: d itself may be near usize::MAX (d + m must not wrap to a small rank).
    let mut r: u128 = 1;
    for m in 1..=degree {
        r = r.checked_mul(d as u128 + m as u128)? / m as u128;
        if r > usize::MAX as u128 {
            return None;
        }
    }
    Some(r as usize)
}

/// C(d + g, g) in floating point, for messages when it overflows usize.
pub(super) fn rank_f64(d: usize, degree: usize) -> f64 {
    (1..=degree).fold(1.0, |r, m| r * (d as f64 + m as f64) / m as f64)
}

/// The multi-indices alpha in N^d with |alpha| <= g in graded order, each built from a parent
/// (alpha minus one unit vector) so that x^alpha costs one multiplication.
#[derive(Debug, Clone, PartialEq)]
pub struct MonomialTable {
    /// Width d.
    pub(crate) d: usize,
    /// Entry of alpha - e_l (0 for alpha = 0).
    pub parent: Vec<u32>,
    /// The l of alpha - e_l.
    pub variable: Vec<u32>,
    /// |alpha|! / alpha!.
    pub multinomial: Vec<f64>,
    /// Entries of degree m are `level_start[m]..level_start[m + 1]`.
    pub level_start: Vec<usize>,
}

impl MonomialTable {
    /// Every multi-index of degree at most `degree`: each alpha + e_l with l at or after the
    /// last nonzero coordinate of alpha, so that each multi-index appears once.
    pub(crate) fn new(d: usize, degree: usize) -> Self {
        let mut t = MonomialTable {
            d,
            parent: vec![0],
            variable: vec![0],
            multinomial: vec![1.0],
            level_start: vec![0, 1],
        };
        // Last nonzero coordinate of each entry and its exponent.
        let mut last: Vec<(usize, u32)> = vec![(0, 0)];
        for m in 1..=degree {
            for entry in t.level_start[m - 1]..t.level_start[m] {
                let (last_var, last_exp) = last[entry];
                for l in last_var..d {
                    let exponent = if l == last_var { last_exp + 1 } else { 1 };
                    t.parent.push(entry as u32);
                    t.variable.push(l as u32);
                    t.multinomial
                        .push(t.multinomial[entry] * m as f64 / exponent as f64);
                    last.push((l, exponent));
                }
            }
            t.level_start.push(t.parent.len());
        }
        t
    }

    /// The number of multi-indices r.
    pub(crate) fn rank(&self) -> usize {
        self.parent.len()
    }

    /// out[alpha] = x^alpha.
    pub(crate) fn monomials(&self, x: &[f64], out: &mut [f64]) {
        out[0] = 1.0;
        for a in 1..self.rank() {
            out[a] = out[self.parent[a] as usize] * x[self.variable[a] as usize];
        }
    }

    /// w_alpha = a_|alpha| |alpha|! / alpha!.
    pub(super) fn weights(&self, coefficients: &[f64]) -> Vec<f64> {
        let mut w = self.multinomial.clone();
        for (m, levels) in self.level_start.windows(2).enumerate() {
            for x in &mut w[levels[0]..levels[1]] {
                *x *= coefficients[m];
            }
        }
        w
    }
}

/// Largest monomial table [`monomial_table`] builds, in entries (24 bytes each).
const MAX_TABLE_ENTRIES: usize = 1 << 26;

/// The [`MonomialTable`] of width `d` and degree `degree`, refusing one too large to hold.
pub fn monomial_table(d: usize, degree: usize) -> Result<MonomialTable> {
    if d == 0 {
        return Err(Error::invalid("d", "expected d >= 1, got 0"));
    }
    if degree > MAX_DEGREE {
        return Err(Error::invalid(
            "degree",
            format!("expected an integer from 0 to {MAX_DEGREE}, got {degree}"),
        ));
    }
    match rank(d, degree) {
        Some(r) if r <= MAX_TABLE_ENTRIES => Ok(MonomialTable::new(d, degree)),
        _ => Err(Error::TooLarge {
            what: format!(
                "the monomial table of d = {d} and degree {degree} (rank {:.4e})",
                rank_f64(d, degree)
            ),
            needed: format_bytes(24.0 * rank_f64(d, degree)),
            advice: format!("at most {MAX_TABLE_ENTRIES} entries are built; lower the degree"),
        }),
    }
}
