//! Managed identity: the token and error bodies every source answers with, their dates,
//! Azure Arc's challenge, and whole exchanges with each source (`mi_response`).

use std::sync::atomic::Ordering;

use super::checks::{assert_no_body_secret, assert_not_a_panic, assert_refresh_in_range, shown};
use super::endpoint::{ARC_KEY, Canned, SCOPE, block_on};
use super::{BASE_UNIX_NANOS, BASE_UNIX_SECS, Input, clock_at, strip_bom, text};
use crate::managed_identity::{azure_arc, response as mi_response};
use crate::system::{Env, Fs, HttpResponse, RetryPolicy, from_unix_nanos};
use crate::{AccessToken, Error, ManagedIdentityCredential, TokenCredential, UserAssignedId};

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
            .context(canned.context(&clock).with_env(self.env()).with_fs(fs))
            .retry_policy(RetryPolicy::none())
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
