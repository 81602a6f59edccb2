//! Entry points into the crate's parsers of untrusted input, for the cargo-fuzz targets in
//! `fuzz/` and for the "no parser panics" property tests below.
//!
//! Compiled only for this crate's tests and under `--cfg fuzzing` (which cargo-fuzz sets); it
//! is no part of the public API. Each function takes arbitrary bytes, calls the real parser,
//! and ignores the result: the only thing checked is that nothing panics (and, for the cache's
//! deadline arithmetic, the deadlines' order).
//!
//! Where a parser needs more than one input (a clock, a status code, a password), the bytes
//! start with fixed-size parameters read by [`Input`], and the rest is the document. Missing
//! parameter bytes read as zero, so a bare fixture is a valid input too, and a zero clock
//! offset means [`BASE_UNIX_SECS`] (2030-01-01): the fixtures' tokens are dated around then.
//! `fuzz/seed.sh` prepends these prefixes to the fixtures it copies into the corpora; each
//! function's comment gives its layout. Integers are little-endian.

use std::path::Path;
use std::time::Duration;

use time::OffsetDateTime;

use crate::entra::{ClientCertificate, der, response as entra_response};
use crate::sources::azure_cli::{self, devtool, msal_cache};
use crate::sources::azure_developer_cli;
use crate::sources::managed_identity::{azure_arc, response as mi_response};
use crate::system::{Env, Fs, HttpResponse, ManualClock, Output, from_unix_nanos};
use crate::{AccessKeyCredential, AccessToken, Secret, TokenCache};

/// The clock value a zero offset stands for: 2030-01-01T00:00:00Z.
pub const BASE_UNIX_SECS: i64 = 1_893_456_000;
const BASE_UNIX_NANOS: i64 = BASE_UNIX_SECS * 1_000_000_000;

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

// ---------------------------------------------------------------------------------------------
// Managed identity

/// A managed identity token body (IMDS, App Service, Azure Arc, Azure ML, Cloud Shell, Service
/// Fabric: one parser reads them all) and its expiry, refresh time and claims.
///
/// Layout: `[i64 requested_at: nanoseconds after BASE][body]`.
pub fn mi_token_body(data: &[u8]) {
    let mut input = Input::new(data);
    let requested_at = from_unix_nanos(BASE_UNIX_NANOS.wrapping_add(input.i64()));
    let Some(body) = mi_response::TokenBody::parse(input.rest()) else {
        return;
    };
    std::hint::black_box(body.expires_on(requested_at));
    std::hint::black_box(body.refresh_on(requested_at));
    if let Some(token) = body.access_token.as_deref() {
        std::hint::black_box(crate::jwt::Claims::of(token));
    }
}

/// A managed identity error body of any endpoint's shape.
///
/// Layout: `[body]`.
pub fn mi_error_body(data: &[u8]) {
    std::hint::black_box(mi_response::error_summary(data));
}

/// The date strings of `expires_on` (Azure ML on Windows and Linux, ISO shapes, RFC 3339).
///
/// Layout: `[text]`.
pub fn mi_date(data: &[u8]) {
    std::hint::black_box(mi_response::parse_date(&text(data)));
}

/// The `WWW-Authenticate` header of Azure Arc's challenge (`Basic realm=<key file>`).
///
/// Layout: `[header value]`.
pub fn arc_challenge(data: &[u8]) {
    std::hint::black_box(azure_arc::realm(&text(data)));
}

// ---------------------------------------------------------------------------------------------
// Microsoft Entra ID

