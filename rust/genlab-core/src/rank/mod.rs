//! Ranking complexity measures against generalization: Kendall's tau with scipy's semantics (and
//! tau-a), its batched forms, the granulated Kendall coefficient, the
//! conditional-mutual-information score and the robust sign-error.
//!
//! Formulas: `docs/formulas/ranking.md`. As everywhere in the core, 1-D data (measures, gaps,
//! group ids) enters as a slice and every multi-dimensional array as an ndarray view: X of the
//! batched forms is an `ArrayView2` (n observations, m columns; any strides), hyperparameters an
//! `ArrayView2<i64>` of integer codes (one column per axis), already encoded by the caller.

pub mod across;
pub mod cmi;
pub mod counts;
mod gram;
pub mod granulated;
pub mod grid;
mod pvalue;
mod radix;
pub mod resampled;
pub mod sign_error;

use std::borrow::Cow;

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::error::{Error, Result, format_bytes, parse_option};
use counts::{
    KendallWorkspace, PairCounts, Ranked, Scratch, pair_counts, pair_counts_against, pair_counts_in,
};

/// Which normalization of C - D.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// tau-a: (C - D) / (n(n-1)/2) (Jiang et al. 2020).
    A,
    /// tau-b: (C - D) / sqrt((C + D + T_x)(C + D + T_y)) (scipy's default).
    B,
    /// tau-c (Stuart): 2 m (C - D) / (n^2 (m - 1)).
    C,
}

/// How the p-value is computed (scipy's `method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Exact when there are no ties and n <= 33 (or the statistic is at the very edge), else
    /// asymptotic.
    Auto,
    /// Exact null distribution; an error when there are ties.
    Exact,
    /// Normal approximation with the tie-corrected variance.
    Asymptotic,
}

/// Alternative hypothesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    /// tau != 0.
    TwoSided,
    /// tau < 0.
    Less,
    /// tau > 0.
    Greater,
}

/// What to do with NaN in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NanPolicy {
    /// The result is NaN.
    Propagate,
    /// Drop every pair in which either value is NaN.
    Omit,
    /// Return an error.
    Raise,
}

impl Variant {
    /// From "a", "b" or "c".
    pub fn parse(value: &str) -> Result<Self> {
        parse_option(
            "variant",
            value,
            &[("a", Variant::A), ("b", Variant::B), ("c", Variant::C)],
        )
    }
}

impl Method {
    /// From "auto", "exact" or "asymptotic".
    pub fn parse(value: &str) -> Result<Self> {
        parse_option(
            "method",
            value,
            &[
                ("auto", Method::Auto),
                ("exact", Method::Exact),
                ("asymptotic", Method::Asymptotic),
            ],
        )
    }
}

impl Alternative {
    /// From "two-sided", "less" or "greater".
    pub fn parse(value: &str) -> Result<Self> {
        parse_option(
            "alternative",
            value,
            &[
                ("two-sided", Alternative::TwoSided),
                ("less", Alternative::Less),
                ("greater", Alternative::Greater),
            ],
        )
    }
}

impl NanPolicy {
    /// From "propagate", "omit" or "raise".
    pub fn parse(value: &str) -> Result<Self> {
        parse_option(
            "nan_policy",
            value,
            &[
                ("propagate", NanPolicy::Propagate),
                ("omit", NanPolicy::Omit),
                ("raise", NanPolicy::Raise),
            ],
        )
    }
}

/// Options of a Kendall tau computation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TauOptions {
    /// Normalization.
    pub variant: Variant,
    /// p-value method.
    pub method: Method,
    /// Alternative hypothesis.
    pub alternative: Alternative,
    /// NaN handling.
    pub nan_policy: NanPolicy,
}

impl Default for TauOptions {
    fn default() -> Self {
        TauOptions {
            variant: Variant::B,
            method: Method::Auto,
            alternative: Alternative::TwoSided,
            nan_policy: NanPolicy::Propagate,
        }
    }
}

/// Statistic and p-value, plus the number of pairs (x_i, y_i) actually used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TauResult {
    /// Kendall's tau (of the requested variant).
    pub statistic: f64,
    /// p-value for the null tau = 0.
    pub pvalue: f64,
    /// Observations used (after NaN omission).
    pub n_used: u64,
}

impl TauResult {
    fn nan(n_used: u64) -> Self {
        TauResult {
            statistic: f64::NAN,
            pvalue: f64::NAN,
            n_used,
        }
    }
}

