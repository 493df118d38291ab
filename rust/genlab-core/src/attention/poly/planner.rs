//! The planner: from a logit range and a degree or a tolerance, the polynomial to use, its error
//! bound and its rank, refusing what is out of reach (positivity, tolerance, memory).

use super::MAX_DEGREE;
use super::approximation::{Basis, ExpPolynomial};
use super::monomials::{rank, rank_f64};
use crate::error::{Error, Result, format_bytes};

/// What to plan: the logit range, the width d, a degree or a tolerance, and the memory the
/// caller's algorithm needs per unit of rank.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolyRequest {
    /// Upper bound on |s <q, k1, k2>| (see [`crate::attention::logit_bound`]).
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
            advice: {
                let fix = "lower the degree (or raise tol), reduce d, or use method=\"exact\"";
                if req.memory_limit.is_finite() {
                    format!("the limit is {}; {fix}", format_bytes(req.memory_limit))
                } else {
                    fix.to_string()
                }
            },
        }),
    }
}

/// Chooses the degree: the one given (checked for positivity, the tolerance and memory), or the
/// smallest whose error bound meets `tol`. A tolerance no degree up to `MAX_DEGREE` (32) meets
/// (rounding sets a floor that grows with T), or that needs more memory than allowed, is an
/// error that says what is reachable.
pub fn poly_plan(req: &PolyRequest) -> Result<PolyPlan> {
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
                    "a degree-{g} polynomial is not positive on the logit range [-{t:.4}, \
                     {t:.4}], so the softmax weights could vanish or change sign; raise the \
                     degree, shrink the logits (smaller scale), or use method=\"exact\""
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
