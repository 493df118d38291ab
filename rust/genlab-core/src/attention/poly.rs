//! The polynomial method (Alman and Song, ICLR 2024), made concrete.
//!
//! exp(t) on [-T, T] is replaced by p(t) = sum_m a_m t^m (Taylor, or a Chebyshev interpolant
//! converted to monomials). With x_l = s q_l k1_l k2_l, the multinomial expansion of
//! p(sum_l x_l) over multi-indices alpha (|alpha| <= g) factorizes the n x n^2 weight matrix:
//!
//! p(s <q_i, k1_j, k2_k>) = sum_alpha w_alpha (s q_i)^alpha k1_j^alpha k2_k^alpha,
//! w_alpha = a_|alpha| |alpha|! / alpha!,
//!
//! with rank r = C(d + g, g). Appending a column of ones to V1 and V2 (its output column is the
//! softmax denominator z_i), the output for query i is
//!
//! O_i = [sum_alpha w_alpha (s q_i)^alpha A_i[alpha] * B_i[alpha]] / z_i,
//! A_i = sum_{j seen by i} k1_j^alpha (v1_j, 1), B_i = sum_{k seen by i} k2_k^alpha (v2_k, 1),
//!
//! O(n r dv) time and no n^2 object. Without a mask A and B are the same for every query; with a
//! causal or windowed mask they are running sums. Long running sums with subtractions lose
//! accuracy, so the states are rebuilt at the start of every block of queries from per-block
//! totals (additions only) and slide only inside a block.
//!
//! The error is governed by the logit range T, not by d: if p(t) / e^t - 1 lies in [lo, hi] on
//! [-T, T] with lo > -1, then every output entry is within (hi - lo) / (1 + lo) times
//! max_{j,k} |v1_j v2_k| of the exact one (the weights' relative errors cancel in the normalized
//! sum up to their spread). [`plan_polynomial`] picks the degree from a tolerance with that bound,
//! and refuses tolerances it cannot reach.

use rayon::prelude::*;

use super::{Dims, Mask, TensorInputs, check_scale, logit_bound};
use crate::error::{Error, Result, format_bytes, parse_option};

/// Highest degree considered: beyond it the monomial form of a Chebyshev interpolant loses more
/// to rounding than the degree gains, and ranks are out of reach for any useful d.
pub const MAX_DEGREE: usize = 32;
/// Smallest half-width of the fitting interval. A narrower logit range is fitted on this one:
/// the fit stays valid, and dividing by T^m cannot overflow.
const MIN_HALF_WIDTH: f64 = 0.125;
/// Points (Chebyshev-spaced) at which a fit's relative error is measured.
const ERROR_GRID: usize = 4097;
/// Smallest block of queries (and rows) of the masked computation.
const MIN_BLOCK: usize = 16;

/// Where the polynomial's coefficients come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// a_m = 1 / m!: exact at 0, worst at the ends of the interval.
    Taylor,
    /// Interpolation at the g + 1 Chebyshev points of [-T, T], converted to monomials: near
    /// minimax in absolute error, orders of magnitude more accurate than Taylor at equal degree
    /// for small T, but not positive near -T once the absolute error exceeds e^-T.
    Chebyshev,
    /// Near-minimax in relative error (Lawson-reweighted least squares in the Chebyshev basis):
    /// what the softmax needs, and positive where the interpolant is not (T of 3 and more).
    Minimax,
}

impl Basis {
    /// From "taylor", "chebyshev" or "minimax".
    pub fn parse(value: &str) -> Result<Self> {
        parse_option(
            "basis",
            value,
            &[
                ("taylor", Basis::Taylor),
                ("chebyshev", Basis::Chebyshev),
                ("minimax", Basis::Minimax),
            ],
        )
    }
}

/// p(t) = sum_m a_m t^m approximating exp(t) on [-half_width, half_width].
#[derive(Debug, Clone, PartialEq)]
pub struct ExpPolynomial {
    /// How the coefficients were obtained.
    pub basis: Basis,
    /// Half-width of the interval the fit is valid on.
    pub half_width: f64,
    /// a_0, ..., a_g.
    pub coefficients: Vec<f64>,
    /// Smallest and largest p(t) / e^t - 1 on the interval (measured on a fine grid).
    pub relative_error: (f64, f64),
}

