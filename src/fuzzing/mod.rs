//! Entry points into the crate's parsers of untrusted input, for the cargo-fuzz targets in
//! `fuzz/` and for the "no parser panics" property tests in `tests.rs`.
//!
//! Compiled only for this crate's tests and under `--cfg fuzzing` (which cargo-fuzz sets); it
//! is no part of the public API. Each function takes arbitrary bytes and calls the real parser
//! (or, for `mi_response`, `entra_token_response` and `oidc_response`, a whole credential whose endpoint answers
//! with the input). Most only check that nothing panics; the cache's deadline arithmetic checks
//! the deadlines' order, the scrubber and INI reader their promises, and the credentials what
//! users rely on (each function's comment says what): a failed check panics, like a crash.
//!
//! Where a parser needs more than one input (a clock, a status code, a password), the bytes
//! start with fixed-size parameters read by [`Input`], and the rest is the document. Missing
//! parameter bytes read as zero, so a bare fixture is a valid input too, and a zero clock
//! offset means [`BASE_UNIX_SECS`] (2030-01-01): the fixtures' tokens are dated around then.
//! `fuzz/seed.sh` prepends these prefixes to the fixtures it copies into the corpora; each
//! function's comment gives its layout. Integers are little-endian.
//!
//! One file per group of targets, each named for what its targets read:
//! [`managed_identity`] (token and error bodies, dates, Azure Arc, whole exchanges), [`entra`]
//! (token endpoint answers, certificates, DER), [`ci_oidc`] (the CI systems' OIDC answers,
//! through whole credentials), [`developer_tools`] (az's files, az, azd and Azure PowerShell
//! output), [`communication`] (access keys), [`cache`] (deadlines, the persistent cache's MSAL document) and [`shared_parsers`]
//! (`Retry-After`, the scrubber, JWT claims), [`challenges`] (the `WWW-Authenticate` challenges the
//! reqwest middleware answers), [`user`] (signing users in: the device code
//! answer, the browser redirect, id tokens, authentication records). What the whole-credential targets share is in
//! [`endpoint`] (the in-memory identity endpoint) and [`checks`] (what every outcome is checked
//! for); this file holds the input reader and the clock.

mod cache;
mod challenges;
mod checks;
mod ci_oidc;
#[cfg(feature = "communication")]
mod communication;
mod developer_tools;
mod endpoint;
mod entra;
mod managed_identity;
mod shared_parsers;
#[cfg(test)]
mod tests;
#[cfg(feature = "user-sign-in")]
mod user;

pub use cache::cache_deadlines;
#[cfg(feature = "persistence")]
pub use cache::msal_cache;
pub use challenges::www_authenticate;
pub use ci_oidc::oidc_response;
#[cfg(feature = "communication")]
pub use communication::access_key;
pub use developer_tools::{
    az_config, az_config_ini, az_output, az_profile, az_token_cache, azd_output, cli_stderr,
    pwsh_output,
};
pub use entra::{certificate, der, entra_response, entra_token_response};
pub use managed_identity::{arc_challenge, mi_date, mi_error_body, mi_response, mi_token_body};
pub use shared_parsers::{jwt_claims, retry_after, scrub};
#[cfg(feature = "user-sign-in")]
pub use user::{device_code, redirect_request, user_account};

use crate::system::{ManualClock, from_unix_nanos};

/// The clock value a zero offset stands for: 2030-01-01T00:00:00Z.
pub const BASE_UNIX_SECS: i64 = 1_893_456_000;
const BASE_UNIX_NANOS: i64 = BASE_UNIX_SECS * 1_000_000_000;

/// The tenant the Entra ID and Azure CLI targets' identities live in.
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// Fixed-size parameters at the start of an input, then the document.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// The next `N` bytes, zero-padded when the input is shorter.
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = self.data.len().min(N);
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        out
    }

    fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.array())
    }

    /// A length byte, then that many bytes (fewer if the input ends). `0xFF` is `None`.
    fn field(&mut self) -> Option<&'a [u8]> {
        let len = self.u8();
        if len == 0xFF {
            return None;
        }
        let n = self.data.len().min(usize::from(len));
        let (field, rest) = self.data.split_at(n);
        self.data = rest;
        Some(field)
    }

    fn rest(self) -> &'a [u8] {
        self.data
    }
}

fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

fn clock_at(unix_nanos: i64) -> ManualClock {
    ManualClock::new(from_unix_nanos(unix_nanos))
}

/// Uses a result the way a caller would: errors are printed (their messages are built from
/// the input too).
fn consume<T, E: std::fmt::Display>(result: Result<T, E>) {
    if let Err(error) = result {
        std::hint::black_box(error.to_string());
    }
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}
