//! Exact attention by streaming (online) softmax: no n x n^2 (or n x n) array, float64 throughout.
//!
//! Tensor attention, per query i (queries run in parallel): tiles of up to [`TILE_ROWS`] first
//! keys j give rows u_j = s q_i * k1_j; against a chunk of second keys the tile's scores are one
//! small GEMM (u_j . k2_k), then p = exp(score - tile max), then a second GEMM sums p v2_k per
//! row, and the tile folds into the query's running (max, sum, accumulator) as
//! sum_j v1_j * (sum_k p_jk v2_k). Extra memory per thread: one tile, O((rows + d) x chunk).
//!
//! Ordinary attention uses the same kernels with one query per row.

use ndarray::Array3;
use rayon::prelude::*;

use super::kernels::{
    self, LANES, ROW_ALIGN, Tile, TileShape, pack_key_panels, pad_values, padded_width,
    write_tile_row,
};
use super::{AttentionInputs, Dims, KeyWindow, Mask, TensorInputs, check_scale, output};
use crate::error::{Error, Result};
use crate::simd::{Isa, rescale_to_common_max};

/// Rows of a tile (first keys for tensor attention, queries for ordinary attention).
const TILE_ROWS: usize = 32;
/// Key panels per chunk (`CHUNK_PANELS * LANES` keys): a tile's scores stay in L2.
const CHUNK_PANELS: usize = 32;
/// Below this many multiply-adds a call runs on the calling thread.
const SERIAL_WORK: usize = 1 << 18;

/// Running softmax of one query: the maximum score so far and the sum of exp(score - max); the
/// accumulator (sum of exp(score - max) times values) lives in the caller's output row.
#[derive(Debug, Clone, Copy)]
struct OnlineSoftmax {
    max: f64,
    sum: f64,
}

impl OnlineSoftmax {
    const EMPTY: OnlineSoftmax = OnlineSoftmax {
        max: f64::NEG_INFINITY,
        sum: 0.0,
    };

    /// Folds in a block with maximum `max`, sum `sum` and accumulator `block`.
    fn merge(&mut self, acc: &mut [f64], max: f64, sum: f64, block: &[f64]) {
        if sum == 0.0 {
            return;
        }
        // An empty state gets the factor 0: the first block simply replaces it.
        let (new_max, old_scale, block_scale) = rescale_to_common_max(self.max, max);
        for (a, &b) in acc.iter_mut().zip(block) {
            *a = *a * old_scale + b * block_scale;
        }
        self.sum = self.sum * old_scale + sum * block_scale;
        self.max = new_max;
    }

    /// Normalizes the accumulator; a query that saw no key gets 0.
    fn finish(self, acc: &mut [f64]) {
        let inv = if self.sum > 0.0 { 1.0 / self.sum } else { 0.0 };
        acc.iter_mut().for_each(|a| *a *= inv);
    }
}

/// Keys and values of one problem in the layout the kernels read.
struct PackedKeys {
    panels: Vec<f64>,
    values: Vec<f64>,
}

impl PackedKeys {
    /// The keys (batch, n, d) and values (batch, n, dv) of every problem, packed in parallel.
    fn all(keys: &[f64], values: &[f64], dims: Dims) -> Vec<PackedKeys> {
        let Dims { n, d, dv, .. } = dims;
        keys.par_chunks_exact(n * d)
            .zip(values.par_chunks_exact(n * dv))
            .map(|(k, v)| PackedKeys {
                panels: pack_key_panels(k, n, d),
                values: pad_values(v, n, dv),
            })
            .collect()
    }

    /// The tile of `u` against the keys from panel `panel0` on.
    fn tile<'a>(&'a self, u: &'a [f64], panel0: usize, shape: TileShape) -> Tile<'a> {
        Tile {
            u,
            panels: &self.panels[panel0 * shape.d * LANES..],
            values: &self.values[panel0 * LANES * shape.dvp..],
            shape,
        }
    }
}

