//! AccessKeyCredential: the signing test vectors (computed independently with Python's standard
//! library and cross-checked with openssl, see fixtures/access_key/README.md), parsing of keys
//! and connection strings, rotation, and a loopback server that verifies HMAC signatures the
//! way Azure Communication Services does.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use parking_lot::Mutex;
use ring::{digest, hmac};
use serde::Deserialize;
use time::OffsetDateTime;
use time::macros::datetime;
use url::Url;

use azure_credentials::system::{Clock, ManualClock};
use azure_credentials::{AccessKeyCredential, ErrorKind, SignedHeaders};
use support::http::{Request, Response, StandIn};

const KEY_A: &str =
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";
const KEY_B: &str =
    "LLdsC2Q5NWcVE2PvNH99sol+4caoni0xZ2mVjeUPPYPJ1ECGTaWb8Q0gXiJqQOZxKNteYrgCBMpQzF4pVHS1+A==";
const NOW: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);

// ---------------------------------------------------------------------------------------------
// Test vectors

#[derive(Deserialize)]
struct Vectors {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    key_base64: String,
    method: String,
    url: String,
    host: String,
    path_and_query: String,
    date_unix: i64,
    x_ms_date: String,
    body_utf8: Option<String>,
    body_base64: Option<String>,
    x_ms_content_sha256: String,
    authorization: String,
}

impl Vector {
    fn body(&self) -> Vec<u8> {
        match (&self.body_utf8, &self.body_base64) {
            (Some(text), None) => text.as_bytes().to_vec(),
            (None, Some(b64)) => STANDARD.decode(b64).unwrap(),
            _ => panic!("{}: exactly one of body_utf8 and body_base64", self.name),
        }
    }

    fn date(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.date_unix).unwrap()
    }

    fn credential(&self) -> AccessKeyCredential {
        AccessKeyCredential::builder()
            .key(self.key_base64.as_str())
            .clock(ManualClock::new(self.date()).clock())
            .build()
            .unwrap()
    }

    fn check(&self, how: &str, headers: &SignedHeaders) {
        let name = &self.name;
        assert_eq!(headers.date(), self.x_ms_date, "{name} ({how}): x-ms-date");
        assert_eq!(
            headers.content_sha256(),
            self.x_ms_content_sha256,
            "{name} ({how}): x-ms-content-sha256"
        );
        assert_eq!(
            headers.authorization(),
            self.authorization,
            "{name} ({how}): Authorization"
        );
    }
}

fn vectors() -> Vec<Vector> {
    let vectors: Vectors =
        serde_json::from_slice(&support::fixtures::read("access_key", "vectors.json")).unwrap();
    assert!(vectors.vectors.len() >= 8);
    vectors.vectors
}

#[test]
fn signatures_match_the_independently_computed_vectors() {
    for v in vectors() {
        let credential = v.credential();
        let body = v.body();
        // The pure function, from the parts the vector names.
        v.check(
            "sign_parts",
            &credential.sign_parts(&v.method, &v.host, &v.path_and_query, &body, v.date()),
        );
        // From the URL: the host (and a non-default port only) and the path and query as sent
        // are derived by the credential, the date comes from its clock.
        let url = Url::parse(&v.url).unwrap();
        v.check("sign", &credential.sign(&v.method, &url, &body).unwrap());
    }
}

#[test]
fn reqwest_requests_are_signed_like_the_vectors() {
    for v in vectors() {
        let credential = v.credential();
        let method = reqwest::Method::from_bytes(v.method.to_ascii_uppercase().as_bytes()).unwrap();
        let mut request = reqwest::Request::new(method, Url::parse(&v.url).unwrap());
        let body = v.body();
        if !body.is_empty() {
            *request.body_mut() = Some(body.into());
        }
        credential.sign_request(&mut request).unwrap();
        let headers = request.headers();
        let get = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(get("x-ms-date"), v.x_ms_date, "{}", v.name);
        assert_eq!(
            get("x-ms-content-sha256"),
            v.x_ms_content_sha256,
            "{}",
            v.name
        );
        assert_eq!(get("authorization"), v.authorization, "{}", v.name);
        assert!(
            headers.get("authorization").unwrap().is_sensitive(),
            "Authorization must be marked sensitive"
        );
    }
}

