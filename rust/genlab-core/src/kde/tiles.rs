//! The streaming engine: squared distances between query blocks and data blocks by GEMM, handed
//! row by row to a [`Reducer`] that folds them into one small state per query.
//!
//! A tile is QUERY_BLOCK queries x DATA_BLOCK data points; its distance block is the only buffer
//! that grows with the data, so memory is O(threads x tile), never O(m x n). Tasks (a query block
//! over a contiguous range of data blocks) run in parallel; when there are too few query blocks to
//! keep every thread busy the data range is split too and the partial states are merged.

use faer::linalg::matmul::matmul;
use faer::linalg::triangular_solve::solve_lower_triangular_in_place;
use faer::{Accum, MatMut, MatRef, Par};
use ndarray::ArrayView2;
use rayon::prelude::*;

use super::Element;
use super::rows::finish_squared_distances;
use crate::error::{Error, Result};
use crate::simd::Isa;

/// Queries per tile.
const QUERY_BLOCK: usize = 128;
/// Data points per tile (a 128 x 1024 float64 block is 1 MiB: it stays in L2 while reduced).
const DATA_BLOCK: usize = 1024;
/// Below this many multiply-adds (m n d) everything runs on the calling thread.
const PARALLEL_WORK: usize = 1 << 22;

/// Folds rows of squared distances into one state per query.
pub(crate) trait Reducer: Sync {
    /// Per-query accumulator.
    type State: Send;
    /// The state before any data point is seen.
    fn empty(&self) -> Self::State;
    /// Folds the squared distances from one query to data points `start..start + row.len()`.
    /// The row is scratch space: the reducer may overwrite it.
    fn absorb(&self, state: &mut Self::State, row: &mut [f64], start: usize);
    /// Folds `other` (covering data points after those of `into`) into `into`.
    fn merge(&self, into: &mut Self::State, other: Self::State);
}

/// An affine map x -> L^-1 (x - center) applied to data and queries alike: centering keeps the
/// GEMM form of the distances accurate, whitening turns a full-covariance kernel into an
/// isotropic one.
#[derive(Debug, Clone)]
pub(crate) struct Transform {
    center: Vec<f64>,
    /// Lower-triangular Cholesky factor, row-major d x d.
    cholesky: Option<Vec<f64>>,
}

/// Transformed points, row-major n x d, with their squared norms.
#[derive(Debug, Clone)]
pub(crate) struct Points {
    pub(crate) n: usize,
    pub(crate) d: usize,
    pub(crate) values: Vec<f64>,
    pub(crate) sq_norms: Vec<f64>,
}

/// What is wrong with a row of input values.
enum RowProblem {
    /// Flat index (within the row) of the first NaN or infinity.
    NonFinite(usize),
    /// Every value is finite but the squared norm overflows float64.
    Overflow,
}

fn row_problem<T: Element>(row: ndarray::ArrayView1<'_, T>) -> Option<RowProblem> {
    let mut sq_norm = 0.0;
    for (j, v) in row.iter().enumerate() {
        let x = v.to_f64();
        if !x.is_finite() {
            return Some(RowProblem::NonFinite(j));
        }
        sq_norm += x * x;
    }
    (!sq_norm.is_finite()).then_some(RowProblem::Overflow)
}

