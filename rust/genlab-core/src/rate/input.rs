//! The arrays the rate kernels read: token groups (Z, or already-projected ZU) and subspaces (U),
//! wrapped from C-contiguous ndarray views. Shapes and layout are validated when they are
//! wrapped; the values of U then too, those of a token group when a kernel reads it (the check
//! then runs on data already in cache, in parallel).

use ndarray::{ArrayView3, ArrayView4};

use crate::element::Element;
use crate::error::{Error, Result, all_finite, check_finite, row_major};

/// `count` matrices of `tokens` rows (tokens) by `dim` columns (features), read in place from a
/// C-contiguous (groups, N, d) array: `data[(g * tokens + i) * dim + j]` is feature j of token i
/// in group g.
#[derive(Debug, Clone, Copy)]
pub struct TokenGroups<'a, T> {
    pub(crate) name: &'a str,
    pub(crate) data: &'a [T],
    pub(crate) count: usize,
    pub(crate) tokens: usize,
    pub(crate) dim: usize,
}

impl<'a, T: Element> TokenGroups<'a, T> {
    /// Wraps `z` of shape (groups, N, d). `name` is the argument name used in error messages
    /// ("Z", "ZU"). Errors: zero tokens or features, an array that is not C-contiguous. Zero
    /// groups are accepted (the results are empty). NaN or infinity is reported by the functions
    /// that read the groups, as [`Error::NonFinite`] with the first flat index.
    pub fn new(name: &'a str, z: ArrayView3<'a, T>) -> Result<Self> {
        let (count, tokens, dim) = z.dim();
        if tokens == 0 || dim == 0 {
            return Err(Error::shape(
                name,
                "at least one token and one feature per group (N >= 1, d >= 1)",
                format!("groups of shape ({tokens}, {dim})"),
            ));
        }
        Ok(TokenGroups {
            name,
            data: row_major(name, &z)?,
            count,
            tokens,
            dim,
        })
    }

    /// The values of group `g`, row-major (tokens x dim), after checking that they are finite;
    /// else the error names the first non-finite value of the whole array.
    pub(crate) fn group(&self, g: usize) -> Result<&'a [T]> {
        let size = self.tokens * self.dim;
        let values = &self.data[g * size..(g + 1) * size];
        if all_finite(values) {
            return Ok(values);
        }
        Err(check_finite(self.name, self.data)
            .err()
            .unwrap_or(Error::NonFinite {
                name: self.name.to_string(),
                index: g * size,
            }))
    }
}

/// Already-projected tokens Z_b U_k: B x K token groups of shape (N, p), group b * K + k being
/// Z_b U_k, read in place from a C-contiguous (B, K, N, p) array.
#[derive(Debug, Clone, Copy)]
pub struct ProjectedTokens<'a, T> {
    pub(crate) groups: TokenGroups<'a, T>,
    pub(crate) heads: usize,
}

impl<'a, T: Element> ProjectedTokens<'a, T> {
    /// Wraps `zu` of shape (B, K, N, p); `name` as in [`TokenGroups::new`], whose errors apply,
    /// and K must be at least 1.
    pub fn new(name: &'a str, zu: ArrayView4<'a, T>) -> Result<Self> {
        let (batch, heads, tokens, dim) = zu.dim();
        let data = row_major(name, &zu)?;
        // The same values seen as (B * K, N, p): cannot fail for the slice of a (B, K, N, p) view.
        let merged = ArrayView3::from_shape((batch * heads, tokens, dim), data)
            .map_err(|e| Error::invalid(name, e.to_string()))?;
        let groups = TokenGroups::new(name, merged)?;
        if heads == 0 {
            return Err(Error::shape(
                "heads",
                format!(
                    "a positive divisor of the number of groups ({})",
                    groups.count
                ),
                heads.to_string(),
            ));
        }
        Ok(ProjectedTokens { groups, heads })
    }
}

/// The subspaces U_1..U_K of the compressed coding rate: `heads` matrices of shape
/// (`dim`, `sub_dim`), read in place from a C-contiguous (K, d, p) array,
/// `data[(k * dim + i) * sub_dim + j]` = U_k[i, j].
#[derive(Debug, Clone, Copy)]
pub struct Subspaces<'a> {
    pub(crate) data: &'a [f64],
    pub(crate) heads: usize,
    pub(crate) dim: usize,
    pub(crate) sub_dim: usize,
}

