//! Approximation theory of the method: exp on [-T, T] by a polynomial (Taylor, a Chebyshev
//! interpolant, or a relative-minimax fit), in monomial form, with its relative error measured on
//! a fine grid.

use crate::error::{Result, parse_option};

/// Smallest half-width of the fitting interval. A narrower logit range is fitted on this one:
/// the fit stays valid, and dividing by T^m cannot overflow.
const MIN_HALF_WIDTH: f64 = 0.125;
/// Points (Chebyshev-spaced) at which a fit's relative error is measured.
const ERROR_GRID: usize = 4097;

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
    pub(crate) basis: Basis,
    /// Half-width of the interval the fit is valid on.
    pub(crate) half_width: f64,
    /// a_0, ..., a_g.
    pub coefficients: Vec<f64>,
    /// Smallest and largest p(t) / e^t - 1 on the interval (measured on a fine grid).
    pub(crate) relative_error: (f64, f64),
}

impl ExpPolynomial {
    /// The degree-`degree` fit of exp on [-T, T], T = max(logit_range, 1/8).
    pub(crate) fn fit(basis: Basis, degree: usize, logit_range: f64) -> Self {
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
    pub(crate) fn degree(&self) -> usize {
        self.coefficients.len() - 1
    }

    /// p(t) by Horner's rule.
    pub(crate) fn eval(&self, t: f64) -> f64 {
        self.coefficients
            .iter()
            .rev()
            .fold(0.0, |acc, &a| acc * t + a)
    }

    /// Relative rounding error of evaluating p through the multi-index expansion with unit
    /// roundoff `u`: the terms add up to at most sum_m |a_m| T^m while the value is at least
    /// e^-T, and each term carries about g + 4 roundings.
    pub(super) fn rounding_error(&self, unit_roundoff: f64) -> f64 {
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
    pub(crate) fn error_bound(&self, unit_roundoff: f64) -> f64 {
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
        // x -= 2 v (v . x) / |v|^2 for the strided vector x = data[offset], data[offset +
        // stride]...
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
