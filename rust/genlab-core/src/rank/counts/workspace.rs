//! Scratch memory of the counts: [`Scratch`] for the batched forms (the caller keeps it), and the
//! buffers of the large-n count.

use std::sync::Mutex;

use crate::rank::radix::KeyPair;

/// Scratch space reused across pairs in the batched forms.
#[derive(Debug, Default)]
pub struct Scratch {
    pub(super) seq: Vec<u32>,
    pub(super) buf: Vec<u32>,
}

/// Scratch memory of the large-n [`pair_counts`](super::pair_counts), kept between calls. Fresh memory costs a page
/// fault per 4 KiB page on first touch, on every call, as the allocator hands such blocks back to
/// the system when freed: at n = 1e6 (48 MB of buffers) about 14 ms of a 60 ms call in a one-off
/// timing on the 2-core machine; `python benches/bench_rank.py --first-call` shows the difference
/// between a first call and later ones.
pub(super) static PAIR_BUFFERS: Mutex<Vec<KeyPair>> = Mutex::new(Vec::new());
/// See [`PAIR_BUFFERS`].
pub(super) static KEY_BUFFERS: Mutex<Vec<u64>> = Mutex::new(Vec::new());
/// A cached buffer larger than this is freed after the call instead (n above about 1.5e6).
const CACHE_MAX_BYTES: usize = 48 << 20;

/// Runs `f` on `len` elements of scratch taken from `cache` (contents arbitrary), or freshly
/// allocated when the cache is too small or in use by another call.
pub(super) fn with_cached<T: Copy + Default, R>(
    cache: &Mutex<Vec<T>>,
    len: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    let mut buffer = cache
        .try_lock()
        .map(|mut cached| std::mem::take(&mut *cached))
        .unwrap_or_default();
    if buffer.len() < len {
        buffer = vec![T::default(); len];
    }
    let result = f(&mut buffer[..len]);
    if buffer.len() * std::mem::size_of::<T>() <= CACHE_MAX_BYTES
        && let Ok(mut cached) = cache.try_lock()
        && cached.len() < buffer.len()
    {
        *cached = buffer;
    }
    result
}
