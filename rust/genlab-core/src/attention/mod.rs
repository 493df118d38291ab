//! Tensor (triple-wise) attention: for each query i,
//!
//! O_i = sum_{j,k} softmax_{(j,k)}(s <q_i, k1_j, k2_k>) (v1_j * v2_k),
//! <q, a, b> = sum_l q_l a_l b_l, with the softmax joint over all n^2 key pairs,
//!
//! and ordinary softmax attention as its reduction (K2 = 1, V2 = 1) and baseline.
//!
//! - `exact`: the streaming online-softmax kernels (no n x n^2 array, float64 accumulation,
//!   parallel over queries).
//! - `poly`: the polynomial method of Alman and Song (exp replaced by a degree-g polynomial,
//!   whose multi-index expansion factorizes the n x n^2 matrix through rank r = C(d + g, g)).
//!
//! Formulas and invariants: `docs/formulas/attention.md`. As every multi-dimensional array of the
//! core, the inputs enter as ndarray views (here C-contiguous, read in place): `batch` independent
//! problems, (batch, n, d) for queries and keys and (batch, n, dv) for values, wrapped and
//! validated once by [`TensorInputs::new`] or [`AttentionInputs::new`]; outputs are (batch, n, dv)
//! arrays.

mod exact;
mod kernels;
mod poly;

use std::ops::Range;

use ndarray::{Array3, ArrayView3};

use crate::error::{Error, Result, check_finite, parse_option, row_major};

pub use exact::{attention_exact, tensor_attention_exact};
pub use poly::{
    Basis, ExpPolynomial, MonomialTable, PolyPlan, PolyRequest, monomial_table, poly_plan,
    tensor_attention_poly,
};

/// Sizes of a batch of attention problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dims {
    /// Independent problems (flattened batch and head axes).
    pub(crate) batch: usize,
    /// Sequence length: queries and keys per problem.
    pub(crate) n: usize,
    /// Width of queries and keys.
    pub(crate) d: usize,
    /// Width of values (and of the output).
    pub(crate) dv: usize,
}

impl Dims {
    fn validate(&self) -> Result<()> {
        if self.n == 0 {
            return Err(Error::invalid(
                "n",
                "expected at least one query and key (n >= 1), got n = 0",
            ));
        }
        if self.d == 0 {
            return Err(Error::invalid(
                "d",
                "expected queries and keys of width d >= 1, got d = 0",
            ));
        }
        if self.dv == 0 {
            return Err(Error::invalid(
                "dv",
                "expected values of width >= 1, got width 0",
            ));
        }
        Ok(())
    }
}

/// Which keys of one key set a query at position i sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyWindow {
    /// Every key.
    All,
    /// Keys j <= i.
    Causal,
    /// The last w keys: i - w < j <= i.
    Last(usize),
}

impl KeyWindow {
    /// The keys a query at position `i` of `n` sees, as an index range.
    pub(crate) fn range(self, i: usize, n: usize) -> Range<usize> {
        match self {
            KeyWindow::All => 0..n,
            KeyWindow::Causal => 0..i + 1,
            KeyWindow::Last(w) => (i + 1).saturating_sub(w)..i + 1,
        }
    }

    /// Parses "none", "causal" or "window" (with its size `w`, at least 1).
    pub fn parse(kind: &str, w: usize, name: &str) -> Result<Self> {
        let window = parse_option(
            "mask",
            kind,
            &[
                ("none", KeyWindow::All),
                ("causal", KeyWindow::Causal),
                ("window", KeyWindow::Last(w)),
            ],
        )?;
        if window == KeyWindow::Last(0) {
            return Err(Error::invalid(
                name,
                "expected a window size >= 1 (the query always sees itself), got 0",
            ));
        }
        Ok(window)
    }
}

/// A mask of tensor attention: one [`KeyWindow`] per key set (the mask factorizes over j and k).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mask {
    /// Window of the first key set (K1, V1).
    pub(crate) first: KeyWindow,
    /// Window of the second key set (K2, V2).
    pub(crate) second: KeyWindow,
}