/// Checks that `array` is non-empty, has `d` columns when given, is finite, and that squared
/// norms (the GEMM form of the distances) do not overflow.
pub(crate) fn check_points<T: Element>(
    array: &ArrayView2<'_, T>,
    name: &str,
    d: Option<usize>,
    min_rows: usize,
) -> Result<()> {
    if let Some(d) = d
        && array.ncols() != d
    {
        return Err(Error::shape(
            name,
            format!("{d} features (the dimension of data)"),
            format!("{} features", array.ncols()),
        ));
    }
    if array.ncols() == 0 {
        return Err(Error::Empty {
            name: format!("{name} features"),
            got: 0,
            min: 1,
        });
    }
    if array.nrows() < min_rows {
        return Err(Error::Empty {
            name: format!("{name} points"),
            got: array.nrows(),
            min: min_rows,
        });
    }
    let first = array
        .outer_iter()
        .into_par_iter()
        .enumerate()
        .find_map_first(|(i, row)| row_problem(row).map(|p| (i, p)));
    match first {
        Some((i, RowProblem::NonFinite(j))) => Err(Error::NonFinite {
            name: name.to_string(),
            index: i * array.ncols() + j,
        }),
        Some((i, RowProblem::Overflow)) => Err(Error::invalid(
            name,
            format!(
                "the squared norm of point {i} overflows float64 (values near 1e154 or more); \
                 rescale the data"
            ),
        )),
        None => Ok(()),
    }
}

fn squared_norms(values: &[f64], d: usize) -> Vec<f64> {
    values
        .par_chunks(d)
        .map(|row| row.iter().map(|v| v * v).sum())
        .collect()
}

impl Transform {
    /// Centering on the mean of `data`, then whitening with `cholesky` when given (validated by
    /// the caller).
    pub(crate) fn fit<T: Element>(data: &ArrayView2<'_, T>, cholesky: Option<Vec<f64>>) -> Self {
        let n = data.nrows() as f64;
        let center = data
            .columns()
            .into_iter()
            .map(|c| c.iter().map(|v| v.to_f64()).sum::<f64>() / n)
            .collect();
        Transform { center, cholesky }
    }

    /// Transforms the rows of `array` into `out` (row-major, `array.nrows() x d`).
    fn apply_into<T: Element>(&self, array: &ArrayView2<'_, T>, out: &mut [f64]) {
        let d = self.center.len();
        for (row, dst) in array.outer_iter().zip(out.chunks_exact_mut(d)) {
            for ((o, v), c) in dst.iter_mut().zip(row.iter()).zip(&self.center) {
                *o = v.to_f64() - c;
            }
        }
        if let Some(l) = &self.cholesky {
            let rows = array.nrows();
            let lower = MatRef::from_row_major_slice(l.as_slice(), d, d);
            // Row i of `out` is column i of this d x rows column-major view.
            let rhs = MatMut::from_column_major_slice_mut(&mut out[..rows * d], d, rows);
            solve_lower_triangular_in_place(lower, rhs, Par::Seq);
        }
    }

    /// Transforms every row of `array`, in parallel blocks. Fails when whitening by a tiny
    /// covariance overflows float64.
    pub(crate) fn apply<T: Element>(&self, array: &ArrayView2<'_, T>) -> Result<Points> {
        let (n, d) = array.dim();
        let mut values = vec![0.0; n * d];
        values
            .par_chunks_mut(DATA_BLOCK * d)
            .enumerate()
            .for_each(|(b, out)| {
                let start = b * DATA_BLOCK;
                let rows = out.len() / d;
                let block = array.slice(ndarray::s![start..start + rows, ..]);
                self.apply_into(&block, out);
            });
        let sq_norms = squared_norms(&values, d);
        if sq_norms.iter().any(|v| !v.is_finite()) {
            return Err(Error::NotPositiveDefinite {
                what: "the kernel covariance".into(),
                detail: "it is so small next to the data that the whitened points overflow float64"
                    .into(),
            });
        }
        Ok(Points {
            n,
            d,
            values,
            sq_norms,
        })
    }
}

/// Which points are queried against the data.
pub(crate) enum Queries<'a, T> {
    /// The data points themselves; with `leave_one_out` each skips itself.
    Data { leave_one_out: bool },
    /// Other points (untransformed).
    External(&'a ArrayView2<'a, T>),
}

