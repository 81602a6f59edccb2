//! Every shape of answer from the token endpoint (fixtures/entra/), served by the loopback mock:
//! tokens parse, errors become typed errors with actionable messages, nothing panics and no body
//! is ever echoed.

mod support;
use support::cache;
use support::fixtures;

use std::time::Duration;

use azure_credentials::system::{Env, ManualClock, RetryPolicy};
use azure_credentials::testing::{MockEntra, MockEntraReply};
use azure_credentials::{ClientSecretCredential, ErrorKind, TokenCredential};
use time::macros::datetime;

const SCOPE: &[&str] = &["https://management.azure.com/.default"];

async fn credential(entra: &MockEntra, clock: &ManualClock) -> ClientSecretCredential {
    let cache = cache::deterministic_without_cooldown(clock.clock());
    ClientSecretCredential::builder()
        .tenant_id("contoso.onmicrosoft.com")
        .client_id("00000000-0000-0000-0000-000000000001")
        .secret("fixture-secret")
        .authority_host(entra.authority_host())
        .env(Env::empty())
        .cache(cache)
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn token_responses_parse() {
    let entra = MockEntra::start().await;
    let clock = cache::manual_clock();
    for (file, expires, refresh) in [
        ("token.json", datetime!(2030-01-01 0:59:59 UTC), None),
        (
            "token_string_numbers.json",
            datetime!(2030-01-01 0:59:59 UTC),
            None,
        ),
        (
            "token_refresh_in.json",
            datetime!(2030-01-01 23:59:59 UTC),
            Some(datetime!(2030-01-01 11:59:59 UTC)),
        ),
    ] {
        entra.push(MockEntraReply::json(200, fixtures::read("entra", file)));
        let token = credential(&entra, &clock)
            .await
            .get_token(SCOPE, None)
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(token.token().expose().starts_with("eyJ"), "{file}");
        assert_eq!(token.expires_on(), expires, "{file}");
        if let Some(refresh) = refresh {
            // The cache refreshes at the server's refresh_in (or earlier), never later.
            assert!(token.refresh_on().unwrap() <= refresh, "{file}");
        }
    }
}

struct Case {
    file: &'static str,
    status: u16,
    kind: ErrorKind,
    codes: &'static [u32],
    correlation_id: Option<&'static str>,
    /// In the message.
    says: &'static [&'static str],
    /// In the fix.
    fix: &'static str,
}

