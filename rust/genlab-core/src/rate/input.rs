//! The arrays the rate kernels read: token groups (Z, or already-projected ZU) and subspaces (U).
//! Shapes are validated when they are wrapped; the values of U then too, those of a token group
//! when a kernel reads it (the check then runs on data already in cache, in parallel).

pub use crate::element::Element;
use crate::error::{Error, Result, all_finite, check_finite};

/// `count` matrices of `tokens` rows (tokens) by `dim` columns (features), row-major and
/// contiguous: `data[(g * tokens + i) * dim + j]` is feature j of token i in group g.
#[derive(Debug, Clone, Copy)]
pub struct TokenGroups<'a, T> {
    pub(crate) name: &'a str,
    pub(crate) data: &'a [T],
    pub(crate) count: usize,
    pub(crate) tokens: usize,
    pub(crate) dim: usize,
}

impl<'a, T: Element> TokenGroups<'a, T> {
    /// Wraps `data` as `count` groups of shape (`tokens`, `dim`). `name` is the argument name used
    /// in error messages ("Z", "ZU"). Errors: a length that does not match the shape, zero tokens
    /// or features. Zero groups are accepted (the results are empty). NaN or infinity is reported
    /// by the functions that read the groups, as [`Error::NonFinite`] with the first flat index.
    pub fn new(
        name: &'a str,
        data: &'a [T],
        count: usize,
        tokens: usize,
        dim: usize,
    ) -> Result<Self> {
        if tokens == 0 || dim == 0 {
            return Err(Error::shape(
                name,
                "at least one token and one feature per group (N >= 1, d >= 1)",
                format!("groups of shape ({tokens}, {dim})"),
            ));
        }
        let expected = count
            .checked_mul(tokens)
            .and_then(|v| v.checked_mul(dim))
            .ok_or_else(|| Error::invalid(name, "the shape overflows usize"))?;
        if data.len() != expected {
            return Err(Error::shape(
                name,
                format!("{expected} values ({count} groups of {tokens} x {dim})"),
                format!("{} values", data.len()),
            ));
        }
        Ok(TokenGroups {
            name,
            data,
            count,
            tokens,
            dim,
        })
    }

    /// Number of groups.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Tokens (rows) per group.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// Features (columns) per token.
    pub fn dim(&self) -> usize {
        self.dim
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

/// The subspaces U_1..U_K of the compressed coding rate: `heads` matrices of shape
/// (`dim`, `sub_dim`), row-major and contiguous, `data[(k * dim + i) * sub_dim + j]` = U_k[i, j].
#[derive(Debug, Clone, Copy)]
pub struct Subspaces<'a> {
    pub(crate) data: &'a [f64],
    pub(crate) heads: usize,
    pub(crate) dim: usize,
    pub(crate) sub_dim: usize,
}

impl<'a> Subspaces<'a> {
    /// Wraps U of shape (`heads`, `dim`, `sub_dim`). Errors: a length that does not match, a zero
    /// axis, NaN or infinity.
    pub fn new(data: &'a [f64], heads: usize, dim: usize, sub_dim: usize) -> Result<Self> {
        if heads == 0 || dim == 0 || sub_dim == 0 {
            return Err(Error::shape(
                "U",
                "shape (K, d, p) with K, d, p >= 1",
                format!("({heads}, {dim}, {sub_dim})"),
            ));
        }
        let expected = heads * dim * sub_dim;
        if data.len() != expected {
            return Err(Error::shape(
                "U",
                format!("{expected} values ({heads} x {dim} x {sub_dim})"),
                format!("{} values", data.len()),
            ));
        }
        check_finite("U", data)?;
        Ok(Subspaces {
            data,
            heads,
            dim,
            sub_dim,
        })
    }

    /// Number of subspaces K.
    pub fn heads(&self) -> usize {
        self.heads
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
    use super::*;

    #[test]
    fn rejects_bad_shapes_and_values() {
        let data = [1.0f64; 12];
        assert!(TokenGroups::new("Z", &data, 2, 3, 2).is_ok());
        let e = TokenGroups::new("Z", &data, 2, 3, 3).unwrap_err();
        assert!(e.to_string().contains("18 values"), "{e}");
        let e = TokenGroups::new("Z", &data[..0], 2, 0, 3).unwrap_err();
        assert!(e.to_string().starts_with("Z:"), "{e}");
        let mut bad = data;
        bad[7] = f64::NAN;
        bad[10] = f64::INFINITY;
        let groups = TokenGroups::new("Z", &bad, 2, 3, 2).unwrap();
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
        let groups = TokenGroups::new("ZU", &big, 10, 1, big.len() / 10).unwrap();
        let e = groups.group(9).map(|_| ()).unwrap_err();
        assert!(e.to_string().contains("index 100001"), "{e}");
        let e = Subspaces::new(&[1.0, f64::NAN], 1, 1, 2).unwrap_err();
        assert!(e.to_string().contains("index 1"), "{e}");
    }

    #[test]
    fn subspaces_must_fit_z() {
        let u = [0.0; 12];
        let s = Subspaces::new(&u, 2, 3, 2).unwrap();
        let z = [0.0f64; 6];
        let z3 = TokenGroups::new("Z", &z, 1, 2, 3).unwrap();
        assert!(s.check_fits(&z3).is_ok());
        let z2 = TokenGroups::new("Z", &z, 1, 3, 2).unwrap();
        let e = s.check_fits(&z2).unwrap_err();
        assert!(e.to_string().contains("d = 2"), "{e}");
        assert!(Subspaces::new(&u, 0, 3, 2).is_err());
    }
}