#[test]
fn the_headers_come_as_name_value_pairs() {
    let credential = AccessKeyCredential::new(KEY_A).unwrap();
    let headers = credential.sign_parts("GET", "h", "/", b"", NOW);
    let pairs: Vec<(&str, &str)> = headers.iter().collect();
    assert_eq!(
        pairs.iter().map(|p| p.0).collect::<Vec<_>>(),
        ["x-ms-date", "x-ms-content-sha256", "authorization"]
    );
    assert_eq!(pairs[0].1, "Tue, 01 Jan 2030 00:00:00 GMT");
    let printed = format!("{headers:?}");
    let signature = headers.authorization().rsplit('=').nth(1).unwrap();
    assert!(!printed.contains(signature), "{printed}");
    assert!(printed.contains("Signature=<redacted>"), "{printed}");
}

#[test]
fn a_signature_depends_on_every_input() {
    let credential = AccessKeyCredential::new(KEY_A).unwrap();
    let base = credential.sign_parts("POST", "h", "/p?q=1", b"{}", NOW);
    let variants = [
        credential.sign_parts("PUT", "h", "/p?q=1", b"{}", NOW),
        credential.sign_parts("POST", "h2", "/p?q=1", b"{}", NOW),
        credential.sign_parts("POST", "h:444", "/p?q=1", b"{}", NOW),
        credential.sign_parts("POST", "h", "/p?q=2", b"{}", NOW),
        credential.sign_parts("POST", "h", "/p", b"{}", NOW),
        credential.sign_parts("POST", "h", "/p?q=1", b"{ }", NOW),
        credential.sign_parts("POST", "h", "/p?q=1", b"{}", NOW + Duration::from_secs(1)),
        AccessKeyCredential::new(KEY_B)
            .unwrap()
            .sign_parts("POST", "h", "/p?q=1", b"{}", NOW),
    ];
    for (i, other) in variants.iter().enumerate() {
        assert_ne!(other.authorization(), base.authorization(), "variant {i}");
    }
}

// ---------------------------------------------------------------------------------------------
// Keys and connection strings

#[test]
fn keys_are_validated_without_repeating_them() {
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("   ", "empty"),
        // URL-safe alphabet: '-' at position 3.
        (
            "AAE-AwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0_Pw==",
            "position 4",
        ),
        (
            "secret key with spaces in it, not base64 at all!!",
            "not base64",
        ),
        // Cut short.
        (
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P",
            "not base64",
        ),
        ("c2hvcnQta2V5", "decodes to 9 bytes"),
        (
            "endpoint=https://x.communication.azure.com/;accesskey=c2VjcmV0",
            "looks like a connection string",
        ),
    ];
    for (key, expected) in cases {
        let err = AccessKeyCredential::new(*key).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{key:?}");
        let text = format!("{err} {err:?}");
        assert!(text.contains(expected), "{key:?}: {text}");
        assert!(text.starts_with("AccessKeyCredential: "), "{text}");
        if key.trim().len() > 4 {
            assert!(!text.contains(key), "the key is repeated: {text}");
        }
    }
    // Whitespace around a pasted key, and a key without its padding, are fine.
    assert!(AccessKeyCredential::new(format!("  {KEY_A}\n")).is_ok());
    assert!(AccessKeyCredential::new(KEY_A.trim_end_matches('=')).is_ok());
}

