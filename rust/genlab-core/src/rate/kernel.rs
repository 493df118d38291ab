//! The per-group kernel, 1/2 logdet(I + a X^T X) by Cholesky of the smaller Gram matrix, and the
//! loop that runs it over many groups.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{
    LltParams, cholesky_in_place, cholesky_in_place_scratch,
};
use faer::linalg::matmul::triangular::{BlockStructure, matmul};
use faer::prelude::{Reborrow, ReborrowMut, default};
use faer::{Accum, MatMut, MatRef, Par, Spec};
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Retries with a diagonal jitter before giving up (see `half_logdet_shifted_gram`).
pub const JITTER_TRIES: u32 = 8;

/// The diagonal jitter of retry `t` (0-based, `t < JITTER_TRIES`) per unit of the largest
/// diagonal entry of `I + a G`: `side * machine_epsilon * 10^t`. The one home of the schedule; the
/// torch layer reads it through the bindings (`genlab._core.rate.jitter_scale`).
pub fn jitter_scale(side: usize, machine_epsilon: f64, t: u32) -> f64 {
    side as f64 * machine_epsilon * 10f64.powi(t as i32)
}

/// Below this many floating-point operations in total, groups run serially (rayon's overhead
/// would dominate).
const PARALLEL_MIN_FLOPS: f64 = 2e6;

/// Up to this side, the Cholesky factorization uses [`small_llt_params`].
const SMALL_SIDE: usize = 128;

/// faer's Cholesky parameters for small matrices: its defaults (recursion below 64, blocks of
/// 128) suit large ones; for the 64 x 64 factorizations of CRATE's heads, recursion below 16 with
/// blocks of 32 measured about 25% faster.
fn small_llt_params() -> Spec<LltParams, f64> {
    let mut params: Spec<LltParams, f64> = default();
    params.recursion_threshold = 16;
    params.block_size = 32;
    params
}

/// Per-thread scratch memory, reused across the groups one thread handles.
#[derive(Default)]
pub(crate) struct Workspace {
    /// The group's tokens as f64 (N x m, row-major), normalized when asked.
    pub(crate) tokens: Vec<f64>,
    /// Z_b as f64 before its projection on U_k.
    pub(crate) source: Vec<f64>,
    /// Memory of the factorization.
    pub(crate) factor: FactorScratch,
}

/// Memory of [`half_logdet_shifted_gram`].
#[derive(Default)]
pub(crate) struct FactorScratch {
    /// I + a G, column-major (side x side); overwritten by its Cholesky factor.
    shifted_gram: Vec<f64>,
    /// Scratch of faer's Cholesky, with the side it was sized for.
    stack: Option<(usize, MemBuffer)>,
}

/// What [`half_logdet_shifted_gram`] returns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HalfLogdet {
    /// 1/2 logdet(I + a G).
    pub(crate) value: f64,
    /// Whether the factorization needed a diagonal jitter.
    pub(crate) jittered: bool,
}

/// Scales every row of the row-major `tokens` (rows of length `dim`) to unit l2 norm; zero rows
/// stay zero.
pub(crate) fn normalize_rows(tokens: &mut [f64], dim: usize) {
    for row in tokens.chunks_exact_mut(dim) {
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|v| *v /= norm);
        }
    }
}

/// Fills the lower triangle of `m` with I + a G, G the smaller Gram matrix of `x` (X^T X when X
/// has at least as many rows as columns, else X X^T), and returns the largest diagonal entry.
/// The strict upper triangle is left as it was: the Cholesky factorization reads the lower one.
fn fill_shifted_gram(mut m: MatMut<'_, f64>, x: MatRef<'_, f64>, a: f64) -> f64 {
    let (lhs, rhs) = if x.ncols() <= x.nrows() {
        (x.transpose(), x)
    } else {
        (x, x.transpose())
    };
    matmul(
        m.rb_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        lhs,
        BlockStructure::Rectangular,
        rhs,
        BlockStructure::Rectangular,
        a,
        Par::Seq,
    );
    let mut max_diag: f64 = 0.0;
    for v in m.rb_mut().diagonal_mut().column_vector_mut().iter_mut() {
        *v += 1.0;
        if *v > max_diag || v.is_nan() {
            max_diag = *v;
        }
    }
    max_diag
}

