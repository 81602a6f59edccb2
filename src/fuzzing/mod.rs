//! Entry points into the crate's parsers of untrusted input, for the cargo-fuzz targets in
//! `fuzz/` and for the "no parser panics" property tests below.
//!
//! Compiled only for this crate's tests and under `--cfg fuzzing` (which cargo-fuzz sets); it
//! is no part of the public API. Each function takes arbitrary bytes and calls the real parser
//! (or, for `mi_response` and `entra_token_response`, a whole credential whose endpoint answers
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

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

use crate::der;
use crate::developer_tools::azure_cli::{self, ini, msal_cache};
use crate::developer_tools::azure_developer_cli;
use crate::developer_tools::devtool;
use crate::entra::{ClientCertificate, response as entra_response};
use crate::managed_identity::{azure_arc, response as mi_response};
use crate::system::{
    Env, Fs, Http, HttpRequest, HttpResponse, HttpTransport, ManualClock, Output, RetryPolicy,
    TransportFuture, from_unix_nanos,
};
use crate::{
    AccessKeyCredential, AccessToken, ClientSecretCredential, Error, ManagedIdentityCredential,
    Secret, TokenCache, TokenCredential, UserAssignedId,
};

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
// Whole credentials on an in-memory endpoint
//
// `mi_response` and `entra_token_response` run a real credential (its cache, its HTTP client
// with `RetryPolicy::none()`, so one input is one attempt) against an `HttpTransport` that
// answers with the input, on a current-thread runtime made once per thread. The cache's clock
// stands at BASE: that is when every token is requested.

/// Runs `future` to completion on this thread's runtime.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread tokio runtime");
    }
    RUNTIME.with(|runtime| runtime.block_on(future))
}

const SCOPE: &str = "https://vault.azure.net/.default";

/// An identity endpoint in memory: a request without an `Authorization` header gets `plain`,
/// one with it (Azure Arc's second leg) gets `keyed`. Counts the requests, and notes an
/// `Authorization` header that carries anything but the Arc agent's key.
#[derive(Debug)]
struct Canned {
    plain: HttpResponse,
    keyed: HttpResponse,
    requests: AtomicUsize,
    stray_authorization: AtomicBool,
}

impl Canned {
    fn new(plain: HttpResponse, keyed: HttpResponse) -> Arc<Canned> {
        Arc::new(Canned {
            plain,
            keyed,
            requests: AtomicUsize::new(0),
            stray_authorization: AtomicBool::new(false),
        })
    }

    fn http(self: &Arc<Self>, clock: &ManualClock) -> Http {
        Http::builder()
            .transport(self.clone())
            .clock(clock.clock())
            .build()
            .expect("an HTTP client on a transport")
    }
}

impl HttpTransport for Canned {
    fn send<'a>(&'a self, request: &'a HttpRequest) -> TransportFuture<'a> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let answer = match request.header_value("authorization") {
            None => &self.plain,
            Some(value) => {
                if value.strip_prefix("Basic ") != Some(ARC_KEY) {
                    self.stray_authorization.store(true, Ordering::Relaxed);
                }
                &self.keyed
            }
        };
        let answer = answer.clone();
        Box::pin(async move { Ok(answer) })
    }
}

/// What a user can see of an error: its message and its `Debug`.
fn shown(error: &Error) -> String {
    format!("{error}\n{error:?}")
}

/// Every string of a JSON document, keys included.
fn json_strings<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_strings(v, out)),
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                out.push(key);
                json_strings(value, out);
            }
        }
        _ => {}
    }
}

/// The values of `fields` of a JSON object body (after a UTF-8 BOM) that a leak check can tell
/// apart from the rest of the answer: at least 8 bytes, written once in the body, and inside
/// no other string of it (an endpoint that also puts its token in `error_description` as a
/// plain word cannot be told from one that describes an error there).
fn body_secrets(body: &[u8], fields: &[&str]) -> Vec<String> {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(strip_bom(body)) else {
        return Vec::new();
    };
    let mut strings = Vec::new();
    json_strings(&json, &mut strings);
    fields
        .iter()
        .filter_map(|field| json.get(*field)?.as_str())
        .filter(|secret| secret.len() >= 8)
        .filter(|secret| occurrences(body, secret.as_bytes()) == 1)
        .filter(|secret| strings.iter().filter(|s| s.contains(*secret)).count() == 1)
        .map(str::to_owned)
        .collect()
}

fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len().max(1))
        .filter(|w| *w == needle)
        .count()
}

/// `secret` with its ASCII letters and digits moved one along (`a`→`b`, `z`→`a`, `9`→`0`):
/// the same shape, another value.
fn twin(secret: &str) -> String {
    secret
        .chars()
        .map(|c| match c {
            'z' => 'a',
            'Z' => 'A',
            '9' => '0',
            'a'..='y' | 'A'..='Y' | '0'..='8' => char::from(c as u8 + 1),
            c => c,
        })
        .collect()
}

/// Panics when a secret of the response body (the values of `fields`, see [`body_secrets`])
/// reaches `error`. A value the error shows is checked again by running the case with that
/// value changed in the body ([`twin`]): the changed value must not show. The first look
/// alone would blame a token that happens to be a word of the message (`Credential`).
fn assert_no_body_secret(
    error: &Error,
    body: &[u8],
    fields: &[&str],
    rerun: impl Fn(&[u8]) -> Result<AccessToken, Error>,
) {
    let first = shown(error);
    for secret in body_secrets(body, fields) {
        if !first.contains(&secret) {
            continue;
        }
        let twin = twin(&secret);
        if twin == secret {
            continue;
        }
        let Some(at) = body
            .windows(secret.len())
            .position(|w| w == secret.as_bytes())
        else {
            continue;
        };
        let changed = [&body[..at], twin.as_bytes(), &body[at + secret.len()..]].concat();
        if let Err(again) = rerun(&changed) {
            let shown = shown(&again);
            assert!(
                !shown.contains(&twin),
                "a secret of the response body ({twin:?}) reached the error: {shown}"
            );
        }
    }
}

