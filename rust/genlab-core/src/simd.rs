//! SIMD building blocks shared by the kernels: a vectorizable exponential and run-time selection of
//! the instruction set.
//!
//! The crate is compiled for the x86-64 baseline (SSE2, no FMA) so that one wheel runs on every
//! x86-64 CPU. There a loop over f64 runs two lanes at a time, and `f64::exp` and `f64::mul_add`
//! are library calls. Each kernel entry point is therefore compiled three times by
//! [`multiversion!`] (AVX-512, AVX2+FMA, baseline) and the caller picks one with the [`Isa`] that
//! [`Isa::detect`] finds (every kernel that uses vector instructions dispatches through it, the
//! intrinsics of the Kendall radix and Gram counts included). Kernel bodies are plain loops over
//! fixed-width lane arrays that LLVM
//! vectorizes; [`exp_nonpositive`] is a branch-free polynomial so that loops calling it vectorize
//! too, and [`MulAdd`] lets a body fuse its multiply-adds only where the instruction set has FMA.

use std::sync::OnceLock;

/// Below this argument [`exp_nonpositive`] returns 0: exp would be subnormal, and a term that small
/// next to a running maximum (which contributes exp(0) = 1) cannot change a float64 sum.
const EXP_UNDERFLOW: f64 = -708.0;

/// The instruction set a kernel runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Isa {
    /// The instruction set every kernel runs with: the best the running CPU has, or less when
    /// the environment variable `GENLAB_ISA` asks for less ("baseline", "avx2", "avx512"; any
    /// other value, or none, means the best). Read once, then cached. The override exists so that
    /// the portable code paths are tested on any machine (CI runs the kernel tests once with
    /// `GENLAB_ISA=baseline`); it can never select more than the CPU has.
    pub(crate) fn detect() -> Isa {
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(|| {
            let best = Isa::of_cpu();
            match std::env::var("GENLAB_ISA").as_deref() {
                Ok("baseline") => Isa::Baseline,
                #[cfg(target_arch = "x86_64")]
                Ok("avx2") if best == Isa::Avx512 => Isa::Avx2Fma,
                _ => best,
            }
        })
    }

    /// The best instruction set of the running CPU.
    fn of_cpu() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            let fma = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            if fma && is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if fma {
                return Isa::Avx2Fma;
            }
        }
        Isa::Baseline
    }

    /// Whether kernels may use AVX-512's 512-bit popcount and byte/word compares (AVX-512 BW and
    /// VPOPCNTDQ on top of [`Isa::Avx512`]).
    pub(crate) fn has_vector_popcount(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            self == Isa::Avx512
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vpopcntdq")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = self;
            false
        }
    }

    /// Every instruction set the running CPU supports, for tests that compare them.
    #[cfg(test)]
    pub(crate) fn supported() -> Vec<Isa> {
        let mut isas = vec![Isa::Baseline];
        #[cfg(target_arch = "x86_64")]
        match Isa::detect() {
            Isa::Avx512 => isas.extend([Isa::Avx2Fma, Isa::Avx512]),
            Isa::Avx2Fma => isas.push(Isa::Avx2Fma),
            Isa::Baseline => {}
        }
        isas
    }
}

/// The instruction set the kernels run with, by name: "avx512", "avx2" or "baseline" (see
/// `Isa::detect` and its `GENLAB_ISA` override).
pub fn instruction_set() -> &'static str {
    match Isa::detect() {
        Isa::Baseline => "baseline",
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => "avx2",
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => "avx512",
    }
}

/// Multiply-add: fused where the target has FMA, two roundings where it would be a libm call.
pub(crate) trait MulAdd {
    fn mul_add(a: f64, b: f64, c: f64) -> f64;
}

/// [`MulAdd`] as one FMA instruction (AVX2+FMA and AVX-512 code).
pub(crate) struct Fused;

/// [`MulAdd`] as a multiply then an add (baseline code, and scalar code outside [`multiversion!`]).
pub(crate) struct Unfused;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f64, b: f64, c: f64) -> f64 {
        a.mul_add(b, c)
    }
}

impl MulAdd for Unfused {
    #[inline(always)]
    fn mul_add(a: f64, b: f64, c: f64) -> f64 {
        a * b + c
    }
}

