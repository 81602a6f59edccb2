//! A fleet of processes against one identity endpoint, simulated: `cargo bench --bench fleet`.
//!
//! Each simulated process has its **own** credential and [`TokenCache`] (as separate processes
//! would), and calls `get_token` 1–10 times a second (each process its own rate, every
//! interval jittered) for up to 48 hours of tokio's paused clock. The credentials are the real
//! ones — `ManagedIdentityCredential` against IMDS, `ClientSecretCredential` against Entra —
//! with their real retry policies and caches; only the network is replaced, by an in-memory
//! [`HttpTransport`] in front of one simulated endpoint, so that ten thousand processes need no
//! socket each. The endpoint enforces a token bucket (per VM for IMDS: 20 requests a second,
//! burst 5, as documented; per tenant for Entra: an assumption, Entra publishes no figure) and
//! answers `429` with `Retry-After` past it; it answers in 5 ms.
//!
//! A call made while a process's cached token is fresh is a cache hit whose outcome is known
//! (the token at once: `cargo bench --bench cache` measures it), so the simulation counts those
//! calls instead of making them: after each call that returns a fresh token, a process skips
//! to its first call after the token's refresh time. Every other call — in the refresh window,
//! past it, during failures — is made for real.
//!
//! Reported per scenario: upstream requests (peak and p99 per second, during start-up and
//! after it), 429s, requests a process sent before the `Retry-After` it was given, calls that
//! failed or waited longer than 1 s while the process held a token that had not expired, the
//! time until every process held a token, and upstream requests per process per token
//! lifetime after start-up. Every scenario also runs with all random spreading off (the
//! cache's refresh jitter and the retries' jitter) for comparison.
//!
//! `cargo bench --bench fleet -- <words>` runs the scenarios whose name contains every word;
//! `BENCH_QUICK=1` runs small, short versions of each (the CI smoke run).

// A benchmark reads its settings from the environment.
#![allow(clippy::disallowed_methods)]

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use azure_credentials::system::{
    Clock, Env, Fs, Http, HttpRequest, HttpResponse, HttpTransport, RetryPolicy, TransportFuture,
};
use azure_credentials::{
    ClientSecretCredential, ManagedIdentityCredential, TokenCache, TokenCredential,
};
use parking_lot::Mutex;
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::time::Instant;

const EPOCH: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);
const SCOPE: [&str; 1] = ["https://management.azure.com/.default"];
const HOUR: Duration = Duration::from_secs(3600);
const MINUTE: Duration = Duration::from_secs(60);
const LATENCY: Duration = Duration::from_millis(5);
/// Waiting longer than this while holding a valid token counts against the cache.
const SLOW: Duration = Duration::from_secs(1);
/// A rolling restart restarts every process once over this window.
const RESTART_WINDOW: Duration = Duration::from_secs(600);
/// An outage: 500s for the first half, then requests that never answer.
const OUTAGE: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Source {
    /// IMDS: 24 h tokens unless the scenario says otherwise; one bucket per VM.
    ManagedIdentity,
    /// Entra: 1 h tokens; one bucket for the tenant.
    Entra,
}

#[derive(Clone, Copy, Debug)]
enum Start {
    Together,
    SpreadOver(Duration),
}

#[derive(Clone, Debug)]
struct Scenario {
    name: String,
    source: Source,
    processes: usize,
    /// Processes behind one rate limit: a VM's pods for IMDS, everyone for Entra.
    per_limit: usize,
    rate: f64,
    burst: f64,
    retry_after_secs: u64,
    lifetime: Duration,
    start: Start,
    rolling_restart_at: Option<Duration>,
    outage_at: Option<Duration>,
    duration: Duration,
    jitter: bool,
    seed: u64,
}

impl Scenario {
    fn imds(name: &str, processes: usize, lifetime: Duration, duration: Duration) -> Self {
        Scenario {
            name: name.to_owned(),
            source: Source::ManagedIdentity,
            processes,
            per_limit: 200,
            rate: 20.0,
            burst: 5.0,
            retry_after_secs: 1,
            lifetime,
            start: Start::Together,
            rolling_restart_at: None,
            outage_at: None,
            duration,
            jitter: true,
            seed: 17,
        }
    }

    fn entra(name: &str, processes: usize, duration: Duration) -> Self {
        Scenario {
            name: name.to_owned(),
            source: Source::Entra,
            processes,
            per_limit: processes,
            rate: 500.0,
            burst: 100.0,
            retry_after_secs: 5,
            lifetime: HOUR - Duration::from_secs(1),
            start: Start::Together,
            rolling_restart_at: None,
            outage_at: None,
            duration,
            jitter: true,
            seed: 17,
        }
    }

