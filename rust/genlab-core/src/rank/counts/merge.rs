//! The merge-sort inversion count: discordant pairs as the inversions of y's ranks in x order,
//! sequential below [`PARALLEL_MIN`](super::ranking::PARALLEL_MIN) and split by merge paths above.

use super::ranking::PARALLEL_MIN;

/// Keys the merge-based inversion count works on.
pub(crate) trait MergeKey: Copy + Ord + Send + Sync + Default {
    /// `if take_b { b } else { a }` without a branch: the compiler turns an `if` here into a jump
    /// that mispredicts on half the steps of a random merge (measured 3x slower).
    fn select(a: Self, b: Self, take_b: bool) -> Self;
}

impl MergeKey for u32 {
    #[inline(always)]
    fn select(a: u32, b: u32, take_b: bool) -> u32 {
        a ^ ((a ^ b) & (take_b as u32).wrapping_neg())
    }
}

impl MergeKey for u64 {
    #[inline(always)]
    fn select(a: u64, b: u64, take_b: bool) -> u64 {
        a ^ ((a ^ b) & (take_b as u64).wrapping_neg())
    }
}

/// Number of strict inversions (i < j with s[i] > s[j]); sorts `s` in place. `buf` must have the
/// same length as `s`. Parallel (rayon) above a size threshold.
pub(crate) fn count_inversions<T: MergeKey>(s: &mut [T], buf: &mut [T]) -> u64 {
    assert_eq!(s.len(), buf.len(), "scratch buffer of the wrong length");
    sort_count(s, buf, false)
}

/// Merge sort counting inversions; the sorted result lands in `buf` if `into_buf`, else in `s`.
/// Halves are sorted into the other array and merged back, so no level copies.
fn sort_count<T: MergeKey>(s: &mut [T], buf: &mut [T], into_buf: bool) -> u64 {
    let n = s.len();
    if n < PARALLEL_MIN {
        let inversions = sort_count_sequential(s, buf);
        if into_buf {
            buf.copy_from_slice(s);
        }
        return inversions;
    }
    let mid = n / 2;
    let (a, b) = {
        let (sl, sr) = s.split_at_mut(mid);
        let (bl, br) = buf.split_at_mut(mid);
        rayon::join(
            || sort_count(sl, bl, !into_buf),
            || sort_count(sr, br, !into_buf),
        )
    };
    let cross = if into_buf {
        let (l, r) = s.split_at(mid);
        merge_count_parallel(l, r, buf)
    } else {
        let (l, r) = buf.split_at(mid);
        merge_count_parallel(l, r, s)
    };
    a + b + cross
}

/// Bottom-up merge sort counting inversions; result in `s`.
pub(crate) fn sort_count_sequential<T: MergeKey>(s: &mut [T], buf: &mut [T]) -> u64 {
    let n = s.len();
    let mut inversions = 0u64;
    for block in s.chunks_mut(8) {
        inversions += sort_block_count(block);
    }
    let mut width = 8;
    let mut in_s = true;
    while width < n {
        {
            let (src, dst): (&[T], &mut [T]) = if in_s { (s, buf) } else { (buf, s) };
            let mut start = 0;
            while start < n {
                let mid = (start + width).min(n);
                let end = (start + 2 * width).min(n);
                inversions += merge_count(&src[start..mid], &src[mid..end], &mut dst[start..end]);
                start = end;
            }
        }
        in_s = !in_s;
        width *= 2;
    }
    if !in_s {
        s.copy_from_slice(buf);
    }
    inversions
}

/// Sorts a block of at most 8 keys and returns its inversions: all pairs compared (branch-free),
/// then an optimal 19-comparator sorting network for full blocks.
#[inline]
pub(super) fn sort_block_count<T: MergeKey>(a: &mut [T]) -> u64 {
    let mut inversions = 0u64;
    for i in 0..a.len() {
        for j in (i + 1)..a.len() {
            inversions += (a[i] > a[j]) as u64;
        }
    }
    if a.len() == 8 {
        const NETWORK: [(usize, usize); 19] = [
            (0, 2),
            (1, 3),
            (4, 6),
            (5, 7),
            (0, 4),
            (1, 5),
            (2, 6),
            (3, 7),
            (0, 1),
            (2, 3),
            (4, 5),
            (6, 7),
            (2, 4),
            (3, 5),
            (1, 4),
            (3, 6),
            (1, 2),
            (3, 4),
            (5, 6),
        ];
        for (i, j) in NETWORK {
            let (lo, hi) = (a[i].min(a[j]), a[i].max(a[j]));
            a[i] = lo;
            a[j] = hi;
        }
    } else {
        a.sort_unstable();
    }
    inversions
}