impl ExpPolynomial {
    /// The degree-`degree` fit of exp on [-T, T], T = max(logit_range, 1/8).
    pub fn fit(basis: Basis, degree: usize, logit_range: f64) -> Self {
        let half_width = logit_range.max(MIN_HALF_WIDTH);
        let coefficients = match basis {
            Basis::Taylor => {
                let mut a = vec![1.0; degree + 1];
                for m in 1..=degree {
                    a[m] = a[m - 1] / m as f64;
                }
                a
            }
            Basis::Chebyshev => {
                chebyshev_to_monomials(&chebyshev_interpolant(degree, half_width), half_width)
            }
            Basis::Minimax => {
                chebyshev_to_monomials(&relative_minimax(degree, half_width), half_width)
            }
        };
        let mut fit = ExpPolynomial {
            basis,
            half_width,
            coefficients,
            relative_error: (0.0, 0.0),
        };
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for i in 0..ERROR_GRID {
            let t = half_width * (std::f64::consts::PI * i as f64 / (ERROR_GRID - 1) as f64).cos();
            let e = fit.eval(t) * (-t).exp() - 1.0;
            lo = lo.min(e);
            hi = hi.max(e);
        }
        fit.relative_error = (lo, hi);
        fit
    }

    /// The degree g.
    pub fn degree(&self) -> usize {
        self.coefficients.len() - 1
    }

    /// p(t) by Horner's rule.
    pub fn eval(&self, t: f64) -> f64 {
        self.coefficients
            .iter()
            .rev()
            .fold(0.0, |acc, &a| acc * t + a)
    }

    /// Relative rounding error of evaluating p through the multi-index expansion with unit
    /// roundoff `u`: the terms add up to at most sum_m |a_m| T^m while the value is at least
    /// e^-T, and each term carries about g + 4 roundings.
    fn rounding_error(&self, unit_roundoff: f64) -> f64 {
        let t = self.half_width;
        let magnitude: f64 = self
            .coefficients
            .iter()
            .enumerate()
            .map(|(m, a)| a.abs() * t.powi(m as i32))
            .sum();
        (self.degree() + 4) as f64 * unit_roundoff * magnitude * t.exp()
    }

    /// Bound on |O~ - O| / max_{j,k} |v1_j v2_k| for every output entry (infinite when p may
    /// not be positive on the interval, so that the weights could vanish or change sign).
    pub fn error_bound(&self, unit_roundoff: f64) -> f64 {
        let rounding = self.rounding_error(unit_roundoff);
        let (lo, hi) = (
            self.relative_error.0 - rounding,
            self.relative_error.1 + rounding,
        );
        if 1.0 + lo > 0.0 {
            (hi - lo) / (1.0 + lo)
        } else {
            f64::INFINITY
        }
    }
}

/// Coefficients in the Chebyshev basis of [-1, 1] of the interpolant of exp(T x) at the
/// degree + 1 Chebyshev points (discrete cosine sums).
fn chebyshev_interpolant(degree: usize, half_width: f64) -> Vec<f64> {
    let m = degree + 1;
    let angle = |j: usize| std::f64::consts::PI * (j as f64 + 0.5) / m as f64;
    let values: Vec<f64> = (0..m)
        .map(|j| (half_width * angle(j).cos()).exp())
        .collect();
    (0..m)
        .map(|k| {
            let c: f64 = values
                .iter()
                .enumerate()
                .map(|(j, f)| f * (k as f64 * angle(j)).cos())
                .sum();
            let c = 2.0 * c / m as f64;
            if k == 0 { c / 2.0 } else { c }
        })
        .collect()
}

/// Coefficients in the Chebyshev basis of [-1, 1] of a near-minimax fit of exp(T x) in relative
/// error: least squares of p(x) e^{-T x} - 1 on Chebyshev-spaced points, reweighted by Lawson's
/// rule (weights times |error|), which moves the least-squares fit toward the minimax one.
fn relative_minimax(degree: usize, half_width: f64) -> Vec<f64> {
    const POINTS: usize = 512;
    const LAWSON_STEPS: usize = 5;
    let m = degree + 1;
    let xs: Vec<f64> = (0..POINTS)
        .map(|i| (std::f64::consts::PI * i as f64 / (POINTS - 1) as f64).cos())
        .collect();
    // basis[i][k] = T_k(x_i) e^{-T x_i}
    let mut basis = vec![0.0; POINTS * m];
    for (row, &x) in basis.chunks_exact_mut(m).zip(&xs) {
        let damping = (-half_width * x).exp();
        let (mut previous, mut current) = (1.0, x);
        for (k, b) in row.iter_mut().enumerate() {
            *b = match k {
                0 => 1.0,
                1 => x,
                _ => {
                    let next = 2.0 * x * current - previous;
                    previous = current;
                    current = next;
                    next
                }
            } * damping;
        }
    }
    let mut weights = vec![1.0; POINTS];
    let mut coefficients = vec![0.0; m];
    for _ in 0..=LAWSON_STEPS {
        let mut a = basis.clone();
        let mut b = weights.iter().map(|w: &f64| w.sqrt()).collect::<Vec<_>>();
        for (row, w) in a.chunks_exact_mut(m).zip(&b) {
            row.iter_mut().for_each(|x| *x *= w);
        }
        coefficients = least_squares(&mut a, POINTS, m, &mut b);
        let mut total = 0.0;
        for (w, row) in weights.iter_mut().zip(basis.chunks_exact(m)) {
            let fit: f64 = row.iter().zip(&coefficients).map(|(x, c)| x * c).sum();
            *w *= (fit - 1.0).abs();
            total += *w;
        }
        if !total.is_finite() || total <= 0.0 {
            break; // an exact fit (degree high enough for rounding to dominate)
        }
        weights.iter_mut().for_each(|w| *w /= total);
    }
    coefficients
}

