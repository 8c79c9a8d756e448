//! sealed-session against its peers, in one run: criterion times each
//! stack, then a summary measures them again interleaved (round-robin
//! batches, medians) and prints one `ratio <name> <value> (target <= <t>)`
//! line per target of issue 9.
//!
//! `cargo bench -p sealed-session-benches --bench sessions`; pass a
//! criterion filter to time some stacks only (`-- iron`), or set
//! `RATIOS_ONLY=1` to skip criterion and print the ratios alone.
//! `PROFILE=<stack name> PROFILE_N=<n>` runs one stack alone, for
//! callgrind.

use std::time::Duration;

use criterion::Criterion;
use sealed_session_benches::{
    AxumStack, Runner, Work, actix, axum, axum_extension_entry_and_response_around_router,
    axum_extension_entry_around_router, axum_tower_sessions_untouched_around_router,
    axum_untouched_around_router, crypto_floor, iron_ours, iron_peer,
};

/// Every stack, in a fixed order the summary indexes into.
fn stacks() -> Vec<Runner> {
    vec![
        iron_ours(),                                       // 0
        iron_peer(),                                       // 1
        axum(AxumStack::Baseline, Work::Untouched),        // 2
        axum(AxumStack::Stateless, Work::Untouched),       // 3
        axum(AxumStack::Stateless, Work::ReadWrite),       // 4
        axum(AxumStack::Stateless, Work::ReadOnly),        // 5
        axum(AxumStack::Memory, Work::ReadWrite),          // 6
        axum(AxumStack::Memory, Work::ReadOnly),           // 7
        axum(AxumStack::TowerSessions, Work::ReadWrite),   // 8
        axum(AxumStack::TowerSessions, Work::ReadOnly),    // 9
        actix(false, Work::Untouched),                     // 10
        actix(true, Work::ReadWrite),                      // 11
        actix(true, Work::ReadOnly),                       // 12
        axum(AxumStack::PassThrough, Work::Untouched),     // 13
        axum_untouched_around_router(),                    // 14
        axum_extension_entry_around_router(),              // 15
        axum(AxumStack::TowerSessions, Work::Untouched),   // 16
        axum_tower_sessions_untouched_around_router(),     // 17
        axum(AxumStack::MemoryOwned, Work::ReadWrite),     // 18
        axum(AxumStack::MemoryOwned, Work::ReadOnly),      // 19
        crypto_floor(),                                    // 20
        axum_extension_entry_and_response_around_router(), // 21
    ]
}

