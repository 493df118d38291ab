//! Vectorized row primitives of the streaming log-sum-exp: an exponential for non-positive
//! arguments and the few passes over a row of squared distances (or energies) that the kernel runs.
//!
//! The crate is compiled for the x86-64 baseline (SSE2), where these loops would run two lanes at a
//! time and `f64::exp` is a scalar library call. Each primitive is therefore compiled three times
//! (AVX-512, AVX2+FMA, baseline) and chosen at run time; the bodies are plain loops over fixed-width
//! lane arrays that LLVM vectorizes. The exponential is a polynomial, so it vectorizes too.

/// Lanes per accumulator array: two AVX-512 vectors, so that two independent dependency chains
/// are in flight.
const LANES: usize = 16;

/// Below this argument `exp` is treated as 0: the result would be subnormal, and a term that small
/// next to the running maximum (which contributes exp(0) = 1) cannot change a float64 sum.
const EXP_LOWEST: f64 = -708.0;

/// exp(x) for x <= 0 (including -inf), to about 1 ulp; 0 below [`EXP_LOWEST`].
///
/// Cody-Waite reduction x = k ln 2 + r with |r| <= ln 2 / 2, a degree-12 Taylor polynomial for
/// exp(r) (truncation error below 2e-16), and 2^k assembled in the exponent bits. Branch-free, so
/// loops over it vectorize.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f64) -> f64 {
    const LN2_HI: f64 = 0.693_147_180_369_123_8; // 32 significant bits: k * LN2_HI is exact
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    // 1.5 * 2^52: adding it rounds to an integer that then sits in the low mantissa bits.
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    const C: [f64; 13] = [
        1.0,
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5_040.0,
        1.0 / 40_320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
    ];
    let clamped = if x < EXP_LOWEST { EXP_LOWEST } else { x };
    let shifted = clamped * std::f64::consts::LOG2_E + SHIFT;
    let k = shifted - SHIFT;
    let r = (clamped - k * LN2_HI) - k * LN2_LO;
    let mut p = C[12];
    for &c in C[..12].iter().rev() {
        p = p * r + c;
    }
    // The low 12 bits of `shifted`'s mantissa hold k modulo 2^12; moved to the exponent field and
    // biased, they give 2^k for -1022 <= k <= 0.
    let two_k = f64::from_bits((shifted.to_bits() << 52).wrapping_add(1023_u64 << 52));
    if x < EXP_LOWEST { 0.0 } else { p * two_k }
}