/// The minimizer of ||a c - b|| for a tall m x k matrix `a` (row-major), by Householder QR
/// (the weighted Chebyshev matrices are too ill-conditioned for the normal equations).
fn least_squares(a: &mut [f64], m: usize, k: usize, b: &mut [f64]) -> Vec<f64> {
    for j in 0..k {
        let mut v: Vec<f64> = (j..m).map(|i| a[i * k + j]).collect();
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            continue;
        }
        v[0] += if v[0] >= 0.0 { norm } else { -norm };
        let v_norm2: f64 = v.iter().map(|x| x * x).sum();
        // x -= 2 v (v . x) / |v|^2 for the strided vector x = data[offset], data[offset + stride]...
        let reflect = |data: &mut [f64], offset: usize, stride: usize| {
            let dot: f64 = v
                .iter()
                .enumerate()
                .map(|(i, vi)| vi * data[offset + i * stride])
                .sum();
            let f = 2.0 * dot / v_norm2;
            for (i, vi) in v.iter().enumerate() {
                data[offset + i * stride] -= f * vi;
            }
        };
        for c in j..k {
            reflect(a, j * k + c, k);
        }
        reflect(b, j, 1);
    }
    let mut c = vec![0.0; k];
    for j in (0..k).rev() {
        let tail: f64 = (j + 1..k).map(|l| a[j * k + l] * c[l]).sum();
        c[j] = if a[j * k + j] != 0.0 {
            (b[j] - tail) / a[j * k + j]
        } else {
            0.0
        };
    }
    c
}

/// Monomial coefficients in t = T x of sum_k c_k T_k(x), expanding T_k by the recurrence
/// T_{k+1} = 2x T_k - T_{k-1}.
fn chebyshev_to_monomials(cheb: &[f64], half_width: f64) -> Vec<f64> {
    let m = cheb.len();
    let mut monomial = vec![0.0; m];
    let mut previous = vec![0.0; m];
    let mut current = vec![0.0; m];
    current[0] = 1.0;
    for (k, &c) in cheb.iter().enumerate() {
        if k == 1 {
            previous = std::mem::replace(&mut current, vec![0.0; m]);
            current[1] = 1.0;
        } else if k >= 2 {
            let mut next: Vec<f64> = previous.iter().map(|p| -p).collect();
            for i in 1..m {
                next[i] += 2.0 * current[i - 1];
            }
            previous = std::mem::replace(&mut current, next);
        }
        for (b, &t) in monomial.iter_mut().zip(&current) {
            *b += c * t;
        }
    }
    let mut scale = 1.0;
    for b in &mut monomial {
        *b *= scale;
        scale /= half_width;
    }
    monomial
}

/// Number of multi-indices alpha in N^d with |alpha| <= g: C(d + g, g). None when it does not
/// fit in usize.
pub fn rank(d: usize, degree: usize) -> Option<usize> {
    let mut r: u128 = 1;
    for m in 1..=degree {
        r = r * (d + m) as u128 / m as u128;
        if r > usize::MAX as u128 {
            return None;
        }
    }
    Some(r as usize)
}

/// C(d + g, g) in floating point, for messages when it overflows usize.
fn rank_f64(d: usize, degree: usize) -> f64 {
    (1..=degree).fold(1.0, |r, m| r * (d + m) as f64 / m as f64)
}