impl Mask {
    /// Parses "none", "causal" or "window" (with the window sizes w1, w2 of the two key sets).
    pub fn parse(kind: &str, w1: usize, w2: usize) -> Result<Self> {
        Ok(Mask {
            first: KeyWindow::parse(kind, w1, "w1")?,
            second: KeyWindow::parse(kind, w2, "w2")?,
        })
    }
}

/// The sizes of `keys` (batch, n, d) and of `values` (batch, n, dv), after checking that every
/// key has the shape of the first key and every value that of the first value, batch and n
/// included.
fn dims_of(
    keys: &[(&str, &ArrayView3<'_, f64>)],
    values: &[(&str, &ArrayView3<'_, f64>)],
) -> Result<Dims> {
    let (batch, n, d) = keys[0].1.dim();
    let dv = values.first().map_or(1, |(_, v)| v.dim().2);
    let check = |name: &str, got: &[usize], want: [usize; 3]| {
        if got == want {
            Ok(())
        } else {
            Err(Error::shape(
                name,
                format!("shape {want:?}"),
                format!("{got:?}"),
            ))
        }
    };
    for (name, a) in keys {
        check(name, a.shape(), [batch, n, d])?;
    }
    for (name, a) in values {
        check(name, a.shape(), [batch, n, dv])?;
    }
    Ok(Dims { batch, n, d, dv })
}

/// Checks the sizes and that every array is finite.
fn validate(dims: Dims, arrays: &[(&str, &[f64])]) -> Result<()> {
    dims.validate()?;
    for (name, x) in arrays {
        check_finite(name, x)?;
    }
    Ok(())
}

/// Inputs of tensor attention: (batch, n, d) queries and keys, (batch, n, dv) values.
#[derive(Debug, Clone, Copy)]
pub struct TensorInputs<'a> {
    /// Queries, row-major.
    pub(crate) q: &'a [f64],
    /// First keys.
    pub(crate) k1: &'a [f64],
    /// Second keys.
    pub(crate) k2: &'a [f64],
    /// First values.
    pub(crate) v1: &'a [f64],
    /// Second values.
    pub(crate) v2: &'a [f64],
    /// Sizes.
    pub(crate) dims: Dims,
}

/// One problem of a batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Problem<'a> {
    pub(crate) q: &'a [f64],
    pub(crate) k1: &'a [f64],
    pub(crate) k2: &'a [f64],
    pub(crate) v1: &'a [f64],
    pub(crate) v2: &'a [f64],
}

impl<'a> TensorInputs<'a> {
    /// Wraps queries `q` and keys `k1`, `k2` of shape (batch, n, d) and values `v1`, `v2` of
    /// shape (batch, n, dv). Errors: shapes that do not fit together, an array that is not
    /// C-contiguous, n, d or dv of zero, NaN or infinity.
    pub fn new(
        q: ArrayView3<'a, f64>,
        k1: ArrayView3<'a, f64>,
        k2: ArrayView3<'a, f64>,
        v1: ArrayView3<'a, f64>,
        v2: ArrayView3<'a, f64>,
    ) -> Result<Self> {
        let dims = dims_of(
            &[("Q", &q), ("K1", &k1), ("K2", &k2)],
            &[("V1", &v1), ("V2", &v2)],
        )?;
        let x = TensorInputs {
            q: row_major("Q", &q)?,
            k1: row_major("K1", &k1)?,
            k2: row_major("K2", &k2)?,
            v1: row_major("V1", &v1)?,
            v2: row_major("V2", &v2)?,
            dims,
        };
        validate(
            dims,
            &[
                ("Q", x.q),
                ("K1", x.k1),
                ("K2", x.k2),
                ("V1", x.v1),
                ("V2", x.v2),
            ],
        )?;
        Ok(x)
    }

    pub(crate) fn problem(&self, b: usize) -> Problem<'a> {
        let Dims { n, d, dv, .. } = self.dims;
        let keys = b * n * d..(b + 1) * n * d;
        let values = b * n * dv..(b + 1) * n * dv;
        Problem {
            q: &self.q[keys.clone()],
            k1: &self.k1[keys.clone()],
            k2: &self.k2[keys],
            v1: &self.v1[values.clone()],
            v2: &self.v2[values],
        }
    }
}

/// Inputs of ordinary attention: (batch, n, d) queries and keys, (batch, n, dv) values.
#[derive(Debug, Clone, Copy)]
pub struct AttentionInputs<'a> {
    /// Queries, row-major.
    pub(crate) q: &'a [f64],
    /// Keys.
    pub(crate) k: &'a [f64],
    /// Values.
    pub(crate) v: &'a [f64],
    /// Sizes.
    pub(crate) dims: Dims,
}

