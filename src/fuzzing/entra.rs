//! Microsoft Entra ID: token endpoint answers (parsed alone, and through a whole
//! `ClientSecretCredential`), client certificate files and the DER reader under them.

use std::sync::atomic::Ordering;

use super::checks::{assert_no_body_secret, assert_not_a_panic, assert_refresh_in_range, shown};
use super::endpoint::{Canned, SCOPE, block_on};
use super::{BASE_UNIX_NANOS, Input, TENANT, clock_at, consume, strip_bom, text};
use crate::der;
use crate::entra::{ClientCertificate, response as entra_response};
use crate::system::{Env, HttpResponse, RetryPolicy, from_unix_nanos};
use crate::{AccessToken, ClientSecretCredential, Error, Secret, TokenCredential};

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
        tenant: TENANT,
        client_id: ENTRA_CLIENT_ID,
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
            .tenant_id(TENANT)
            .client_id(ENTRA_CLIENT_ID)
            .secret(ENTRA_SECRET)
            .authority_host("https://login.microsoftonline.com")
            .context(canned.context(&clock).with_env(Env::empty()))
            .retry_policy(RetryPolicy::none())
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