#[test]
fn connection_strings_are_parsed_case_insensitively_in_any_order() {
    let port_url = "http://127.0.0.1:8080/";
    for text in [
        format!("endpoint=https://contoso.communication.azure.com/;accesskey={KEY_A}"),
        format!("Endpoint=https://contoso.communication.azure.com/;AccessKey={KEY_A}"),
        format!("ACCESSKEY={KEY_A};ENDPOINT=https://contoso.communication.azure.com/"),
        format!(" endpoint = https://contoso.communication.azure.com/ ; accesskey = {KEY_A} ;"),
        format!("endpoint=https://contoso.communication.azure.com;accesskey={KEY_A}"),
    ] {
        let credential = AccessKeyCredential::from_connection_string(text.as_str()).unwrap();
        assert_eq!(
            credential.endpoint().unwrap().as_str(),
            "https://contoso.communication.azure.com/",
            "{text}"
        );
        // The same key as given directly.
        let direct = AccessKeyCredential::new(KEY_A).unwrap();
        assert_eq!(
            credential
                .sign_parts("GET", "h", "/", b"", NOW)
                .authorization(),
            direct.sign_parts("GET", "h", "/", b"", NOW).authorization()
        );
    }
    let local = AccessKeyCredential::from_connection_string(format!(
        "endpoint={port_url};accesskey={KEY_A}"
    ))
    .unwrap();
    assert_eq!(local.endpoint().unwrap().as_str(), port_url);
}