/// Per-thread buffers of one tile.
struct Scratch {
    u: Vec<f64>,
    scores: Vec<f64>,
    weighted: Vec<f64>,
    block: Vec<f64>,
}

impl Scratch {
    fn new(dims: Dims) -> Self {
        Scratch {
            u: vec![0.0; TILE_ROWS * dims.d],
            scores: vec![0.0; TILE_ROWS * CHUNK_PANELS * LANES],
            weighted: vec![0.0; TILE_ROWS * padded_width(dims.dv)],
            block: vec![0.0; dims.dv],
        }
    }
}

/// The chunks of key panels that cover `keys`: (first panel, panel count, column range of the
/// keys within the chunk).
fn chunks_of(keys: std::ops::Range<usize>) -> impl Iterator<Item = (usize, usize)> {
    let (first, end) = (keys.start / LANES, keys.end.div_ceil(LANES));
    (first..end)
        .step_by(CHUNK_PANELS)
        .map(move |p| (p, CHUNK_PANELS.min(end - p)))
}

/// `range` clipped to the chunk starting at key `col0` with `width` keys, relative to `col0`.
fn clip(range: &std::ops::Range<usize>, col0: usize, width: usize) -> std::ops::Range<usize> {
    let start = range.start.max(col0);
    let end = range.end.min(col0 + width);
    if start < end {
        start - col0..end - col0
    } else {
        0..0
    }
}

/// Runs `job` over `items`, on this thread when the call is small, else in parallel with one
/// [`Scratch`] per worker.
fn run_jobs<T: Send>(items: Vec<T>, work: usize, dims: Dims, job: impl Fn(&mut Scratch, T) + Sync) {
    if work < SERIAL_WORK {
        let mut scratch = Scratch::new(dims);
        items.into_iter().for_each(|item| job(&mut scratch, item));
    } else {
        items
            .into_par_iter()
            .for_each_init(|| Scratch::new(dims), |scratch, item| job(scratch, item));
    }
}

/// Exact tensor attention: (batch, n, dv) outputs. Masks restrict the keys per key set.
pub fn tensor_attention_exact(x: &TensorInputs<'_>, scale: f64, mask: Mask) -> Result<Array3<f64>> {
    check_scale(scale)?;
    let dims = x.dims;
    let Dims { batch, n, d, dv } = dims;
    let isa = Isa::detect();
    let packed = PackedKeys::all(x.k2, x.v2, dims);
    let mut out = vec![0.0; batch * n * dv];
    let work = [batch, n, n, n, d + dv]
        .iter()
        .fold(1usize, |w, &f| w.saturating_mul(f));
    let queries: Vec<(usize, &mut [f64])> = out.chunks_mut(dv).enumerate().collect();
    run_jobs(queries, work, dims, |scratch, (index, row)| {
        let (b, i) = (index / n, index % n);
        tensor_query(isa, scale, x, &packed[b], b, i, mask, scratch, row);
    });
    check_no_overflow(&out, "s <q_i, k1_j, k2_k>", "Q, K1, K2")?;
    Ok(output(out, dims))
}

/// The inputs are finite, so a non-finite output means float64 overflowed: a logit beyond
/// ~1.8e308 (its exponential shift then gives inf - inf), or a sum of huge values. At such logits
/// the softmax is a hard maximum whose ties float64 can no longer tell apart, so the call fails
/// instead of returning NaN.
fn check_no_overflow(out: &[f64], logit: &str, inputs: &str) -> Result<()> {
    crate::error::check_finite("output", out).map_err(|_| {
        Error::invalid(
            "scale",
            format!(
                "the logits {logit} (or the weighted sums of the values) overflow float64 for \
                 these inputs; lower |scale| or the magnitude of {inputs} (logit_bound gives the \
                 largest logit)"
            ),
        )
    })
}