/// Defines a function whose body is compiled for AVX-512, AVX2+FMA and the baseline, picking the
/// best the CPU supports at run time (the detection is cached by std).
macro_rules! dispatched {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn imp($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    imp($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    imp($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports AVX-512F (checked on the line above).
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU supports AVX2 and FMA (checked on the lines above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            imp($($arg),*)
        }
    };
}

#[inline(always)]
fn min2(a: f64, b: f64) -> f64 {
    if b < a { b } else { a }
}

dispatched! {
    /// Smallest value of `xs` (+inf when empty). `xs` holds no NaN.
    pub(crate) fn min_of(xs: &[f64]) -> f64 {
        let mut acc = [f64::INFINITY; LANES];
        let mut chunks = xs.chunks_exact(LANES);
        for chunk in &mut chunks {
            for (a, &x) in acc.iter_mut().zip(chunk) {
                *a = min2(*a, x);
            }
        }
        let mut best = chunks.remainder().iter().fold(f64::INFINITY, |m, &x| min2(m, x));
        for a in acc {
            best = min2(best, a);
        }
        best
    }
}

dispatched! {
    /// Squared distances from `-2 q.x` products: `row[j] <- row[j] + q_norm + x_norms[j]`, set to
    /// 0 when within the rounding of the GEMM form (`rounding * (q_norm + x_norms[j])`), so that
    /// coincident points are at distance exactly 0 and no distance is negative.
    pub(crate) fn finish_squared_distances(
        row: &mut [f64],
        q_norm: f64,
        x_norms: &[f64],
        rounding: f64,
    ) {
        for (g, &xn) in row.iter_mut().zip(x_norms) {
            let d = *g + q_norm + xn;
            *g = if d > rounding * (q_norm + xn) { d } else { 0.0 };
        }
    }
}

dispatched! {
    /// Gaussian energies of weighted points: `row[j] <- scale * row[j] - log_weights[j]`.
    pub(crate) fn gaussian_energies(row: &mut [f64], scale: f64, log_weights: &[f64]) {
        for (e, &lw) in row.iter_mut().zip(log_weights) {
            *e = scale * *e - lw;
        }
    }
}

dispatched! {
    /// Sum of exp(-scale (x - offset)) over `xs`, where offset <= min(xs) keeps every term <= 1.
    pub(crate) fn sum_exp_below(xs: &[f64], scale: f64, offset: f64) -> f64 {
        let mut acc = [0.0; LANES];
        let mut chunks = xs.chunks_exact(LANES);
        for chunk in &mut chunks {
            for (a, &x) in acc.iter_mut().zip(chunk) {
                *a += exp_nonpositive(-scale * (x - offset));
            }
        }
        let tail: f64 = chunks
            .remainder()
            .iter()
            .map(|&x| exp_nonpositive(-scale * (x - offset)))
            .sum();
        acc.iter().sum::<f64>() + tail
    }
}

dispatched! {
    /// As [`sum_exp_below`], together with the sum of the squared terms.
    pub(crate) fn sum_exp_below_with_squares(xs: &[f64], scale: f64, offset: f64) -> (f64, f64) {
        let mut acc = [0.0; LANES];
        let mut acc_sq = [0.0; LANES];
        let mut chunks = xs.chunks_exact(LANES);
        for chunk in &mut chunks {
            for ((a, s), &x) in acc.iter_mut().zip(acc_sq.iter_mut()).zip(chunk) {
                let t = exp_nonpositive(-scale * (x - offset));
                *a += t;
                *s += t * t;
            }
        }
        let (mut sum, mut sum_sq) = (acc.iter().sum::<f64>(), acc_sq.iter().sum::<f64>());
        for &x in chunks.remainder() {
            let t = exp_nonpositive(-scale * (x - offset));
            sum += t;
            sum_sq += t * t;
        }
        (sum, sum_sq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_to_a_few_ulp() {
        let mut worst: f64 = 0.0;
        let mut x = -708.0;
        while x <= 0.0 {
            let rel = (exp_nonpositive(x) - x.exp()).abs() / x.exp();
            worst = worst.max(rel);
            x += 0.001_37;
        }
        assert!(worst < 5e-16, "worst relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp_nonpositive(-800.0), 0.0);
    }

    #[test]
    fn row_primitives_agree_with_scalar_loops() {
        let xs: Vec<f64> = (0..103)
            .map(|i| ((i * 37) % 101) as f64 * 0.25 + 1.0)
            .collect();
        assert_eq!(min_of(&xs), 1.0);
        assert_eq!(min_of(&[]), f64::INFINITY);
        let (s, sq) = sum_exp_below_with_squares(&xs, 0.7, 1.0);
        let want: f64 = xs.iter().map(|x| (-0.7 * (x - 1.0)).exp()).sum();
        let want_sq: f64 = xs.iter().map(|x| (-1.4 * (x - 1.0)).exp()).sum();
        assert!((s - want).abs() < 1e-14 * want);
        assert!((sq - want_sq).abs() < 1e-14 * want_sq);
        assert!((sum_exp_below(&xs, 0.7, 1.0) - want).abs() < 1e-14 * want);

        let mut row = vec![-3.0, 1.0, 2.0, -2.0 + 1e-17];
        finish_squared_distances(&mut row, 1.0, &[1.0, 0.5, 0.0, 1.0], 1e-15);
        assert_eq!(row, vec![0.0, 2.5, 3.0, 0.0]);
        row.pop();
        gaussian_energies(&mut row, 2.0, &[0.0, -1.0, f64::NEG_INFINITY]);
        assert_eq!(row, vec![0.0, 6.0, f64::INFINITY]);
    }
}