/// Panics when `error` is the one a panic inside the credential becomes (the cache catches
/// panics; under cargo-fuzz the panic hook has aborted already).
fn assert_not_a_panic(error: &Error) {
    assert!(
        !error.message().contains("panicked"),
        "the credential panicked: {error}"
    );
}

/// Panics when a fetched token's refresh time is outside `[requested_at, expires_on]` (for a
/// token that had not expired when it arrived).
fn assert_refresh_in_range(token: &AccessToken, requested_at: time::OffsetDateTime) {
    if token.expires_on() <= requested_at {
        return;
    }
    if let Some(refresh_on) = token.refresh_on() {
        assert!(
            requested_at <= refresh_on && refresh_on <= token.expires_on(),
            "refresh_on {refresh_on} is outside [{requested_at}, {}]",
            token.expires_on()
        );
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
    if let Some(expires_on) = body.expires_on(requested_at) {
        std::hint::black_box(body.refresh_on(requested_at, expires_on));
    }
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

/// The secret of App Service, Azure ML and Service Fabric (`IDENTITY_HEADER`, `MSI_SECRET`).
const MI_SECRET: &str = "Xq7Rb2LmN9pWc4VtK8sHj3FdG6yZa1Ue";
const ARC_DIR: &str = "/var/opt/azcmagent/tokens";
const ARC_KEY: &str = "Pz4Qw8Er2Ty6Ui0Op3As7Df1Gh5Jk9Lx";
/// The challenge of [`mi_response`]'s Azure Arc agent when its second leg is the input.
const ARC_CHALLENGE: &[u8] = b"Basic realm=/var/opt/azcmagent/tokens/fuzz.key";
/// Files near the Arc agent's key that must never be sent or shown.
const ARC_DECOYS: [&str; 3] = [
    "/var/opt/azcmagent/decoy.key",
    "/var/opt/azcmagent/tokens/decoy.txt",
    "/etc/azcmagent/tokens/decoy.key",
];
const ARC_DECOY: &str = "Dc0yF1leC0ntent5NeverSent7Kq9Wm2Xr";
/// An endpoint nothing listens at: the transport answers instead.
const NOWHERE: &str = "http://127.0.0.1:1";
const MI_CLIENT_IDS: [&str; 2] = [
    // The fixtures' IMDS, App Service and Azure ML tokens name this one…
    "7a1d5c9e-3f2b-4e8a-9c6d-0b1e2f3a4b5c",
    // …and the Azure Arc one this one.
    "11111111-2222-3333-4444-555555555555",
];
const MI_OBJECT_ID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const MI_RESOURCE_ID: &str = "/subscriptions/3c4b5a69-1f2d-4e6b-9a7e-8d2f0b1c3e5a/resourceGroups/fuzz/providers/Microsoft.ManagedIdentity/userAssignedIdentities/fuzz";
const MI_SOURCES: [&str; 6] = [
    "IMDS",
    "App Service",
    "Azure ML",
    "Cloud Shell",
    "Service Fabric",
    "Azure Arc",
];
const AZURE_ARC: usize = 5;

/// One [`mi_response`] case: a source, an identity and the answer's head.
struct MiCase<'a> {
    source: usize,
    /// Azure Arc: the input answers the first request (the challenge) instead of the second.
    arc_challenge_leg: bool,
    id: Option<UserAssignedId>,
    status: u16,
    headers: Vec<(&'static str, &'a [u8])>,
}

/// What a [`MiCase`] did.
struct MiOutcome {
    result: Result<AccessToken, Error>,
    requests: usize,
    stray_authorization: bool,
}

impl MiCase<'_> {
    fn env(&self) -> Env {
        let env = Env::empty();
        match self.source {
            1 => env
                .with("IDENTITY_ENDPOINT", format!("{NOWHERE}/msi/token"))
                .with("IDENTITY_HEADER", MI_SECRET),
            2 => env
                .with("MSI_ENDPOINT", format!("{NOWHERE}/azureml/token"))
                .with("MSI_SECRET", MI_SECRET),
            3 => env.with("MSI_ENDPOINT", format!("{NOWHERE}/cloudshell/token")),
            4 => env
                .with(
                    "IDENTITY_ENDPOINT",
                    "https://127.0.0.1:1/servicefabric/token",
                )
                .with("IDENTITY_HEADER", MI_SECRET)
                .with(
                    "IDENTITY_SERVER_THUMBPRINT",
                    "0123456789abcdef0123456789abcdef01234567",
                ),
            AZURE_ARC => env
                .with(
                    "IDENTITY_ENDPOINT",
                    format!("{NOWHERE}/metadata/identity/oauth2/token"),
                )
                .with("IMDS_ENDPOINT", NOWHERE),
            _ => env,
        }
    }

    /// The token the Arc agent gives for its key when the input is the challenge: for the
    /// requested identity, as an up-to-date agent does.
    fn arc_token(&self) -> Vec<u8> {
        let mut token = serde_json::json!({
            "access_token": "fuzz-arc-token-for-the-key",
            "expires_on": (BASE_UNIX_SECS + 86_400).to_string(),
            "token_type": "Bearer",
        });
        let echo = match &self.id {
            Some(UserAssignedId::ClientId(id)) => Some(("client_id", id)),
            Some(UserAssignedId::ObjectId(id)) => Some(("object_id", id)),
            Some(UserAssignedId::ResourceId(id)) => Some(("msi_res_id", id)),
            None => None,
        };
        if let Some((field, id)) = echo {
            token[field] = id.as_str().into();
        }
        token.to_string().into_bytes()
    }

    /// The body of the answer a token comes from.
    fn token_body<'b>(&self, body: &'b [u8]) -> std::borrow::Cow<'b, [u8]> {
        if self.source == AZURE_ARC && self.arc_challenge_leg {
            self.arc_token().into()
        } else {
            body.into()
        }
    }

    fn run(&self, body: &[u8]) -> MiOutcome {
        let clock = clock_at(BASE_UNIX_NANOS);
        let answer = HttpResponse::for_fuzzing(self.status, &self.headers, body, clock.clock());
        let canned = if self.source != AZURE_ARC {
            Canned::new(answer.clone(), answer)
        } else if self.arc_challenge_leg {
            let token = HttpResponse::for_fuzzing(200, &[], &self.arc_token(), clock.clock());
            Canned::new(answer, token)
        } else {
            let challenge = HttpResponse::for_fuzzing(
                401,
                &[("www-authenticate", ARC_CHALLENGE)],
                b"",
                clock.clock(),
            );
            Canned::new(challenge, answer)
        };
        let fs = Fs::memory();
        if self.source == AZURE_ARC {
            fs.write(format!("{ARC_DIR}/fuzz.key"), ARC_KEY);
            for decoy in ARC_DECOYS {
                fs.write(decoy, ARC_DECOY);
            }
        }
        let mut builder = ManagedIdentityCredential::builder()
            .env(self.env())
            .fs(fs)
            .http(canned.http(&clock))
            .retry_policy(RetryPolicy::none())
            .cache(
                TokenCache::builder()
                    .clock(clock.clock())
                    .jitter_seed(0)
                    .build(),
            )
            .imds_endpoint(
                url::Url::parse(&format!("{NOWHERE}/metadata/identity/oauth2/token"))
                    .expect("a constant URL"),
            )
            .arc_key_directory(ARC_DIR);
        if let Some(id) = &self.id {
            builder = builder.user_assigned_id(id.clone());
        }
        let credential = builder
            .build()
            .expect("a valid managed identity configuration");
        let result = block_on(credential.get_token(&[SCOPE], None));
        MiOutcome {
            result,
            requests: canned.requests.load(Ordering::Relaxed),
            stray_authorization: canned.stray_authorization.load(Ordering::Relaxed),
        }
    }
}

