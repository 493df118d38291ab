//! Scratch memory of the counts, always owned by a caller: [`Scratch`] for the batched forms,
//! [`KendallWorkspace`] for the large-n count. Nothing is kept behind the caller's back.

use crate::rank::radix::KeyPair;

/// Scratch space reused across pairs in the batched forms.
#[derive(Debug, Default)]
pub struct Scratch {
    pub(super) seq: Vec<u32>,
    pub(super) buf: Vec<u32>,
}

/// Scratch memory of the large-n count (`pair_counts_in`: 48 bytes per
/// observation, 48 MB at n = 1e6), for a caller that counts many times to keep between calls.
///
/// Fresh memory costs a page fault per 4 KiB page on first touch, on every call, because the
/// allocator hands blocks that large back to the system when they are freed: at n = 1e6 about
/// 14 ms of a 60 ms call in a one-off timing on the 2-core machine
/// (`python benches/bench_rank.py --first-call` shows a first call against later ones). A
/// workspace keeps its buffers up to `max_bytes` and frees larger ones after the call that needed
/// them; [`KendallWorkspace::release`] frees everything now.
#[derive(Debug)]
pub struct KendallWorkspace {
    pub(super) pairs: Vec<KeyPair>,
    pub(super) keys: Vec<u64>,
    max_bytes: usize,
}

/// The default `max_bytes` of a [`KendallWorkspace`]: buffers for n up to about 1e6 are kept.
pub const KENDALL_WORKSPACE_MAX_BYTES: usize = 48 << 20;

impl Default for KendallWorkspace {
    fn default() -> Self {
        KendallWorkspace::new(KENDALL_WORKSPACE_MAX_BYTES)
    }
}

impl KendallWorkspace {
    /// An empty workspace that keeps up to `max_bytes` of buffers between calls.
    pub fn new(max_bytes: usize) -> Self {
        KendallWorkspace {
            pairs: Vec::new(),
            keys: Vec::new(),
            max_bytes,
        }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.pairs.capacity() * std::mem::size_of::<KeyPair>()
            + self.keys.capacity() * std::mem::size_of::<u64>()
    }

    /// Frees every buffer.
    pub fn release(&mut self) {
        self.pairs = Vec::new();
        self.keys = Vec::new();
    }

    /// Buffers of `len` elements each (contents arbitrary).
    pub(super) fn buffers(&mut self, len: usize) -> (&mut [KeyPair], &mut [u64]) {
        if self.pairs.len() < len {
            self.pairs = vec![(0, 0); len];
        }
        if self.keys.len() < len {
            self.keys = vec![0; len];
        }
        (&mut self.pairs[..len], &mut self.keys[..len])
    }

    /// After a call: frees buffers beyond `max_bytes`.
    pub(super) fn trim(&mut self) {
        if self.bytes() > self.max_bytes {
            self.release();
        }
    }
}