/// 1/2 logdet(I + a X^T X) = 1/2 logdet(I + a X X^T) (Sylvester) for X of shape (n, m), from the
/// Cholesky factor of the smaller side: sum of log L_ii.
///
/// I + a G is positive definite in exact arithmetic (every eigenvalue is at least 1). If rounding
/// breaks that (a G with entries near 1/machine-epsilon, a nearly low-rank X), the matrix is
/// rebuilt and delta I added, delta = side * machine-epsilon * max_i M_ii * 10^t for
/// t = 0..JITTER_TRIES; the result says that it happened. A Gram matrix that overflows float64 is
/// an error, as is a matrix that jitter cannot repair.
pub(crate) fn half_logdet_shifted_gram(
    name: &str,
    x: MatRef<'_, f64>,
    a: f64,
    ws: &mut FactorScratch,
) -> Result<HalfLogdet> {
    let side = x.nrows().min(x.ncols());
    ws.shifted_gram.resize(side * side, 0.0);
    let params = if side <= SMALL_SIDE {
        small_llt_params()
    } else {
        default()
    };
    let needed = cholesky_in_place_scratch::<f64>(side, Par::Seq, params);
    if ws.stack.as_ref().is_some_and(|(s, _)| *s != side) {
        ws.stack = None;
    }
    let (_, buffer) = ws
        .stack
        .get_or_insert_with(|| (side, MemBuffer::new(needed)));
    let mut jitter = 0.0;
    for attempt in 0..=JITTER_TRIES {
        let mut m = MatMut::from_column_major_slice_mut(&mut ws.shifted_gram, side, side);
        let max_diag = fill_shifted_gram(m.rb_mut(), x, a);
        if !max_diag.is_finite() {
            return Err(Error::invalid(
                name,
                format!(
                    "the Gram matrix of a group overflows float64 (largest diagonal entry of \
                     I + a G is {max_diag:e} with a = {a:e}); rescale the tokens or use a larger \
                     eps"
                ),
            ));
        }
        if attempt > 0 {
            jitter = jitter_scale(side, f64::EPSILON, attempt - 1) * max_diag;
            m.rb_mut()
                .diagonal_mut()
                .column_vector_mut()
                .iter_mut()
                .for_each(|v| *v += jitter);
        }
        let factored = cholesky_in_place(
            m.rb_mut(),
            default(),
            Par::Seq,
            MemStack::new(buffer),
            params,
        );
        if factored.is_ok() {
            let value = m
                .rb()
                .diagonal()
                .column_vector()
                .iter()
                .map(|v| v.ln())
                .sum::<f64>();
            return Ok(HalfLogdet {
                value,
                jittered: attempt > 0,
            });
        }
    }
    Err(Error::NotPositiveDefinite {
        what: format!("I + a G of a {side} x {side} Gram matrix (a = {a:e})"),
        detail: format!(
            "Cholesky failed even with a diagonal jitter of {jitter:e}; rescale the tokens or \
             use a larger eps"
        ),
    })
}

/// Runs `f(workspace, g)` for every group g in `0..count`, in parallel when the total work
/// (`flops_per_group` each) is large enough, with one workspace per thread. Results are in group
/// order, so reductions over them do not depend on the number of threads.
pub(crate) fn map_groups<R, F>(count: usize, flops_per_group: f64, f: F) -> Vec<R>
where
    R: Send,
    F: Fn(&mut Workspace, usize) -> R + Sync,
{
    if count < 2 || count as f64 * flops_per_group < PARALLEL_MIN_FLOPS {
        let mut ws = Workspace::default();
        return (0..count).map(|g| f(&mut ws, g)).collect();
    }
    (0..count)
        .into_par_iter()
        .map_init(Workspace::default, |ws, g| f(ws, g))
        .collect()
}

