//! Coding rates and sparse rate reduction over many token groups (CRATE, Yu et al. 2023; SRR
//! measure, Hu et al. 2024). Formulas and conventions: `docs/formulas/rate.md`.
//!
//! A group is a matrix Z of N tokens (rows) by d features. Like every multi-dimensional array of
//! the core, the groups enter as ndarray views (here C-contiguous): [`TokenGroups`] from a
//! (groups, N, d) view, [`ProjectedTokens`] from (B, K, N, p), [`Subspaces`] from (K, d, p). With
//! `eps` the distortion epsilon (not epsilon^2):
//!
//! - [`coding_rate`]: R(Z) = 1/2 logdet(I + d/(N eps^2) Z^T Z);
//! - [`compressed_coding_rate`]: R^c(Z; U) = sum_k 1/2 logdet(I + p/(N eps^2) (Z U_k)^T (Z U_k)),
//!   U_k of shape (d, p); [`compressed_coding_rate_projected`] takes the projections Z U_k;
//! - [`rate_reduction`]: R - R^c;
//! - [`sparse_rate_reduction`]: R - R^c - lam * sparsity, the objective CRATE maximizes;
//! - [`srr_measure`]: lam * sparsity + R^c - R, the per-layer measure of Hu et al. (lower is
//!   better), the negative of [`sparse_rate_reduction`];
//! - [`sparsity`]: per-token sparsity, ||Z||_0 / N (nonzeros per token) or ||Z||_1 / N.
//!
//! Every log-determinant is taken from the Cholesky factor of the smaller Gram side (N x N or
//! d x d), in float64 whatever the input type. Groups run in parallel (rayon), each factorization
//! sequentially.

mod input;
mod kernel;

use faer::{Accum, MatMut, MatRef, Par};

use crate::element::Element;
use crate::error::{Error, Result, parse_option};
pub use input::{ProjectedTokens, Subspaces, TokenGroups};
use kernel::{HalfLogdet, Workspace, half_logdet_shifted_gram, logdet_flops, map_groups};
pub use kernel::{JITTER_TRIES, jitter_scale};

/// Options shared by every rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateOptions {
    /// The distortion epsilon (not epsilon^2): the constant is dim / (N eps^2).
    pub(crate) eps: f64,
    /// Scale every token (per head for R^c) to unit l2 norm before coding it, CRATE's measurement
    /// convention. Zero tokens stay zero.
    pub(crate) normalize_tokens: bool,
}

impl RateOptions {
    /// Validated options: `eps` must be finite and positive.
    pub fn new(eps: f64, normalize_tokens: bool) -> Result<Self> {
        if !(eps.is_finite() && eps > 0.0) {
            return Err(Error::invalid(
                "eps",
                format!("expected a finite number > 0 (epsilon, not epsilon^2), got {eps}"),
            ));
        }
        Ok(RateOptions {
            eps,
            normalize_tokens,
        })
    }

    /// The constant a = dim / (N eps^2) of a coded matrix with N rows and dim columns.
    fn scale(&self, tokens: usize, dim: usize) -> f64 {
        dim as f64 / (tokens as f64 * self.eps * self.eps)
    }
}

/// Which sparsity term: both are normalized per token (divided by N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sparsity {
    /// ||Z||_0 / N: the mean number of nonzero entries per token (in [0, d]).
    L0,
    /// ||Z||_1 / N: the mean l1 norm of a token (the differentiable relaxation).
    L1,
}

impl Sparsity {
    /// From "l0" or "l1".
    pub fn parse(value: &str) -> Result<Self> {
        parse_option(
            "sparsity",
            value,
            &[("l0", Sparsity::L0), ("l1", Sparsity::L1)],
        )
    }
}

/// One value per output group, and how many factorizations needed a diagonal jitter (callers
/// warn when it is not zero).
#[derive(Debug, Clone, PartialEq)]
pub struct Rates {
    /// One value per group (per batch element).
    pub values: Vec<f64>,
    /// Number of log-determinants that needed a jitter to factor.
    pub jittered_groups: usize,
}