    fn without_jitter(&self) -> Self {
        Scenario {
            name: format!("{} (no jitter)", self.name),
            jitter: false,
            ..self.clone()
        }
    }
}

fn scenarios(quick: bool) -> Vec<Scenario> {
    let n = if quick { 100 } else { 10_000 };
    let two_days = if quick { 2 * HOUR } else { 48 * HOUR };
    let short = if quick { 30 * MINUTE } else { 6 * HOUR };
    let mut outage_seed = fastrand::Rng::with_seed(2030);
    let outage_in = |rng: &mut fastrand::Rng, duration: Duration| {
        // Somewhere after start-up, with a quarter of the run left to see the recovery.
        Duration::from_secs(rng.u64(300..duration.as_secs() * 3 / 4))
    };
    let base = [
        Scenario {
            per_limit: 1,
            ..Scenario::imds(
                "imds 24h: one per VM, all start together",
                n,
                24 * HOUR,
                two_days,
            )
        },
        Scenario::imds("imds 24h: all start together", n, 24 * HOUR, two_days),
        Scenario {
            start: Start::SpreadOver(MINUTE),
            ..Scenario::imds("imds 24h: starts spread over 60 s", n, 24 * HOUR, two_days)
        },
        Scenario {
            rolling_restart_at: Some(two_days / 2),
            ..Scenario::imds("imds 24h: rolling restart", n, 24 * HOUR, two_days)
        },
        Scenario {
            outage_at: Some(outage_in(&mut outage_seed, two_days)),
            ..Scenario::imds("imds 24h: 2-min outage", n, 24 * HOUR, two_days)
        },
        Scenario::entra("entra 1h: all start together", n, two_days),
        Scenario {
            outage_at: Some(outage_in(&mut outage_seed, two_days)),
            ..Scenario::entra("entra 1h: 2-min outage", n, two_days)
        },
        Scenario {
            per_limit: 1,
            ..Scenario::imds(
                "imds 2min tokens: one per VM, all start together",
                n,
                2 * MINUTE,
                short,
            )
        },
        Scenario::imds("imds 2min tokens: all start together", n, 2 * MINUTE, short),
        Scenario {
            outage_at: Some(outage_in(&mut outage_seed, short)),
            ..Scenario::imds("imds 2min tokens: 2-min outage", n, 2 * MINUTE, short)
        },
    ];
    base.iter()
        .flat_map(|s| [s.clone(), s.without_jitter()])
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The endpoint

struct Bucket {
    tokens: f64,
    last: Duration,
}

#[derive(Default)]
struct Traffic {
    /// Requests that reached the endpoint, per second of the run.
    per_second: Vec<u32>,
    /// Requests answered with a token, per second.
    served_per_second: Vec<u32>,
    throttled: u64,
    failed: u64,
    hung: u64,
    /// Per process and life: no request before this (the last `Retry-After` it was given).
    not_before: Vec<Duration>,
    /// Requests sent before their process's `Retry-After` had passed.
    early: u64,
}

struct Endpoint {
    scenario: Arc<Scenario>,
    origin: Instant,
    buckets: Mutex<Vec<Bucket>>,
    traffic: Mutex<Traffic>,
}

enum Reply {
    Token,
    Throttled,
    Failed,
    Hang,
}

impl Endpoint {
    fn new(scenario: Arc<Scenario>, origin: Instant) -> Self {
        let limits = scenario.processes.div_ceil(scenario.per_limit);
        let seconds = scenario.duration.as_secs() as usize + 600;
        Endpoint {
            buckets: Mutex::new(
                (0..limits)
                    .map(|_| Bucket {
                        tokens: scenario.burst,
                        last: Duration::ZERO,
                    })
                    .collect(),
            ),
            traffic: Mutex::new(Traffic {
                per_second: vec![0; seconds],
                served_per_second: vec![0; seconds],
                not_before: vec![Duration::ZERO; scenario.processes * 2],
                ..Traffic::default()
            }),
            scenario,
            origin,
        }
    }

    fn answer(&self, process: usize, life: u64) -> Reply {
        let now = self.origin.elapsed();
        let second = now.as_secs() as usize;
        let scenario = &self.scenario;
        let mut traffic = self.traffic.lock();
        if let Some(slot) = traffic.per_second.get_mut(second) {
            *slot += 1;
        }
        let instance = process * 2 + life as usize;
        if now < traffic.not_before[instance] {
            traffic.early += 1;
        }
        if let Some(at) = scenario.outage_at
            && now >= at
            && now < at + OUTAGE
        {
            if now < at + OUTAGE / 2 {
                traffic.failed += 1;
                return Reply::Failed;
            }
            traffic.hung += 1;
            return Reply::Hang;
        }
        let mut buckets = self.buckets.lock();
        let bucket = &mut buckets[process / scenario.per_limit];
        let refill = (now - bucket.last).as_secs_f64() * scenario.rate;
        bucket.tokens = (bucket.tokens + refill).min(scenario.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            if let Some(slot) = traffic.served_per_second.get_mut(second) {
                *slot += 1;
            }
            Reply::Token
        } else {
            traffic.throttled += 1;
            traffic.not_before[instance] = now + Duration::from_secs(scenario.retry_after_secs);
            Reply::Throttled
        }
    }

    fn token_body(&self, process: usize) -> String {
        let now = self.origin.elapsed();
        let lifetime = self.scenario.lifetime.as_secs();
        match self.scenario.source {
            Source::ManagedIdentity => {
                let expires_on = EPOCH.unix_timestamp() as u64 + now.as_secs() + lifetime;
                format!(
                    r#"{{"access_token":"fleet-token-{process}","client_id":"00000000-0000-0000-0000-00000000f1ee","expires_in":"{lifetime}","expires_on":"{expires_on}","resource":"https://management.azure.com/","token_type":"Bearer"}}"#
                )
            }
            Source::Entra => format!(
                r#"{{"token_type":"Bearer","expires_in":{lifetime},"ext_expires_in":{lifetime},"access_token":"fleet-token-{process}"}}"#
            ),
        }
    }
}

/// One process's connection to the endpoint.
struct Link {
    process: usize,
    /// 0, or 1 after a restart: a new process knows nothing of its predecessor's `Retry-After`.
    life: u64,
    endpoint: Arc<Endpoint>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Link({})", self.process)
    }
}