impl<'a> AttentionInputs<'a> {
    /// Wraps queries `q` and keys `k` of shape (batch, n, d) and values `v` of shape
    /// (batch, n, dv); the errors of [`TensorInputs::new`].
    pub fn new(
        q: ArrayView3<'a, f64>,
        k: ArrayView3<'a, f64>,
        v: ArrayView3<'a, f64>,
    ) -> Result<Self> {
        let dims = dims_of(&[("Q", &q), ("K", &k)], &[("V", &v)])?;
        let x = AttentionInputs {
            q: row_major("Q", &q)?,
            k: row_major("K", &k)?,
            v: row_major("V", &v)?,
            dims,
        };
        validate(dims, &[("Q", x.q), ("K", x.k), ("V", x.v)])?;
        Ok(x)
    }
}

/// The (batch, n, dv) output array of a kernel that wrote `values` row-major.
pub(crate) fn output(values: Vec<f64>, dims: Dims) -> Array3<f64> {
    Array3::from_shape_vec((dims.batch, dims.n, dims.dv), values)
        .expect("a kernel writes batch * n * dv outputs")
}

pub(crate) fn check_scale(scale: f64) -> Result<()> {
    if scale.is_finite() {
        Ok(())
    } else {
        Err(Error::invalid(
            "scale",
            format!("expected a finite number, got {scale}"),
        ))
    }
}

/// An upper bound on the logit range T = |s| max_{i,j,k} sum_l |q_il k1_jl k2_kl| (which bounds
/// |s <q_i, k1_j, k2_k>|), the quantity that governs the polynomial method's error, in O(n d):
/// the smaller of sum_l max|q_l| max|k1_l| max|k2_l| (coordinate-wise maxima) and
/// max||q||_3 max||k1||_3 max||k2||_3 (Hölder with exponents 3, 3, 3), maximized over the batch.
/// `q`, `k1`, `k2` are (batch, n, d) arrays, C-contiguous and finite.
pub fn logit_bound(
    q: ArrayView3<'_, f64>,
    k1: ArrayView3<'_, f64>,
    k2: ArrayView3<'_, f64>,
    scale: f64,
) -> Result<f64> {
    let dims = dims_of(&[("Q", &q), ("K1", &k1), ("K2", &k2)], &[])?;
    let (q, k1, k2) = (
        row_major("Q", &q)?,
        row_major("K1", &k1)?,
        row_major("K2", &k2)?,
    );
    validate(dims, &[("Q", q), ("K1", k1), ("K2", k2)])?;
    check_scale(scale)?;
    logit_bound_of(q, k1, k2, dims, scale)
}