fn jittered_count(parts: &[HalfLogdet]) -> usize {
    parts.iter().filter(|p| p.jittered).count()
}

/// The values of `src` as f64, normalized by rows of length `dim` when asked: `src` itself when it
/// already is f64 and needs no normalization, else a copy in `buffer`.
fn load_tokens<'a, T: Element>(
    buffer: &'a mut Vec<f64>,
    src: &'a [T],
    dim: usize,
    normalize: bool,
) -> &'a [f64] {
    if let (false, Some(values)) = (normalize, T::as_f64(src)) {
        return values;
    }
    buffer.clear();
    buffer.extend(src.iter().map(|&v| v.into()));
    if normalize {
        kernel::normalize_rows(buffer, dim);
    }
    buffer
}

/// 1/2 logdet(I + a X^T X) of every group of `z` as it is, a = dim / (N eps^2).
fn group_rates<T: Element>(z: &TokenGroups<'_, T>, opts: &RateOptions) -> Result<Vec<HalfLogdet>> {
    let (n, d) = (z.tokens, z.dim);
    let a = opts.scale(n, d);
    map_groups(z.count, logdet_flops(n, d), |ws: &mut Workspace, g| {
        let tokens = load_tokens(&mut ws.tokens, z.group(g)?, d, opts.normalize_tokens);
        let x = MatRef::from_row_major_slice(tokens, n, d);
        half_logdet_shifted_gram(z.name, x, a, &mut ws.factor)
    })
    .into_iter()
    .collect()
}

/// The coding rate R(Z) = 1/2 logdet(I + d/(N eps^2) Z^T Z) of every group of `z`.
pub fn coding_rate<T: Element>(z: &TokenGroups<'_, T>, opts: &RateOptions) -> Result<Rates> {
    let parts = group_rates(z, opts)?;
    Ok(Rates {
        values: parts.iter().map(|p| p.value).collect(),
        jittered_groups: jittered_count(&parts),
    })
}

/// Sums consecutive runs of `heads` per-head rates into one value per batch element.
fn sum_heads(parts: &[HalfLogdet], heads: usize) -> Rates {
    Rates {
        values: parts
            .chunks_exact(heads)
            .map(|c| c.iter().map(|p| p.value).sum())
            .collect(),
        jittered_groups: jittered_count(parts),
    }
}

/// The compressed coding rate of already-projected tokens: `zu` holds the B x K groups Z_b U_k
/// of shape (N, p). Returns one value per b:
/// sum_k 1/2 logdet(I + p/(N eps^2) (Z_b U_k)^T (Z_b U_k)).
pub fn compressed_coding_rate_projected<T: Element>(
    zu: &ProjectedTokens<'_, T>,
    opts: &RateOptions,
) -> Result<Rates> {
    Ok(sum_heads(&group_rates(&zu.groups, opts)?, zu.heads))
}

/// The compressed coding rate R^c(Z; U) = sum_k 1/2 logdet(I + p/(N eps^2) (Z U_k)^T (Z U_k)) of
/// every group of `z`, each projection computed on the fly (one group per (b, k) pair).
pub fn compressed_coding_rate<T: Element>(
    z: &TokenGroups<'_, T>,
    u: &Subspaces<'_>,
    opts: &RateOptions,
) -> Result<Rates> {
    u.check_fits(z)?;
    let (n, d, p, heads) = (z.tokens, z.dim, u.sub_dim, u.heads);
    let a = opts.scale(n, p);
    let flops = (n * d * p) as f64 + logdet_flops(n, p);
    let parts = map_groups(z.count * heads, flops, |ws: &mut Workspace, g| {
        let (b, k) = (g / heads, g % heads);
        let source = load_tokens(&mut ws.source, z.group(b)?, d, false);
        ws.tokens.resize(n * p, 0.0);
        let mut x = MatMut::from_row_major_slice_mut(&mut ws.tokens, n, p);
        faer::linalg::matmul::matmul(
            x.as_mut(),
            Accum::Replace,
            MatRef::from_row_major_slice(source, n, d),
            MatRef::from_row_major_slice(u.head(k), d, p),
            1.0,
            Par::Seq,
        );
        if opts.normalize_tokens {
            kernel::normalize_rows(&mut ws.tokens, p);
        }
        let x = MatRef::from_row_major_slice(&ws.tokens, n, p);
        half_logdet_shifted_gram(z.name, x, a, &mut ws.factor)
    })
    .into_iter()
    .collect::<Result<Vec<_>>>()?;
    Ok(sum_heads(&parts, heads))
}