/// Floating-point operations of one group: the Gram product and the Cholesky factorization.
pub(crate) fn logdet_flops(tokens: usize, dim: usize) -> f64 {
    let side = tokens.min(dim) as f64;
    let other = tokens.max(dim) as f64;
    side * side * other + side * side * side / 3.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate::tests::{naive_half_logdet, pseudo_random};

    #[test]
    fn both_gram_sides_match_the_reference() {
        let mut ws = FactorScratch::default();
        for &(n, m) in &[(7, 3), (3, 7), (5, 5), (1, 4), (4, 1), (65, 64)] {
            let x = pseudo_random(n * m, (n * 31 + m) as u64);
            let xr = MatRef::from_row_major_slice(&x, n, m);
            let got = half_logdet_shifted_gram("X", xr, 2.5, &mut ws).unwrap();
            assert!(!got.jittered);
            for token_side in [true, false] {
                let want = naive_half_logdet(&x, n, m, 2.5, token_side);
                assert!(
                    (got.value - want).abs() < 1e-12 * want.abs().max(1.0),
                    "{n}x{m}: {} vs {want}",
                    got.value
                );
            }
        }
    }

    #[test]
    fn stale_scratch_is_never_read() {
        let (n, m) = (9, 6);
        let x = pseudo_random(n * m, 11);
        let xr = MatRef::from_row_major_slice(&x, n, m);
        let mut ws = FactorScratch {
            shifted_gram: vec![f64::NAN; m * m],
            stack: None,
        };
        let got = half_logdet_shifted_gram("X", xr, 1.5, &mut ws).unwrap();
        let want = naive_half_logdet(&x, n, m, 1.5, false);
        assert!((got.value - want).abs() < 1e-12, "{} vs {want}", got.value);
    }

    #[test]
    fn zero_tokens_give_zero_and_normalization_makes_unit_rows() {
        let mut ws = FactorScratch::default();
        let x = [0.0; 12];
        let r =
            half_logdet_shifted_gram("X", MatRef::from_row_major_slice(&x, 4, 3), 10.0, &mut ws);
        assert_eq!(r.unwrap().value, 0.0);
        let mut t = vec![3.0, 4.0, 0.0, 0.0];
        normalize_rows(&mut t, 2);
        assert_eq!(t, vec![0.6, 0.8, 0.0, 0.0]);
    }

    #[test]
    fn rounding_failures_are_jittered_not_nan() {
        // Rank one with a ~ 1e30: the pivots after the first cancel catastrophically.
        let n = 6;
        let m = 4;
        let u = pseudo_random(n, 3);
        let v = pseudo_random(m, 4);
        let x: Vec<f64> = (0..n * m).map(|i| u[i / m] * v[i % m]).collect();
        let mut ws = FactorScratch::default();
        let mut jittered = 0;
        for &a in &[1e28, 1e29, 1e30, 1e31, 1e32] {
            let r =
                half_logdet_shifted_gram("X", MatRef::from_row_major_slice(&x, n, m), a, &mut ws)
                    .unwrap();
            assert!(r.value.is_finite());
            // float64 cannot hold I + a G here (the identity is lost in rounding); the jittered
            // value keeps the one large eigenvalue, 1 + a |u|^2 |v|^2, and raises the others.
            let norm2: f64 = x.iter().map(|t| t * t).sum();
            let large = 0.5 * (1.0 + a * norm2).ln();
            assert!(r.value > large - 1e-6, "{} vs {large}", r.value);
            jittered += usize::from(r.jittered);
        }
        assert!(jittered > 0, "the test matrices never needed jitter");
    }

    #[test]
    fn overflow_is_an_error() {
        let x = [1e200, 1.0, 1.0, 1.0];
        let mut ws = FactorScratch::default();
        let e = half_logdet_shifted_gram("X", MatRef::from_row_major_slice(&x, 2, 2), 1.0, &mut ws)
            .unwrap_err();
        assert!(e.to_string().contains("overflows"), "{e}");
    }

    #[test]
    fn map_groups_keeps_order_serial_and_parallel() {
        for flops in [1.0, 1e9] {
            let out = map_groups(100, flops, |_, g| g * 2);
            assert_eq!(out, (0..100).map(|g| g * 2).collect::<Vec<_>>());
        }
    }
}