/// exp(x) for x <= 0 (including -inf), to about 1 ulp, and 0 below [`EXP_UNDERFLOW`].
///
/// Cody-Waite reduction x = k ln 2 + r with |r| <= ln 2 / 2, exp(r) by its Taylor polynomial of
/// degree 13 (truncation error below 1e-17), and 2^k assembled in the exponent bits. Branch-free,
/// so loops over it vectorize.
#[inline(always)]
pub(crate) fn exp_nonpositive<A: MulAdd>(x: f64) -> f64 {
    const LN2_HI: f64 = 6.931_471_803_691_238e-1; // 32 trailing zero bits: k * LN2_HI is exact
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    const SHIFTER: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52: adding it rounds to an integer
    const INV_FACT: [f64; 14] = [
        1.0,
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
        1.0 / 40320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
        1.0 / 6_227_020_800.0,
    ];
    let xc = if x < EXP_UNDERFLOW { EXP_UNDERFLOW } else { x };
    let t = A::mul_add(xc, std::f64::consts::LOG2_E, SHIFTER);
    let k = t - SHIFTER;
    let r = A::mul_add(-k, LN2_LO, A::mul_add(-k, LN2_HI, xc));
    let mut p = INV_FACT[13];
    for &c in INV_FACT[..13].iter().rev() {
        p = A::mul_add(p, r, c);
    }
    // t = SHIFTER + k exactly, so its low bits hold k; k + 1023 >= 1 keeps 2^k normal.
    let exponent = t
        .to_bits()
        .wrapping_sub(SHIFTER.to_bits())
        .wrapping_add(1023)
        << 52;
    let y = p * f64::from_bits(exponent);
    if x < EXP_UNDERFLOW { 0.0 } else { y }
}

/// The step of every online log-sum-exp here (KDE densities, the information plane, exact
/// attention): two running sums of exponentials, each taken relative to its own maximum (`a`,
/// `b`), are brought to the common maximum `m = max(a, b)`. Returns `(m, exp(a - m), exp(b - m))`;
/// a side that is still empty (maximum -inf) gets the factor 0, and so does each side when both
/// are.
#[inline]
pub(crate) fn rescale_to_common_max(a: f64, b: f64) -> (f64, f64, f64) {
    if a.max(b) == f64::NEG_INFINITY {
        return (f64::NEG_INFINITY, 0.0, 0.0);
    }
    // The larger side's factor is exp(0) = 1 (exactly what exp_nonpositive gives): one
    // exponential per step, not two (the information plane takes a step per block and scale).
    if a >= b {
        (a, 1.0, exp_nonpositive::<Unfused>(b - a))
    } else {
        (b, exp_nonpositive::<Unfused>(a - b), 1.0)
    }
}

/// Defines `fn $name(isa: Isa, args...)`, which runs the kernel body `$body` compiled for the
/// instruction set `isa` names. Callers pass [`Isa::detect`] (or, in tests, each of
/// `Isa::supported`); detecting once per batch of calls keeps the check out of inner loops.
///
/// - `=> body::<[..], [..], [..]>` instantiates a generic body with the arguments listed for
///   AVX-512, AVX2+FMA and the baseline: typically [`Fused`] where FMA exists and [`Unfused`] on
///   the baseline, and register-block sizes (AVX-512 has 32 vector registers, the others 16).
/// - `=> body` compiles the same non-generic body for each.
///
/// The body must be `#[inline(always)]` so that it is compiled inside each target-feature wrapper;
/// each entry point is compiled on its own, so its loops vectorize independently of its callers.
macro_rules! multiversion {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?
        => $body:ident::<[$($avx512:tt)*], [$($avx2:tt)*], [$($baseline:tt)*]>
    ) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name(isa: $crate::simd::Isa, $($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    $body::<$($avx512)*>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $body::<$($avx2)*>($($arg),*)
                }
                match isa {
                    // SAFETY: `Isa::detect` returns Avx512 only when the CPU has avx512f, avx2, fma
                    // (and `Isa::supported` lists only what it returns or less).
                    $crate::simd::Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: `Isa::detect` returns Avx2Fma (and `Isa::supported` lists it) only
                    // when the CPU has avx2 and fma.
                    $crate::simd::Isa::Avx2Fma => return unsafe { avx2($($arg),*) },
                    $crate::simd::Isa::Baseline => {}
                }
            }
            let _ = isa;
            $body::<$($baseline)*>($($arg),*)
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $body:ident
    ) => {
        $crate::simd::multiversion! {
            $(#[$meta])*
            $vis fn $name($($arg: $ty),*) $(-> $ret)? => $body::<[], [], []>
        }
    };
}

pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_to_a_few_ulp() {
        let mut worst: f64 = 0.0;
        let mut x: f64 = -710.0;
        while x <= 0.0 {
            for got in [exp_nonpositive::<Fused>(x), exp_nonpositive::<Unfused>(x)] {
                if x < EXP_UNDERFLOW {
                    assert_eq!(got, 0.0, "exp({x})");
                } else {
                    worst = worst.max((got - x.exp()).abs() / x.exp());
                }
            }
            x += 0.001_37;
        }
        assert!(worst < 5e-16, "worst relative error {worst}");
        for got in [exp_nonpositive::<Fused>, exp_nonpositive::<Unfused>] {
            assert_eq!(got(0.0), 1.0);
            assert_eq!(got(f64::NEG_INFINITY), 0.0);
            assert_eq!(got(-800.0), 0.0);
        }
    }

    #[test]
    fn supported_instruction_sets_end_with_the_detected_one() {
        let isas = Isa::supported();
        assert_eq!(isas[0], Isa::Baseline);
        assert_eq!(isas.last(), Some(&Isa::detect()));
    }
}
