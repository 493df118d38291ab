//! Vectorized row primitives of the streaming log-sum-exp: the few passes over a row of squared
//! distances (or energies) that the kernel runs, each compiled per instruction set by
//! [`multiversion!`] (callers pass [`Isa::detect`](crate::simd::Isa::detect)).

use crate::simd::{Fused, MulAdd, Unfused, exp_nonpositive, multiversion};

/// Lanes per accumulator array: two AVX-512 vectors, so that two independent dependency chains
/// are in flight.
const LANES: usize = 16;

#[inline(always)]
fn min2(a: f64, b: f64) -> f64 {
    if b < a { b } else { a }
}

/// Smallest value of `xs` (+inf when empty). `xs` holds no NaN.
#[inline(always)]
fn min_of_body(xs: &[f64]) -> f64 {
    let mut acc = [f64::INFINITY; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = min2(*a, x);
        }
    }
    let mut best = chunks
        .remainder()
        .iter()
        .fold(f64::INFINITY, |m, &x| min2(m, x));
    for a in acc {
        best = min2(best, a);
    }
    best
}

/// Squared distances from `-2 q.x` products: `row[j] <- row[j] + q_norm + x_norms[j]`, set to
/// 0 when within the rounding of the GEMM form (`rounding * (q_norm + x_norms[j])`), so that
/// coincident points are at distance exactly 0 and no distance is negative.
#[inline(always)]
fn finish_squared_distances_body(row: &mut [f64], q_norm: f64, x_norms: &[f64], rounding: f64) {
    for (g, &xn) in row.iter_mut().zip(x_norms) {
        let d = *g + q_norm + xn;
        *g = if d > rounding * (q_norm + xn) { d } else { 0.0 };
    }
}

/// Gaussian energies of weighted points: `row[j] <- scale * row[j] - log_weights[j]`.
#[inline(always)]
fn gaussian_energies_body(row: &mut [f64], scale: f64, log_weights: &[f64]) {
    for (e, &lw) in row.iter_mut().zip(log_weights) {
        *e = scale * *e - lw;
    }
}

/// Sum of exp(-scale (x - offset)) over `xs`, where offset <= min(xs) keeps every term <= 1.
#[inline(always)]
fn sum_exp_below_body<A: MulAdd>(xs: &[f64], scale: f64, offset: f64) -> f64 {
    let mut acc = [0.0; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a += exp_nonpositive::<A>(-scale * (x - offset));
        }
    }
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&x| exp_nonpositive::<A>(-scale * (x - offset)))
        .sum();
    acc.iter().sum::<f64>() + tail
}

/// As [`sum_exp_below_body`], together with the sum of the squared terms.
#[inline(always)]
fn sum_exp_below_with_squares_body<A: MulAdd>(xs: &[f64], scale: f64, offset: f64) -> (f64, f64) {
    let mut acc = [0.0; LANES];
    let mut acc_sq = [0.0; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for chunk in &mut chunks {
        for ((a, s), &x) in acc.iter_mut().zip(acc_sq.iter_mut()).zip(chunk) {
            let t = exp_nonpositive::<A>(-scale * (x - offset));
            *a += t;
            *s += t * t;
        }
    }
    let (mut sum, mut sum_sq) = (acc.iter().sum::<f64>(), acc_sq.iter().sum::<f64>());
    for &x in chunks.remainder() {
        let t = exp_nonpositive::<A>(-scale * (x - offset));
        sum += t;
        sum_sq += t * t;
    }
    (sum, sum_sq)
}

multiversion! {
    /// [`min_of_body`] for the running CPU.
    pub(crate) fn min_of(xs: &[f64]) -> f64 => min_of_body
}

multiversion! {
    /// [`finish_squared_distances_body`] for the running CPU.
    pub(crate) fn finish_squared_distances(
        row: &mut [f64],
        q_norm: f64,
        x_norms: &[f64],
        rounding: f64,
    ) => finish_squared_distances_body
}

multiversion! {
    /// [`gaussian_energies_body`] for the running CPU.
    pub(crate) fn gaussian_energies(row: &mut [f64], scale: f64, log_weights: &[f64])
        => gaussian_energies_body
}

multiversion! {
    /// [`sum_exp_below_body`] for the running CPU.
    pub(crate) fn sum_exp_below(xs: &[f64], scale: f64, offset: f64) -> f64
        => sum_exp_below_body::<[Fused], [Fused], [Unfused]>
}

multiversion! {
    /// [`sum_exp_below_with_squares_body`] for the running CPU.
    pub(crate) fn sum_exp_below_with_squares(xs: &[f64], scale: f64, offset: f64) -> (f64, f64)
        => sum_exp_below_with_squares_body::<[Fused], [Fused], [Unfused]>
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::Isa;

    #[test]
    fn row_primitives_agree_with_scalar_loops() {
        let xs: Vec<f64> = (0..103)
            .map(|i| ((i * 37) % 101) as f64 * 0.25 + 1.0)
            .collect();
        let want: f64 = xs.iter().map(|x| (-0.7 * (x - 1.0)).exp()).sum();
        let want_sq: f64 = xs.iter().map(|x| (-1.4 * (x - 1.0)).exp()).sum();
        for isa in Isa::supported() {
            assert_eq!(min_of(isa, &xs), 1.0);
            assert_eq!(min_of(isa, &[]), f64::INFINITY);
            let (s, sq) = sum_exp_below_with_squares(isa, &xs, 0.7, 1.0);
            assert!((s - want).abs() < 1e-14 * want, "{isa:?}");
            assert!((sq - want_sq).abs() < 1e-14 * want_sq, "{isa:?}");
            assert!((sum_exp_below(isa, &xs, 0.7, 1.0) - want).abs() < 1e-14 * want);

            let mut row = vec![-3.0, 1.0, 2.0, -2.0 + 1e-17];
            finish_squared_distances(isa, &mut row, 1.0, &[1.0, 0.5, 0.0, 1.0], 1e-15);
            assert_eq!(row, vec![0.0, 2.5, 3.0, 0.0]);
            row.pop();
            gaussian_energies(isa, &mut row, 2.0, &[0.0, -1.0, f64::NEG_INFINITY]);
            assert_eq!(row, vec![0.0, 6.0, f64::INFINITY]);
        }
    }
}