#[test]
fn connection_strings_are_validated_without_repeating_the_key() {
    let secret = "c2VjcmV0LWtleS1tYXRlcmlhbC10aGF0LW11c3Qtbm90LWxlYWs=";
    let cases: Vec<(String, &str)> = vec![
        (format!("accesskey={secret}"), "no endpoint="),
        (
            "endpoint=https://contoso.communication.azure.com/".to_owned(),
            "no accesskey=",
        ),
        ("".to_owned(), "neither endpoint= nor accesskey="),
        (
            format!(
                "endpoint=https://a.communication.azure.com/;endpoint=https://b.communication.azure.com/;accesskey={secret}"
            ),
            "sets endpoint twice",
        ),
        (
            format!(
                "endpoint=https://a.communication.azure.com/;accesskey={secret};AccessKey={secret}"
            ),
            "sets accesskey twice",
        ),
        (
            format!(
                "endpoint=https://a.communication.azure.com/;accesskey={secret};region=westeurope"
            ),
            "unknown setting \"region\"",
        ),
        // The key where a setting should be: not repeated back (with its padding, its first
        // '=' makes it look like a setting; without, it is no setting at all).
        (
            format!("endpoint=https://a.communication.azure.com/;{secret}"),
            "an unknown setting (part 2)",
        ),
        (
            format!(
                "endpoint=https://a.communication.azure.com/;{}",
                secret.trim_end_matches('=')
            ),
            "part 2 of the connection string is not a name=value setting",
        ),
        (
            format!(
                "endpoint=https://a.communication.azure.com/;{}=x;accesskey={secret}",
                secret.trim_end_matches('=')
            ),
            "an unknown setting (part 2)",
        ),
        (
            format!("endpoint=http://contoso.communication.azure.com/;accesskey={secret}"),
            "plain http, which is accepted for loopback hosts only",
        ),
        (
            format!(
                "endpoint=https://user:{secret}@contoso.communication.azure.com/;accesskey={secret}"
            ),
            "must not contain a user name or password",
        ),
        (
            format!("endpoint={secret};accesskey={secret}"),
            "not an absolute URL",
        ),
        (
            format!(
                "endpoint=https://contoso.communication.azure.com/?code={secret};accesskey={secret}"
            ),
            "query or fragment",
        ),
        (
            "endpoint=https://contoso.communication.azure.com/;accesskey=not-base64!".to_owned(),
            "not base64",
        ),
    ];
    for (text, expected) in &cases {
        let err = AccessKeyCredential::from_connection_string(text.as_str()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{text}");
        let printed = format!("{err} {err:?}");
        assert!(printed.contains(expected), "{text}: {printed}");
        assert!(!printed.contains(secret), "the key is repeated: {printed}");
        assert!(
            !printed.contains(secret.trim_end_matches('=')),
            "the key is repeated: {printed}"
        );
    }
}

#[test]
fn the_builder_wants_exactly_one_source_of_key() {
    let none = AccessKeyCredential::builder().build().unwrap_err();
    assert!(none.to_string().contains("no access key"), "{none}");
    let both = AccessKeyCredential::builder()
        .key(KEY_A)
        .connection_string(format!(
            "endpoint=https://a.communication.azure.com/;accesskey={KEY_A}"
        ))
        .build()
        .unwrap_err();
    assert!(
        both.to_string()
            .contains("both a key and a connection string"),
        "{both}"
    );
    let endpoint_twice = AccessKeyCredential::builder()
        .connection_string(format!(
            "endpoint=https://a.communication.azure.com/;accesskey={KEY_A}"
        ))
        .endpoint("https://b.communication.azure.com/")
        .build()
        .unwrap_err();
    assert!(
        endpoint_twice
            .to_string()
            .contains("connection string and an endpoint")
    );
    let with_endpoint = AccessKeyCredential::builder()
        .key(KEY_A)
        .endpoint("https://a.communication.azure.com")
        .build()
        .unwrap();
    assert_eq!(
        with_endpoint.endpoint().map(Url::as_str),
        Some("https://a.communication.azure.com/")
    );
    assert!(
        AccessKeyCredential::new(KEY_A)
            .unwrap()
            .endpoint()
            .is_none()
    );
    let printed = format!(
        "{:?} {:?}",
        with_endpoint,
        AccessKeyCredential::builder().key(KEY_A)
    );
    assert!(!printed.contains(KEY_A), "{printed}");
    assert!(printed.contains("a.communication.azure.com"), "{printed}");
}

#[test]
fn requests_that_cannot_be_signed_are_refused() {
    let credential = AccessKeyCredential::new(KEY_A).unwrap();
    let no_host = Url::parse("mailto:someone@example.com").unwrap();
    let err = credential.sign("GET", &no_host, b"").unwrap_err();
    assert!(err.to_string().contains("without a host"), "{err}");
    let url = Url::parse("https://contoso.communication.azure.com/").unwrap();
    let err = credential.sign("GET /x", &url, b"").unwrap_err();
    assert!(err.to_string().contains("not an HTTP method name"), "{err}");

    let mut lower =
        reqwest::Request::new(reqwest::Method::from_bytes(b"post").unwrap(), url.clone());
    let err = credential.sign_request(&mut lower).unwrap_err();
    assert!(err.to_string().contains("upper-case"), "{err}");

    let stream = futures_stream_body();
    let mut streaming = reqwest::Request::new(reqwest::Method::POST, url);
    *streaming.body_mut() = Some(stream);
    let err = credential.sign_request(&mut streaming).unwrap_err();
    assert!(err.to_string().contains("streaming body"), "{err}");
    assert!(streaming.headers().get("authorization").is_none());
}

/// A body whose bytes are not known in advance (reqwest sees any wrapped `http_body::Body` as a
/// stream, even a `String`).
fn futures_stream_body() -> reqwest::Body {
    reqwest::Body::wrap(String::from("streamed"))
}

// ---------------------------------------------------------------------------------------------
// Rotation

#[test]
fn rotation_reaches_clones_and_keeps_the_old_key_on_error() {
    let credential = AccessKeyCredential::new(KEY_A).unwrap();
    let clone = credential.clone();
    let with_a = credential.sign_parts("GET", "h", "/", b"", NOW);
    let err = credential.rotate("not a key").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        clone.sign_parts("GET", "h", "/", b"", NOW).authorization(),
        with_a.authorization(),
        "a refused key leaves the old one in place"
    );
    credential.rotate(KEY_B).unwrap();
    let with_b = AccessKeyCredential::new(KEY_B)
        .unwrap()
        .sign_parts("GET", "h", "/", b"", NOW);
    assert_eq!(
        clone.sign_parts("GET", "h", "/", b"", NOW).authorization(),
        with_b.authorization(),
        "a clone made before the rotation signs with the new key"
    );
    assert!(format!("{clone:?}").contains("rotations: 1"), "{clone:?}");
}

