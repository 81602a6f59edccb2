//! Runs the crate's scenarios with a TRACE-level capturing subscriber and fails if a token or
//! any other secret appears in a log line, a `Debug` rendering or an error message.

mod support;
use support::cache;

use std::time::Duration;

use support::log_capture::{LeakTest, Printed};

use azure_credentials::system::{Clock, Env, Fs, Http, HttpErrorKind, HttpRequest, RetryPolicy};
use azure_credentials::testing::{
    MockCredential, MockManagedIdentity, MockReply, StaticTokenCredential,
};
use azure_credentials::{
    Error, ErrorKind, ManagedIdentityCredential, Secret, TokenCache, TokenCredential,
    TokenRequestOptions,
};
use time::macros::datetime;

/// Every secret the scenarios use. Token values issued by the mocks all start with these.
const SECRETS: &[&str] = &[
    "mock-token-",
    "mock-imds-token-",
    "static-token-value",
    "header-secret-value",
    "form-secret-value",
    "identity-header-secret",
    "stdout-secret-value",
    "stderr-secret-value",
    "env-secret-value",
    "query-secret-value",
    "arc-key-secret-value",
];

#[test]
fn no_secret_reaches_logs_debug_or_errors() {
    let mut t = LeakTest::start();
    t.runtime.block_on(cache_scenarios(&mut t.seen));
    t.runtime.block_on(http_scenarios(&mut t.seen));
    t.runtime.block_on(managed_identity_scenarios(&mut t.seen));
    #[cfg(unix)]
    t.runtime.block_on(process_scenarios(&mut t.seen));
    other_values(&mut t.seen);

    t.assert_no_secrets(
        SECRETS,
        &[
            "token cached",
            "background token refresh failed",
            "token fetch failed",
            "claims challenge",
            "retrying",
            "managed identity token received",
            "IMDS probe answered",
        ],
    );
}