/// [`logit_bound`] of validated row-major arrays.
pub(crate) fn logit_bound_of(
    q: &[f64],
    k1: &[f64],
    k2: &[f64],
    dims: Dims,
    scale: f64,
) -> Result<f64> {
    let Dims { n, d, .. } = dims;
    let coordinate_max = |m: &[f64]| -> Vec<f64> {
        let mut out = vec![0.0f64; d];
        for row in m.chunks_exact(d) {
            for (o, &v) in out.iter_mut().zip(row) {
                *o = o.max(v.abs());
            }
        }
        out
    };
    let max_norm3 = |m: &[f64]| -> f64 {
        m.chunks_exact(d)
            .map(|row| row.iter().map(|v| v.abs().powi(3)).sum::<f64>().cbrt())
            .fold(0.0, f64::max)
    };
    let problem = n * d;
    let bound = q
        .chunks_exact(problem)
        .zip(k1.chunks_exact(problem))
        .zip(k2.chunks_exact(problem))
        .map(|((q, k1), k2)| {
            let (cq, c1, c2) = (coordinate_max(q), coordinate_max(k1), coordinate_max(k2));
            let coordinatewise: f64 = (0..d).map(|l| cq[l] * c1[l] * c2[l]).sum();
            let holder = max_norm3(q) * max_norm3(k1) * max_norm3(k2);
            coordinatewise.min(holder)
        })
        .fold(0.0, f64::max);
    let bound = scale.abs() * bound;
    if !bound.is_finite() {
        // Finite inputs whose logits may exceed float64: no method can evaluate them.
        return Err(Error::invalid(
            "scale",
            "the logit bound |s| max |<q, k1, k2>| overflows float64 for these inputs; lower \
             |scale| or the magnitude of Q, K1, K2",
        ));
    }
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_give_the_documented_ranges() {
        assert_eq!(KeyWindow::All.range(2, 5), 0..5);
        assert_eq!(KeyWindow::Causal.range(2, 5), 0..3);
        assert_eq!(KeyWindow::Last(2).range(2, 5), 1..3);
        assert_eq!(KeyWindow::Last(9).range(2, 5), 0..3);
        assert!(
            Mask::parse("window", 0, 3)
                .unwrap_err()
                .to_string()
                .contains("w1")
        );
        assert!(
            Mask::parse("window", 3, 0)
                .unwrap_err()
                .to_string()
                .contains("w2")
        );
        assert!(Mask::parse("diagonal", 1, 1).is_err());
        assert_eq!(
            Mask::parse("causal", 0, 0).unwrap(),
            Mask {
                first: KeyWindow::Causal,
                second: KeyWindow::Causal
            }
        );
    }

    #[test]
    fn logit_bound_bounds_every_logit() {
        let (n, d) = (6, 3);
        let values_of = |seed: u64| -> Vec<f64> {
            (0..n * d)
                .map(|i| (((i as u64 + 3) * seed) % 23) as f64 / 7.0 - 1.5)
                .collect()
        };
        let (q, k1, k2) = (values_of(5), values_of(11), values_of(17));
        let view = |x| ArrayView3::from_shape((1, n, d), x).unwrap();
        let bound = logit_bound(view(&q), view(&k1), view(&k2), -0.5).unwrap();
        let mut largest = 0.0f64;
        for i in 0..n {
            for j in 0..n {
                for k in 0..n {
                    let t: f64 = (0..d)
                        .map(|l| q[i * d + l] * k1[j * d + l] * k2[k * d + l])
                        .sum();
                    largest = largest.max(0.5 * t.abs());
                }
            }
        }
        assert!(
            largest <= bound + 1e-12 && bound < 3.0 * largest,
            "{largest} {bound}"
        );
    }

    #[test]
    fn bad_inputs_are_named() {
        let z = [0.0; 4];
        let nan = [0.0, f64::NAN, 0.0, 0.0];
        let view = |x, shape| ArrayView3::from_shape(shape, x).unwrap();
        let ok = view(&z, (1, 2, 2));
        let e = TensorInputs::new(ok, ok, view(&z[..2], (1, 2, 1)), ok, ok).unwrap_err();
        assert_eq!(e.to_string(), "K2: expected shape [1, 2, 2], got [1, 2, 1]");
        let e = TensorInputs::new(ok, ok, ok, ok, view(&nan, (1, 2, 2))).unwrap_err();
        assert!(e.to_string().contains("V2 contains NaN"), "{e}");
        let e = TensorInputs::new(ok, ok, ok, ok, ok.reversed_axes()).unwrap_err();
        assert!(
            e.to_string().starts_with("V2: expected shape [1, 2, 2]"),
            "{e}"
        );
        let strided = ok.slice_move(ndarray::s![.., .., ..;2]);
        let e = AttentionInputs::new(strided, strided, ok).unwrap_err();
        assert!(
            e.to_string().starts_with("Q: expected a C-contiguous"),
            "{e}"
        );
        let none = view(&z[..0], (1, 0, 2));
        let e = TensorInputs::new(none, none, none, none, none).unwrap_err();
        assert!(e.to_string().contains("n = 0"), "{e}");
        let e = logit_bound(ok, ok, view(&nan, (1, 2, 2)), 1.0).unwrap_err();
        assert!(e.to_string().contains("K2 contains NaN"), "{e}");
    }
}
