//! The blocked kernel: block totals of both key sets, then per block of queries running states
//! rebuilt from the totals and slid only inside the block (additions and subtractions stay short).

use ndarray::Array3;
use rayon::prelude::*;

use super::approximation::Basis;
use super::monomials::MonomialTable;
use super::planner::{PolyPlan, PolyRequest, poly_plan};
use crate::attention::{Dims, Mask, TensorInputs, check_scale, logit_bound_of, output};
use crate::error::{Error, Result};

/// Smallest block of queries (and rows) of the masked computation.
const MIN_BLOCK: usize = 16;

/// How the masked computation splits each problem into blocks of rows and queries.
#[derive(Debug, Clone, Copy)]
struct Blocks {
    size: usize,
    count: usize,
}

impl Blocks {
    /// About four blocks per thread over the whole batch, none smaller than [`MIN_BLOCK`].
    fn new(dims: Dims, threads: usize) -> Self {
        // An empty batch (a leading axis of length 0) has no problems but still a block size.
        let per_problem = (4 * threads).div_ceil(dims.batch.max(1)).max(1);
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

/// What every block of queries reads.
struct Shared<'a> {
    x: &'a TensorInputs<'a>,
    scale: f64,
    mask: Mask,
    table: &'a MonomialTable,
    weights: &'a [f64],
    /// Block totals of both key sets: `totals[(b * count + t) * 2 + set]`.
    totals: &'a [Vec<f64>],
    blocks: Blocks,
}

/// The two key sets (first and second keys with their values) of problem `b`.
fn key_sets<'a>(x: &'a TensorInputs<'a>, b: usize) -> [KeySet<'a>; 2] {
    let p = x.problem(b);
    let Dims { d, dv, .. } = x.dims;
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
}

impl Shared<'_> {
    /// The block totals of key set `set` of problem `b`, in block order.
    fn set_totals(&self, b: usize, set: usize) -> Vec<&[f64]> {
        let count = self.blocks.count;
        (0..count)
            .map(|u| self.totals[(b * count + u) * 2 + set].as_slice())
            .collect()
    }
}

/// The outputs of queries `t * size ..` of problem `b` into `block_out`: the two running states
/// built from block totals at the block's first query, then slid forward query by query.
fn attend_block(
    shared: &Shared<'_>,
    s: &mut Scratch,
    b: usize,
    t: usize,
    block_out: &mut [f64],
) -> Result<()> {
    let Dims { n, d, dv, .. } = shared.x.dims;
    let (table, blocks) = (shared.table, shared.blocks);
    let sets = key_sets(shared.x, b);
    let (totals1, totals2) = (shared.set_totals(b, 0), shared.set_totals(b, 1));
    let i0 = t * blocks.size;
    let windows = [shared.mask.first, shared.mask.second];
    let mut ranges = windows.map(|w| w.range(i0, n));
    sets[0].range_sum(
        table,
        ranges[0].clone(),
        blocks,
        &totals1,
        &mut s.monomials,
        &mut s.first,
    );
    sets[1].range_sum(
        table,
        ranges[1].clone(),
        blocks,
        &totals2,
        &mut s.monomials,
        &mut s.second,
    );
    let q = shared.x.problem(b).q;
    for (r_i, o) in block_out.chunks_exact_mut(dv).enumerate() {
        let i = i0 + r_i;
        if r_i > 0 {
            // Key ranges only move forward as i grows: add rows at the end, remove rows at the
            // start.
            let states = [&mut s.first, &mut s.second];
            for (set, state) in states.into_iter().enumerate() {
                let next = windows[set].range(i, n);
                let (old, monomials) = (ranges[set].clone(), &mut s.monomials);
                sets[set].add_rows(table, old.end..next.end, 1.0, monomials, state);
                sets[set].add_rows(table, old.start..next.start, -1.0, monomials, state);
                ranges[set] = next;
            }
        }
        for (sq, &ql) in s.scaled_query.iter_mut().zip(&q[i * d..(i + 1) * d]) {
            *sq = shared.scale * ql;
        }
        table.monomials(&s.scaled_query, &mut s.monomials);
        s.numerator.fill(0.0);
        let states = s
            .first
            .chunks_exact(dv + 1)
            .zip(s.second.chunks_exact(dv + 1));
        for (alpha, (a, bb)) in states.enumerate() {
            let w = shared.weights[alpha] * s.monomials[alpha];
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
                     rounding or a too-low degree for the logit range; raise the degree or use \
                     method=\"exact\""
                ),
            ));
        }
        for (o, &num) in o.iter_mut().zip(&s.numerator) {
            *o = num / z;
        }
    }
    Ok(())
}

/// Tensor attention by the polynomial method, with the degree given or chosen from `tol` at the
/// measured logit range ([`crate::attention::logit_bound`]). Returns the (batch, n, dv) outputs
/// and the plan.
pub fn tensor_attention_poly(
    x: &TensorInputs<'_>,
    scale: f64,
    mask: Mask,
    degree: Option<usize>,
    tol: Option<f64>,
    basis: Basis,
    memory_limit: f64,
) -> Result<(Array3<f64>, PolyPlan)> {
    check_scale(scale)?;
    let dims = x.dims;
    let Dims { batch, n, d, dv } = dims;
    let threads = rayon::current_num_threads();
    let blocks = Blocks::new(dims, threads);
    let plan = poly_plan(&PolyRequest {
        logit_range: logit_bound_of(x.q, x.k1, x.k2, dims, scale)?,
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
    // Block totals of both key sets: totals[(b * count + t) * 2 + set].
    let totals: Vec<Vec<f64>> = (0..batch * blocks.count * 2)
        .into_par_iter()
        .map(|index| {
            let (bt, set) = (index / 2, index % 2);
            let (b, t) = (bt / blocks.count, bt % blocks.count);
            let rows = t * blocks.size..((t + 1) * blocks.size).min(n);
            let mut state = vec![0.0; width];
            let mut monomials = vec![0.0; r];
            key_sets(x, b)[set].add_rows(&table, rows, 1.0, &mut monomials, &mut state);
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
    let shared = Shared {
        x,
        scale,
        mask,
        table: &table,
        weights: &weights,
        totals: &totals,
        blocks,
    };
    jobs.into_par_iter()
        .try_for_each_init(new_scratch, |s, (b, t, block_out)| {
            attend_block(&shared, s, b, t, block_out)
        })?;
    // The logits are bounded (the plan checked them), but the monomials k^alpha of large keys
    // (and the sums of large values) can still overflow: never return the NaN that leaves.
    crate::error::check_finite("output", &out).map_err(|_| {
        Error::invalid(
            "K1, K2",
            format!(
                "the polynomial features (products of up to {} key entries) or the weighted sums \
                 of the values overflow float64; rescale the keys and values, or use \
                 method=\"exact\"",
                plan.degree
            ),
        )
    })?;
    Ok((output(out, dims), plan))
}
