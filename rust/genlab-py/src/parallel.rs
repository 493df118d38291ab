//! Where kernels run: the GIL is released and the work goes to a rayon pool.
//!
//! `n_jobs` follows joblib/scikit-learn: `None` uses the global pool (sized by `RAYON_NUM_THREADS`,
//! else the number of cores), a positive k uses k threads, -1 all cores, -2 all but one, and so on.
//!
//! rayon and `fork()` do not mix: a forked child (a PyTorch DataLoader worker, a multiprocessing
//! pool) inherits the global pool's bookkeeping but not its threads, so work sent there would never
//! run. Kernels therefore check the process id and, in a child, use a pool created in that child.
//!
//! Thread counts are capped at the number of cores (the numpy layer warns when it caps a request),
//! so at most one pool per thread count 1..=cores exists per process: the pool cache is bounded.
//! Pools are created with the GIL released, so a slow thread start never blocks other Python
//! threads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use pyo3::prelude::*;
use pyo3::types::PyModule;
use rayon::ThreadPool;

use crate::errors;

/// The process that loaded the module; rayon's global pool is only safe to use there.
static PARENT_PID: OnceLock<u32> = OnceLock::new();
/// Pools created on demand, keyed by (process id, thread count).
type PoolCache = Mutex<HashMap<(u32, usize), Arc<ThreadPool>>>;
static POOLS: OnceLock<PoolCache> = OnceLock::new();

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(instruction_set, m)?)?;
    PARENT_PID.get_or_init(std::process::id);
    m.add_function(wrap_pyfunction!(effective_n_jobs, m)?)?;
    Ok(())
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Resolves an `n_jobs` argument to a thread count (`None`: the default pool's size).
fn resolve(n_jobs: Option<i64>) -> PyResult<Option<usize>> {
    match n_jobs {
        None => Ok(None),
        Some(0) => Err(errors::invalid(
            "n_jobs",
            "expected a positive number of threads, -1 (all cores) or None, got 0",
        )),
        // More threads than cores only adds switching; the cap also bounds the pool cache.
        Some(k) if k > 0 => Ok(Some((k as usize).min(available_cores()))),
        Some(k) => Ok(Some((available_cores() as i64 + 1 + k).max(1) as usize)),
    }
}

/// The instruction set the kernels run with: "avx512", "avx2" or "baseline" (the CPU's best, or
/// less when `GENLAB_ISA` asks for less).
#[pyfunction]
fn instruction_set() -> &'static str {
    genlab_core::instruction_set()
}

/// Number of threads a kernel called with this `n_jobs` uses.
#[pyfunction]
#[pyo3(signature = (n_jobs=None))]
fn effective_n_jobs(n_jobs: Option<i64>) -> PyResult<usize> {
    Ok(resolve(n_jobs)?.unwrap_or_else(rayon::current_num_threads))
}

fn pool(threads: usize) -> PyResult<Arc<ThreadPool>> {
    let key = (std::process::id(), threads);
    let pools = POOLS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut guard = pools
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(p) = guard.get(&key) {
        return Ok(p.clone());
    }
    let p = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| {
                errors::invalid("n_jobs", format!("cannot start {threads} threads: {e}"))
            })?,
    );
    guard.insert(key, p.clone());
    Ok(p)
}

/// Runs `f` with the GIL released, in the pool that `n_jobs` selects.
pub fn run<T, F>(py: Python<'_>, n_jobs: Option<i64>, f: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let threads = resolve(n_jobs)?;
    let in_parent = PARENT_PID
        .get()
        .is_some_and(|&pid| pid == std::process::id());
    py.detach(|| {
        let chosen = match threads {
            Some(t) => Some(pool(t)?),
            None if in_parent => None,
            None => Some(pool(
                std::env::var("RAYON_NUM_THREADS")
                    .ok()
                    .and_then(|v| v.parse::<usize>().ok())
                    .filter(|&t| t > 0)
                    .unwrap_or_else(available_cores)
                    .min(available_cores()),
            )?),
        };
        Ok(match chosen {
            Some(p) => p.install(f),
            None => f(),
        })
    })
}