/// The rate reduction R(Z) - R^c(Z; U) of every group.
pub fn rate_reduction<T: Element>(
    z: &TokenGroups<'_, T>,
    u: &Subspaces<'_>,
    opts: &RateOptions,
) -> Result<Rates> {
    let compressed = compressed_coding_rate(z, u, opts)?;
    let full = coding_rate(z, opts)?;
    Ok(Rates {
        values: full
            .values
            .iter()
            .zip(&compressed.values)
            .map(|(r, rc)| r - rc)
            .collect(),
        jittered_groups: full.jittered_groups + compressed.jittered_groups,
    })
}

/// The sparsity of every group, normalized per token: ||Z||_0 / N (entries different from zero)
/// or ||Z||_1 / N. Computed on the tokens as given (`normalize_tokens` does not apply).
pub fn sparsity<T: Element>(z: &TokenGroups<'_, T>, kind: Sparsity) -> Result<Vec<f64>> {
    let n = z.tokens;
    map_groups(z.count, (n * z.dim) as f64, |_, g| {
        let values = z.group(g)?.iter().map(|&v| Into::<f64>::into(v));
        Ok(match kind {
            Sparsity::L0 => values.filter(|v| *v != 0.0).count() as f64 / n as f64,
            Sparsity::L1 => {
                let total: f64 = values.clone().map(f64::abs).sum();
                if total.is_finite() {
                    total / n as f64
                } else {
                    // The sum of finite values overflowed; the mean per token may not.
                    values.map(|v| v.abs() / n as f64).sum()
                }
            }
        })
    })
    .into_iter()
    .collect()
}

fn check_lam(lam: f64) -> Result<()> {
    if !(lam.is_finite() && lam >= 0.0) {
        return Err(Error::invalid(
            "lam",
            format!("expected a finite number >= 0 (the weight of the sparsity term), got {lam}"),
        ));
    }
    Ok(())
}

/// The sparse rate reduction R(Z) - R^c(Z; U) - lam * sparsity(Z), the objective CRATE
/// maximizes, of every group.
pub fn sparse_rate_reduction<T: Element>(
    z: &TokenGroups<'_, T>,
    u: &Subspaces<'_>,
    opts: &RateOptions,
    lam: f64,
    kind: Sparsity,
) -> Result<Rates> {
    check_lam(lam)?;
    let reduction = rate_reduction(z, u, opts)?;
    let sparse = sparsity(z, kind)?;
    Ok(Rates {
        values: reduction
            .values
            .iter()
            .zip(&sparse)
            .map(|(dr, s)| dr - lam * s)
            .collect(),
        jittered_groups: reduction.jittered_groups,
    })
}

/// The per-layer SRR measure of Hu et al. (2024), lam * sparsity(Z) + R^c(Z; U) - R(Z) (lower is
/// better; with lam = 1 the paper's ||Z||_0 + R^c - R): the negative of [`sparse_rate_reduction`].
pub fn srr_measure<T: Element>(
    z: &TokenGroups<'_, T>,
    u: &Subspaces<'_>,
    opts: &RateOptions,
    lam: f64,
    kind: Sparsity,
) -> Result<Rates> {
    let mut rates = sparse_rate_reduction(z, u, opts, lam, kind)?;
    rates.values.iter_mut().for_each(|v| *v = -*v);
    Ok(rates)
}

#[cfg(test)]
mod tests;