#[test]
fn a_signer_never_sees_a_torn_key_while_another_thread_rotates() {
    let credential = AccessKeyCredential::new(KEY_A).unwrap();
    let sign = |c: &AccessKeyCredential| {
        c.sign_parts("POST", "h", "/p?q", b"body", NOW)
            .authorization()
            .to_owned()
    };
    let expected_a = sign(&credential);
    let expected_b = sign(&AccessKeyCredential::new(KEY_B).unwrap());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let credential = credential.clone();
            let (a, b) = (&expected_a, &expected_b);
            scope.spawn(move || {
                let (mut seen_a, mut seen_b) = (0, 0);
                for _ in 0..3000 {
                    let got = sign(&credential);
                    if &got == a {
                        seen_a += 1;
                    } else if &got == b {
                        seen_b += 1;
                    } else {
                        panic!("a signature made with neither key");
                    }
                }
                assert_eq!(seen_a + seen_b, 3000);
            });
        }
        let credential = credential.clone();
        scope.spawn(move || {
            for i in 0..1000 {
                credential
                    .rotate(if i % 2 == 0 { KEY_B } else { KEY_A })
                    .unwrap();
            }
        });
    });
}

// ---------------------------------------------------------------------------------------------
// A loopback server that verifies signatures the way the service does

/// What the verifying server concluded about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Accepted,
    Rejected(String),
}

/// An HTTP/1.1 server on 127.0.0.1:0 that checks each request's HMAC-SHA256 signature from what
/// it received (request line, `Host`, `x-ms-date`, the body) against the keys it knows, refuses
/// a date more than 15 minutes from its own clock, and answers 200 or 401.
struct VerifyingServer {
    server: StandIn,
    verdicts: Arc<Mutex<Vec<Verdict>>>,
}

impl VerifyingServer {
    async fn start(keys: &[&str], clock: Clock) -> VerifyingServer {
        let keys: Vec<hmac::Key> = keys
            .iter()
            .map(|k| hmac::Key::new(hmac::HMAC_SHA256, &STANDARD.decode(k).unwrap()))
            .collect();
        let verdicts = Arc::new(Mutex::new(Vec::new()));
        let recorded = verdicts.clone();
        let server = StandIn::start(move |request| {
            let verdict = verify(&request, &keys, &clock);
            let (status, reason) = match &verdict {
                Verdict::Accepted => ("200 OK", "ok".to_owned()),
                Verdict::Rejected(reason) => ("401 Unauthorized", reason.clone()),
            };
            recorded.lock().push(verdict);
            Response::new(status)
                .header("content-type", "text/plain")
                .body(reason)
        })
        .await;
        VerifyingServer { server, verdicts }
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    fn url(&self, path_and_query: &str) -> Url {
        Url::parse(&format!("http://{}{path_and_query}", self.addr())).unwrap()
    }

    fn last_verdict(&self) -> Verdict {
        self.verdicts.lock().last().cloned().expect("no request")
    }
}

/// The service's check, recomputed from the received request.
fn verify(request: &Request, keys: &[hmac::Key], clock: &Clock) -> Verdict {
    let reject = |why: &str| Verdict::Rejected(why.to_owned());
    let Some(date) = request.header("x-ms-date") else {
        return reject("no x-ms-date");
    };
    let Some(sent) = parse_http_date(date) else {
        return reject("x-ms-date is not an RFC 1123 date");
    };
    if (clock.now() - sent).abs() > time::Duration::minutes(15) {
        return reject("x-ms-date is more than 15 minutes from the server's clock");
    }
    let Some(content_hash) = request.header("x-ms-content-sha256") else {
        return reject("no x-ms-content-sha256");
    };
    if content_hash != STANDARD.encode(digest::digest(&digest::SHA256, &request.body)) {
        return reject("x-ms-content-sha256 does not match the body");
    }
    let Some(authorization) = request.header("authorization") else {
        return reject("no Authorization");
    };
    let Some(params) = authorization.strip_prefix("HMAC-SHA256 ") else {
        return reject("not HMAC-SHA256");
    };
    let params: HashMap<&str, &str> = params
        .split('&')
        .filter_map(|p| p.split_once('='))
        .collect();
    let (Some(signed_headers), Some(signature)) =
        (params.get("SignedHeaders"), params.get("Signature"))
    else {
        return reject("Authorization lacks SignedHeaders or Signature");
    };
    if *signed_headers != "x-ms-date;host;x-ms-content-sha256" {
        return reject("unexpected SignedHeaders");
    }
    let mut values = Vec::new();
    for name in signed_headers.split(';') {
        match request.header(name) {
            Some(value) => values.push(value),
            None => return reject("a signed header is missing"),
        }
    }
    let string_to_sign = format!(
        "{}\n{}\n{}",
        request.method,
        request.target,
        values.join(";")
    );
    let Ok(signature) = STANDARD.decode(signature) else {
        return reject("the signature is not base64");
    };
    if keys
        .iter()
        .any(|key| hmac::verify(key, string_to_sign.as_bytes(), &signature).is_ok())
    {
        Verdict::Accepted
    } else {
        reject("signature mismatch")
    }
}

/// `Tue, 01 Jan 2030 00:00:00 GMT`, strictly.
fn parse_http_date(text: &str) -> Option<OffsetDateTime> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let fields: Vec<&str> = text.split(' ').collect();
    let [weekday, day, month, year, hms, "GMT"] = fields[..] else {
        return None;
    };
    let month = MONTHS.iter().position(|m| *m == month)? as u8 + 1;
    let date = time::Date::from_calendar_date(
        year.parse().ok()?,
        time::Month::try_from(month).ok()?,
        day.parse().ok()?,
    )
    .ok()?;
    if !weekday.starts_with(&format!("{}", date.weekday())[..3]) {
        return None;
    }
    let mut hms = hms.split(':').map(|n| n.parse::<u8>().ok());
    let time = time::Time::from_hms(hms.next()??, hms.next()??, hms.next()??).ok()?;
    Some(date.with_time(time).assume_utc())
}