/// A token endpoint's answer: read as a token and as an error, whatever the status.
///
/// Layout: `[u16 status][i64 now: nanoseconds after BASE][field Retry-After]
/// [field Content-Type][body]`, where a field is a length byte and that many bytes (`0xFF`: no
/// header).
pub fn entra_response(data: &[u8]) {
    let mut input = Input::new(data);
    let status = input.u16();
    let clock = clock_at(BASE_UNIX_NANOS.wrapping_add(input.i64()));
    let mut headers = Vec::new();
    if let Some(value) = input.field() {
        headers.push(("retry-after", value));
    }
    if let Some(value) = input.field() {
        headers.push(("content-type", value));
    }
    let response = HttpResponse::for_fuzzing(status, &headers, input.rest(), clock.clock());
    let context = entra_response::Context {
        credential: "FuzzCredential",
        tenant: "72f988bf-86f1-41af-91ab-2d7cd011db47",
        client_id: "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        authority: "https://login.microsoftonline.com",
    };
    consume(entra_response::parse_token(&context, &response));
    std::hint::black_box(entra_response::from_response(&context, &response).to_string());
}

/// The claims of a JWT (tenant, client id, expiry), read without verifying it.
///
/// Layout: `[token]`.
pub fn jwt_claims(data: &[u8]) {
    if let Some(claims) = crate::jwt::Claims::of(&text(data)) {
        std::hint::black_box(claims.client_id());
        std::hint::black_box(claims.expires_on());
    }
}

// ---------------------------------------------------------------------------------------------
// Azure CLI and Azure Developer CLI

const AZ_CONFIG_DIR: &str = "/fuzz/.azure";
const AZ_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const AZ_SCOPE: &str = "https://management.azure.com/.default";

fn az_lookup(
    fs: &Fs,
    env: &Env,
    scope: &str,
    tenant: Option<&str>,
    subscription: Option<&str>,
    now: i64,
) {
    let query = msal_cache::Query {
        fs,
        env,
        config_dir: Path::new(AZ_CONFIG_DIR),
        scope,
        tenant,
        subscription,
        now,
    };
    if let Ok(found) = msal_cache::lookup(&query) {
        std::hint::black_box((
            found.secret,
            found.expires_on,
            found.refresh_on,
            found.tenant,
        ));
    }
}

fn az_file(name: &str) -> std::path::PathBuf {
    Path::new(AZ_CONFIG_DIR).join(name)
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// A loose integer as MSAL writes it (a number or a string of digits), saturating.
fn loose_i64(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s
            .trim()
            .parse::<i128>()
            .ok()
            .map(|n| i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })),
        _ => None,
    }
}

/// az's `msal_token_cache.json`, looked up the way the fast path does. The account, tenant,
/// scope and clock are taken from the file itself (the `selector`-th account and access
/// token), with a matching `azureProfile.json`, so that mutated caches reach the token choice
/// and its expiry arithmetic instead of stopping at "no such account".
///
/// Layout: `[i64 now: seconds after the chosen token's expires_on - 10 min, or after BASE when
/// that is not a date of this era][u8 selector]
/// [msal_token_cache.json]`.
pub fn az_token_cache(data: &[u8]) {
    let mut input = Input::new(data);
    let offset = input.i64();
    let selector = usize::from(input.u8());
    let file = input.rest();
    let json: serde_json::Value = serde_json::from_slice(strip_bom(file)).unwrap_or_default();
    let pick = |section: &str, want: &dyn Fn(&serde_json::Value) -> bool| {
        let entries: Vec<&serde_json::Value> = json
            .get(section)
            .and_then(serde_json::Value::as_object)
            .map(|m| m.values().filter(|v| want(v)).collect())
            .unwrap_or_default();
        (!entries.is_empty()).then(|| entries[selector % entries.len()])
    };
    let username = pick("Account", &|a| {
        a.get("username").is_some_and(|u| u.is_string())
    })
    .and_then(|a| a["username"].as_str())
    .unwrap_or("alice@contoso.com");
    let token = pick("AccessToken", &|t| {
        t.get("realm").is_some_and(|r| r.is_string())
            && t.get("target").is_some_and(|r| r.is_string())
    });
    let tenant = token.and_then(|t| t["realm"].as_str()).unwrap_or(AZ_TENANT);
    let target = token.and_then(|t| t["target"].as_str()).unwrap_or(AZ_SCOPE);
    let words: Vec<&str> = target.split(' ').collect();
    let scope = if selector & 0x80 != 0 {
        target
    } else {
        words[(selector >> 1) % words.len()]
    };
    // Ten minutes before the token expires (when that is a date of this era; an absurd
    // expires_on meets a realistic clock), moved by the offset.
    let base = token
        .and_then(|t| t.get("expires_on"))
        .and_then(loose_i64)
        .filter(|secs| (0..=1 << 40).contains(secs))
        .map_or(BASE_UNIX_SECS, |secs| secs - 600);
    let now = base.wrapping_add(offset);

    let profile = serde_json::json!({"subscriptions": [{
        "id": "3c4b5a69-1f2d-4e6b-9a7e-8d2f0b1c3e5a",
        "isDefault": true,
        "tenantId": tenant,
        "environmentName": "AzureCloud",
        "user": {"name": username, "type": "user"},
    }]});
    let fs = Fs::memory();
    fs.write(az_file("azureProfile.json"), profile.to_string());
    fs.write(az_file("msal_token_cache.json"), file);
    let tenant = (selector & 0x40 != 0).then_some(tenant);
    az_lookup(&fs, &Env::empty(), scope, tenant, None, now);
}