/// Above this many outputs, a merge splits into two merges that run on two threads.
const PARALLEL_MERGE_MIN: usize = 1 << 17;

/// [`merge_count`], split along the merge path into parallel pieces when large.
fn merge_count_parallel<T: MergeKey>(left: &[T], right: &[T], out: &mut [T]) -> u64 {
    let (nl, nr) = (left.len(), right.len());
    if nl + nr < PARALLEL_MERGE_MIN {
        return merge_count(left, right, out);
    }
    let half = (nl + nr) / 2;
    let (a, b) = merge_path_split(left, right, half);
    let (out1, out2) = out.split_at_mut(half);
    let (x, y) = rayon::join(
        || merge_count_parallel(&left[..a], &right[..b], out1),
        || merge_count_parallel(&left[a..], &right[b..], out2),
    );
    x + y + ((nl - a) * b) as u64
}

/// Merges sorted `left` and `right` into `out` (stable: ties take `left` first), returning the
/// pairs (l in left, r in right) with l > r.
///
/// The merge is split at its midpoint along the merge path into two independent merges that run
/// interleaved: a single merge is latency-bound (each step's loads wait on the previous
/// comparison), two chains keep the core busy. Pairs across the split need no comparison: with
/// the split at (a, b), left[..a] <= right[b..] and left[a..] > right[..b].
#[inline]
fn merge_count<T: MergeKey>(left: &[T], right: &[T], out: &mut [T]) -> u64 {
    let (nl, nr) = (left.len(), right.len());
    if nl + nr < 64 {
        return merge_count_from(left, right, out, 0, 0, 0);
    }
    let half = (nl + nr) / 2;
    let (a, b) = merge_path_split(left, right, half);
    let (o1, o2) = out.split_at_mut(half);
    let (l1, r1, l2, r2) = (&left[..a], &right[..b], &left[a..], &right[b..]);
    let (mut i1, mut j1, mut k1, mut inv1) = (0usize, 0usize, 0usize, 0u64);
    let (mut i2, mut j2, mut k2, mut inv2) = (0usize, 0usize, 0usize, 0u64);
    while i1 < l1.len() && j1 < r1.len() && i2 < l2.len() && j2 < r2.len() {
        let (a1, b1) = (l1[i1], r1[j1]);
        let (a2, b2) = (l2[i2], r2[j2]);
        let (t1, t2) = (b1 < a1, b2 < a2);
        o1[k1] = T::select(a1, b1, t1);
        o2[k2] = T::select(a2, b2, t2);
        inv1 += ((l1.len() - i1) & (t1 as usize).wrapping_neg()) as u64;
        inv2 += ((l2.len() - i2) & (t2 as usize).wrapping_neg()) as u64;
        j1 += t1 as usize;
        i1 += 1 - t1 as usize;
        j2 += t2 as usize;
        i2 += 1 - t2 as usize;
        k1 += 1;
        k2 += 1;
    }
    ((nl - a) * b) as u64
        + inv1
        + inv2
        + merge_count_from(l1, r1, o1, i1, j1, k1)
        + merge_count_from(l2, r2, o2, i2, j2, k2)
}

/// The split (a, b) with a + b = k such that merging left[..a] with right[..b] yields the first k
/// outputs of the stable merge.
fn merge_path_split<T: MergeKey>(left: &[T], right: &[T], k: usize) -> (usize, usize) {
    // Smallest a with left[a] > right[k - a - 1]: a tie keeps the left element in the first part.
    let mut lo = k.saturating_sub(right.len());
    let mut hi = k.min(left.len());
    while lo < hi {
        let a = (lo + hi) / 2;
        if left[a] <= right[k - a - 1] {
            lo = a + 1;
        } else {
            hi = a;
        }
    }
    (lo, k - lo)
}

/// Finishes a merge from positions (i, j, k); returns the inversions it adds.
#[inline]
fn merge_count_from<T: MergeKey>(
    left: &[T],
    right: &[T],
    out: &mut [T],
    mut i: usize,
    mut j: usize,
    mut k: usize,
) -> u64 {
    let (nl, nr) = (left.len(), right.len());
    let mut inversions = 0u64;
    while i < nl && j < nr {
        let (a, b) = (left[i], right[j]);
        let t = b < a;
        out[k] = T::select(a, b, t);
        inversions += ((nl - i) & (t as usize).wrapping_neg()) as u64;
        j += t as usize;
        i += 1 - t as usize;
        k += 1;
    }
    out[k..k + nl - i].copy_from_slice(&left[i..]);
    k += nl - i;
    out[k..].copy_from_slice(&right[j..]);
    inversions
}
