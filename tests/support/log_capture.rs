//! Capturing every log line at TRACE, and checking that no secret was printed anywhere.
//!
//! Use it from a test binary of its own with a single test: a thread-local subscriber races with
//! tracing's per-callsite interest cache when other tests log on other threads at the same time.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Everything logged while it is installed, as text.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Installs a TRACE-level subscriber writing here, for the current thread, until the guard
    /// is dropped. Run the scenarios on a current-thread runtime so spawned work logs here too.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// The captured text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A leak test under way: every log line captured (until it is dropped), a current-thread
/// runtime to run the scenarios on (so work they spawn logs on the capturing thread too) and
/// what they printed.
pub struct LeakTest {
    pub logs: CapturedLogs,
    pub runtime: tokio::runtime::Runtime,
    pub seen: Printed,
    _guard: tracing::subscriber::DefaultGuard,
}

impl LeakTest {
    /// Starts capturing, with a runtime on tokio's real clock.
    pub fn start() -> LeakTest {
        Self::on(tokio::runtime::Builder::new_current_thread().enable_all())
    }

    /// Starts capturing, with a runtime whose clock starts paused.
    pub fn start_paused() -> LeakTest {
        Self::on(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true),
        )
    }

    /// Fails if any of `secrets` was logged or printed, or if the logs lack any of `expected`:
    /// [`assert_no_secrets`] on what this test captured.
    pub fn assert_no_secrets(&self, secrets: &[&str], expected: &[&str]) {
        assert_no_secrets(&self.logs.text(), &self.seen, secrets, expected);
    }

    fn on(runtime: &mut tokio::runtime::Builder) -> LeakTest {
        let logs = CapturedLogs::default();
        let guard = logs.install();
        LeakTest {
            runtime: runtime.build().unwrap(),
            logs,
            seen: Printed::default(),
            _guard: guard,
        }
    }
}

/// What the scenarios printed or would print: `Debug` renderings, error messages and their
/// sources.
#[derive(Default)]
pub struct Printed(pub Vec<String>);

impl Printed {
    /// Records `{:?}` and `{:#?}`.
    pub fn debug(&mut self, value: &impl std::fmt::Debug) {
        self.0.push(format!("{value:?}"));
        self.0.push(format!("{value:#?}"));
    }

    /// Records `builder`'s rendering, builds it with `build` and records the credential's.
    pub fn built<B: std::fmt::Debug, C: std::fmt::Debug>(
        &mut self,
        builder: B,
        build: impl FnOnce(B) -> Result<C, azure_credentials::Error>,
    ) -> C {
        self.debug(&builder);
        let built = build(builder).unwrap();
        self.debug(&built);
        built
    }

    /// Records a token's or an error's renderings, whichever `result` holds.
    pub fn outcome(&mut self, result: &Result<impl std::fmt::Debug, impl std::error::Error>) {
        match result {
            Ok(value) => self.debug(value),
            Err(error) => self.error(error),
        }
    }

    /// Records an error's `Display`, `Debug` and every cause in its source chain.
    pub fn error(&mut self, error: &impl std::error::Error) {
        self.debug(error);
        self.0.push(error.to_string());
        let mut source = error.source();
        while let Some(cause) = source {
            self.0.push(cause.to_string());
            self.0.push(format!("{cause:?}"));
            source = cause.source();
        }
    }
}

/// Fails if any of `secrets` appears in a log line or in anything printed, and if the logs lack
/// any of `expected` (a leak test that logged nothing would prove nothing).
pub fn assert_no_secrets(logs: &str, printed: &Printed, secrets: &[&str], expected: &[&str]) {
    for line in expected {
        assert!(logs.contains(line), "no {line:?} in the logs:\n{logs}");
    }
    for secret in secrets {
        for (i, line) in logs.lines().enumerate() {
            assert!(
                !line.contains(secret),
                "log line {i} holds {secret:?}: {line}"
            );
        }
        for text in &printed.0 {
            assert!(!text.contains(secret), "{secret:?} printed in: {text}");
        }
    }
}

/// Each of `jwts` whole, and its signature alone: the secrets a sent JWT leaves.
pub fn with_signatures(jwts: &[String]) -> impl Iterator<Item = &str> {
    jwts.iter()
        .flat_map(|jwt| [jwt.as_str(), jwt.rsplit('.').next().unwrap_or(jwt)])
}