/// Kendall's tau of the requested variant from pair counts. NaN when undefined (n < 2; for tau-b
/// and tau-c also when x or y is constant). tau-a of a constant variable is 0 (sign(0) = 0).
pub fn statistic(c: &PairCounts, variant: Variant) -> f64 {
    let total = c.total_pairs();
    if total == 0 {
        return f64::NAN;
    }
    let cmd = c.concordant_minus_discordant() as f64;
    let tau = match variant {
        Variant::A => cmd / total as f64,
        _ if c.x_ties == total || c.y_ties == total => return f64::NAN,
        // One square root of the product (not scipy's two divisions) so that tau(x, x) is exactly
        // 1; the two forms agree to about one unit in the last place.
        Variant::B => {
            cmd / (((total - c.x_ties) as u128 * (total - c.y_ties) as u128) as f64).sqrt()
        }
        Variant::C => {
            let m = c.distinct_x.min(c.distinct_y) as u128;
            let n = c.n as u128;
            2.0 * cmd / ((n * n * (m - 1)) as f64 / m as f64)
        }
    };
    tau.clamp(-1.0, 1.0)
}

/// p-value from pair counts (the same for every variant: it depends on C - D only).
pub(crate) fn pvalue(c: &PairCounts, method: Method, alternative: Alternative) -> Result<f64> {
    let total = c.total_pairs();
    if total == 0 || c.x_ties == total || c.y_ties == total {
        return Ok(f64::NAN);
    }
    let ties = c.x_ties != 0 || c.y_ties != 0;
    let exact = match method {
        Method::Exact if ties => {
            return Err(Error::invalid(
                "method",
                "ties found, the exact method cannot be used; use method=\"asymptotic\" or \
                 \"auto\"",
            ));
        }
        Method::Exact => true,
        Method::Asymptotic => false,
        Method::Auto => !ties && (c.n <= 33 || c.discordant.min(total - c.discordant) <= 1),
    };
    if exact {
        pvalue::exact(c.n, total - c.discordant, alternative)
    } else {
        Ok(pvalue::asymptotic(c, alternative))
    }
}

/// Statistic and p-value from pair counts.
pub(crate) fn tau_from_counts(c: &PairCounts, opts: &TauOptions) -> Result<TauResult> {
    Ok(TauResult {
        statistic: statistic(c, opts.variant),
        pvalue: pvalue(c, opts.method, opts.alternative)?,
        n_used: c.n,
    })
}

/// An error naming `y_name` when its length is not that of `x_name`.
fn check_same_length(x_len: usize, y_len: usize, x_name: &str, y_name: &str) -> Result<()> {
    if x_len != y_len {
        return Err(Error::shape(
            y_name,
            format!("the same length as {x_name} ({x_len})"),
            format!("length {y_len}"),
        ));
    }
    Ok(())
}

/// Paired observations after the NaN policy: borrowed when nothing was dropped.
type Paired<'a> = (Cow<'a, [f64]>, Cow<'a, [f64]>);

/// Applies the NaN policy to a pair of arrays: `None` means "the result is NaN" (propagate),
/// otherwise the (possibly filtered) arrays.
fn apply_nan_policy<'a>(
    x: &'a [f64],
    y: &'a [f64],
    policy: NanPolicy,
    x_name: &str,
    y_name: &str,
) -> Result<Option<Paired<'a>>> {
    let x_nan = x.iter().any(|v| v.is_nan());
    let y_nan = y.iter().any(|v| v.is_nan());
    if !x_nan && !y_nan {
        return Ok(Some((Cow::Borrowed(x), Cow::Borrowed(y))));
    }
    match policy {
        NanPolicy::Propagate => Ok(None),
        NanPolicy::Raise => Err(Error::invalid(
            if x_nan { x_name } else { y_name },
            "the input contains NaN (nan_policy=\"raise\"); use nan_policy=\"omit\" to drop \
             those pairs",
        )),
        NanPolicy::Omit => {
            let (fx, fy): (Vec<f64>, Vec<f64>) = x
                .iter()
                .zip(y)
                .filter(|(a, b)| !a.is_nan() && !b.is_nan())
                .map(|(a, b)| (*a, *b))
                .unzip();
            Ok(Some((Cow::Owned(fx), Cow::Owned(fy))))
        }
    }
}