#[allow(clippy::too_many_arguments)]
fn tensor_query(
    isa: Isa,
    scale: f64,
    x: &TensorInputs<'_>,
    keys: &PackedKeys,
    b: usize,
    i: usize,
    mask: Mask,
    s: &mut Scratch,
    out: &mut [f64],
) {
    let Dims { n, d, dv, .. } = x.dims;
    let dvp = padded_width(dv);
    let p = x.problem(b);
    let q = &p.q[i * d..(i + 1) * d];
    let (firsts, seconds) = (mask.first.range(i, n), mask.second.range(i, n));
    let mut state = OnlineSoftmax::EMPTY;
    out.fill(0.0);
    for j0 in firsts.clone().step_by(TILE_ROWS) {
        let valid_rows = TILE_ROWS.min(firsts.end - j0);
        let rows = valid_rows.next_multiple_of(ROW_ALIGN);
        for r in 0..rows {
            if r < valid_rows {
                let k1 = &p.k1[(j0 + r) * d..(j0 + r + 1) * d];
                let u = q.iter().zip(k1).map(|(&ql, &kl)| scale * ql * kl);
                write_tile_row(&mut s.u, d, r, u);
            } else {
                write_tile_row(&mut s.u, d, r, std::iter::repeat(0.0));
            }
        }
        for (panel0, n_panels) in chunks_of(seconds.clone()) {
            let col0 = panel0 * LANES;
            let shape = TileShape {
                rows,
                d,
                n_panels,
                dvp,
            };
            let (max, sum) = kernels::tensor_tile(
                isa,
                keys.tile(&s.u, panel0, shape),
                valid_rows,
                clip(&seconds, col0, n_panels * LANES),
                &mut s.scores,
                &mut s.weighted,
            );
            // sum_j v1_j * (sum_k p_jk v2_k) over the tile's rows.
            s.block.fill(0.0);
            let v1 = &p.v1[j0 * dv..(j0 + valid_rows) * dv];
            for (v1_j, w_j) in v1.chunks_exact(dv).zip(s.weighted.chunks_exact(dvp)) {
                for ((acc, &a), &w) in s.block.iter_mut().zip(v1_j).zip(w_j) {
                    *acc += a * w;
                }
            }
            state.merge(out, max, sum, &s.block);
        }
    }
    state.finish(out);
}

/// Exact ordinary softmax attention softmax(s Q K^T) V: (batch, n, dv) outputs.
pub fn attention_exact(
    x: &AttentionInputs<'_>,
    scale: f64,
    window: KeyWindow,
) -> Result<Array3<f64>> {
    check_scale(scale)?;
    let dims = x.dims;
    let Dims { batch, n, d, dv } = dims;
    let isa = Isa::detect();
    let packed = PackedKeys::all(x.k, x.v, dims);
    let mut out = vec![0.0; batch * n * dv];
    let mut blocks = Vec::new();
    for (b, problem_out) in out.chunks_mut(n * dv).enumerate() {
        for (block, rows) in problem_out.chunks_mut(TILE_ROWS * dv).enumerate() {
            blocks.push((b, block * TILE_ROWS, rows));
        }
    }
    let work = [batch, n, n, d + dv]
        .iter()
        .fold(1usize, |w, &f| w.saturating_mul(f));
    run_jobs(blocks, work, dims, |scratch, (b, i0, rows)| {
        let queries = &x.q[(b * n + i0) * d..];
        attention_block(
            isa, scale, queries, &packed[b], i0, window, dims, scratch, rows,
        );
    });
    check_no_overflow(&out, "s <q_i, k_j>", "Q, K")?;
    Ok(output(out, dims))
}