fn id_value(id: &UserAssignedId) -> &str {
    match id {
        UserAssignedId::ClientId(v)
        | UserAssignedId::ObjectId(v)
        | UserAssignedId::ResourceId(v) => v,
    }
}

/// The user-assigned id a token body names for `id`'s kind, if any (empty means none).
fn echoed_ids<'a>(body: &'a serde_json::Value, id: &UserAssignedId) -> Vec<&'a str> {
    let fields: &[&str] = match id {
        UserAssignedId::ClientId(_) => &["client_id"],
        UserAssignedId::ObjectId(_) => &["object_id"],
        UserAssignedId::ResourceId(_) => &["msi_res_id", "mi_res_id"],
    };
    fields
        .iter()
        .filter_map(|f| body.get(*f)?.as_str())
        .filter(|v| !v.is_empty())
        .collect()
}

/// A whole managed identity exchange: a real [`ManagedIdentityCredential`] for the chosen
/// source (its environment in memory, an Azure Arc key file in a memory file system), whose
/// endpoint answers with the input; one `get_token`. Checked: nothing panics; one request
/// (Azure Arc: two at most, and only its key ever in `Authorization`); a token is the body's
/// `access_token` with the expiry the body states (after the request time, unless the body
/// itself says the token expired already: such a token is served for the failure cool-down)
/// and a refresh time within its life, and never one that names another identity than the
/// user-assigned one asked for (from Azure Arc, one that names none either); an error shows
/// neither the body's `access_token` (8 bytes or more) nor the source's secret, the Arc key
/// or another file.
///
/// Layout: `[u8 source: bits 0-3 modulo 6: 0 IMDS, 1 App Service, 2 Azure ML, 3 Cloud Shell,
/// 4 Service Fabric, 5 Azure Arc; bit 4: for Azure Arc the input is the challenge (the first
/// leg; the second then gets a token), else the answer to the request with the key]
/// [u8 identity: bits 0-1 none, client id, object id, resource id (none where the source
/// cannot select that way); bit 2 the second client id][u16 status][field Retry-After]
/// [field Content-Type][field WWW-Authenticate][body]`.
pub fn mi_response(data: &[u8]) {
    let mut input = Input::new(data);
    let selector = input.u8();
    let source = usize::from(selector & 0x0F) % MI_SOURCES.len();
    let identity = input.u8();
    let supported = |kind: u8| match source {
        0 | 1 | AZURE_ARC => true,
        2 => kind == 1,
        _ => false,
    };
    let id = match identity & 0b11 {
        kind if !supported(kind) => None,
        1 => Some(UserAssignedId::ClientId(
            MI_CLIENT_IDS[usize::from(identity >> 2) & 1].to_owned(),
        )),
        2 => Some(UserAssignedId::ObjectId(MI_OBJECT_ID.to_owned())),
        3 => Some(UserAssignedId::ResourceId(MI_RESOURCE_ID.to_owned())),
        _ => None,
    };
    let status = input.u16();
    let mut headers = Vec::new();
    for name in ["retry-after", "content-type", "www-authenticate"] {
        if let Some(value) = input.field() {
            headers.push((name, value));
        }
    }
    let case = MiCase {
        source,
        arc_challenge_leg: selector & 0x10 != 0,
        id,
        status,
        headers,
    };
    let body = input.rest();
    let outcome = case.run(body);
    let name = MI_SOURCES[source];

    let most = if source == AZURE_ARC { 2 } else { 1 };
    assert!(
        (1..=most).contains(&outcome.requests),
        "{name}: {} requests",
        outcome.requests
    );
    assert!(
        !outcome.stray_authorization,
        "{name}: something other than the Arc key was sent in Authorization"
    );
    let requested_at = from_unix_nanos(BASE_UNIX_NANOS);
    match &outcome.result {
        Ok(token) => {
            let token_body = case.token_body(body);
            let json: serde_json::Value =
                serde_json::from_slice(strip_bom(&token_body)).unwrap_or_default();
            assert_eq!(
                Some(token.token().expose()),
                json.get("access_token").and_then(|t| t.as_str()),
                "{name}: the token is not the body's access_token"
            );
            assert!(!token.token().is_empty(), "{name}: an empty token");
            let stated =
                mi_response::TokenBody::parse(&token_body).and_then(|b| b.expires_on(requested_at));
            assert_eq!(
                Some(token.expires_on()),
                stated,
                "{name}: the token's expiry is not the one the body states"
            );
            assert_refresh_in_range(token, requested_at);
            if let Some(id) = &case.id {
                let echoed = echoed_ids(&json, id);
                assert!(
                    echoed.iter().all(|e| e.eq_ignore_ascii_case(id_value(id))),
                    "{name}: a token for {echoed:?} was accepted for {id}"
                );
                assert!(
                    source != AZURE_ARC || !echoed.is_empty(),
                    "{name}: a token naming no identity was accepted for {id}"
                );
            }
        }
        Err(error) => {
            assert_not_a_panic(error);
            let text = shown(error);
            for secret in [MI_SECRET, ARC_KEY, ARC_DECOY] {
                assert!(
                    !text.contains(secret),
                    "{name}: a secret in the error: {text}"
                );
            }
            assert_no_body_secret(error, body, &["access_token"], |body| case.run(body).result);
        }
    }
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

const ENTRA_CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
const ENTRA_SECRET: &str = "Qx28Q~pL4mZ.vN7_bK2cR9-tY6wE3sD1fG8hJ0kL";

/// One [`entra_token_response`] case: the answer's head.
struct EntraCase<'a> {
    status: u16,
    headers: Vec<(&'static str, &'a [u8])>,
}