/// Kendall's tau of x and y with scipy's semantics (see [`TauOptions`]).
pub fn kendalltau(x: &[f64], y: &[f64], opts: &TauOptions) -> Result<TauResult> {
    kendalltau_in(x, y, opts, &mut KendallWorkspace::default())
}

/// [`kendalltau`] with the large-n count's scratch memory from `workspace` (see
/// [`KendallWorkspace`]: a caller that counts many times keeps one to skip fresh allocations).
pub fn kendalltau_in(
    x: &[f64],
    y: &[f64],
    opts: &TauOptions,
    workspace: &mut KendallWorkspace,
) -> Result<TauResult> {
    check_same_length(x.len(), y.len(), "x", "y")?;
    let Some((x, y)) = apply_nan_policy(x, y, opts.nan_policy, "x", "y")? else {
        return Ok(TauResult::nan(x.len() as u64));
    };
    if x.len() < 2 {
        return Ok(TauResult::nan(x.len() as u64));
    }
    tau_from_counts(&pair_counts_in(&x, &y, workspace), opts)
}

/// The columns of X (n observations, m columns; any strides), each copied to its own vector.
pub(crate) fn columns_of(x: ArrayView2<'_, f64>) -> Vec<Vec<f64>> {
    x.columns().into_iter().map(|c| c.to_vec()).collect()
}

/// Which columns of X hold a NaN; under [`NanPolicy::Raise`], an error naming the first one.
fn columns_with_nan(columns: &[Vec<f64>], nan_policy: NanPolicy) -> Result<Vec<bool>> {
    let has_nan: Vec<bool> = columns
        .iter()
        .map(|c| c.iter().any(|v| v.is_nan()))
        .collect();
    match has_nan.iter().position(|&b| b) {
        Some(j) if nan_policy == NanPolicy::Raise => Err(Error::invalid(
            "X",
            format!("column {j} contains NaN (nan_policy=\"raise\")"),
        )),
        _ => Ok(has_nan),
    }
}

/// Kendall's tau of every column of X (n observations, m columns) against `y` (n), in parallel
/// over columns. `y` is ranked once.
pub fn kendalltau_many(
    x: ArrayView2<'_, f64>,
    y: &[f64],
    opts: &TauOptions,
) -> Result<Vec<TauResult>> {
    if x.ncols() > 0 {
        check_same_length(y.len(), x.nrows(), "y", "X")?;
    }
    let y_has_nan = y.iter().any(|v| v.is_nan());
    if y_has_nan && opts.nan_policy == NanPolicy::Raise {
        return Err(Error::invalid(
            "y",
            "the input contains NaN (nan_policy=\"raise\")",
        ));
    }
    let columns = columns_of(x);
    let col_has_nan = columns_with_nan(&columns, opts.nan_policy)?;
    // Columns without NaN share y's ranking (when y has none either); the rest go one by one.
    let shared: Vec<usize> = if y_has_nan || y.len() < 2 {
        Vec::new()
    } else {
        (0..columns.len()).filter(|&j| !col_has_nan[j]).collect()
    };
    let mut results = vec![TauResult::nan(y.len() as u64); columns.len()];
    if !shared.is_empty() {
        let ranked_y = Ranked::new(y);
        let cols: Vec<&[f64]> = shared.iter().map(|&j| columns[j].as_slice()).collect();
        let counts = pair_counts_against(&cols, &ranked_y);
        for (&j, c) in shared.iter().zip(&counts) {
            results[j] = tau_from_counts(c, opts)?;
        }
    }
    // `shared` is sorted, so membership is a binary search.
    let rest: Vec<usize> = (0..columns.len())
        .filter(|j| shared.binary_search(j).is_err())
        .collect();
    let rest_results: Vec<Result<TauResult>> = rest
        .par_iter()
        .map(|&j| kendalltau(&columns[j], y, opts))
        .collect();
    for (&j, r) in rest.iter().zip(rest_results) {
        results[j] = r?;
    }
    Ok(results)
}