/// The multi-indices alpha in N^d with |alpha| <= g in graded order, each built from a parent
/// (alpha minus one unit vector) so that x^alpha costs one multiplication.
#[derive(Debug, Clone, PartialEq)]
pub struct MonomialTable {
    /// Width d.
    pub d: usize,
    /// Entry of alpha - e_l (0 for alpha = 0).
    pub parent: Vec<u32>,
    /// The l of alpha - e_l.
    pub variable: Vec<u32>,
    /// |alpha|! / alpha!.
    pub multinomial: Vec<f64>,
    /// Entries of degree m are level_start[m]..level_start[m + 1].
    pub level_start: Vec<usize>,
}

impl MonomialTable {
    /// Every multi-index of degree at most `degree`: each alpha + e_l with l at or after the
    /// last nonzero coordinate of alpha, so that each multi-index appears once.
    pub fn new(d: usize, degree: usize) -> Self {
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
    pub fn rank(&self) -> usize {
        self.parent.len()
    }

    /// out[alpha] = x^alpha.
    pub fn monomials(&self, x: &[f64], out: &mut [f64]) {
        out[0] = 1.0;
        for a in 1..self.rank() {
            out[a] = out[self.parent[a] as usize] * x[self.variable[a] as usize];
        }
    }

    /// w_alpha = a_|alpha| |alpha|! / alpha!.
    fn weights(&self, coefficients: &[f64]) -> Vec<f64> {
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

/// What to plan: the logit range, the width d, a degree or a tolerance, and the memory the
/// caller's algorithm needs per unit of rank.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolyRequest {
    /// Upper bound on |s <q, k1, k2>| (see [`logit_bound`]).
    pub logit_range: f64,
    /// Width of queries and keys.
    pub d: usize,
    /// The degree, if fixed.
    pub degree: Option<usize>,
    /// Largest acceptable error bound, if given.
    pub tol: Option<f64>,
    /// Coefficients.
    pub basis: Basis,
    /// Unit roundoff of the arithmetic that evaluates the expansion (2^-53 for float64).
    pub unit_roundoff: f64,
    /// Bytes the computation needs per unit of rank.
    pub bytes_per_rank: f64,
    /// Bytes the computation may use.
    pub memory_limit: f64,
}

/// A chosen polynomial and what it costs.
#[derive(Debug, Clone, PartialEq)]
pub struct PolyPlan {
    /// The logit range the plan was made for.
    pub logit_range: f64,
    /// Degree g.
    pub degree: usize,
    /// r = C(d + g, g).
    pub rank: usize,
    /// Bound on |O~ - O| / max_{j,k} |v1_j v2_k| per output entry.
    pub error_bound: f64,
    /// The polynomial.
    pub polynomial: ExpPolynomial,
    /// Bytes the computation needs at this rank.
    pub memory_bytes: f64,
}

fn validate_request(req: &PolyRequest) -> Result<()> {
    if !(req.logit_range.is_finite() && req.logit_range >= 0.0) {
        return Err(Error::invalid(
            "logit_range",
            format!("expected a finite number >= 0, got {}", req.logit_range),
        ));
    }
    if req.d == 0 {
        return Err(Error::invalid("d", "expected d >= 1, got 0"));
    }
    if let Some(g) = req.degree
        && g > MAX_DEGREE
    {
        return Err(Error::invalid(
            "degree",
            format!("expected an integer from 0 to {MAX_DEGREE}, got {g}"),
        ));
    }
    if let Some(tol) = req.tol
        && !(tol.is_finite() && tol > 0.0)
    {
        return Err(Error::invalid(
            "tol",
            format!("expected a finite number > 0, got {tol}"),
        ));
    }
    if req.degree.is_none() && req.tol.is_none() {
        return Err(Error::invalid(
            "degree",
            "give a degree or a tolerance tol to choose it from",
        ));
    }
    if !(req.unit_roundoff > 0.0 && req.unit_roundoff < 0.01) {
        return Err(Error::invalid(
            "unit_roundoff",
            format!("expected a number in (0, 0.01), got {}", req.unit_roundoff),
        ));
    }
    if !(req.bytes_per_rank.is_finite() && req.bytes_per_rank >= 0.0)
        || req.memory_limit.is_nan()
        || req.memory_limit <= 0.0
    {
        return Err(Error::invalid(
            "memory_limit",
            format!(
                "expected bytes_per_rank >= 0 and memory_limit > 0, got {} and {}",
                req.bytes_per_rank, req.memory_limit
            ),
        ));
    }
    Ok(())
}

/// Rank and memory of degree `g`, or the error that says how much it would need.
fn affordable(req: &PolyRequest, g: usize) -> Result<(usize, f64)> {
    let r = rank(req.d, g);
    let r_f = r.map_or_else(|| rank_f64(req.d, g), |r| r as f64);
    let needed = r_f * req.bytes_per_rank;
    match r {
        Some(r) if needed <= req.memory_limit => Ok((r, needed)),
        _ => Err(Error::TooLarge {
            what: format!(
                "the polynomial method at degree {g} and d = {} (rank r = C(d + g, g) = {r_f:.4e})",
                req.d
            ),
            needed: format_bytes(needed.max(r_f * 8.0)),
            advice: format!(
                "the limit is {}; lower the degree (or raise tol), reduce d, or use method=\"exact\"",
                format_bytes(req.memory_limit)
            ),
        }),
    }
}

/// Chooses the degree: the one given (checked for positivity, the tolerance and memory), or the
/// smallest whose error bound meets `tol`. A tolerance no degree up to [`MAX_DEGREE`] meets
/// (rounding sets a floor that grows with T), or that needs more memory than allowed, is an
/// error that says what is reachable.
pub fn plan_polynomial(req: &PolyRequest) -> Result<PolyPlan> {
    validate_request(req)?;
    let make = |g: usize| {
        let polynomial = ExpPolynomial::fit(req.basis, g, req.logit_range);
        let bound = polynomial.error_bound(req.unit_roundoff);
        (polynomial, bound)
    };
    let finish = |g: usize, polynomial: ExpPolynomial, bound: f64| -> Result<PolyPlan> {
        let (rank, memory_bytes) = affordable(req, g)?;
        Ok(PolyPlan {
            logit_range: req.logit_range,
            degree: g,
            rank,
            error_bound: bound,
            polynomial,
            memory_bytes,
        })
    };
    let t = req.logit_range;
    if let Some(g) = req.degree {
        let (polynomial, bound) = make(g);
        if !bound.is_finite() {
            return Err(Error::invalid(
                "degree",
                format!(
                    "a degree-{g} polynomial is not positive on the logit range [-{t:.4}, {t:.4}], so \
                     the softmax weights could vanish or change sign; raise the degree, shrink the \
                     logits (smaller scale), or use method=\"exact\""
                ),
            ));
        }
        if let Some(tol) = req.tol
            && bound > tol
        {
            return Err(Error::invalid(
                "tol",
                format!(
                    "degree {g} gives an error bound of {bound:.3e} at logit range {t:.4}, above \
                         tol = {tol:.3e}; raise the degree or leave it to be chosen from tol"
                ),
            ));
        }
        return finish(g, polynomial, bound);
    }
    let tol = req.tol.unwrap_or(f64::INFINITY);
    let mut best = (f64::INFINITY, 0);
    for g in 0..=MAX_DEGREE {
        let (polynomial, bound) = make(g);
        if bound <= tol {
            return finish(g, polynomial, bound);
        }
        if bound < best.0 {
            best = (bound, g);
        }
        if polynomial.rounding_error(req.unit_roundoff) > tol {
            break; // rounding alone exceeds tol, and it grows with the degree
        }
    }
    let reach = if best.0.is_finite() {
        format!(
            "the smallest error bound is {:.3e} (degree {}) and rounding keeps higher degrees \
             from doing better",
            best.0, best.1
        )
    } else {
        format!(
            "no degree up to {MAX_DEGREE} gives a polynomial that is positive on the range at this \
             precision"
        )
    };
    let minimax = if req.basis == Basis::Minimax {
        ""
    } else {
        ", use basis=\"minimax\""
    };
    Err(Error::invalid(
        "tol",
        format!(
            "tol = {tol:.3e} is out of reach at logit range {t:.4}: {reach}; raise tol, shrink the \
             logits (smaller scale){minimax}, or use method=\"exact\""
        ),
    ))
}

/// How the masked computation splits each problem into blocks of rows and queries.
#[derive(Debug, Clone, Copy)]
struct Blocks {
    size: usize,
    count: usize,
}

impl Blocks {
    /// About four blocks per thread over the whole batch, none smaller than [`MIN_BLOCK`].
    fn new(dims: Dims, threads: usize) -> Self {
        let per_problem = (4 * threads).div_ceil(dims.batch).max(1);
        let size = dims.n.div_ceil(per_problem).max(MIN_BLOCK).min(dims.n);
        Blocks {
            size,
            count: dims.n.div_ceil(size),
        }
    }

    /// Bytes per unit of rank: two (r x (dv + 1)) totals per block, two running states and two
    /// monomial buffers per thread, and the table (parent, variable, multinomial, weight).
    fn bytes_per_rank(&self, dims: Dims, threads: usize) -> f64 {
        let words = 2 * (dims.dv + 1) * (dims.batch * self.count + threads) + 2 * threads + 3;
        8.0 * words as f64
    }
}

/// Per-thread buffers: the two running states and the monomials.
struct Scratch {
    first: Vec<f64>,
    second: Vec<f64>,
    monomials: Vec<f64>,
    scaled_query: Vec<f64>,
    numerator: Vec<f64>,
}

/// One key set of one problem: keys (n x d) and values (n x dv).
#[derive(Clone, Copy)]
struct KeySet<'a> {
    keys: &'a [f64],
    values: &'a [f64],
    d: usize,
    dv: usize,
}

impl KeySet<'_> {
    /// state += sign * sum_{j in rows} k_j^alpha (v_j, 1).
    fn add_rows(
        &self,
        table: &MonomialTable,
        rows: std::ops::Range<usize>,
        sign: f64,
        monomials: &mut [f64],
        state: &mut [f64],
    ) {
        let (d, dv) = (self.d, self.dv);
        for j in rows {
            table.monomials(&self.keys[j * d..(j + 1) * d], monomials);
            let v = &self.values[j * dv..(j + 1) * dv];
            for (&m, s) in monomials.iter().zip(state.chunks_exact_mut(dv + 1)) {
                let w = sign * m;
                for (x, &vc) in s[..dv].iter_mut().zip(v) {
                    *x += w * vc;
                }
                s[dv] += w;
            }
        }
    }