fn client() -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .build()
        .unwrap()
}

async fn send(client: &reqwest::Client, request: reqwest::Request) -> (u16, String) {
    let response = client.execute(request).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

struct Setup {
    server: VerifyingServer,
    credential: AccessKeyCredential,
    client: reqwest::Client,
    client_clock: ManualClock,
}

async fn setup(server_keys: &[&str], client_key: &str) -> Setup {
    let server_clock = ManualClock::new(NOW);
    let client_clock = ManualClock::new(NOW);
    let server = VerifyingServer::start(server_keys, server_clock.clock()).await;
    let credential = AccessKeyCredential::builder()
        .connection_string(format!(
            "endpoint=http://{}/;accesskey={client_key}",
            server.addr()
        ))
        .clock(client_clock.clock())
        .build()
        .unwrap();
    Setup {
        server,
        credential,
        client: client(),
        client_clock,
    }
}

#[tokio::test]
async fn the_service_accepts_signed_get_and_post_requests() {
    let s = setup(&[KEY_A], KEY_A).await;
    // The endpoint's non-default port is part of the signed host, as hyper sends it.
    let get_url = s
        .credential
        .endpoint()
        .unwrap()
        .join("identities/8%3Aacs%3Aabc?api-version=2023-10-01&x=a%20b")
        .unwrap();
    let mut get = s.client.get(get_url).build().unwrap();
    s.credential.sign_request(&mut get).unwrap();
    assert_eq!(send(&s.client, get).await, (200, "ok".to_owned()));

    let mut post = s
        .client
        .post(s.server.url("/identities?api-version=2023-10-01"))
        .header("content-type", "application/json")
        .body(r#"{"createTokenWithScopes":["chat"],"note":"café ☕"}"#)
        .build()
        .unwrap();
    s.credential.sign_request(&mut post).unwrap();
    assert_eq!(send(&s.client, post).await, (200, "ok".to_owned()));

    // Headers from `sign`, set by hand, work the same.
    let url = s.server.url("/sms?api-version=2021-03-07");
    let body = br#"{"message":"hi"}"#;
    let headers = s.credential.sign("POST", &url, body).unwrap();
    let mut builder = s.client.post(url).body(&body[..]);
    for (name, value) in headers.iter() {
        builder = builder.header(name, value);
    }
    assert_eq!(send(&s.client, builder.build().unwrap()).await.0, 200);

    // An explicit Host header is what the server sees, so it is what gets signed.
    let mut with_host = s
        .client
        .get(s.server.url("/identities?api-version=2023-10-01"))
        .header("host", "contoso.communication.azure.com")
        .build()
        .unwrap();
    s.credential.sign_request(&mut with_host).unwrap();
    assert_eq!(send(&s.client, with_host).await.0, 200);
    assert!(
        s.server
            .verdicts
            .lock()
            .iter()
            .all(|v| *v == Verdict::Accepted)
    );
}

#[tokio::test]
async fn the_service_rejects_tampered_requests() {
    let s = setup(&[KEY_A], KEY_A).await;
    let url = s.server.url("/identities?api-version=2023-10-01");
    let signed = |body: &'static str| {
        let mut request = s.client.post(url.clone()).body(body).build().unwrap();
        s.credential.sign_request(&mut request).unwrap();
        request
    };

    // The body changed after signing: its hash no longer matches.
    let mut request = signed(r#"{"amount":1}"#);
    *request.body_mut() = Some(r#"{"amount":1000}"#.into());
    assert_eq!(send(&s.client, request).await.0, 401);
    assert_eq!(
        s.server.last_verdict(),
        Verdict::Rejected("x-ms-content-sha256 does not match the body".into())
    );

    // The body and its hash changed together: the signature covers the hash.
    let mut request = signed(r#"{"amount":1}"#);
    let forged = r#"{"amount":1000}"#;
    *request.body_mut() = Some(forged.into());
    request.headers_mut().insert(
        "x-ms-content-sha256",
        STANDARD
            .encode(digest::digest(&digest::SHA256, forged.as_bytes()))
            .parse()
            .unwrap(),
    );
    assert_eq!(send(&s.client, request).await.0, 401);
    assert_eq!(
        s.server.last_verdict(),
        Verdict::Rejected("signature mismatch".into())
    );

    // Another path, and another query.
    for other in [
        "/identities/other?api-version=2023-10-01",
        "/identities?api-version=2021-03-07",
    ] {
        let mut request = signed("{}");
        *request.url_mut() = s.server.url(other);
        assert_eq!(send(&s.client, request).await.0, 401, "{other}");
        assert_eq!(
            s.server.last_verdict(),
            Verdict::Rejected("signature mismatch".into())
        );
    }

    // Another date, still within the allowed skew.
    let mut request = signed("{}");
    let later = s
        .credential
        .sign_parts("GET", "x", "/", b"", NOW + Duration::from_secs(1));
    request
        .headers_mut()
        .insert("x-ms-date", later.date().parse().unwrap());
    assert_eq!(send(&s.client, request).await.0, 401);
    assert_eq!(
        s.server.last_verdict(),
        Verdict::Rejected("signature mismatch".into())
    );

    // Another method.
    let mut request = signed("{}");
    *request.method_mut() = reqwest::Method::PUT;
    assert_eq!(send(&s.client, request).await.0, 401);

    // Correctly signed, but with a clock 16 minutes behind the service's.
    s.client_clock.set(NOW - Duration::from_secs(16 * 60));
    let request = signed("{}");
    assert_eq!(send(&s.client, request).await.0, 401);
    assert_eq!(
        s.server.last_verdict(),
        Verdict::Rejected("x-ms-date is more than 15 minutes from the server's clock".into())
    );
    // 14 minutes is within the service's tolerance.
    s.client_clock.set(NOW - Duration::from_secs(14 * 60));
    assert_eq!(send(&s.client, signed("{}")).await.0, 200);
}

#[tokio::test]
async fn the_service_rejects_a_wrong_key_until_the_key_is_rotated() {
    // The service knows only key B (say, after "regenerate primary key" in the portal).
    let s = setup(&[KEY_B], KEY_A).await;
    let url = s.server.url("/identities?api-version=2023-10-01");
    // A client built before the rotation, holding its own clone of the credential.
    let client_credential = s.credential.clone();
    let attempt = |credential: &AccessKeyCredential| {
        let mut request = s.client.post(url.clone()).body("{}").build().unwrap();
        credential.sign_request(&mut request).unwrap();
        request
    };
    assert_eq!(send(&s.client, attempt(&client_credential)).await.0, 401);
    assert_eq!(
        s.server.last_verdict(),
        Verdict::Rejected("signature mismatch".into())
    );

    s.credential.rotate(KEY_B).unwrap();
    assert_eq!(send(&s.client, attempt(&client_credential)).await.0, 200);
    assert_eq!(send(&s.client, attempt(&s.credential)).await.0, 200);
}