/// Refuses a [`kendalltau_matrix`] of m columns of n observations whose working memory (the m x m
/// output and the list of column pairs, 8 + 8 bytes per entry, and each column's copy and ranks)
/// would exceed `memory_limit` bytes.
pub(crate) fn check_matrix_size(m: usize, n: usize, memory_limit: f64) -> Result<()> {
    let needed = 16.0 * (m as f64) * (m as f64) + 24.0 * (m as f64) * (n as f64);
    if needed <= memory_limit {
        return Ok(());
    }
    Err(Error::TooLarge {
        what: format!("X: the {m} x {m} matrix of pairwise Kendall taus"),
        needed: format_bytes(needed),
        advice: format!(
            "the limit is {}; compute it in blocks of columns (the taus of X[:, a:b] against \
             X[:, c:d] are a block of the matrix), or kendalltau_many(X, y) against one target",
            format_bytes(memory_limit)
        ),
    })
}

/// The m x m matrix of pairwise Kendall taus between the columns of X (n observations, m
/// columns), pandas' `corr("kendall")` semantics: pairwise-complete observations under
/// [`NanPolicy::Omit`], 1 on the diagonal whenever the column has at least one value, NaN where
/// undefined.
///
/// The output grows as m^2: a matrix whose working memory would exceed `memory_limit` bytes is
/// refused before anything is allocated, the copies of the columns included.
pub fn kendalltau_matrix(
    x: ArrayView2<'_, f64>,
    variant: Variant,
    nan_policy: NanPolicy,
    memory_limit: f64,
) -> Result<Array2<f64>> {
    let (n, m) = x.dim();
    check_matrix_size(m, n, memory_limit)?;
    let columns = columns_of(x);
    let has_nan = columns_with_nan(&columns, nan_policy)?;
    let ranked: Vec<Option<Ranked>> = columns
        .par_iter()
        .zip(&has_nan)
        .map(|(c, &nan)| (!nan && n >= 2).then(|| Ranked::new(c)))
        .collect();
    let pairs: Vec<(usize, usize)> = (0..m)
        .flat_map(|i| ((i + 1)..m).map(move |j| (i, j)))
        .collect();
    let opts = TauOptions {
        variant,
        nan_policy,
        ..TauOptions::default()
    };
    // Tie-free columns share one binary-Gram count of their discordant pairs when that is faster.
    let tie_free: Vec<usize> = (0..m)
        .filter(|&c| ranked[c].as_ref().is_some_and(|r| !r.has_ties()))
        .collect();
    let mut gram_slot: Vec<Option<usize>> = vec![None; m];
    for (slot, &c) in tie_free.iter().enumerate() {
        gram_slot[c] = Some(slot);
    }
    let tie_free_ranks: Vec<&[u32]> = tie_free
        .iter()
        .filter_map(|&c| ranked[c].as_ref().map(|r| r.ranks.as_slice()))
        .collect();
    let gram_counts = gram::discordant_gram_if_faster(&tie_free_ranks);
    let values: Vec<f64> = pairs
        .par_iter()
        .map_init(Scratch::default, |scratch, &(i, j)| {
            match (&ranked[i], &ranked[j]) {
                (Some(ri), Some(rj)) => {
                    let counts = match (&gram_counts, gram_slot[i], gram_slot[j]) {
                        (Some(d), Some(si), Some(sj)) => {
                            PairCounts::of_ranked(ri, rj, d[si * tie_free.len() + sj], 0)
                        }
                        _ => counts::pair_counts_ranked(ri, rj, scratch),
                    };
                    statistic(&counts, variant)
                }
                _ => kendalltau_statistic_only(&columns[i], &columns[j], &opts),
            }
        })
        .collect();
    let mut out = Array2::from_elem((m, m), f64::NAN);
    for (&(i, j), &v) in pairs.iter().zip(&values) {
        out[[i, j]] = v;
        out[[j, i]] = v;
    }
    for (i, col) in columns.iter().enumerate() {
        let valid = match nan_policy {
            NanPolicy::Omit => col.iter().any(|v| !v.is_nan()),
            _ => n >= 1 && !has_nan[i],
        };
        out[[i, i]] = if valid { 1.0 } else { f64::NAN };
    }
    Ok(out)
}

