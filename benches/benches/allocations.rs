//! Allocations per request, counted by a global allocator (only in this
//! binary, so the timings of the `sessions` bench are not affected), and
//! the memory an idle session takes in each server-side store.
//!
//! `cargo bench -p sealed-session-benches --bench allocations`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use sealed_session_benches::{
    AxumStack, Runner, Work, actix, axum, idle_sessions, iron_ours, iron_peer, read_each,
    stateless_sessions,
};

/// The system allocator, counting allocations and bytes.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
/// Bytes allocated and not yet freed.
static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters are plain atomics.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: the caller's contract is the one `System.alloc` needs.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: as for `realloc` on `System`, whose contract the caller
        // upholds.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations (reallocations included) and bytes per iteration.
fn count(stack: &mut Runner) -> (f64, f64) {
    const N: u64 = 1000;
    stack.run(N); // warm caches, pools and lazies
    let (a0, b0) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    stack.run(N);
    let (a1, b1) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    ((a1 - a0) as f64 / N as f64, (b1 - b0) as f64 / N as f64)
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let mut axum_base = axum(AxumStack::Baseline, Work::Untouched);
    let mut actix_base = actix(false, Work::Untouched);
    let (axum_allocs, axum_bytes) = count(&mut axum_base);
    let (actix_allocs, actix_bytes) = count(&mut actix_base);
    println!(
        "{:<40} {:>12} {:>12} {:>14}",
        "stack", "allocs/iter", "added", "added bytes"
    );
    println!(
        "{:<40} {axum_allocs:>12.1} {:>12} {:>14}",
        "axum/no-session", "-", "-"
    );
    println!(
        "{:<40} {actix_allocs:>12.1} {:>12} {:>14}",
        "actix/no-session", "-", "-"
    );
    let axum_stacks = [
        (AxumStack::Stateless, Work::Untouched),
        (AxumStack::Stateless, Work::ReadOnly),
        (AxumStack::Stateless, Work::ReadWrite),
        (AxumStack::Memory, Work::ReadOnly),
        (AxumStack::Memory, Work::ReadWrite),
        (AxumStack::TowerSessions, Work::Untouched),
        (AxumStack::TowerSessions, Work::ReadOnly),
        (AxumStack::TowerSessions, Work::ReadWrite),
    ];
    for (stack, work) in axum_stacks {
        let mut runner = axum(stack, work);
        let (allocs, bytes) = count(&mut runner);
        println!(
            "{:<40} {allocs:>12.1} {:>12.1} {:>14.0}",
            runner.name(),
            allocs - axum_allocs,
            bytes - axum_bytes
        );
    }
    for work in [Work::Untouched, Work::ReadOnly, Work::ReadWrite] {
        let mut runner = actix(true, work);
        let (allocs, bytes) = count(&mut runner);
        println!(
            "{:<40} {allocs:>12.1} {:>12.1} {:>14.0}",
            runner.name(),
            allocs - actix_allocs,
            bytes - actix_bytes
        );
    }
    for mut runner in [iron_ours(), iron_peer()] {
        let (allocs, bytes) = count(&mut runner);
        println!(
            "{:<40} {allocs:>12.1} {:>12} {bytes:>14.0}",
            runner.name(),
            "-"
        );
    }
    memory_per_session();
}

/// Heap bytes per idle session (the bench's login: five fields, about
/// 100 bytes of JSON), over many sessions so that the maps' own growth
/// is averaged in.
fn memory_per_session() {
    const N: usize = 100_000;
    println!();
    println!(
        "{:<40} {:>16}",
        "store (100,000 idle sessions)", "bytes/session"
    );
    for (name, stack) in [
        ("sealed-session MemoryStore", AxumStack::Memory),
        (
            "sealed-session MokaStore over MemoryStore",
            AxumStack::Caching,
        ),
        ("tower-sessions MemoryStore", AxumStack::TowerSessions),
    ] {
        let before = LIVE.load(Ordering::Relaxed);
        let router = idle_sessions(stack, N);
        let after = LIVE.load(Ordering::Relaxed);
        println!("{name:<40} {:>16.0}", (after - before) as f64 / N as f64);
        drop(router);
    }
    memory_per_cached_cookie();
}

/// Heap bytes per opened cookie that a stateless engine keeps in its
/// cache (the same login; fewer cookies than the default capacity, so
/// that every one is kept).
fn memory_per_cached_cookie() {
    const N: usize = 3_000;
    let (router, cookies) = stateless_sessions(N);
    let before = LIVE.load(Ordering::Relaxed);
    read_each(&router, &cookies);
    let after = LIVE.load(Ordering::Relaxed);
    println!(
        "{:<40} {:>16.0}",
        "sealed-session stateless, cached cookie",
        (after - before) as f64 / N as f64
    );
    drop(router);
}