/// az's `azureProfile.json`: which subscription, account and tenant the fast path would use.
/// The `selector` picks a subscription of the file and whether to ask for it by id or name and
/// with which tenant, so that mutated profiles reach the matching rules.
///
/// Layout: `[u8 selector][azureProfile.json]`.
pub fn az_profile(data: &[u8]) {
    let mut input = Input::new(data);
    let selector = input.u8();
    let file = input.rest();
    let json: serde_json::Value = serde_json::from_slice(strip_bom(file)).unwrap_or_default();
    let subscriptions = json
        .get("subscriptions")
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let chosen = subscriptions
        .get(usize::from(selector >> 4) % subscriptions.len().max(1))
        .and_then(serde_json::Value::as_object);
    let field = |name: &str| chosen.and_then(|s| s.get(name)).and_then(|v| v.as_str());
    let subscription = match selector & 0b11 {
        0 => None,
        1 => field("id"),
        2 => field("name"),
        _ => Some("not-a-subscription"),
    };
    let tenant = match (selector >> 2) & 0b11 {
        0 => None,
        1 => field("tenantId"),
        2 => Some(AZ_TENANT),
        _ => Some("Contoso.onmicrosoft.com"),
    };
    let fs = Fs::memory();
    fs.write(az_file("azureProfile.json"), file);
    fs.write(az_file("msal_token_cache.json"), "{}");
    az_lookup(
        &fs,
        &Env::empty(),
        AZ_SCOPE,
        tenant,
        subscription,
        BASE_UNIX_SECS,
    );
}

/// az's `config` INI file (token cache encryption, active cloud), with or without the
/// environment variables that override it.
///
/// Layout: `[u8 selector][config]`.
pub fn az_config(data: &[u8]) {
    let mut input = Input::new(data);
    let selector = input.u8();
    let mut env = Vec::new();
    match selector & 0b11 {
        0 => {}
        1 => env.push(("AZURE_CORE_ENCRYPT_TOKEN_CACHE", "false")),
        2 => env.push(("AZURE_CORE_ENCRYPT_TOKEN_CACHE", "True")),
        _ => env.push(("AZURE_CORE_ENCRYPT_TOKEN_CACHE", "maybe")),
    }
    match (selector >> 2) & 0b11 {
        0 => {}
        1 => env.push(("AZURE_CLOUD_NAME", "AzureCloud")),
        2 => env.push(("AZURE_CLOUD_NAME", "AzureUSGovernment")),
        _ => env.push(("AZURE_CLOUD_NAME", "")),
    }
    let fs = Fs::memory();
    fs.write(az_file("config"), input.rest());
    fs.write(
        az_file("azureProfile.json"),
        r#"{"subscriptions":[{"id":"3c4b5a69-1f2d-4e6b-9a7e-8d2f0b1c3e5a","isDefault":true,"tenantId":"72f988bf-86f1-41af-91ab-2d7cd011db47","environmentName":"AzureCloud","user":{"name":"alice@contoso.com","type":"user"}}]}"#,
    );
    fs.write(az_file("msal_token_cache.json"), "{}");
    az_lookup(
        &fs,
        &Env::from_pairs(env),
        AZ_SCOPE,
        None,
        None,
        BASE_UNIX_SECS,
    );
}

