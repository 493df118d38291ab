//! Tests of the public rate functions against a textbook reference.

use ndarray::{ArrayView3, ArrayView4};

use super::*;

/// Deterministic values in [-0.5, 0.5).
pub(super) fn pseudo_random(len: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64) / (1u64 << 53) as f64 - 0.5
        })
        .collect()
}

/// 1/2 logdet(I + a G) of X (n x m, row-major) by a textbook Cholesky of the token side (G = X X^T)
/// or of the feature side (G = X^T X).
pub(super) fn naive_half_logdet(x: &[f64], n: usize, m: usize, a: f64, token_side: bool) -> f64 {
    let side = if token_side { n } else { m };
    let mut g = vec![0.0; side * side];
    for i in 0..side {
        for j in 0..side {
            let dot: f64 = if token_side {
                (0..m).map(|k| x[i * m + k] * x[j * m + k]).sum()
            } else {
                (0..n).map(|k| x[k * m + i] * x[k * m + j]).sum()
            };
            g[i * side + j] = f64::from(u8::from(i == j)) + a * dot;
        }
    }
    let mut l = vec![0.0; side * side];
    for j in 0..side {
        let s: f64 = (0..j).map(|k| l[j * side + k] * l[j * side + k]).sum();
        l[j * side + j] = (g[j * side + j] - s).sqrt();
        for i in j + 1..side {
            let s: f64 = (0..j).map(|k| l[i * side + k] * l[j * side + k]).sum();
            l[i * side + j] = (g[i * side + j] - s) / l[j * side + j];
        }
    }
    (0..side).map(|i| l[i * side + i].ln()).sum()
}

/// Z_b U_k for Z of shape (n, d) and U_k of shape (d, p), row-major.
fn project(z: &[f64], u: &[f64], n: usize, d: usize, p: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * p];
    for i in 0..n {
        for j in 0..p {
            out[i * p + j] = (0..d).map(|t| z[i * d + t] * u[t * p + j]).sum();
        }
    }
    out
}

/// `count` groups of shape (`tokens`, `dim`) from row-major `data`.
fn groups<'a, T: Element>(
    name: &'a str,
    data: &'a [T],
    count: usize,
    tokens: usize,
    dim: usize,
) -> TokenGroups<'a, T> {
    TokenGroups::new(
        name,
        ArrayView3::from_shape((count, tokens, dim), data).unwrap(),
    )
    .unwrap()
}

/// `heads` subspaces of shape (`dim`, `sub_dim`) from row-major `data`.
fn subspaces(data: &[f64], heads: usize, dim: usize, sub_dim: usize) -> Subspaces<'_> {
    Subspaces::new(ArrayView3::from_shape((heads, dim, sub_dim), data).unwrap()).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-11 * a.abs().max(b.abs()).max(1.0)
}

const EPS: f64 = 0.7;

#[test]
fn coding_rate_of_every_group_matches_the_reference() {
    let (count, n, d) = (5, 9, 4);
    let z = pseudo_random(count * n * d, 1);
    let zg = groups("Z", &z, count, n, d);
    let opts = RateOptions::new(EPS, false).unwrap();
    let r = coding_rate(&zg, &opts).unwrap();
    assert_eq!(r.jittered_groups, 0);
    let a = d as f64 / (n as f64 * EPS * EPS);
    for g in 0..count {
        let want = naive_half_logdet(&z[g * n * d..(g + 1) * n * d], n, d, a, true);
        assert!(close(r.values[g], want), "{} vs {want}", r.values[g]);
    }
}

#[test]
fn float32_input_is_computed_in_float64() {
    let z64 = pseudo_random(3 * 6 * 8, 2);
    let z32: Vec<f32> = z64.iter().map(|&v| v as f32).collect();
    let widened: Vec<f64> = z32.iter().map(|&v| f64::from(v)).collect();
    let opts = RateOptions::new(0.3, true).unwrap();
    let r32 = coding_rate(&groups("Z", &z32, 3, 6, 8), &opts).unwrap();
    let r64 = coding_rate(&groups("Z", &widened, 3, 6, 8), &opts).unwrap();
    assert_eq!(r32, r64);
}

#[test]
fn compressed_rate_with_u_equals_projected_and_reference() {
    let (b, n, d, k, p) = (3, 7, 6, 2, 4);
    let z = pseudo_random(b * n * d, 3);
    let u = pseudo_random(k * d * p, 4);
    let zg = groups("Z", &z, b, n, d);
    let us = subspaces(&u, k, d, p);
    for normalize in [false, true] {
        let opts = RateOptions::new(EPS, normalize).unwrap();
        let rc = compressed_coding_rate(&zg, &us, &opts).unwrap();
        let mut projected = Vec::new();
        for bi in 0..b {
            for ki in 0..k {
                projected.extend(project(
                    &z[bi * n * d..(bi + 1) * n * d],
                    &u[ki * d * p..(ki + 1) * d * p],
                    n,
                    d,
                    p,
                ));
            }
        }
        let zu = ArrayView4::from_shape((b, k, n, p), &projected).unwrap();
        let zu = ProjectedTokens::new("ZU", zu).unwrap();
        let rp = compressed_coding_rate_projected(&zu, &opts).unwrap();
        let a = p as f64 / (n as f64 * EPS * EPS);
        for bi in 0..b {
            let want: f64 = (0..k)
                .map(|ki| {
                    let g = bi * k + ki;
                    let mut x = projected[g * n * p..(g + 1) * n * p].to_vec();
                    if normalize {
                        kernel::normalize_rows(&mut x, p);
                    }
                    naive_half_logdet(&x, n, p, a, false)
                })
                .sum();
            assert!(close(rc.values[bi], want), "{} vs {want}", rc.values[bi]);
            assert!(close(rp.values[bi], want), "{} vs {want}", rp.values[bi]);
        }
    }
}