fn kendalltau_statistic_only(x: &[f64], y: &[f64], opts: &TauOptions) -> f64 {
    match apply_nan_policy(x, y, opts.nan_policy, "x", "y") {
        Ok(Some((fx, fy))) if fx.len() >= 2 => statistic(&pair_counts(&fx, &fy), opts.variant),
        _ => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use ndarray::ShapeBuilder;

    use super::*;

    #[test]
    fn spec_example_all_variants() {
        // x = [1,1,2,3], y = [1,2,3,4]: tau-a 0.8333, tau-b 0.9129, tau-c 0.9375
        // (docs/formulas/ranking.md).
        let x = [1.0, 1.0, 2.0, 3.0];
        let y = [1.0, 2.0, 3.0, 4.0];
        let c = pair_counts(&x, &y);
        assert!((statistic(&c, Variant::A) - 5.0 / 6.0).abs() < 1e-15);
        assert!((statistic(&c, Variant::B) - 0.912_870_929_175_277).abs() < 1e-15);
        assert!((statistic(&c, Variant::C) - 0.9375).abs() < 1e-15);
        // scipy: pvalue 0.07095149242730563 (asymptotic, ties present).
        let p = pvalue(&c, Method::Auto, Alternative::TwoSided).unwrap();
        assert!((p - 0.070_951_492_427_305_63).abs() < 1e-15);
    }

    #[test]
    fn degenerate_inputs_give_nan() {
        let opts = TauOptions::default();
        assert!(
            kendalltau(&[1.0], &[2.0], &opts)
                .unwrap()
                .statistic
                .is_nan()
        );
        let r = kendalltau(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0], &opts).unwrap();
        assert!(r.statistic.is_nan() && r.pvalue.is_nan());
        let a = TauOptions {
            variant: Variant::A,
            ..opts
        };
        assert_eq!(
            kendalltau(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0], &a)
                .unwrap()
                .statistic,
            0.0
        );
    }

    #[test]
    fn nan_policies() {
        let x = [1.0, 2.0, f64::NAN, 4.0];
        let y = [1.0, 2.0, 3.0, 5.0];
        let mut opts = TauOptions::default();
        assert!(kendalltau(&x, &y, &opts).unwrap().statistic.is_nan());
        opts.nan_policy = NanPolicy::Omit;
        let r = kendalltau(&x, &y, &opts).unwrap();
        assert_eq!((r.statistic, r.n_used), (1.0, 3));
        opts.nan_policy = NanPolicy::Raise;
        assert!(kendalltau(&x, &y, &opts).is_err());
    }

    #[test]
    fn options_parse_with_clear_errors() {
        assert_eq!(Variant::parse("c").unwrap(), Variant::C);
        let e = Method::parse("fast").unwrap_err().to_string();
        assert_eq!(
            e,
            "method: expected one of \"auto\", \"exact\", \"asymptotic\", got \"fast\""
        );
        assert!(Alternative::parse("two_sided").is_err());
        assert_eq!(NanPolicy::parse("omit").unwrap(), NanPolicy::Omit);
    }

    #[test]
    fn exact_refuses_ties() {
        let opts = TauOptions {
            method: Method::Exact,
            ..TauOptions::default()
        };
        assert!(kendalltau(&[1.0, 1.0, 2.0], &[1.0, 2.0, 3.0], &opts).is_err());
    }

    #[test]
    fn matrix_matches_pairwise_calls() {
        let cols: Vec<Vec<f64>> = (0..4)
            .map(|j| {
                (0..60)
                    .map(|i| {
                        ((i * (j + 3) * 7919) % 61) as f64
                            + if j == 2 { (i % 3) as f64 } else { 0.0 }
                    })
                    .collect()
            })
            .collect();
        let x = Array2::from_shape_fn((60, 4), |(i, j)| cols[j][i]);
        let mat = kendalltau_matrix(x.view(), Variant::B, NanPolicy::Omit, f64::INFINITY).unwrap();
        for i in 0..4 {
            for j in 0..4 {
                let expected = if i == j {
                    1.0
                } else {
                    kendalltau(&cols[i], &cols[j], &TauOptions::default())
                        .unwrap()
                        .statistic
                };
                assert!((mat[[i, j]] - expected).abs() < 1e-15);
            }
        }
        // Any strides: the same matrix (and the same taus against one column) from a
        // column-major copy.
        let fortran = Array2::from_shape_fn((60, 4).f(), |(i, j)| cols[j][i]);
        assert!(!fortran.is_standard_layout());
        let again = kendalltau_matrix(fortran.view(), Variant::B, NanPolicy::Omit, f64::INFINITY);
        assert_eq!(again.unwrap(), mat);
        let opts = TauOptions::default();
        let many = kendalltau_many(fortran.view(), &cols[1], &opts).unwrap();
        assert_eq!(many, kendalltau_many(x.view(), &cols[1], &opts).unwrap());
        assert_eq!(many[1].statistic, 1.0);
    }
}