/// The JSON `az account get-access-token` prints, with its expiry (epoch seconds or, from az
/// before 2.54, local time).
///
/// Layout: `[stdout]`.
pub fn az_output(data: &[u8]) {
    consume(azure_cli::parse_output(data));
}

/// The JSON `azd auth token` prints, with its RFC 3339 expiry and the token's tenant claim.
///
/// Layout: `[stdout]`.
pub fn azd_output(data: &[u8]) {
    consume(azure_developer_cli::parse_output(data));
}

/// What az or azd print on stderr when they fail: read into an error as each credential does.
///
/// Layout: `[u8 selector: bit 0 azd, bits 1-2 the exit code (1, 127, 2, killed)][stderr]`.
pub fn cli_stderr(data: &[u8]) {
    let mut input = Input::new(data);
    let selector = input.u8();
    let code = match (selector >> 1) & 0b11 {
        0 => Some(1),
        1 => Some(127),
        2 => Some(2),
        _ => None,
    };
    let stderr = input.rest();
    let output = Output::new(code, Vec::new(), stderr.to_vec());
    let error = if selector & 1 == 0 {
        azure_cli::TOOL.failure(&output, &text(stderr))
    } else {
        azure_developer_cli::TOOL.failure(&output, &azure_developer_cli::stderr_text(stderr))
    };
    std::hint::black_box(error.to_string());
    std::hint::black_box(devtool::aadsts_codes(&text(stderr)));
}

// ---------------------------------------------------------------------------------------------
// HTTP, access keys, certificates

/// `Retry-After` (seconds or an HTTP date, measured against the clock) and the millisecond
/// variants `retry-after-ms` and `x-ms-retry-after-ms`.
///
/// Layout: `[i64 now: nanoseconds after BASE][u8 header: 0 Retry-After, 1 retry-after-ms,
/// 2 x-ms-retry-after-ms, 3 all three][value]`.
pub fn retry_after(data: &[u8]) {
    let mut input = Input::new(data);
    let clock = clock_at(BASE_UNIX_NANOS.wrapping_add(input.i64()));
    let which = input.u8() & 0b11;
    let value = input.rest();
    let names: &[&str] = match which {
        0 => &["retry-after"],
        1 => &["retry-after-ms"],
        2 => &["x-ms-retry-after-ms"],
        _ => &["retry-after-ms", "x-ms-retry-after-ms", "retry-after"],
    };
    let headers: Vec<(&str, &[u8])> = names.iter().map(|n| (*n, value)).collect();
    let response = HttpResponse::for_fuzzing(429, &headers, b"", clock.clock());
    std::hint::black_box(response.retry_after());
}

/// An Azure Communication Services connection string, and a request signed with it.
///
/// Layout: `[i64 now: nanoseconds after BASE][field method][field URL][connection string]`;
/// without a URL the request goes to the connection string's endpoint.
pub fn access_key(data: &[u8]) {
    let mut input = Input::new(data);
    let clock = clock_at(BASE_UNIX_NANOS.wrapping_add(input.i64()));
    let method = input.field().map(text);
    let url = input.field().map(text);
    let connection_string = text(input.rest()).into_owned();
    let credential = match AccessKeyCredential::builder()
        .connection_string(connection_string)
        .clock(clock.clock())
        .build()
    {
        Ok(credential) => credential,
        Err(error) => {
            std::hint::black_box(error.to_string());
            return;
        }
    };
    let url = match url.as_deref().map(url::Url::parse) {
        Some(Ok(url)) => url,
        Some(Err(_)) => return,
        None => match credential.endpoint() {
            Some(endpoint) => endpoint.clone(),
            None => return,
        },
    };
    let method = method.as_deref().unwrap_or("POST");
    consume(credential.sign(method, &url, b"{}"));
}