    /// state = sum over `range` from block totals where a whole block lies inside, rows elsewhere.
    fn range_sum(
        &self,
        table: &MonomialTable,
        range: std::ops::Range<usize>,
        blocks: Blocks,
        totals: &[&[f64]],
        monomials: &mut [f64],
        state: &mut [f64],
    ) {
        state.fill(0.0);
        let n = self.keys.len() / self.d;
        let mut j = range.start;
        while j < range.end {
            let block_end = ((j / blocks.size + 1) * blocks.size).min(n);
            if j.is_multiple_of(blocks.size) && block_end <= range.end {
                for (s, &t) in state.iter_mut().zip(totals[j / blocks.size]) {
                    *s += t;
                }
            } else {
                self.add_rows(table, j..block_end.min(range.end), 1.0, monomials, state);
            }
            j = block_end.min(range.end);
        }
    }
}

/// Tensor attention by the polynomial method, with the degree given or chosen from `tol` at the
/// measured logit range ([`logit_bound`]). Returns the (batch, n, dv) outputs and the plan.
pub fn tensor_attention_poly(
    x: &TensorInputs<'_>,
    scale: f64,
    mask: Mask,
    degree: Option<usize>,
    tol: Option<f64>,
    basis: Basis,
    memory_limit: f64,
) -> Result<(Vec<f64>, PolyPlan)> {
    x.validate()?;
    check_scale(scale)?;
    let dims = x.dims;
    let Dims { batch, n, d, dv } = dims;
    let threads = rayon::current_num_threads();
    let blocks = Blocks::new(dims, threads);
    let plan = plan_polynomial(&PolyRequest {
        logit_range: logit_bound(x.q, x.k1, x.k2, dims, scale)?,
        d,
        degree,
        tol,
        basis,
        unit_roundoff: f64::EPSILON / 2.0,
        bytes_per_rank: blocks.bytes_per_rank(dims, threads),
        memory_limit,
    })?;
    let table = MonomialTable::new(d, plan.degree);
    let weights = table.weights(&plan.polynomial.coefficients);
    let r = table.rank();
    let width = r * (dv + 1);
    let key_sets = |b: usize| {
        let p = x.problem(b);
        [
            KeySet {
                keys: p.k1,
                values: p.v1,
                d,
                dv,
            },
            KeySet {
                keys: p.k2,
                values: p.v2,
                d,
                dv,
            },
        ]
    };
    // Block totals of both key sets: totals[(b * count + t) * 2 + set].
    let totals: Vec<Vec<f64>> = (0..batch * blocks.count * 2)
        .into_par_iter()
        .map(|index| {
            let (bt, set) = (index / 2, index % 2);
            let (b, t) = (bt / blocks.count, bt % blocks.count);
            let rows = t * blocks.size..((t + 1) * blocks.size).min(n);
            let mut state = vec![0.0; width];
            let mut monomials = vec![0.0; r];
            key_sets(b)[set].add_rows(&table, rows, 1.0, &mut monomials, &mut state);
            state
        })
        .collect();
    let mut out = vec![0.0; batch * n * dv];
    let mut jobs = Vec::with_capacity(batch * blocks.count);
    for (b, problem_out) in out.chunks_mut(n * dv).enumerate() {
        for (t, block_out) in problem_out.chunks_mut(blocks.size * dv).enumerate() {
            jobs.push((b, t, block_out));
        }
    }
    let new_scratch = || Scratch {
        first: vec![0.0; width],
        second: vec![0.0; width],
        monomials: vec![0.0; r],
        scaled_query: vec![0.0; d],
        numerator: vec![0.0; dv + 1],
    };
    jobs.into_par_iter()
        .try_for_each_init(new_scratch, |s, (b, t, block_out)| {
            let sets = key_sets(b);
            let set_totals = |set: usize| -> Vec<&[f64]> {
                (0..blocks.count)
                    .map(|u| totals[(b * blocks.count + u) * 2 + set].as_slice())
                    .collect()
            };
            let (totals1, totals2) = (set_totals(0), set_totals(1));
            let i0 = t * blocks.size;
            let windows = [mask.first, mask.second];
            let mut ranges = windows.map(|w| w.range(i0, n));
            sets[0].range_sum(&table, ranges[0].clone(), blocks, &totals1, &mut s.monomials, &mut s.first);
            sets[1].range_sum(&table, ranges[1].clone(), blocks, &totals2, &mut s.monomials, &mut s.second);
            let q = x.problem(b).q;
            for (r_i, o) in block_out.chunks_exact_mut(dv).enumerate() {
                let i = i0 + r_i;
                if r_i > 0 {
                    // Key ranges only move forward as i grows: add rows at the end, remove
                    // rows at the start.
                    let states = [&mut s.first, &mut s.second];
                    for (set, state) in states.into_iter().enumerate() {
                        let next = windows[set].range(i, n);
                        sets[set].add_rows(&table, ranges[set].end..next.end, 1.0, &mut s.monomials, state);
                        sets[set].add_rows(&table, ranges[set].start..next.start, -1.0, &mut s.monomials, state);
                        ranges[set] = next;
                    }
                }
                for (sq, &ql) in s.scaled_query.iter_mut().zip(&q[i * d..(i + 1) * d]) {
                    *sq = scale * ql;
                }
                table.monomials(&s.scaled_query, &mut s.monomials);
                s.numerator.fill(0.0);
                for (alpha, (a, bb)) in s.first.chunks_exact(dv + 1).zip(s.second.chunks_exact(dv + 1)).enumerate() {
                    let w = weights[alpha] * s.monomials[alpha];
                    for ((num, &x1), &x2) in s.numerator.iter_mut().zip(a).zip(bb) {
                        *num += w * x1 * x2;
                    }
                }
                let z = s.numerator[dv];
                if !(z > 0.0 && z.is_finite()) {
                    return Err(Error::invalid(
                        "degree",
                        format!(
                            "the polynomial softmax denominator at query {i} is {z:.3e}, not positive: \
                             rounding or a too-low degree for the logit range; raise the degree or \
                             use method=\"exact\""
                        ),
                    ));
                }
                for (o, &num) in o.iter_mut().zip(&s.numerator) {
                    *o = num / z;
                }
            }
            Ok(())
        })?;
    Ok((out, plan))
}