impl EntraCase<'_> {
    fn run(&self, body: &[u8]) -> (Result<AccessToken, Error>, usize) {
        let clock = clock_at(BASE_UNIX_NANOS);
        let answer = HttpResponse::for_fuzzing(self.status, &self.headers, body, clock.clock());
        let canned = Canned::new(answer.clone(), answer);
        let credential = ClientSecretCredential::builder()
            .tenant_id(AZ_TENANT)
            .client_id(ENTRA_CLIENT_ID)
            .secret(ENTRA_SECRET)
            .authority_host("https://login.microsoftonline.com")
            .env(Env::empty())
            .http(canned.http(&clock))
            .retry_policy(RetryPolicy::none())
            .cache(
                TokenCache::builder()
                    .clock(clock.clock())
                    .jitter_seed(0)
                    .build(),
            )
            .build()
            .expect("a valid client secret configuration");
        let result = block_on(credential.get_token(&[SCOPE], None));
        (result, canned.requests.load(Ordering::Relaxed))
    }
}

/// A whole token request through a real [`ClientSecretCredential`] whose token endpoint
/// answers with the input; one `get_token`. Checked: nothing panics; one request; a token is
/// the body's `access_token`, expires after the request time and has a refresh time within
/// its life; an error shows neither the client secret nor the body's `access_token`,
/// `refresh_token` or `id_token` (8 bytes or more).
///
/// Layout: `[u16 status][field Retry-After][field Content-Type][body]`.
pub fn entra_token_response(data: &[u8]) {
    let mut input = Input::new(data);
    let status = input.u16();
    let mut headers = Vec::new();
    for name in ["retry-after", "content-type"] {
        if let Some(value) = input.field() {
            headers.push((name, value));
        }
    }
    let case = EntraCase { status, headers };
    let body = input.rest();
    let (result, requests) = case.run(body);
    assert_eq!(requests, 1, "{requests} requests");
    let requested_at = from_unix_nanos(BASE_UNIX_NANOS);
    match &result {
        Ok(token) => {
            let json: serde_json::Value =
                serde_json::from_slice(strip_bom(body)).unwrap_or_default();
            assert_eq!(
                Some(token.token().expose()),
                json.get("access_token").and_then(|t| t.as_str()),
                "the token is not the body's access_token"
            );
            assert!(!token.token().is_empty(), "an empty token");
            assert!(
                token.expires_on() > requested_at,
                "a token that expired on arrival: {}",
                token.expires_on()
            );
            assert_refresh_in_range(token, requested_at);
        }
        Err(error) => {
            assert_not_a_panic(error);
            let text = shown(error);
            assert!(
                !text.contains(ENTRA_SECRET),
                "the client secret in the error: {text}"
            );
            assert_no_body_secret(
                error,
                body,
                &["access_token", "refresh_token", "id_token"],
                |body| case.run(body).0,
            );
        }
    }
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

/// az's INI reader alone (the `az_config` target goes through the whole lookup). Checked on
/// what it accepts: the options a section lists (its own and `DEFAULT`'s) are all readable
/// when the section is in the file and none is when it is not, and their names are lower case.
///
/// Layout: `[file]`.
pub fn az_config_ini(data: &[u8]) {
    let text = text(data);
    let Ok(ini) = ini::parse(&text) else {
        return;
    };
    std::hint::black_box(ini.is_ascii());
    // The sections az reads, and those the file names (`[name]`, up to the last `]`).
    let named = text.lines().filter_map(|line| {
        let (name, _) = line.trim().strip_prefix('[')?.rsplit_once(']')?;
        Some(name)
    });
    let sections = ["core", "cloud", "AzureCloud", "DEFAULT"]
        .into_iter()
        .chain(named.take(16));
    for section in sections {
        let names: Vec<&str> = ini.options(section).collect();
        let present = names.iter().any(|n| ini.get(section, n).is_some());
        for name in &names {
            assert_eq!(
                *name,
                name.to_ascii_lowercase(),
                "an option name that is not lower case"
            );
            assert_eq!(
                ini.get(section, name).is_some(),
                present,
                "[{section}] lists {name:?} but it reads otherwise than its other options"
            );
        }
        std::hint::black_box(ini.get(section, "encrypt_token_cache"));
        std::hint::black_box(ini.get(section, "name"));
    }
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
// Untrusted text

/// The one scrubber of untrusted text (`scrub::line`, `scrub::sentence`), and its promises:
/// one line; no control characters or invisible format characters; at most
/// `scrub::MAX_BYTES` bytes and an ellipsis; no `eyJ` (the start of a JWT) left anywhere, so
/// in particular no word of the input that starts with `eyJ` and is 16 bytes or longer.
///
/// Layout: `[text]`.
pub fn scrub(data: &[u8]) {
    let text = text(data);
    let jwt_words: Vec<&str> = text
        .split(char::is_whitespace)
        .filter(|w| w.starts_with("eyJ") && w.len() >= 16)
        .collect();
    for (how, out) in [
        ("line", crate::scrub::line(&text)),
        ("sentence", crate::scrub::sentence(&text)),
    ] {
        assert!(
            out.len() <= crate::scrub::MAX_BYTES + '…'.len_utf8(),
            "scrub::{how}: {} bytes",
            out.len()
        );
        assert!(
            !out.chars().any(crate::scrub::is_line_break),
            "scrub::{how}: more than one line: {out:?}"
        );
        assert!(
            !out.chars()
                .any(|c| c.is_control() || crate::scrub::is_invisible_format(c)),
            "scrub::{how}: a control or invisible character: {out:?}"
        );
        for word in &jwt_words {
            assert!(
                !out.contains(word),
                "scrub::{how}: {word:?} survived: {out:?}"
            );
        }
        assert!(!out.contains("eyJ"), "scrub::{how}: eyJ survived: {out:?}");
    }
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
    draw: u64,
) {
    let expires = crate::system::to_unix_nanos(expires_on);
    let hint = refresh_on.map(crate::system::to_unix_nanos);
    let max_jitter = crate::system::duration_nanos(max_jitter);
    if let Some(d) = crate::cache::policy::deadlines(now, expires, hint, max_jitter, draw) {
        assert!(
            now <= d.refresh_at && d.refresh_at <= d.hard_limit && d.hard_limit <= expires,
            "deadlines out of order: refresh_at {} hard_limit {} expires_on {expires} (now {now}, refresh_on {refresh_on:?}, max_jitter {max_jitter})",
            d.refresh_at,
            d.hard_limit
        );
    }
}

/// [`cache_deadlines_at`] from bytes.
///
/// Layout: `[i64 now: Unix nanoseconds][i64 expires_on][i64 refresh_on][u8 flags: bit 0
/// expires_on in seconds (else nanoseconds), bit 1 refresh_on present, bit 2 refresh_on in
/// seconds][u64 max_jitter: nanoseconds][u64 random draw]`.
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

// ---------------------------------------------------------------------------------------------
// Properties: no entry point panics, on the seeds, on every truncation of them, on random
// mutations of them (bit flips, splices, JSON values swapped for extreme ones) and on random
// bytes. Deterministic (fixed seeds); a failure prints the input, to add to
// fuzz/regressions/<target>/.

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// How an entry point's parameter prefix is laid out (see each function's comment).
    #[derive(Clone, Copy)]
    enum Param {
        U8,
        U16,
        I64,
        U64,
        /// A length byte (`0xFF`: none), then that many bytes.
        Field,
    }
    use Param::*;

    struct Target {
        name: &'static str,
        run: fn(&[u8]),
        params: &'static [Param],
    }

    const TARGETS: &[Target] = &[
        Target {
            name: "mi_token_body",
            run: mi_token_body,
            params: &[I64],
        },
        Target {
            name: "mi_error_body",
            run: mi_error_body,
            params: &[],
        },
        Target {
            name: "mi_date",
            run: mi_date,
            params: &[],
        },
        Target {
            name: "arc_challenge",
            run: arc_challenge,
            params: &[],
        },
        Target {
            name: "mi_response",
            run: mi_response,
            params: &[U8, U8, U16, Field, Field, Field],
        },
        Target {
            name: "entra_response",
            run: entra_response,
            params: &[U16, I64, Field, Field],
        },
        Target {
            name: "entra_token_response",
            run: entra_token_response,
            params: &[U16, Field, Field],
        },
        Target {
            name: "jwt_claims",
            run: jwt_claims,
            params: &[],
        },
        Target {
            name: "az_token_cache",
            run: az_token_cache,
            params: &[I64, U8],
        },
        Target {
            name: "az_profile",
            run: az_profile,
            params: &[U8],
        },
        Target {
            name: "az_config",
            run: az_config,
            params: &[U8],
        },
        Target {
            name: "az_config_ini",
            run: az_config_ini,
            params: &[],
        },
        Target {
            name: "az_output",
            run: az_output,
            params: &[],
        },
        Target {
            name: "azd_output",
            run: azd_output,
            params: &[],
        },
        Target {
            name: "cli_stderr",
            run: cli_stderr,
            params: &[U8],
        },
        Target {
            name: "scrub",
            run: scrub,
            params: &[],
        },
        Target {
            name: "retry_after",
            run: retry_after,
            params: &[I64, U8],
        },
        Target {
            name: "access_key",
            run: access_key,
            params: &[I64, Field, Field],
        },
        Target {
            name: "certificate",
            run: certificate,
            params: &[Field],
        },
        Target {
            name: "der",
            run: der,
            params: &[],
        },
        Target {
            name: "cache_deadlines",
            run: cache_deadlines,
            params: &[I64, I64, I64, U8, U64, U64],
        },
    ];

    /// Values that have broken parsers: extreme and malformed numbers, offsets and dates,
    /// a byte-order mark, odd Unicode, JSON that is not the expected shape.
    const INTERESTING: &[&str] = &[
        "-9223372036854775808",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
        "99999999999999999999999",
        "253402300800",
        "-62135596800",
        "-1",
        "0",
        "1",
        "-0",
        "1e400",
        "-1e400",
        "1e18",
        "1.5",
        "NaN",
        "--128:00",
        "-128:00",
        "+127:127",
        "--128",
        "+-1:-1",
        "\u{feff}",
        "\u{feff}{",
        "\u{10FFFF}",
        "é",
        "\\ud800",
        "\0",
        "",
        " ",
        "\r\n",
        "null",
        "true",
        "[]",
        "{}",
        "[[[[[[[[",
        "\"",
        "12/31/9999 23:59:59 +23:59",
        "1/1/-1 12:00:00 PM",
        "00/00/0000 00:00:00",
        "13:60:60",
        "9999-12-31T23:59:59Z",
        "0000-01-01 00:00:00 -23:59",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "AADSTS4294967296",
        "AADSTS",
        "eyJ",
        "ERROR:",
        "Basic realm=",
        "realm=\"",
        "[core]",
        "accesskey=",
        "endpoint=",
        "-----BEGIN CERTIFICATE-----",
        "\u{1b}[31m",
    ];

    fn interesting_i64(rng: &mut fastrand::Rng) -> i64 {
        const VALUES: &[i64] = &[
            0,
            1,
            -1,
            i64::MIN,
            i64::MAX,
            i64::MIN + 1,
            i64::MAX - 1,
            BASE_UNIX_NANOS,
            -BASE_UNIX_NANOS,
            BASE_UNIX_SECS,
            253_402_300_800,
            -62_135_596_800,
            1 << 62,
            -(1 << 62),
            3_600_000_000_000,
            -3_600_000_000_000,
        ];
        match rng.u8(0..4) {
            0 => rng.i64(..),
            1 => rng.i64(-10_000_000_000_000..10_000_000_000_000),
            _ => VALUES[rng.usize(..VALUES.len())].wrapping_add(rng.i64(-2..=2)),
        }
    }

    fn random_prefix(rng: &mut fastrand::Rng, params: &[Param]) -> Vec<u8> {
        let mut out = Vec::new();
        for param in params {
            match param {
                U8 => out.push(rng.u8(..)),
                U16 => {
                    let status: u16 = match rng.u8(0..3) {
                        0 => rng.u16(..),
                        _ => [200, 400, 401, 403, 404, 429, 500, 502, 503][rng.usize(..9)],
                    };
                    out.extend(status.to_le_bytes());
                }
                I64 => out.extend(interesting_i64(rng).to_le_bytes()),
                U64 => out.extend((interesting_i64(rng) as u64).to_le_bytes()),
                Field => {
                    let value = match rng.u8(0..3) {
                        0 => {
                            out.push(0xFF);
                            continue;
                        }
                        1 => INTERESTING[rng.usize(..INTERESTING.len())]
                            .as_bytes()
                            .to_vec(),
                        _ => random_bytes(rng, 40),
                    };
                    let len = value.len().min(0xFE);
                    out.push(len as u8);
                    out.extend(&value[..len]);
                }
            }
        }
        out
    }

    fn random_bytes(rng: &mut fastrand::Rng, max_len: usize) -> Vec<u8> {
        let len = rng.usize(..=max_len);
        match rng.u8(0..3) {
            0 => (0..len).map(|_| rng.u8(..)).collect(),
            1 => (0..len).map(|_| rng.u8(0x20..0x7f)).collect(),
            _ => {
                // JSON-ish: punctuation, digits and the interesting values.
                let mut out = Vec::new();
                while out.len() < len {
                    match rng.u8(0..4) {
                        0 => {
                            const BYTES: &[u8] = b"{}[]:,\" -+.0123456789eE/";
                            out.push(BYTES[rng.usize(..BYTES.len())]);
                        }
                        1 => out.extend(INTERESTING[rng.usize(..INTERESTING.len())].as_bytes()),
                        2 => out.extend(br#""expires_on":"#),
                        _ => out.extend(br#""access_token":"t","#),
                    }
                }
                out
            }
        }
    }

    /// Where the scalar value after a `:` or `=` at `at` starts and ends.
    fn value_span(doc: &[u8], at: usize) -> (usize, usize) {
        let mut start = at + 1;
        while doc.get(start).is_some_and(|b| *b == b' ' || *b == b'\t') {
            start += 1;
        }
        let mut end = start;
        if doc.get(start) == Some(&b'"') {
            end += 1;
            while end < doc.len() && doc[end] != b'"' {
                end += if doc[end] == b'\\' { 2 } else { 1 };
            }
            return (start, (end + 1).min(doc.len()));
        }
        while end < doc.len() && !b",}]\r\n".contains(&doc[end]) {
            end += 1;
        }
        (start, end)
    }

    /// The word around `at`: between separators of dates, headers and connection strings.
    fn word_span(doc: &[u8], at: usize) -> (usize, usize) {
        let separator = |b: &u8| b" \t\r\n,;:=\"/{}[]".contains(b);
        let start = doc[..at].iter().rposition(separator).map_or(0, |i| i + 1);
        let end = doc[at..]
            .iter()
            .position(separator)
            .map_or(doc.len(), |i| at + i);
        (start, end)
    }

    fn mutate(rng: &mut fastrand::Rng, doc: &[u8]) -> Vec<u8> {
        let mut out = doc.to_vec();
        for _ in 0..rng.usize(1..=3) {
            let interesting = INTERESTING[rng.usize(..INTERESTING.len())].as_bytes();
            let at = rng.usize(..=out.len());
            match rng.u8(0..7) {
                0 if at < out.len() => out[at] ^= 1 << rng.u8(0..8),
                1 if at < out.len() => {
                    const BYTES: &[u8] = b"\0\xff\"\\{[\n:+-9";
                    out[at] = BYTES[rng.usize(..BYTES.len())];
                }
                2 => {
                    out.splice(at..at, interesting.iter().copied());
                }
                3 => {
                    // A JSON value or INI setting swapped for an interesting one.
                    let separators: Vec<usize> = (0..out.len())
                        .filter(|&i| out[i] == b':' || out[i] == b'=')
                        .collect();
                    if separators.is_empty() {
                        continue;
                    }
                    let (start, end) = value_span(&out, separators[rng.usize(..separators.len())]);
                    let value = if rng.bool() {
                        let quoted =
                            serde_json::to_string(INTERESTING[rng.usize(..INTERESTING.len())])
                                .unwrap_or_default();
                        quoted.into_bytes()
                    } else {
                        interesting.to_vec()
                    };
                    out.splice(start..end, value);
                }
                4 if at < out.len() => {
                    let (start, end) = word_span(&out, at);
                    out.splice(start..end, interesting.iter().copied());
                }
                5 => {
                    let end = rng.usize(at..=out.len().min(at + 64));
                    out.drain(at..end);
                }
                _ => {
                    let end = rng.usize(at..=out.len().min(at + 64));
                    let copy = out[at..end].to_vec();
                    let to = rng.usize(..=out.len());
                    out.splice(to..to, copy);
                }
            }
        }
        out
    }

    // ---- seeds from fuzz/seeds.txt ----------------------------------------------------------

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// Whether `name` matches `pattern`, where `*` matches any run of characters.
    fn glob_match(pattern: &str, name: &str) -> bool {
        match pattern.split_once('*') {
            None => pattern == name,
            Some((head, tail)) => {
                let Some(rest) = name.strip_prefix(head) else {
                    return false;
                };
                (0..=rest.len())
                    .filter(|&i| rest.is_char_boundary(i))
                    .any(|i| glob_match(tail, &rest[i..]))
            }
        }
    }

    /// The files a pattern of fuzz/seeds.txt names, in order.
    fn expand(pattern: &str) -> Vec<PathBuf> {
        let mut paths = vec![root()];
        for component in pattern.split('/') {
            let mut next = Vec::new();
            for dir in &paths {
                if !component.contains('*') {
                    next.push(dir.join(component));
                    continue;
                }
                let mut names: Vec<String> = std::fs::read_dir(dir)
                    .map(|entries| {
                        entries
                            .filter_map(|e| e.ok()?.file_name().into_string().ok())
                            .collect()
                    })
                    .unwrap_or_default();
                names.sort();
                next.extend(
                    names
                        .into_iter()
                        .filter(|n| glob_match(component, n))
                        .map(|n| dir.join(n)),
                );
            }
            paths = next;
        }
        paths.retain(|p| p.is_file());
        paths
    }

    fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex in fuzz/seeds.txt"))
            .collect()
    }

    /// `(prefix, document)` for each seed of `target`.
    fn seeds(target: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        use rustls_pki_types::pem::{PemObject, SectionKind};
        let manifest = std::fs::read_to_string(root().join("fuzz/seeds.txt")).unwrap();
        let mut out = Vec::new();
        for line in manifest.lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some(target) {
                continue;
            }
            let prefix = match words.next() {
                Some("-") | None => Vec::new(),
                Some(hex) => unhex(hex),
            };
            for pattern in words {
                let (der, pattern) = match pattern.strip_prefix("der:") {
                    Some(p) => (true, p),
                    None => (false, pattern),
                };
                let files = expand(pattern);
                assert!(
                    !files.is_empty(),
                    "fuzz/seeds.txt: nothing matches {pattern}"
                );
                for file in files {
                    let bytes = std::fs::read(&file).unwrap();
                    if der {
                        for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(&bytes) {
                            out.push((prefix.clone(), section.unwrap().1));
                        }
                    } else {
                        out.push((prefix.clone(), bytes));
                    }
                }
            }
        }
        out
    }

    // ---- running ----------------------------------------------------------------------------

    fn call(target: &Target, input: &[u8]) {
        if let Err(panic) = std::panic::catch_unwind(|| (target.run)(input)) {
            eprintln!(
                "fuzzing::{} panicked on this input (save it under fuzz/regressions/{}/):\n{}",
                target.name,
                target.name,
                input.escape_ascii()
            );
            std::panic::resume_unwind(panic);
        }
    }

    /// How many inputs of each kind: certificates cost real cryptography.
    struct Budget {
        random: usize,
        mutations: usize,
        truncations_per_seed: usize,
    }

    const FULL: Budget = Budget {
        random: 500,
        mutations: 3000,
        truncations_per_seed: 300,
    };

    fn exercise(name: &str, budget: Budget) {
        let target = TARGETS.iter().find(|t| t.name == name).unwrap();
        let mut rng = fastrand::Rng::with_seed(0x11_f022 ^ name.len() as u64);
        let seeds = seeds(name);
        for _ in 0..budget.random {
            let mut input = random_prefix(&mut rng, target.params);
            input.extend(random_bytes(&mut rng, 400));
            call(target, &input);
        }
        for (prefix, doc) in &seeds {
            let whole = [prefix.as_slice(), doc].concat();
            call(target, &whole);
            let step = (whole.len() / budget.truncations_per_seed).max(1);
            for end in (0..whole.len()).step_by(step) {
                call(target, &whole[..end]);
            }
        }
        if seeds.is_empty() {
            return;
        }
        for i in 0..budget.mutations {
            let (prefix, doc) = &seeds[i % seeds.len()];
            let mut input = if rng.u8(0..4) == 0 {
                random_prefix(&mut rng, target.params)
            } else {
                prefix.clone()
            };
            input.extend(mutate(&mut rng, doc));
            call(target, &input);
        }
    }

    #[test]
    fn every_target_has_seeds_or_is_structured() {
        for target in TARGETS {
            assert!(
                !seeds(target.name).is_empty() || target.name == "cache_deadlines",
                "{} has no seeds in fuzz/seeds.txt",
                target.name
            );
        }
    }

    #[test]
    fn every_entry_point_has_a_fuzz_target_and_back() {
        for target in TARGETS {
            let path = root().join(format!("fuzz/fuzz_targets/{}.rs", target.name));
            let source = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                source.contains(&format!("fuzzing::{}(data)", target.name)),
                "{} does not call fuzzing::{}",
                path.display(),
                target.name
            );
        }
        for entry in std::fs::read_dir(root().join("fuzz/fuzz_targets")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let name = name.trim_end_matches(".rs");
            assert!(
                TARGETS.iter().any(|t| t.name == name),
                "fuzz target {name} has no property test here"
            );
        }
    }

    #[test]
    fn managed_identity_token_bodies_never_panic() {
        exercise("mi_token_body", FULL);
    }

    #[test]
    fn managed_identity_error_bodies_never_panic() {
        exercise("mi_error_body", FULL);
    }

    #[test]
    fn managed_identity_dates_never_panic() {
        exercise("mi_date", FULL);
    }

    #[test]
    fn arc_challenges_never_panic() {
        exercise("arc_challenge", FULL);
    }

    #[test]
    fn managed_identity_responses_keep_the_credentials_promises() {
        exercise("mi_response", FULL);
    }

    #[test]
    fn entra_responses_never_panic() {
        exercise("entra_response", FULL);
    }

    #[test]
    fn entra_token_responses_keep_the_credentials_promises() {
        exercise("entra_token_response", FULL);
    }

    #[test]
    fn jwt_claims_never_panic() {
        exercise("jwt_claims", FULL);
    }

    #[test]
    fn azure_cli_token_caches_never_panic() {
        // Its seeds are 5-15 kB of JSON, each read twice: fewer of them.
        exercise(
            "az_token_cache",
            Budget {
                random: 500,
                mutations: 1000,
                truncations_per_seed: 60,
            },
        );
    }

    #[test]
    fn azure_cli_profiles_never_panic() {
        exercise("az_profile", FULL);
    }

    #[test]
    fn azure_cli_configs_never_panic() {
        exercise("az_config", FULL);
    }

    #[test]
    fn azure_cli_ini_files_never_panic() {
        exercise("az_config_ini", FULL);
    }

    #[test]
    fn azure_cli_output_never_panics() {
        exercise("az_output", FULL);
    }

    #[test]
    fn azure_developer_cli_output_never_panics() {
        exercise("azd_output", FULL);
    }

    #[test]
    fn cli_stderr_never_panics() {
        exercise("cli_stderr", FULL);
    }

    #[test]
    fn scrubbed_text_keeps_the_scrubbers_promises() {
        exercise("scrub", FULL);
    }

    #[test]
    fn retry_after_never_panics() {
        exercise("retry_after", FULL);
    }

    #[test]
    fn access_key_connection_strings_never_panic() {
        exercise("access_key", FULL);
    }

    #[test]
    fn certificates_never_panic() {
        exercise(
            "certificate",
            Budget {
                random: 200,
                mutations: 300,
                truncations_per_seed: 40,
            },
        );
    }

    #[test]
    fn der_never_panics() {
        exercise("der", FULL);
    }

    #[test]
    fn cache_deadlines_stay_in_order() {
        exercise(
            "cache_deadlines",
            Budget {
                random: 20_000,
                mutations: 0,
                truncations_per_seed: 0,
            },
        );
    }

    /// Every input a fuzz target ever crashed on, replayed.
    #[test]
    fn fuzz_regressions_never_panic() {
        for target in TARGETS {
            let dir = root().join("fuzz/regressions").join(target.name);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                call(target, &std::fs::read(&path).unwrap());
            }
        }
    }
}
