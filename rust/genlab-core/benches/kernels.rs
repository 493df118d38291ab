//! Criterion benchmarks of the core kernels (no Python in the loop). Peers are timed from Python in
//! `benches/`; these track the kernels themselves: `cargo bench -p genlab-core`.

use criterion::{Criterion, criterion_group, criterion_main};
use genlab_core::rank::{NanPolicy, TauOptions, Variant, kendalltau, kendalltau_matrix};
use ndarray::{Array2, ShapeBuilder};
use std::hint::black_box;

fn lcg_normalish(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*seed >> 11) as f64) / (1u64 << 53) as f64 - 0.5
}

fn rank_benches(c: &mut Criterion) {
    let mut seed = 1;
    let x: Vec<f64> = (0..1_000_000).map(|_| lcg_normalish(&mut seed)).collect();
    let y: Vec<f64> = x.iter().map(|v| v + lcg_normalish(&mut seed)).collect();
    c.bench_function("kendalltau n=1e6", |b| {
        b.iter(|| kendalltau(black_box(&x), black_box(&y), &TauOptions::default()).unwrap())
    });
    let x = Array2::from_shape_simple_fn((2000, 100).f(), || lcg_normalish(&mut seed));
    c.bench_function("kendalltau_matrix 2000x100", |b| {
        b.iter(|| {
            kendalltau_matrix(
                black_box(x.view()),
                Variant::B,
                NanPolicy::Omit,
                f64::INFINITY,
            )
            .unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = rank_benches
}
criterion_main!(benches);