#[cfg(test)]
mod tests {
    use super::super::exact::tests::{Sample, max_abs_diff, naive_tensor};
    use super::*;

    #[test]
    fn table_enumerates_each_multi_index_once_with_its_multinomial() {
        let table = MonomialTable::new(3, 4);
        assert_eq!(table.rank(), rank(3, 4).unwrap());
        assert_eq!(table.rank(), 35);
        // sum over |alpha| = m of multinomial * x^alpha = (x1 + x2 + x3)^m.
        let x = [0.3, -1.2, 2.0];
        let mut mono = vec![0.0; table.rank()];
        table.monomials(&x, &mut mono);
        for m in 0..=4 {
            let s: f64 = (table.level_start[m]..table.level_start[m + 1])
                .map(|a| table.multinomial[a] * mono[a])
                .sum();
            assert!((s - (x.iter().sum::<f64>()).powi(m as i32)).abs() < 1e-12);
        }
        assert_eq!(rank(64, 10), Some(718_406_958_841));
        assert_eq!(rank(1000, 32), None);
    }

    #[test]
    fn fits_order_as_documented_and_converge() {
        let bound = |basis, g, t| ExpPolynomial::fit(basis, g, t).error_bound(1.1e-16);
        for g in [4, 6, 8, 10] {
            let (taylor, cheb, minimax) = (
                bound(Basis::Taylor, g, 1.0),
                bound(Basis::Chebyshev, g, 1.0),
                bound(Basis::Minimax, g, 1.0),
            );
            assert!(
                minimax < cheb && cheb < taylor / 9.0,
                "g={g}: {taylor} {cheb} {minimax}"
            );
        }
        // At T = 3 the interpolant dips below zero near -T up to degree 4; the relative fit stays
        // positive and falls with the degree.
        assert!(bound(Basis::Chebyshev, 4, 3.0).is_infinite());
        let mut previous = f64::INFINITY;
        for g in [2, 4, 6, 8, 10, 12] {
            let minimax = bound(Basis::Minimax, g, 3.0);
            assert!(minimax < previous && minimax < bound(Basis::Taylor, g, 3.0));
            previous = minimax;
        }
        assert!(previous < 1e-6, "{previous}");
        // Degree 0 is the constant 1: weights e^t off by a factor in [e^-T, e^T].
        let p = ExpPolynomial::fit(Basis::Chebyshev, 0, 1.0);
        assert_eq!(p.coefficients, vec![1.0]);
        assert!((p.error_bound(1e-16) - ((2.0f64).exp() - 1.0)).abs() < 1e-6);
    }