/// Queries i0.. (as many as `out` has rows) of one problem.
#[allow(clippy::too_many_arguments)]
fn attention_block(
    isa: Isa,
    scale: f64,
    queries: &[f64],
    keys: &PackedKeys,
    i0: usize,
    window: KeyWindow,
    dims: Dims,
    s: &mut Scratch,
    out: &mut [f64],
) {
    let Dims { n, d, dv, .. } = dims;
    let dvp = padded_width(dv);
    let valid_rows = out.len() / dv;
    let rows = valid_rows.next_multiple_of(ROW_ALIGN);
    for r in 0..rows {
        if r < valid_rows {
            let u = queries[r * d..(r + 1) * d].iter().map(|&ql| scale * ql);
            write_tile_row(&mut s.u, d, r, u);
        } else {
            write_tile_row(&mut s.u, d, r, std::iter::repeat(0.0));
        }
    }
    let ranges: Vec<_> = (0..valid_rows).map(|r| window.range(i0 + r, n)).collect();
    let union = ranges.iter().map(|r| r.start).min().unwrap_or(0)
        ..ranges.iter().map(|r| r.end).max().unwrap_or(0);
    let mut states = vec![OnlineSoftmax::EMPTY; valid_rows];
    let mut stats = vec![(f64::NEG_INFINITY, 0.0); rows];
    out.fill(0.0);
    for (panel0, n_panels) in chunks_of(union) {
        let col0 = panel0 * LANES;
        let row_cols: Vec<_> = ranges
            .iter()
            .map(|r| clip(r, col0, n_panels * LANES))
            .collect();
        let shape = TileShape {
            rows,
            d,
            n_panels,
            dvp,
        };
        kernels::attention_tile(
            isa,
            keys.tile(&s.u, panel0, shape),
            &row_cols,
            &mut s.scores,
            &mut s.weighted,
            &mut stats,
        );
        for (r, (state, acc)) in states.iter_mut().zip(out.chunks_exact_mut(dv)).enumerate() {
            let (max, sum) = stats[r];
            state.merge(acc, max, sum, &s.weighted[r * dvp..r * dvp + dv]);
        }
    }
    for (state, acc) in states.into_iter().zip(out.chunks_exact_mut(dv)) {
        state.finish(acc);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use ndarray::ArrayView3;

    use super::*;

    /// No mask.
    pub(crate) const NO_MASK: Mask = Mask {
        first: KeyWindow::All,
        second: KeyWindow::All,
    };

    /// j <= i and k <= i.
    pub(crate) const CAUSAL: Mask = Mask {
        first: KeyWindow::Causal,
        second: KeyWindow::Causal,
    };

    /// Deterministic values in [-scale, scale).
    pub(crate) fn sample(len: usize, seed: u64, scale: f64) -> Vec<f64> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                scale * (2.0 * ((state >> 11) as f64 / (1u64 << 53) as f64) - 1.0)
            })
            .collect()
    }

    /// Owned random inputs: queries and keys in [-key_scale, key_scale), values in [-1, 1).
    pub(crate) struct Sample {
        arrays: [Vec<f64>; 5],
        dims: Dims,
    }

    impl Sample {
        pub(crate) fn new(dims: Dims, seed: u64, key_scale: f64) -> Self {
            let Dims { batch, n, d, dv } = dims;
            let arrays = std::array::from_fn(|a| {
                let (len, scale) = if a < 3 {
                    (n * d, key_scale)
                } else {
                    (n * dv, 1.0)
                };
                sample(batch * len, seed * 5 + a as u64, scale)
            });
            Sample { arrays, dims }
        }

        pub(crate) fn inputs(&self) -> TensorInputs<'_> {
            let Dims { batch, n, d, dv } = self.dims;
            let [q, k1, k2, v1, v2] = &self.arrays;
            let keys = |x| ArrayView3::from_shape((batch, n, d), x).unwrap();
            let values = |x| ArrayView3::from_shape((batch, n, dv), x).unwrap();
            TensorInputs::new(keys(q), keys(k1), keys(k2), values(v1), values(v2)).unwrap()
        }
    }

    /// The definition, one query at a time, with the n x n^2 logits materialized.
    pub(crate) fn naive_tensor(x: &TensorInputs<'_>, scale: f64, mask: Mask) -> Vec<f64> {
        let Dims { batch, n, d, dv } = x.dims;
        let mut out = vec![0.0; batch * n * dv];
        for b in 0..batch {
            let p = x.problem(b);
            for i in 0..n {
                let mut logits = Vec::new();
                for j in mask.first.range(i, n) {
                    for k in mask.second.range(i, n) {
                        let t: f64 = (0..d)
                            .map(|l| p.q[i * d + l] * p.k1[j * d + l] * p.k2[k * d + l])
                            .sum();
                        logits.push((j, k, scale * t));
                    }
                }
                let max = logits.iter().map(|t| t.2).fold(f64::NEG_INFINITY, f64::max);
                let total: f64 = logits.iter().map(|t| (t.2 - max).exp()).sum();
                for &(j, k, t) in &logits {
                    let w = (t - max).exp() / total;
                    for c in 0..dv {
                        out[(b * n + i) * dv + c] += w * p.v1[j * dv + c] * p.v2[k * dv + c];
                    }
                }
            }
        }
        out
    }

    /// The largest difference between an output array and a reference.
    pub(crate) fn max_abs_diff(a: &Array3<f64>, b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn tensor_attention_matches_the_definition() {
        let masks = [
            NO_MASK,
            CAUSAL,
            Mask::parse("window", 3, 5).unwrap(),
            Mask::parse("window", 40, 1).unwrap(),
        ];
        for &(batch, n, d, dv) in &[(2, 5, 3, 2), (1, 45, 4, 9), (1, 270, 2, 1)] {
            let data = Sample::new(Dims { batch, n, d, dv }, 1, 1.5);
            let x = data.inputs();
            for &mask in &masks {
                let got = tensor_attention_exact(&x, 0.7, mask).unwrap();
                let want = naive_tensor(&x, 0.7, mask);
                assert!(max_abs_diff(&got, &want) < 1e-13, "n={n} {mask:?}");
            }
        }
    }

    #[test]
    fn ordinary_attention_matches_the_definition_across_chunks() {
        let (batch, n, d, dv) = (2, 600, 5, 3);
        let (q, k, v) = (
            sample(batch * n * d, 7, 1.0),
            sample(batch * n * d, 8, 1.0),
            sample(batch * n * dv, 9, 1.0),
        );
        let keys = |x| ArrayView3::from_shape((batch, n, d), x).unwrap();
        let values = ArrayView3::from_shape((batch, n, dv), &v).unwrap();
        let x = AttentionInputs::new(keys(&q), keys(&k), values).unwrap();
        for window in [KeyWindow::All, KeyWindow::Causal, KeyWindow::Last(300)] {
            let got = attention_exact(&x, 2.0, window).unwrap();
            for b in 0..batch {
                for i in (0..n).step_by(37) {
                    let range = window.range(i, n);
                    let logits: Vec<f64> = range
                        .clone()
                        .map(|j| {
                            2.0 * (0..d)
                                .map(|l| q[(b * n + i) * d + l] * k[(b * n + j) * d + l])
                                .sum::<f64>()
                        })
                        .collect();
                    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let total: f64 = logits.iter().map(|t| (t - max).exp()).sum();
                    for c in 0..dv {
                        let want: f64 = range
                            .clone()
                            .zip(&logits)
                            .map(|(j, t)| (t - max).exp() / total * v[(b * n + j) * dv + c])
                            .sum();
                        assert!((got[[b, i, c]] - want).abs() < 1e-13);
                    }
                }
            }
        }
    }

    #[test]
    fn huge_logits_do_not_overflow() {
        let (n, d, dv) = (9, 2, 1);
        let q = sample(n * d, 11, 300.0);
        let (k1, k2, v) = (
            sample(n * d, 12, 3.0),
            sample(n * d, 13, 3.0),
            sample(n * dv, 14, 1.0),
        );
        let keys = |x| ArrayView3::from_shape((1, n, d), x).unwrap();
        let v = ArrayView3::from_shape((1, n, dv), &v).unwrap();
        let x = TensorInputs::new(keys(&q), keys(&k1), keys(&k2), v, v).unwrap();
        let got = tensor_attention_exact(&x, 1.0, NO_MASK).unwrap();
        assert!(got.iter().all(|v| v.is_finite()));
        assert!(max_abs_diff(&got, &naive_tensor(&x, 1.0, NO_MASK)) < 1e-12);
    }
}
