//! SIMD micro-kernels of the exact streaming attention.
//!
//! A tile is `rows` query-side vectors `u_r` (a multiple of [`ROW_ALIGN`]) against a chunk of
//! keys stored as panels of [`LANES`] keys. One tile runs three steps in cache: the scores
//! `u_r . key_c` (register-blocked GEMM), the shifted exponentials, and the probability-weighted
//! sum of value rows (a second GEMM). The kernels are plain loops over fixed-size arrays that LLVM
//! vectorizes; [`multiversion!`] compiles each entry point for AVX-512, for AVX2+FMA and for the
//! baseline target, and the CPU picks one at run time (wheels target baseline x86-64, so without
//! this the kernels would run on SSE2 without FMA).

use crate::simd::{Fused, Isa, MulAdd, Unfused, exp_nonpositive, multiversion};

/// Keys per panel and value columns per register block.
pub(crate) const LANES: usize = 8;
/// Tiles hold a multiple of this many rows (the largest register block).
pub(crate) const ROW_ALIGN: usize = 8;

/// Packs the rows of `keys` (n x d, row-major) into panels of [`LANES`] keys, each stored d x LANES
/// (coordinate-major), zero-padded to a whole number of panels.
pub(crate) fn pack_key_panels(keys: &[f64], n: usize, d: usize) -> Vec<f64> {
    let n_panels = n.div_ceil(LANES);
    let mut panels = vec![0.0; n_panels * d * LANES];
    for (k, key) in keys.chunks_exact(d).enumerate().take(n) {
        let base = (k / LANES) * d * LANES + k % LANES;
        for (l, &x) in key.iter().enumerate() {
            panels[base + l * LANES] = x;
        }
    }
    panels
}

/// Width of value rows once padded to whole register blocks.
pub(crate) fn padded_width(dv: usize) -> usize {
    dv.div_ceil(LANES) * LANES
}

/// Copies `values` (n x dv) into rows of [`padded_width`] columns, with zero rows up to a whole
/// number of key panels so that a tile may read past the last key.
pub(crate) fn pad_values(values: &[f64], n: usize, dv: usize) -> Vec<f64> {
    let dvp = padded_width(dv);
    let mut padded = vec![0.0; n.div_ceil(LANES) * LANES * dvp];
    for (row, v) in padded.chunks_exact_mut(dvp).zip(values.chunks_exact(dv)) {
        row[..dv].copy_from_slice(v);
    }
    padded
}

/// Geometry of one tile: `rows` vectors of width `d` (a multiple of [`ROW_ALIGN`]) against
/// `n_panels` key panels, with value rows of width `dvp`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TileShape {
    pub(crate) rows: usize,
    pub(crate) d: usize,
    pub(crate) n_panels: usize,
    pub(crate) dvp: usize,
}

impl TileShape {
    fn n_cols(&self) -> usize {
        self.n_panels * LANES
    }
}

/// What a tile reads: the rows (see [`write_tile_row`]), the key panels from the tile's first key
/// and the padded value rows from the same key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tile<'a> {
    pub(crate) u: &'a [f64],
    pub(crate) panels: &'a [f64],
    pub(crate) values: &'a [f64],
    pub(crate) shape: TileShape,
}

/// Writes row `r` of a tile of rows stored like the key panels: blocks of [`ROW_ALIGN`] rows,
/// each d x ROW_ALIGN (coordinate-major), so that the score kernel reads the rows of a block as
/// one fixed-size array per coordinate.
pub(crate) fn write_tile_row(
    u: &mut [f64],
    d: usize,
    r: usize,
    row: impl IntoIterator<Item = f64>,
) {
    let base = (r / ROW_ALIGN) * d * ROW_ALIGN + r % ROW_ALIGN;
    for (l, x) in row.into_iter().enumerate().take(d) {
        u[base + l * ROW_ALIGN] = x;
    }
}