impl HttpTransport for Link {
    fn send<'a>(&'a self, _request: &'a HttpRequest) -> TransportFuture<'a> {
        Box::pin(async move {
            let reply = self.endpoint.answer(self.process, self.life);
            let json = [("content-type", "application/json")];
            let response = match reply {
                Reply::Hang => std::future::pending().await,
                Reply::Token => {
                    HttpResponse::new(200, json, self.endpoint.token_body(self.process))
                }
                Reply::Throttled => HttpResponse::new(
                    429,
                    [
                        ("content-type", "application/json".to_owned()),
                        (
                            "retry-after",
                            self.endpoint.scenario.retry_after_secs.to_string(),
                        ),
                    ],
                    r#"{"error":"too_many_requests","error_description":"Too many requests"}"#,
                ),
                Reply::Failed => HttpResponse::new(
                    500,
                    json,
                    r#"{"error":"server_error","error_description":"The service is unavailable."}"#,
                ),
            };
            tokio::time::sleep(LATENCY).await;
            Ok(response)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The processes

#[derive(Default)]
struct Outcomes {
    calls_made: u64,
    calls_counted: u64,
    failed: u64,
    failed_holding: u64,
    slow_holding: u64,
    longest_wait_holding: Duration,
    /// When each process (first life) first held a token.
    first_token: Vec<Option<Duration>>,
    /// When each restarted process first held a token, counted from its restart.
    restarted_token_after: Vec<Option<Duration>>,
}

fn build_credential(
    scenario: &Scenario,
    process: usize,
    life: u64,
    endpoint: &Arc<Endpoint>,
    clock: &Clock,
) -> Arc<dyn TokenCredential> {
    let cache = TokenCache::builder()
        .clock(clock.clone())
        .jitter_seed(scenario.seed ^ (process as u64) << 8 ^ life)
        .max_jitter(if scenario.jitter {
            Duration::MAX
        } else {
            Duration::ZERO
        })
        .build();
    let http = Http::builder()
        .transport(Arc::new(Link {
            process,
            life,
            endpoint: endpoint.clone(),
        }))
        .clock(clock.clone())
        .build()
        .unwrap();
    let spread = |policy: RetryPolicy| {
        if scenario.jitter {
            policy
        } else {
            policy.with_jitter(0.0).with_throttle_jitter(0.0)
        }
    };
    match scenario.source {
        Source::ManagedIdentity => Arc::new(
            ManagedIdentityCredential::builder()
                .env(Env::empty())
                .fs(Fs::memory())
                .http(http)
                .cache(cache)
                .retry_policy(spread(RetryPolicy::managed_identity()))
                .imds_endpoint(
                    "http://127.0.0.1:1/metadata/identity/oauth2/token"
                        .parse()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        ),
        Source::Entra => Arc::new(
            ClientSecretCredential::builder()
                .tenant_id("72f988bf-86f1-41af-91ab-2d7cd011db47")
                .client_id("00000000-0000-0000-0000-00000000f1ee")
                .secret("fleet-client-secret")
                .authority_host("http://127.0.0.1:1")
                .env(Env::empty())
                .http(http)
                .cache(cache)
                .retry_policy(spread(RetryPolicy::entra()))
                .build()
                .unwrap(),
        ),
    }
}

/// How far a wall-clock time is from the start of the run.
fn since_epoch(t: OffsetDateTime) -> Duration {
    let d = t - EPOCH;
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

async fn run_process(
    process: usize,
    scenario: Arc<Scenario>,
    endpoint: Arc<Endpoint>,
    clock: Clock,
    outcomes: Arc<Mutex<Outcomes>>,
) {
    let origin = endpoint.origin;
    let mut rng = fastrand::Rng::with_seed(scenario.seed.wrapping_mul(7919) ^ process as u64);
    let starts_at = match scenario.start {
        Start::Together => Duration::ZERO,
        Start::SpreadOver(window) => window.mul_f64(rng.f64()),
    };
    tokio::time::sleep_until(origin + starts_at).await;
    let mean_interval = Duration::from_secs_f64(1.0 / (1.0 + 9.0 * rng.f64()));
    let restart_at = scenario
        .rolling_restart_at
        .map(|at| at + RESTART_WINDOW.mul_f64(process as f64 / scenario.processes as f64));
    let mut life = 0;
    let mut born = starts_at;
    let mut credential = build_credential(&scenario, process, life, &endpoint, &clock);
    // The expiry of the token this process's cache holds (as far as the process has seen).
    let mut holds_until: Option<Duration> = None;
    let mut first_token: Option<Duration> = None;
    loop {
        let now = origin.elapsed();
        if now >= scenario.duration {
            break;
        }
        if let Some(at) = restart_at
            && life == 0
            && now >= at
        {
            life = 1;
            born = now;
            credential = build_credential(&scenario, process, life, &endpoint, &clock);
            holds_until = None;
            first_token = None;
        }
        let asked = origin.elapsed();
        let result = credential.get_token(&SCOPE, None).await;
        let answered = origin.elapsed();
        let waited = answered - asked;
        let holding = holds_until.is_some_and(|expiry| expiry > asked);
        let mut next = answered + mean_interval.mul_f64(0.5 + rng.f64());
        {
            let mut o = outcomes.lock();
            o.calls_made += 1;
            o.calls_counted += 1;
            if holding && waited > SLOW {
                o.slow_holding += 1;
            }
            if holding {
                o.longest_wait_holding = o.longest_wait_holding.max(waited);
            }
            match &result {
                Ok(token) => {
                    holds_until = Some(since_epoch(token.expires_on()));
                    if first_token.is_none() {
                        first_token = Some(answered);
                        let after = answered - born;
                        if life == 0 {
                            o.first_token[process] = Some(answered);
                        } else {
                            o.restarted_token_after[process] = Some(after);
                        }
                    }
                    // A fresh token: every call until its refresh time is a hit; count them
                    // and skip to the first call after it.
                    if let Some(refresh) = token.refresh_on().map(since_epoch)
                        && refresh > next
                    {
                        let skipped =
                            (refresh - answered).as_secs_f64() / mean_interval.as_secs_f64();
                        o.calls_counted += skipped as u64;
                        next = refresh + mean_interval.mul_f64(rng.f64());
                    }
                }
                Err(_) => {
                    o.failed += 1;
                    if holding {
                        o.failed_holding += 1;
                    }
                }
            }
        }
        if let Some(at) = restart_at
            && life == 0
        {
            next = next.min(at);
        }
        tokio::time::sleep_until(origin + next).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Running and reporting

struct Report {
    scenario: Arc<Scenario>,
    requests: u64,
    throttled: u64,
    failed_answers: u64,
    hung: u64,
    early: u64,
    startup_done: Duration,
    startup_peak: u32,
    after_peak: u32,
    after_p99: u32,
    per_lifetime: f64,
    outcomes: Outcomes,
}

fn run(scenario: Scenario) -> Report {
    let scenario = Arc::new(scenario);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        // The retries' jitter draws from this thread's generator: seeded, the run repeats.
        fastrand::seed(scenario.seed);
        let origin = Instant::now();
        let clock = Clock::from_tokio_time(EPOCH);
        let endpoint = Arc::new(Endpoint::new(scenario.clone(), origin));
        let outcomes = Arc::new(Mutex::new(Outcomes {
            first_token: vec![None; scenario.processes],
            restarted_token_after: vec![None; scenario.processes],
            ..Outcomes::default()
        }));
        let mut processes = tokio::task::JoinSet::new();
        for process in 0..scenario.processes {
            processes.spawn(run_process(
                process,
                scenario.clone(),
                endpoint.clone(),
                clock.clone(),
                outcomes.clone(),
            ));
        }
        while let Some(done) = processes.join_next().await {
            done.unwrap();
        }
        let outcomes = std::mem::take(&mut *outcomes.lock());
        let traffic = std::mem::take(&mut *endpoint.traffic.lock());
        let startup_done = outcomes
            .first_token
            .iter()
            .map(|t| t.unwrap_or(scenario.duration))
            .max()
            .unwrap_or_default();
        let boundary = (startup_done.as_secs() as usize + 1).min(traffic.per_second.len());
        let (during, after) = traffic.per_second.split_at(boundary);
        let end = (scenario.duration.as_secs() as usize).min(traffic.per_second.len());
        let after = &after[..end.saturating_sub(boundary)];
        let mut sorted = after.to_vec();
        sorted.sort_unstable();
        let after_p99 = sorted
            .get((sorted.len() as f64 * 0.99) as usize)
            .copied()
            .unwrap_or(0);
        let served_after: u64 = traffic.served_per_second[boundary..end.max(boundary)]
            .iter()
            .map(|&n| u64::from(n))
            .sum();
        let lifetimes = (scenario.duration.saturating_sub(startup_done)).as_secs_f64()
            / scenario.lifetime.as_secs_f64();
        Report {
            requests: traffic.per_second.iter().map(|&n| u64::from(n)).sum(),
            throttled: traffic.throttled,
            failed_answers: traffic.failed,
            hung: traffic.hung,
            early: traffic.early,
            startup_done,
            startup_peak: during.iter().copied().max().unwrap_or(0),
            after_peak: after.iter().copied().max().unwrap_or(0),
            after_p99,
            per_lifetime: served_after as f64 / scenario.processes as f64 / lifetimes,
            outcomes,
            scenario: scenario.clone(),
        }
    })
}

fn print(report: &Report) {
    let s = &report.scenario;
    let o = &report.outcomes;
    let mut line = String::new();
    let _ = write!(
        line,
        "{:<46} {:>6} {:>9} {:>9} {:>7} {:>7} {:>7} {:>7.2} {:>7} {:>6} {:>6} {:>6} {:>8.1}",
        s.name,
        s.processes,
        report.requests,
        report.throttled,
        report.startup_peak,
        report.after_peak,
        report.after_p99,
        report.after_peak as f64 / report.startup_peak.max(1) as f64,
        report.early,
        o.failed_holding,
        o.slow_holding,
        o.failed,
        report.startup_done.as_secs_f64(),
    );
    let _ = write!(line, " {:>6.3}", report.per_lifetime);
    let restarted = o.restarted_token_after.iter().flatten().max();
    if let Some(after) = restarted {
        let _ = write!(
            line,
            "  restarted processes held a token within {after:.1?}"
        );
    }
    if s.outage_at.is_some() {
        let _ = write!(
            line,
            "  outage: {} 500s, {} hung requests; longest wait while holding a token {:.2?}",
            report.failed_answers, report.hung, o.longest_wait_holding
        );
    }
    let _ = write!(line, "  ({} calls, {} made)", o.calls_counted, o.calls_made);
    println!("{line}");
}

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    println!(
        "{:<46} {:>6} {:>9} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>6} {:>6} {:>8} {:>6}",
        "scenario",
        "procs",
        "requests",
        "429s",
        "peak/s",
        "after",
        "p99",
        "ratio",
        "early",
        "f.hold",
        "s.hold",
        "failed",
        "all in s",
        "/life"
    );
    for scenario in scenarios(quick) {
        if !words.iter().all(|w| scenario.name.contains(w.as_str())) {
            continue;
        }
        let started = std::time::Instant::now();
        let report = run(scenario);
        print(&report);
        if !quick {
            println!("    (simulated in {:.1?})", started.elapsed());
        }
    }
}