#[tokio::test]
async fn error_bodies_of_every_shape_become_typed_actionable_errors() {
    let cases = [
        Case {
            file: "invalid_client_secret.json",
            status: 401,
            kind: ErrorKind::Authentication,
            codes: &[7000215],
            correlation_id: Some("4d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a00"),
            says: &[
                "Microsoft Entra ID refused the token request",
                "401 invalid_client: AADSTS7000215: Invalid client secret provided.",
                "trace id 0b6f1a8e-5d1c-4a3e-9c2e-7f6c1d4b2a00",
                "correlation id 4d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a00",
                "\"contoso.onmicrosoft.com\"",
            ],
            fix: "not its id",
        },
        Case {
            file: "expired_client_secret.json",
            status: 401,
            kind: ErrorKind::Authentication,
            codes: &[7000222],
            correlation_id: Some("5e4d3c2b-1a0f-4e9d-8c7b-6f5e4d3c2b11"),
            says: &["AADSTS7000222"],
            fix: "create a new one",
        },
        Case {
            file: "application_not_found.json",
            status: 400,
            kind: ErrorKind::Authentication,
            codes: &[700016],
            correlation_id: Some("6f5e4d3c-2b1a-4f0e-9d8c-7a6f5e4d3c22"),
            says: &["AADSTS700016: Application with identifier"],
            fix: "check the client id and the tenant id",
        },
        Case {
            file: "tenant_not_found.json",
            status: 400,
            kind: ErrorKind::Authentication,
            codes: &[90002],
            correlation_id: Some("7a6f5e4d-3c2b-4a1f-8e9d-8b7a6f5e4d33"),
            says: &["AADSTS90002"],
            fix: "check the tenant id",
        },
        Case {
            file: "certificate_not_registered.json",
            status: 401,
            kind: ErrorKind::Authentication,
            codes: &[700027],
            correlation_id: Some("8b7a6f5e-4d3c-4b2a-9f0e-9c8b7a6f5e44"),
            says: &["AADSTS700027"],
            fix: "uploaded to the app registration",
        },
        Case {
            file: "assertion_expired.json",
            status: 400,
            kind: ErrorKind::Authentication,
            codes: &[700024],
            correlation_id: Some("9c8b7a6f-5e4d-4c3b-a01f-ad9c8b7a6f55"),
            says: &["AADSTS700024: Client assertion is not within its valid time range."],
            fix: "federated token file is stale",
        },
        Case {
            file: "no_federated_credential.json",
            status: 400,
            kind: ErrorKind::Authentication,
            codes: &[70021],
            correlation_id: Some("ad9c8b7a-6f5e-4d4c-b12a-be0d9c8b7a66"),
            says: &["AADSTS70021"],
            fix: "federated identity credential",
        },
        Case {
            file: "invalid_scope.json",
            status: 400,
            kind: ErrorKind::Authentication,
            codes: &[1002012],
            correlation_id: Some("bead9c8b-7a6f-4e5d-a23b-cf1eadc9c877"),
            says: &["invalid_scope"],
            fix: "/.default",
        },
        Case {
            file: "resource_not_found.json",
            status: 400,
            kind: ErrorKind::Authentication,
            codes: &[500011],
            correlation_id: Some("cfbeadc9-8b7a-4f6e-b34c-d02fbedcad88"),
            says: &["AADSTS500011"],
            fix: "check the scope",
        },
        Case {
            file: "server_error.json",
            status: 503,
            kind: ErrorKind::ServiceFailure,
            codes: &[90033],
            correlation_id: Some("d0cfbead-c98b-4a7f-8c45-e13a0cfbed99"),
            says: &["failed to answer", "503 temporarily_unavailable"],
            fix: "try again later",
        },
        Case {
            file: "throttled.json",
            status: 429,
            kind: ErrorKind::Throttled,
            codes: &[50196],
            correlation_id: Some("e1d0cfbe-adc9-4b8a-9d56-f24b1d0cfeaa"),
            says: &["throttled"],
            fix: "share one credential",
        },
        Case {
            file: "error_minimal.json",
            status: 400,
            kind: ErrorKind::Authentication,
            codes: &[],
            correlation_id: None,
            says: &["(400 invalid_request)"],
            fix: "correlation id",
        },
        Case {
            file: "error_odd_fields.json",
            status: 400,
            kind: ErrorKind::Authentication,
            codes: &[7000215],
            correlation_id: None,
            says: &["(400 error)"],
            fix: "client secret",
        },
        Case {
            file: "not_entra.json",
            status: 400,
            kind: ErrorKind::Other,
            codes: &[],
            correlation_id: None,
            says: &["answered 400 with JSON that is not a Microsoft Entra answer"],
            fix: "authority host",
        },
    ];
    let entra = MockEntra::start().await;
    let clock = cache::manual_clock();
    let credential = credential(&entra, &clock).await;
    for case in cases {
        let body = fixtures::read("entra", case.file);
        let mut reply = MockEntraReply::json(case.status, body.clone());
        if case.status == 429 {
            reply = reply.with_header("Retry-After", "30");
        }
        entra.push(reply);
        let err = credential.get_token(SCOPE, None).await.unwrap_err();
        let text = err.to_string();
        let file = case.file;
        assert_eq!(err.kind(), case.kind, "{file}: {text}");
        assert_eq!(err.status(), Some(case.status), "{file}");
        assert_eq!(err.aadsts_codes(), case.codes, "{file}");
        assert_eq!(err.correlation_id(), case.correlation_id, "{file}");
        assert!(
            text.starts_with("ClientSecretCredential: "),
            "{file}: {text}"
        );
        for says in case.says {
            assert!(text.contains(says), "{file}: {says:?} not in {text}");
        }
        assert!(err.fix().unwrap().contains(case.fix), "{file}: {text}");
        assert!(
            !text.contains('\n') && !text.contains('\r'),
            "{file}: one line: {text:?}"
        );
        assert!(!text.contains("Injected"), "{file}: {text}");
        // Only the first sentence of Entra's description is kept.
        assert!(!text.contains("Timestamp:"), "{file}: {text}");
        if case.status == 429 {
            assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
            // The cache remembers a throttled failure for its Retry-After.
            clock.advance(Duration::from_secs(31));
        }
    }
}