/// scores[c * rows + r] = u_r . key_c for every row and every key of the panels: the tile is
/// stored key-major so that a key's scores over a block of rows are contiguous. Every access in
/// the inner loop is to a fixed-size array, so the B x ROW_ALIGN accumulators stay in registers.
#[inline(always)]
fn score_tile_body<A: MulAdd, const B: usize>(
    u: &[f64],
    panels: &[f64],
    shape: TileShape,
    scores: &mut [f64],
) {
    let (d, rows) = (shape.d, shape.rows);
    for (block, u_panel) in u
        .chunks_exact(d * ROW_ALIGN)
        .take(rows / ROW_ALIGN)
        .enumerate()
    {
        for (p, panel) in panels
            .chunks_exact(d * LANES)
            .take(shape.n_panels)
            .enumerate()
        {
            for c0 in (0..LANES).step_by(B) {
                let mut acc = [[0.0f64; ROW_ALIGN]; B];
                for (u_l, key_l) in u_panel
                    .chunks_exact(ROW_ALIGN)
                    .zip(panel.chunks_exact(LANES))
                {
                    let a: &[f64; ROW_ALIGN] = u_l.try_into().unwrap();
                    let b: &[f64; B] = key_l[c0..c0 + B].try_into().unwrap();
                    for c in 0..B {
                        for r in 0..ROW_ALIGN {
                            acc[c][r] = A::mul_add(b[c], a[r], acc[c][r]);
                        }
                    }
                }
                for (c, acc_c) in acc.iter().enumerate() {
                    let start = (p * LANES + c0 + c) * rows + block * ROW_ALIGN;
                    scores[start..start + ROW_ALIGN].copy_from_slice(acc_c);
                }
            }
        }
    }
}