async fn cache_scenarios(seen: &mut Printed) {
    let manual = cache::manual_clock();
    let cache = cache::deterministic(manual.clock());
    let mock = MockCredential::builder().cache(cache.clone()).build();
    let scope = ["https://vault.azure.net/.default"];

    // Cold fetch, then a hit.
    let token = mock.get_token(&scope, None).await.unwrap();
    assert!(token.token().expose().starts_with("mock-token-"));
    seen.debug(&token);
    seen.debug(token.token());
    seen.debug(&mock.get_token(&scope, None).await.unwrap());
    seen.debug(&mock);
    seen.debug(mock.cached());
    seen.debug(&cache);

    // A refresh that fails while the token is valid, then one that succeeds.
    manual.advance(Duration::from_secs(56 * 60));
    mock.push_error(Error::authentication("MockCredential", "refused"));
    mock.get_token(&scope, None).await.unwrap();
    settle().await;
    manual.advance(Duration::from_secs(31));
    mock.get_token(&scope, None).await.unwrap();
    settle().await;

    // A failure with no valid token to fall back on.
    manual.advance(Duration::from_secs(2 * 3600));
    mock.push_error(
        Error::new(ErrorKind::Throttled, "MockCredential", "slow down")
            .with_retry_after(Duration::from_secs(5)),
    );
    let err = mock.get_token(&scope, None).await.unwrap_err();
    seen.error(&err);

    // A claims challenge.
    manual.advance(Duration::from_secs(10));
    let options = TokenRequestOptions::default().with_claims(r#"{"access_token":{}}"#);
    let token = mock.get_token(&scope, Some(&options)).await.unwrap();
    seen.debug(&token);
    seen.debug(&mock.requests());
}

async fn http_scenarios(seen: &mut Printed) {
    let imds = MockManagedIdentity::start().await;
    imds.set_identity_header("identity-header-secret");
    seen.debug(&imds);
    let http = Http::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let policy = RetryPolicy::default()
        .with_initial_delay(Duration::from_millis(1))
        .with_jitter(0.0);
    let mut url = imds.imds_endpoint();
    url.query_pairs_mut()
        .append_pair("api-version", "2018-02-01")
        .append_pair("resource", "https://vault.azure.net")
        .append_pair("client_id", "query-secret-value");
    let header_secret = Secret::new("header-secret-value");
    let request = HttpRequest::post(url.clone())
        .header("Metadata", "true")
        .secret_header("X-Custom-Secret", &header_secret)
        .form(&[("client_secret", "form-secret-value")]);
    seen.debug(&request);

    // A retried 500, then a token reply (its body holds a token).
    imds.push_many([MockReply::status(500), MockReply::auto_token()]);
    let get = HttpRequest::get(url.clone())
        .header("Metadata", "true")
        .secret_header("X-Custom-Secret", &header_secret);
    let response = http.send(&get, &policy).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(String::from_utf8_lossy(response.body()).contains("mock-imds-token-"));
    seen.debug(&response);

    // Bodies that echo the token prefix: malformed, oversized, HTML.
    for reply in [
        MockReply::malformed_json(),
        MockReply::oversized(2 * 1024 * 1024),
        MockReply::html(502),
    ] {
        imds.push(reply.clone());
        seen.debug(&reply);
        seen.outcome(&http.send(&get, &RetryPolicy::none()).await);
    }

    // Transport failures.
    let refused = format!(
        "http://{}/metadata/identity/oauth2/token?resource=x",
        MockManagedIdentity::refused_address()
    );
    let err = http
        .send(
            &HttpRequest::get(refused.parse().unwrap()),
            &RetryPolicy::none(),
        )
        .await
        .unwrap_err();
    seen.error(&err);
    for reply in [
        MockReply::half_body(),
        MockReply::reset(),
        MockReply::close(),
    ] {
        imds.push(reply);
        let err = http.send(&get, &RetryPolicy::none()).await.unwrap_err();
        assert_eq!(err.kind(), HttpErrorKind::Io, "{err}");
        seen.error(&err);
    }

    // The App Service endpoint with its secret header.
    let mut app = imds.app_service_endpoint();
    app.query_pairs_mut()
        .append_pair("resource", "https://vault.azure.net");
    let app_request = HttpRequest::get(app)
        .secret_header("X-IDENTITY-HEADER", &Secret::new("identity-header-secret"));
    seen.debug(&app_request);
    let response = http.send(&app_request, &RetryPolicy::none()).await.unwrap();
    seen.debug(&response);
    seen.debug(&imds.requests());
}

async fn managed_identity_scenarios(seen: &mut Printed) {
    let scope = ["https://vault.azure.net/.default"];
    let mock = MockManagedIdentity::start().await;
    mock.set_identity_header("identity-header-secret");
    mock.set_arc_key("/var/opt/azcmagent/tokens/leak.key", "arc-key-secret-value");
    let fs = Fs::memory();
    fs.write("/var/opt/azcmagent/tokens/leak.key", "arc-key-secret-value");
    let hosts = [
        Env::empty()
            .with("IDENTITY_ENDPOINT", mock.app_service_endpoint().as_str())
            .with("IDENTITY_HEADER", "identity-header-secret"),
        Env::empty()
            .with("MSI_ENDPOINT", mock.azure_ml_endpoint().as_str())
            .with("MSI_SECRET", "identity-header-secret"),
        Env::empty()
            .with("IDENTITY_ENDPOINT", mock.arc_endpoint().as_str())
            .with("IMDS_ENDPOINT", "http://127.0.0.1:40342"),
        Env::empty(),
    ];
    for env in hosts {
        let credential = ManagedIdentityCredential::builder()
            .env(env)
            .fs(fs.clone())
            .imds_endpoint(mock.imds_endpoint())
            .arc_key_directory("/var/opt/azcmagent/tokens")
            .cache(TokenCache::builder().build())
            .retry_policy(RetryPolicy::none())
            .probe(true)
            .build()
            .unwrap();
        seen.debug(&credential);
        let token = credential.get_token(&scope, None).await.unwrap();
        assert!(token.token().expose().starts_with("mock-imds-token-"));
        seen.debug(&token);
        // Failures whose bodies hold token-like text.
        // (A new scope each: a failure is remembered for its key for a moment.)
        let failures = [
            (
                MockReply::malformed_json(),
                "https://storage.azure.com/.default",
            ),
            (
                MockReply::html(500),
                "https://management.azure.com/.default",
            ),
            (
                MockReply::status(400),
                "https://database.windows.net/.default",
            ),
        ];
        for (reply, scope) in failures {
            mock.push(reply);
            let err = credential.get_token(&[scope], None).await.unwrap_err();
            seen.error(&err);
        }
    }
}

#[cfg(unix)]
async fn process_scenarios(seen: &mut Printed) {
    use azure_credentials::system::{Command, Executor, TokioExecutor};
    let command = Command::new("/bin/sh")
        // The markers are assembled by the child, so the arguments do not hold them.
        .args([
            "-c",
            "printf '%s-%s' stdout-secret value; printf '%s-%s' stderr-secret value >&2; exit 1",
        ])
        .timeout(Duration::from_secs(60));
    let output = TokioExecutor::new().run(&command).await.unwrap();
    assert_eq!(output.stdout(), b"stdout-secret-value");
    seen.debug(&output);
    seen.debug(&command);
    let missing = Command::new("/nonexistent/az-for-this-test");
    let err = TokioExecutor::new().run(&missing).await.unwrap_err();
    seen.error(&err);
}

fn other_values(seen: &mut Printed) {
    let manual = cache::manual_clock();
    let fixed = StaticTokenCredential::new("static-token-value", datetime!(2030-01-01 1:00 UTC))
        .with_clock(manual.clock());
    seen.debug(&fixed);
    manual.advance(Duration::from_secs(7200));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let err = runtime.block_on(fixed.get_token(&["s"], None)).unwrap_err();
    seen.error(&err);
    seen.debug(&Env::empty().with("AZURE_CLIENT_SECRET", "env-secret-value"));
    seen.debug(&Clock::system());
}

async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}