    fn request(t: f64, degree: Option<usize>, tol: Option<f64>) -> PolyRequest {
        PolyRequest {
            logit_range: t,
            d: 4,
            degree,
            tol,
            basis: Basis::Chebyshev,
            unit_roundoff: f64::EPSILON / 2.0,
            bytes_per_rank: 100.0,
            memory_limit: 1e9,
        }
    }

    #[test]
    fn planner_picks_the_smallest_degree_and_refuses_what_it_cannot_reach() {
        let plan = plan_polynomial(&request(1.0, None, Some(1e-4))).unwrap();
        let below = ExpPolynomial::fit(Basis::Chebyshev, plan.degree - 1, 1.0);
        assert!(plan.error_bound <= 1e-4 && below.error_bound(f64::EPSILON / 2.0) > 1e-4);
        assert_eq!(plan.rank, rank(4, plan.degree).unwrap());
        let e = plan_polynomial(&request(8.0, None, Some(1e-14))).unwrap_err();
        assert!(e.to_string().contains("out of reach"), "{e}");
        // The interpolant is not positive at T = 8 below degree 16: the search must go past that.
        let plan = plan_polynomial(&request(8.0, None, Some(1e-2))).unwrap();
        assert!(plan.degree >= 16 && plan.error_bound <= 1e-2);
        let mut single = request(12.0, None, Some(1e-2));
        single.unit_roundoff = f64::from(f32::EPSILON) / 2.0;
        let e = plan_polynomial(&single).unwrap_err().to_string();
        assert!(e.contains("no degree up to 32"), "{e}");
        let e = plan_polynomial(&request(8.0, Some(1), None)).unwrap_err();
        assert!(e.to_string().contains("not positive"), "{e}");
        let e = plan_polynomial(&request(1.0, Some(2), Some(1e-6))).unwrap_err();
        assert!(e.to_string().contains("above tol"), "{e}");
        let mut big = request(1.0, Some(12), None);
        big.d = 64;
        let e = plan_polynomial(&big).unwrap_err().to_string();
        assert!(e.contains("would need") && e.contains("TiB"), "{e}");
        assert!(plan_polynomial(&request(1.0, None, None)).is_err());
        assert!(plan_polynomial(&request(f64::NAN, Some(2), None)).is_err());
    }

    #[test]
    fn polynomial_attention_is_within_its_bound_with_every_mask() {
        let data = Sample::new(
            Dims {
                batch: 2,
                n: 37,
                d: 3,
                dv: 2,
            },
            4,
            0.8,
        );
        let x = data.inputs();
        for mask in [
            Mask::NONE,
            Mask::CAUSAL,
            Mask::parse("window", 5, 17).unwrap(),
        ] {
            let want = naive_tensor(&x, 0.9, mask);
            let mut previous = f64::INFINITY;
            for g in [0, 2, 4, 8] {
                let (got, plan) =
                    tensor_attention_poly(&x, 0.9, mask, Some(g), None, Basis::Chebyshev, 1e12)
                        .unwrap();
                let err = max_abs_diff(&got, &want);
                assert!(
                    err <= plan.error_bound,
                    "{mask:?} g={g}: {err} > {}",
                    plan.error_bound
                );
                assert!(err < previous);
                previous = err;
            }
            assert!(previous < 1e-7, "{mask:?}: {previous}");
        }
    }
}