/// out[r][..] = sum over the keys c of the panels of probs[c * rows + r] * values[c][..] (rows of
/// width dvp). Probabilities outside a row's keys must be 0.
#[inline(always)]
fn weighted_values_body<A: MulAdd, const B: usize>(
    probs: &[f64],
    values: &[f64],
    shape: TileShape,
    out: &mut [f64],
) {
    let (rows, dvp, n_cols) = (shape.rows, shape.dvp, shape.n_cols());
    let (probs, values) = (&probs[..n_cols * rows], &values[..n_cols * dvp]);
    for r0 in (0..rows).step_by(B) {
        for block in 0..dvp / LANES {
            let mut acc = [[0.0f64; LANES]; B];
            for (column, value_row) in probs.chunks_exact(rows).zip(values.chunks_exact(dvp)) {
                let a: &[f64; B] = column[r0..][..B].try_into().unwrap();
                let b: &[f64; LANES] = value_row[block * LANES..][..LANES].try_into().unwrap();
                for r in 0..B {
                    for e in 0..LANES {
                        acc[r][e] = A::mul_add(a[r], b[e], acc[r][e]);
                    }
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                let start = (r0 + r) * dvp + block * LANES;
                out[start..start + LANES].copy_from_slice(acc_r);
            }
        }
    }
}

/// Maximum of a slice (-inf when empty).
#[inline(always)]
fn max_of(xs: &[f64]) -> f64 {
    let mut lanes = [f64::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (m, &x) in lanes.iter_mut().zip(chunk) {
            *m = if x > *m { x } else { *m };
        }
    }
    tail.iter()
        .chain(lanes.iter())
        .fold(f64::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

/// xs[c] = exp(xs[c] - shift) in place; returns the sum.
#[inline(always)]
fn exp_shifted<A: MulAdd>(xs: &mut [f64], shift: f64) -> f64 {
    let mut sums = [0.0f64; LANES];
    let mut chunks = xs.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (s, x) in sums.iter_mut().zip(chunk.iter_mut()) {
            *x = exp_nonpositive::<A>(*x - shift);
            *s += *x;
        }
    }
    let mut total: f64 = sums.iter().sum();
    for x in chunks.into_remainder() {
        *x = exp_nonpositive::<A>(*x - shift);
        total += *x;
    }
    total
}

/// The joint softmax of a tensor-attention tile (one query): scores over the rows < `valid_rows`
/// and the key columns `cols` become exp(score - max) with one maximum for the whole tile; every
/// other entry becomes 0. Returns (max, sum).
#[inline(always)]
fn joint_softmax_body<A: MulAdd>(
    scores: &mut [f64],
    shape: TileShape,
    valid_rows: usize,
    cols: std::ops::Range<usize>,
) -> (f64, f64) {
    let rows = shape.rows;
    let region = cols.start * rows..cols.end * rows;
    let max;
    let mut sum = 0.0;
    if valid_rows == rows {
        // The common case: the keys' scores form one contiguous run.
        max = max_of(&scores[region.clone()]);
        sum = exp_shifted::<A>(&mut scores[region.clone()], max);
    } else {
        max = scores[region.clone()]
            .chunks_exact(rows)
            .map(|column| max_of(&column[..valid_rows]))
            .fold(f64::NEG_INFINITY, f64::max);
        for column in scores[region.clone()].chunks_exact_mut(rows) {
            sum += exp_shifted::<A>(&mut column[..valid_rows], max);
            column[valid_rows..].fill(0.0);
        }
    }
    scores[..region.start].fill(0.0);
    scores[region.end..shape.n_cols() * rows].fill(0.0);
    (max, sum)
}

/// The per-row softmax of an ordinary-attention tile: row r sees the key columns `row_cols[r]`
/// (possibly empty; rows beyond `row_cols` are padding) with its own maximum. Writes
/// (max, sum) per row into `stats` ((-inf, 0) for an empty row).
#[inline(always)]
fn per_row_softmax_body<A: MulAdd>(
    scores: &mut [f64],
    shape: TileShape,
    row_cols: &[std::ops::Range<usize>],
    stats: &mut [(f64, f64)],
) {
    let rows = shape.rows;
    for r0 in (0..rows).step_by(ROW_ALIGN) {
        let range = |r: usize| row_cols.get(r0 + r).cloned().unwrap_or(0..0);
        let lo: [usize; ROW_ALIGN] = std::array::from_fn(|r| range(r).start);
        let hi: [usize; ROW_ALIGN] = std::array::from_fn(|r| range(r).end);
        let mut max = [f64::NEG_INFINITY; ROW_ALIGN];
        for (c, column) in scores.chunks_exact(rows).take(shape.n_cols()).enumerate() {
            let x: &[f64; ROW_ALIGN] = column[r0..r0 + ROW_ALIGN].try_into().unwrap();
            for r in 0..ROW_ALIGN {
                let inside = c >= lo[r] && c < hi[r];
                max[r] = if inside && x[r] > max[r] {
                    x[r]
                } else {
                    max[r]
                };
            }
        }
        let mut sum = [0.0f64; ROW_ALIGN];
        for (c, column) in scores
            .chunks_exact_mut(rows)
            .take(shape.n_cols())
            .enumerate()
        {
            let x: &mut [f64; ROW_ALIGN] = (&mut column[r0..r0 + ROW_ALIGN]).try_into().unwrap();
            for r in 0..ROW_ALIGN {
                let inside = c >= lo[r] && c < hi[r];
                // Outside lanes may compute garbage (max is -inf for an empty row); the select
                // discards it.
                let p = exp_nonpositive::<A>(x[r] - max[r]);
                x[r] = if inside { p } else { 0.0 };
                sum[r] += x[r];
            }
        }
        for r in 0..ROW_ALIGN {
            stats[r0 + r] = (max[r], sum[r]);
        }
    }
}

multiversion! {
    /// [`score_tile_body`] for the running CPU.
    fn score_tile(u: &[f64], panels: &[f64], shape: TileShape, scores: &mut [f64])
        => score_tile_body::<[Fused, 8], [Fused, 4], [Unfused, 4]>
}

multiversion! {
    /// [`weighted_values_body`] for the running CPU.
    fn weighted_values(probs: &[f64], values: &[f64], shape: TileShape, out: &mut [f64])
        => weighted_values_body::<[Fused, 8], [Fused, 4], [Unfused, 4]>
}

multiversion! {
    /// [`joint_softmax_body`] for the running CPU.
    fn joint_softmax(
        scores: &mut [f64],
        shape: TileShape,
        valid_rows: usize,
        cols: std::ops::Range<usize>,
    ) -> (f64, f64) => joint_softmax_body::<[Fused], [Fused], [Unfused]>
}

multiversion! {
    /// [`per_row_softmax_body`] for the running CPU.
    fn per_row_softmax(
        scores: &mut [f64],
        shape: TileShape,
        row_cols: &[std::ops::Range<usize>],
        stats: &mut [(f64, f64)],
    ) => per_row_softmax_body::<[Fused], [Fused], [Unfused]>
}

/// One tile of tensor attention for a single query: all rows share the key columns `cols` and one
/// maximum (the softmax is joint over rows and columns); rows at and beyond `valid_rows` are
/// padding. Returns (maximum, sum of exp(score - maximum)) and leaves sum_c p[r][c] v_c in
/// `weighted` (row-major, width dvp).
pub(crate) fn tensor_tile(
    isa: Isa,
    tile: Tile<'_>,
    valid_rows: usize,
    cols: std::ops::Range<usize>,
    scores: &mut [f64],
    weighted: &mut [f64],
) -> (f64, f64) {
    score_tile(isa, tile.u, tile.panels, tile.shape, scores);
    let stats = joint_softmax(isa, scores, tile.shape, valid_rows, cols);
    weighted_values(isa, scores, tile.values, tile.shape, weighted);
    stats
}

/// One tile of ordinary attention: every row is its own query with its own key columns
/// `row_cols[r]` and maximum. Writes (maximum, sum) per row into `stats` and sum_c p[r][c] v_c
/// into `weighted`.
pub(crate) fn attention_tile(
    isa: Isa,
    tile: Tile<'_>,
    row_cols: &[std::ops::Range<usize>],
    scores: &mut [f64],
    weighted: &mut [f64],
    stats: &mut [(f64, f64)],
) {
    score_tile(isa, tile.u, tile.panels, tile.shape, scores);
    per_row_softmax(isa, scores, tile.shape, row_cols, stats);
    weighted_values(isa, scores, tile.values, tile.shape, weighted);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_tile(
        u: &[f64],
        keys: &[f64],
        values: &[f64],
        rows: usize,
        n: usize,
        d: usize,
        dv: usize,
    ) -> Vec<f64> {
        // sum_c exp(u_r . k_c - max) v_c for every row, with the max over the whole tile.
        let s: Vec<f64> = (0..rows * n)
            .map(|rc| {
                (0..d)
                    .map(|l| u[(rc / n) * d + l] * keys[(rc % n) * d + l])
                    .sum()
            })
            .collect();
        let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let mut out = vec![0.0; rows * dv];
        for r in 0..rows {
            for c in 0..n {
                let p = (s[r * n + c] - max).exp();
                for e in 0..dv {
                    out[r * dv + e] += p * values[c * dv + e];
                }
            }
        }
        out
    }

    #[test]
    fn every_instruction_set_computes_the_same_tile() {
        let (rows, n, d, dv) = (8, 21, 5, 3);
        let values_of = |len: usize, seed: u64| -> Vec<f64> {
            (0..len)
                .map(|i| (((i as u64 + 1) * seed) % 97) as f64 / 48.0 - 1.0)
                .collect()
        };
        let (u, keys, values) = (
            values_of(rows * d, 13),
            values_of(n * d, 31),
            values_of(n * dv, 7),
        );
        let want = naive_tile(&u, &keys, &values, rows, n, d, dv);
        let mut tile = vec![0.0; rows * d];
        for (r, row) in u.chunks_exact(d).enumerate() {
            write_tile_row(&mut tile, d, r, row.iter().copied());
        }
        let panels = pack_key_panels(&keys, n, d);
        let padded = pad_values(&values, n, dv);
        let shape = TileShape {
            rows,
            d,
            n_panels: n.div_ceil(LANES),
            dvp: padded_width(dv),
        };
        for isa in Isa::supported() {
            let mut scores = vec![0.0; rows * shape.n_cols()];
            let mut weighted = vec![0.0; rows * shape.dvp];
            let (max, _) = tensor_tile(
                isa,
                Tile {
                    u: &tile,
                    panels: &panels,
                    values: &padded,
                    shape,
                },
                rows,
                0..n,
                &mut scores,
                &mut weighted,
            );
            for r in 0..rows {
                for e in 0..dv {
                    let got = weighted[r * shape.dvp + e];
                    // naive_tile shifts by its own max; both are the tile-wide max.
                    assert!(
                        (got - want[r * dv + e]).abs() < 1e-12,
                        "{isa:?} {got} {}",
                        want[r * dv + e]
                    );
                }
            }
            assert!(max.is_finite());
        }
    }
}