/// A 5xx is the service failing, not a refusal: `ServiceFailure`, whatever the body, unless the
/// body is a proxy's HTML page (then something other than Entra answered).
#[tokio::test]
async fn server_errors_are_service_failures_not_refusals() {
    let entra = MockEntra::start().await;
    let clock = cache::manual_clock();
    let credential = credential(&entra, &clock).await;
    let cases: Vec<(MockEntraReply, u16, ErrorKind, &str)> = vec![
        (
            MockEntraReply::json(500, "Internal Server Error"),
            500,
            ErrorKind::ServiceFailure,
            "a body that is not JSON",
        ),
        (
            MockEntraReply::json(503, fixtures::read("entra", "server_error.json")),
            503,
            ErrorKind::ServiceFailure,
            "failed to answer",
        ),
        (
            MockEntraReply::json(502, ""),
            502,
            ErrorKind::ServiceFailure,
            "an empty body",
        ),
        (
            MockEntraReply::json(504, r#"{"status":"timeout"}"#),
            504,
            ErrorKind::ServiceFailure,
            "JSON that is not",
        ),
        (
            MockEntraReply::json(502, fixtures::read("entra", "proxy_page.html")),
            502,
            ErrorKind::Other,
            "an HTML page",
        ),
    ];
    for (reply, status, kind, says) in cases {
        entra.push(reply);
        let err = credential.get_token(SCOPE, None).await.unwrap_err();
        let text = err.to_string();
        assert_eq!(err.kind(), kind, "{text}");
        assert!(!err.is_authentication(), "{text}");
        assert_eq!(err.status(), Some(status), "{text}");
        assert!(text.contains(says), "{says:?} not in {text}");
    }
}

#[tokio::test]
async fn html_pages_and_garbage_are_typed_errors_that_never_echo_the_body() {
    let entra = MockEntra::start().await;
    let clock = cache::manual_clock();
    let credential = credential(&entra, &clock).await;
    let proxy_page = fixtures::read("entra", "proxy_page.html");
    let cases: Vec<(MockEntraReply, u16, &str)> = vec![
        (MockEntraReply::html(403), 403, "an HTML page"),
        (
            MockEntraReply::json(403, proxy_page.clone()),
            403,
            "an HTML page",
        ),
        (MockEntraReply::json(502, proxy_page), 502, "an HTML page"),
        (
            MockEntraReply::json(200, "eyJ-garbage-secret-marker"),
            200,
            "a body that is not JSON",
        ),
        (MockEntraReply::json(200, ""), 200, "an empty body"),
        (
            MockEntraReply::json(200, "[1,2,3]"),
            200,
            "JSON that is not",
        ),
        (
            MockEntraReply::json(
                200,
                r#"{"access_token":"eyJ-partial-secret-marker","expires_in""#,
            ),
            200,
            "a body that is not JSON",
        ),
        (
            MockEntraReply::json(200, r#"{"access_token":"eyJ-no-expiry-secret-marker"}"#),
            200,
            "without a valid expires_in",
        ),
        (
            MockEntraReply::json(
                200,
                r#"{"access_token":"eyJ-bad-expiry-secret-marker","expires_in":-1}"#,
            ),
            200,
            "without a valid expires_in",
        ),
        (
            MockEntraReply::json(200, r#"{"token_type":"Bearer","expires_in":3599}"#),
            200,
            "without an access_token",
        ),
    ];
    for (reply, status, says) in cases {
        entra.push(reply);
        let err = credential.get_token(SCOPE, None).await.unwrap_err();
        let text = err.to_string();
        assert_eq!(err.kind(), ErrorKind::Other, "{text}");
        assert_eq!(err.status(), Some(status), "{text}");
        assert!(text.contains(says), "{says:?} not in {text}");
        assert!(
            !text.contains("secret-marker") && !text.contains("<html"),
            "{text}"
        );
        assert!(!format!("{err:?}").contains("secret-marker"));
        assert!(err.fix().is_some());
    }
}

#[tokio::test]
async fn an_untrusted_certificate_is_named_with_how_to_trust_a_corporate_ca() {
    // A TLS endpoint with a self-signed certificate, as a TLS-inspecting proxy with a corporate
    // CA looks to a client that does not trust that CA. The handshake fails before any HTTP.
    let (cert, key) = support::tls::self_signed();
    let front = azure_credentials::testing::MockManagedIdentity::start().await;
    let authority = front.serve_tls(vec![cert], key).await;
    let credential = support::entra::secret_credential(authority.as_str())
        .build()
        .unwrap();
    let err = credential
        .get_token(&["https://vault.azure.net/.default"], None)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("certificate is not trusted"), "{text}");
    assert!(
        text.contains("not signed by a trusted certificate authority"),
        "{text}"
    );
    let fix = err.fix().unwrap_or_default();
    assert!(fix.contains("SSL_CERT_FILE"), "{fix}");
    assert!(!fix.contains("firewall"), "{fix}");
    assert_eq!(
        front.request_count(),
        0,
        "nothing was sent before the handshake failed"
    );
}