/// A client certificate file: PEM, or PKCS#12 with or without a password.
///
/// Layout: `[field password (0xFF: none)][file]`.
pub fn certificate(data: &[u8]) {
    let mut input = Input::new(data);
    let password = input.field().map(|p| Secret::new(text(p).into_owned()));
    consume(ClientCertificate::parse(
        "FuzzCredential",
        input.rest(),
        password.as_ref(),
        "the input",
    ));
}

/// The DER reader: a certificate's public key, a PKCS#8 key's algorithm and key.
///
/// Layout: `[DER]`.
pub fn der(data: &[u8]) {
    std::hint::black_box(der::certificate_public_key(data).map(|k| (k.algorithm, k.key)));
    std::hint::black_box(der::pkcs8_algorithm(data));
    std::hint::black_box(der::pkcs8_private_key(data));
}

// ---------------------------------------------------------------------------------------------
// The token cache's deadlines

/// An instant of a token, as Unix nanoseconds or (to reach years past 2262) seconds.
fn instant(raw: i64, in_seconds: bool) -> OffsetDateTime {
    if in_seconds {
        OffsetDateTime::from_unix_timestamp(raw).unwrap_or(if raw < 0 {
            time::PrimitiveDateTime::MIN.assume_utc()
        } else {
            time::PrimitiveDateTime::MAX.assume_utc()
        })
    } else {
        from_unix_nanos(raw)
    }
}

/// The cache's deadlines for a token received at `now` (Unix nanoseconds) that expires at
/// `expires_on` and asks to be refreshed at `refresh_on`, with the given jitter settings.
/// Panics when a cached token's deadlines are out of order: `refresh_at <= hard_limit <=
/// expires_on` must hold (the cache serves a token until `hard_limit`).
pub fn cache_deadlines_at(
    now: i64,
    expires_on: OffsetDateTime,
    refresh_on: Option<OffsetDateTime>,
    max_jitter: Duration,
    jitter_seed: u64,
) {
    let clock = clock_at(now);
    let cache = TokenCache::builder()
        .clock(clock.clock())
        .max_jitter(max_jitter)
        .jitter_seed(jitter_seed)
        .build();
    let mut token = AccessToken::new("fuzz-token", expires_on);
    if let Some(refresh_on) = refresh_on {
        token = token.with_refresh_on(refresh_on);
    }
    if let Some((refresh_at, hard_limit)) = cache.deadlines_for_fuzzing(now, &token) {
        let expires = crate::system::to_unix_nanos(expires_on);
        assert!(
            refresh_at <= hard_limit && hard_limit <= expires,
            "deadlines out of order: refresh_at {refresh_at} hard_limit {hard_limit} expires_on {expires} (now {now}, refresh_on {refresh_on:?}, max_jitter {max_jitter:?})"
        );
    }
}

/// [`cache_deadlines_at`] from bytes.
///
/// Layout: `[i64 now: Unix nanoseconds][i64 expires_on][i64 refresh_on][u8 flags: bit 0
/// expires_on in seconds (else nanoseconds), bit 1 refresh_on present, bit 2 refresh_on in
/// seconds][u64 max_jitter: nanoseconds][u64 jitter seed]`.
pub fn cache_deadlines(data: &[u8]) {
    let mut input = Input::new(data);
    let now = input.i64();
    let expires_on = input.i64();
    let refresh_on = input.i64();
    let flags = input.u8();
    let max_jitter = Duration::from_nanos(input.u64());
    let seed = input.u64();
    cache_deadlines_at(
        now,
        instant(expires_on, flags & 1 != 0),
        (flags & 2 != 0).then(|| instant(refresh_on, flags & 4 != 0)),
        max_jitter,
        seed,
    );
}