fn criterion_benches(c: &mut Criterion, stacks: &mut [Runner]) {
    for stack in stacks {
        let name = stack.name();
        c.bench_function(name, |b| b.iter_custom(|n| stack.run(n)));
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// ns per iteration of every stack, one row per round: each round runs
/// every stack for about `batch`, so that drift on a busy machine hits the
/// stacks of a round alike.
fn interleaved(stacks: &mut [Runner], rounds: usize, batch: Duration) -> Vec<Vec<f64>> {
    let sizes: Vec<u64> = stacks.iter_mut().map(|s| s.calibrate(batch)).collect();
    (0..rounds)
        .map(|_| {
            stacks
                .iter_mut()
                .zip(&sizes)
                .map(|(stack, &n)| stack.ns_per_iter(n))
                .collect()
        })
        .collect()
}

/// The median over rounds of `f(round)`.
fn median_of(rounds: &[Vec<f64>], f: impl Fn(&[f64]) -> f64) -> f64 {
    let mut values: Vec<f64> = rounds.iter().map(|r| f(r)).collect();
    median(&mut values)
}

const ROUNDS: usize = 101;

fn summary(stacks: &mut [Runner]) {
    let rounds = interleaved(stacks, ROUNDS, Duration::from_millis(2));
    println!();
    println!("median ns per iteration ({ROUNDS} interleaved rounds):");
    for (i, stack) in stacks.iter().enumerate() {
        println!(
            "  {:<44} {:>10.0}",
            stack.name(),
            median_of(&rounds, |r| r[i])
        );
    }
    const AXUM: usize = 2;
    const ACTIX: usize = 10;
    println!("added cost over the same framework without sessions (median ns):");
    for (i, base) in [
        (13, AXUM),
        (15, AXUM),
        (21, AXUM),
        (14, AXUM),
        (17, AXUM),
        (3, AXUM),
        (16, AXUM),
        (4, AXUM),
        (5, AXUM),
        (6, AXUM),
        (7, AXUM),
        (8, AXUM),
        (9, AXUM),
        (18, AXUM),
        (19, AXUM),
        (11, ACTIX),
        (12, ACTIX),
    ] {
        println!(
            "  {:<44} {:>10.0}",
            stacks[i].name(),
            median_of(&rounds, |r| r[i] - r[base])
        );
    }
    println!();
    // Each ratio is the median of the ratios of the rounds: both sides of
    // a ratio were measured within milliseconds of each other.
    let added_ratio = |ours: usize, ours_base: usize, peer: usize, peer_base: usize| {
        median_of(&rounds, |r| {
            (r[ours] - r[ours_base]) / (r[peer] - r[peer_base])
        })
    };
    let lines = [
        (
            "iron_seal_unseal_vs_iron_webcrypto_rs",
            median_of(&rounds, |r| r[0] / r[1]),
            0.6,
        ),
        (
            "stateless_rw_vs_actix_session_cookie",
            added_ratio(4, AXUM, 11, ACTIX),
            0.8,
        ),
        (
            "stateless_ro_vs_actix_session_cookie",
            added_ratio(5, AXUM, 12, ACTIX),
            0.5,
        ),
        (
            "memory_rw_vs_tower_sessions",
            added_ratio(6, AXUM, 8, AXUM),
            0.5,
        ),
        (
            "memory_ro_vs_tower_sessions",
            added_ratio(7, AXUM, 9, AXUM),
            0.5,
        ),
        // What a stateless read+write adds to axum, against sealing's
        // primitives alone (issue 23: within 1.3x).
        (
            "stateless_rw_added_vs_crypto_floor",
            median_of(&rounds, |r| (r[4] - r[AXUM]) / r[20]),
            1.3,
        ),
        (
            "untouched_added_ns",
            median_of(&rounds, |r| r[3] - r[AXUM]),
            50.0,
        ),
        // The same route with the layer around the router rather than
        // through `Router::layer`, which adds axum's per-route boxing
        // (the pass-through row) to any layer.
        (
            "untouched_around_router_added_ns",
            median_of(&rounds, |r| r[14] - r[AXUM]),
            50.0,
        ),
    ];
    for (name, value, target) in lines {
        println!("ratio {name} {value:.2} (target <= {target})");
    }
    // What the per-user index costs a request on an owned session (issue
    // 25): no store call either way; the write stamps `seen` and updates
    // the owner's list.
    println!(
        "owned_session_extra_ns rw {:.0} ro {:.0}",
        median_of(&rounds, |r| r[18] - r[6]),
        median_of(&rounds, |r| r[19] - r[7]),
    );
}

fn main() {
    // `PROFILE=<stack name> PROFILE_N=<n>`: run one stack n times and exit,
    // for `valgrind --tool=callgrind`.
    if let Ok(name) = std::env::var("PROFILE") {
        let n = std::env::var("PROFILE_N")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1000);
        let mut stack = stacks()
            .into_iter()
            .find(|s| s.name() == name)
            .expect("PROFILE names a stack");
        println!("{name}: {:?}", stack.run(n));
        return;
    }
    let ratios_only = std::env::var_os("RATIOS_ONLY").is_some();
    let mut stacks = stacks();
    if !ratios_only {
        let mut c = Criterion::default()
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .sample_size(20)
            .configure_from_args();
        criterion_benches(&mut c, &mut stacks);
        c.final_summary();
    }
    // `cargo test --benches` runs this binary in test mode: skip the summary.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    summary(&mut stacks);
}