/// Runs `reducer` over every (query, data point) pair; one state per query, in query order.
pub(crate) fn reduce<T: Element, R: Reducer>(
    data: &Points,
    transform: &Transform,
    queries: Queries<'_, T>,
    reducer: &R,
) -> Vec<R::State> {
    let (n, d) = (data.n, data.d);
    let m = match &queries {
        Queries::Data { .. } => n,
        Queries::External(q) => q.nrows(),
    };
    let query_blocks = m.div_ceil(QUERY_BLOCK);
    let parallel = m.saturating_mul(n).saturating_mul(d) >= PARALLEL_WORK;
    let threads = rayon::current_num_threads();
    // Enough tasks for every thread (twice over, for balance), never more than the data blocks.
    let splits = if !parallel || query_blocks >= 2 * threads {
        1
    } else {
        (2 * threads)
            .div_ceil(query_blocks.max(1))
            .min(n.div_ceil(DATA_BLOCK))
            .max(1)
    };
    let data_blocks = n.div_ceil(DATA_BLOCK);
    // Relative rounding of ||q||^2 + ||x||^2 - 2 q.x (d-term dot products in float64).
    let rounding = 4.0 * (d as f64).sqrt() * f64::EPSILON;
    let blocks_per_split = data_blocks.div_ceil(splits);

    let isa = Isa::detect();
    let task = |t: usize| -> Vec<R::State> {
        let (qb, split) = (t / splits, t % splits);
        let q0 = qb * QUERY_BLOCK;
        let rows = QUERY_BLOCK.min(m - q0);
        let local: Vec<f64>;
        let local_norms: Vec<f64>;
        let (q_values, q_norms, self_offset) = match &queries {
            Queries::Data { leave_one_out } => (
                &data.values[q0 * d..(q0 + rows) * d],
                &data.sq_norms[q0..q0 + rows],
                leave_one_out.then_some(q0),
            ),
            Queries::External(q) => {
                let mut buffer = vec![0.0; rows * d];
                transform.apply_into(&q.slice(ndarray::s![q0..q0 + rows, ..]), &mut buffer);
                local_norms = squared_norms(&buffer, d);
                local = buffer;
                (local.as_slice(), local_norms.as_slice(), None)
            }
        };
        let mut states: Vec<R::State> = (0..rows).map(|_| reducer.empty()).collect();
        let mut block = vec![0.0; rows * DATA_BLOCK];
        let first = split * blocks_per_split;
        let last = ((split + 1) * blocks_per_split).min(data_blocks);
        let lhs = MatRef::from_row_major_slice(q_values, rows, d);
        for b in first..last {
            let start = b * DATA_BLOCK;
            let width = DATA_BLOCK.min(n - start);
            let tile = &mut block[..rows * width];
            let rhs = MatRef::from_column_major_slice(
                &data.values[start * d..(start + width) * d],
                d,
                width,
            );
            let dst = MatMut::from_row_major_slice_mut(tile, rows, width);
            matmul(dst, Accum::Replace, lhs, rhs, -2.0, Par::Seq);
            let x_norms = &data.sq_norms[start..start + width];
            for (i, (row, state)) in tile.chunks_exact_mut(width).zip(&mut states).enumerate() {
                finish_squared_distances(isa, row, q_norms[i], x_norms, rounding);
                if let Some(offset) = self_offset {
                    let own = offset + i;
                    if (start..start + width).contains(&own) {
                        row[own - start] = f64::INFINITY;
                    }
                }
                reducer.absorb(state, row, start);
            }
        }
        states
    };

    let tasks = query_blocks * splits;
    let partials: Vec<Vec<R::State>> = if parallel {
        (0..tasks).into_par_iter().map(task).collect()
    } else {
        (0..tasks).map(task).collect()
    };
    let mut out = Vec::with_capacity(m);
    let mut partials = partials.into_iter();
    for _ in 0..query_blocks {
        let mut states = partials.next().unwrap_or_default();
        for _ in 1..splits {
            for (into, other) in states.iter_mut().zip(partials.next().unwrap_or_default()) {
                reducer.merge(into, other);
            }
        }
        out.extend(states);
    }
    out
}
