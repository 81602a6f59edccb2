//! What the benchmarks share: the quick mode of CI's smoke runs, the runtime they measure on,
//! how samples are reported, and a stand-in `az` script. Each bench declares `mod support;` and
//! uses the parts it needs.

#![allow(dead_code)] // each bench uses a part

use std::path::PathBuf;
use std::time::Duration;

/// `BENCH_QUICK=1`: a short smoke run (CI), not a measurement.
pub fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some()
}

/// `full` samples, or `few` in quick mode.
pub fn runs(full: usize, few: usize) -> usize {
    if quick() { few } else { full }
}

/// The runtime the benches measure on: two workers (the CI machine's cores), timers and I/O.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// One line: the median and 90th percentile of `samples`.
pub fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    println!(
        "  {name:<58} median {:>9.3?}  p90 {:>9.3?}  ({} runs)",
        at(0.5),
        at(0.9),
        samples.len()
    );
}

/// The median of `values` (the upper one of an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A fresh directory holding an executable `az` that prints `reply` (a token, like a logged-in
/// CLI); the caller removes it.
#[cfg(unix)]
pub fn stand_in_az(reply: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("azure-credentials-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let az = dir.join("az");
    std::fs::write(&az, format!("#!/bin/sh\necho '{reply}'\n")).unwrap();
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}