#[test]
fn identity_blocks_give_the_sum_of_block_coding_rates() {
    let (n, k, p) = (5, 3, 2);
    let d = k * p;
    let z = pseudo_random(n * d, 5);
    let mut u = vec![0.0; k * d * p];
    for ki in 0..k {
        for j in 0..p {
            u[(ki * d + ki * p + j) * p + j] = 1.0;
        }
    }
    let opts = RateOptions::new(EPS, false).unwrap();
    let zg = groups("Z", &z, 1, n, d);
    let rc = compressed_coding_rate(&zg, &subspaces(&u, k, d, p), &opts).unwrap();
    let blocks: f64 = (0..k)
        .map(|ki| {
            let block: Vec<f64> = (0..n)
                .flat_map(|i| z[i * d + ki * p..i * d + (ki + 1) * p].to_vec())
                .collect();
            let bg = groups("Z", &block, 1, n, p);
            coding_rate(&bg, &opts).unwrap().values[0]
        })
        .sum();
    assert!(close(rc.values[0], blocks), "{} vs {blocks}", rc.values[0]);
}

#[test]
fn reductions_combine_the_terms() {
    let (b, n, d, k, p) = (4, 6, 4, 2, 2);
    let mut z = pseudo_random(b * n * d, 6);
    z.iter_mut().step_by(3).for_each(|v| *v = 0.0);
    let u = pseudo_random(k * d * p, 7);
    let zg = groups("Z", &z, b, n, d);
    let us = subspaces(&u, k, d, p);
    let opts = RateOptions::new(EPS, false).unwrap();
    let r = coding_rate(&zg, &opts).unwrap().values;
    let rc = compressed_coding_rate(&zg, &us, &opts).unwrap().values;
    let l0 = sparsity(&zg, Sparsity::L0).unwrap();
    let l1 = sparsity(&zg, Sparsity::L1).unwrap();
    let dr = rate_reduction(&zg, &us, &opts).unwrap().values;
    let srr = sparse_rate_reduction(&zg, &us, &opts, 0.25, Sparsity::L1).unwrap();
    let measure = srr_measure(&zg, &us, &opts, 0.25, Sparsity::L0).unwrap();
    for g in 0..b {
        let group = &z[g * n * d..(g + 1) * n * d];
        let nonzeros = group.iter().filter(|v| **v != 0.0).count() as f64;
        assert_eq!(l0[g], nonzeros / n as f64);
        assert!(close(
            l1[g],
            group.iter().map(|v| v.abs()).sum::<f64>() / n as f64
        ));
        assert!(close(dr[g], r[g] - rc[g]));
        assert!(close(srr.values[g], r[g] - rc[g] - 0.25 * l1[g]));
        assert!(close(measure.values[g], 0.25 * l0[g] + rc[g] - r[g]));
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let (b, n, d) = (64, 65, 48);
    let z = pseudo_random(b * n * d, 8);
    let zg = groups("Z", &z, b, n, d);
    let opts = RateOptions::new(0.5, false).unwrap();
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| coding_rate(&zg, &opts).unwrap())
    };
    assert_eq!(run(1), run(3));
}

#[test]
fn empty_batches_give_empty_results() {
    let z: [f64; 0] = [];
    let zg = groups("Z", &z, 0, 3, 2);
    let opts = RateOptions::new(1.0, false).unwrap();
    assert!(coding_rate(&zg, &opts).unwrap().values.is_empty());
    assert!(sparsity(&zg, Sparsity::L0).unwrap().is_empty());
}

#[test]
fn non_finite_tokens_are_errors_naming_the_first() {
    let mut z = pseudo_random(4 * 3 * 2, 12);
    z[20] = f64::NAN;
    z[13] = f64::NEG_INFINITY;
    let zg = groups("Z", &z, 4, 3, 2);
    let u = pseudo_random(2 * 2, 13);
    let us = subspaces(&u, 1, 2, 2);
    let opts = RateOptions::new(1.0, false).unwrap();
    let want = Error::NonFinite {
        name: "Z".into(),
        index: 13,
    };
    assert_eq!(coding_rate(&zg, &opts).unwrap_err(), want);
    assert_eq!(compressed_coding_rate(&zg, &us, &opts).unwrap_err(), want);
    assert_eq!(sparsity(&zg, Sparsity::L1).unwrap_err(), want);
    assert_eq!(
        srr_measure(&zg, &us, &opts, 1.0, Sparsity::L0).unwrap_err(),
        want
    );
}

#[test]
fn bad_options_are_errors() {
    for eps in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let e = RateOptions::new(eps, false).unwrap_err();
        assert!(e.to_string().starts_with("eps:"), "{e}");
    }
    let z = pseudo_random(2 * 3 * 4, 9);
    let u = pseudo_random(4 * 2, 10);
    let zg = groups("Z", &z, 2, 3, 4);
    let us = subspaces(&u, 1, 4, 2);
    let opts = RateOptions::new(1.0, false).unwrap();
    let e = sparse_rate_reduction(&zg, &us, &opts, -1.0, Sparsity::L0).unwrap_err();
    assert!(e.to_string().starts_with("lam:"), "{e}");
    let no_heads = ArrayView4::from_shape((2, 0, 3, 4), &z[..0]).unwrap();
    let e = ProjectedTokens::new("ZU", no_heads).unwrap_err();
    assert!(e.to_string().starts_with("heads:"), "{e}");
    let wrong = subspaces(&u, 1, 2, 4);
    assert!(compressed_coding_rate(&zg, &wrong, &opts).is_err());
    let e = Sparsity::parse("l2").unwrap_err();
    assert!(e.to_string().contains("\"l0\", \"l1\""), "{e}");
}