impl<'a> Subspaces<'a> {
    /// Wraps U of shape (K, d, p). Errors: a zero axis, an array that is not C-contiguous, NaN or
    /// infinity.
    pub fn new(u: ArrayView3<'a, f64>) -> Result<Self> {
        let (heads, dim, sub_dim) = u.dim();
        if heads == 0 || dim == 0 || sub_dim == 0 {
            return Err(Error::shape(
                "U",
                "shape (K, d, p) with K, d, p >= 1",
                format!("({heads}, {dim}, {sub_dim})"),
            ));
        }
        let data = row_major("U", &u)?;
        check_finite("U", data)?;
        Ok(Subspaces {
            data,
            heads,
            dim,
            sub_dim,
        })
    }

    /// U_k, row-major (dim x sub_dim).
    pub(crate) fn head(&self, k: usize) -> &'a [f64] {
        let size = self.dim * self.sub_dim;
        &self.data[k * size..(k + 1) * size]
    }

    /// Checks that Z's feature dimension is U's d.
    pub(crate) fn check_fits<T>(&self, z: &TokenGroups<'_, T>) -> Result<()> {
        if z.dim != self.dim {
            return Err(Error::shape(
                "U",
                format!(
                    "shape (K, d, p) with d = {} (the last axis of {})",
                    z.dim, z.name
                ),
                format!("({}, {}, {})", self.heads, self.dim, self.sub_dim),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ndarray::ArrayView3;

    use super::*;

    fn view<T>(data: &[T], shape: (usize, usize, usize)) -> ArrayView3<'_, T> {
        ArrayView3::from_shape(shape, data).unwrap()
    }

    #[test]
    fn rejects_bad_shapes_and_values() {
        let data = [1.0f64; 12];
        assert!(TokenGroups::new("Z", view(&data, (2, 3, 2))).is_ok());
        let e = TokenGroups::new("Z", view(&data[..0], (2, 0, 3))).unwrap_err();
        assert!(e.to_string().starts_with("Z:"), "{e}");
        let e = TokenGroups::new("Z", view(&data, (2, 3, 2)).reversed_axes()).unwrap_err();
        assert!(
            e.to_string().starts_with("Z: expected a C-contiguous"),
            "{e}"
        );
        let mut bad = data;
        bad[7] = f64::NAN;
        bad[10] = f64::INFINITY;
        let groups = TokenGroups::new("Z", view(&bad, (2, 3, 2))).unwrap();
        assert!(groups.group(0).is_ok());
        let e = groups.group(1).unwrap_err();
        assert_eq!(
            e,
            Error::NonFinite {
                name: "Z".into(),
                index: 7
            }
        );
        let big: Vec<f32> = (0..10 * crate::error::SCAN_CHUNK + 10)
            .map(|i| if i > 100_000 { f32::INFINITY } else { 0.5 })
            .collect();
        let groups = TokenGroups::new("ZU", view(&big, (10, 1, big.len() / 10))).unwrap();
        let e = groups.group(9).map(|_| ()).unwrap_err();
        assert!(e.to_string().contains("index 100001"), "{e}");
        let e = Subspaces::new(view(&[1.0, f64::NAN], (1, 1, 2))).unwrap_err();
        assert!(e.to_string().contains("index 1"), "{e}");
        let e = Subspaces::new(view(&data, (2, 3, 2)).reversed_axes()).unwrap_err();
        assert!(
            e.to_string().starts_with("U: expected a C-contiguous"),
            "{e}"
        );
    }

    #[test]
    fn subspaces_must_fit_z() {
        let u = [0.0; 12];
        let s = Subspaces::new(view(&u, (2, 3, 2))).unwrap();
        let z = [0.0f64; 6];
        let z3 = TokenGroups::new("Z", view(&z, (1, 2, 3))).unwrap();
        assert!(s.check_fits(&z3).is_ok());
        let z2 = TokenGroups::new("Z", view(&z, (1, 3, 2))).unwrap();
        let e = s.check_fits(&z2).unwrap_err();
        assert!(e.to_string().contains("d = 2"), "{e}");
        assert!(Subspaces::new(view(&u[..0], (0, 3, 2))).is_err());
    }
}
