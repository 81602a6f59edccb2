//! ClientAssertionCredential against the loopback Entra mock: the callback is asked only when a
//! token must be fetched, its failures and hangs surface with the credential's name, and its
//! tokens are partitioned by callback.

mod support;
use support::cache;
use support::federated::{assertion_expired, assertions_sent};
use support::wait::paused_now;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use azure_credentials::system::{Env, RetryPolicy};
use azure_credentials::testing::MockEntra;
use azure_credentials::{
    ClientAssertionCredential, ClientAssertionCredentialBuilder, ClientSecretCredential, Error,
    ErrorKind, TokenCache, TokenCredential,
};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "00000000-0000-0000-0000-0000000000a5";
const SCOPE: &[&str] = &["https://vault.azure.net/.default"];
const ASSERTION: &str = "eyJ-callback-assertion";

/// A builder for the mock whose callback counts its calls and returns `ASSERTION-<n>`.
fn counting_builder(
    entra: &MockEntra,
    cache: &TokenCache,
) -> (ClientAssertionCredentialBuilder, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let builder = ClientAssertionCredential::builder()
        .tenant_id(TENANT)
        .client_id(CLIENT)
        .assertion(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move { Ok::<_, std::io::Error>(format!("{ASSERTION}-{n}")) }
        })
        .authority_host(entra.authority_host())
        .env(Env::empty())
        .cache(cache.clone())
        .retry_policy(RetryPolicy::none());
    (builder, calls)
}

fn fresh_cache() -> TokenCache {
    cache::deterministic_without_cooldown(cache::manual_clock().clock())
}

/// A builder for [`CLIENT`] in [`TENANT`] signing in at `authority`, on a fresh cache, without
/// a callback yet.
fn signing_in_at(authority: impl Into<String>) -> ClientAssertionCredentialBuilder {
    ClientAssertionCredential::builder()
        .tenant_id(TENANT)
        .client_id(CLIENT)
        .authority_host(authority)
        .env(Env::empty())
        .cache(fresh_cache())
}

#[tokio::test]
async fn the_callback_is_called_only_when_a_token_must_be_fetched() {
    let entra = MockEntra::start().await;
    let (builder, calls) = counting_builder(&entra, &fresh_cache());
    let credential = builder.build().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 0, "building calls nothing");

    let token = credential.get_token(SCOPE, None).await.unwrap();
    assert_eq!(token.source(), "ClientAssertionCredential");
    assert_eq!(token.client_id(), Some(CLIENT));
    // Cache hits do not call the callback.
    for _ in 0..5 {
        credential.get_token(SCOPE, None).await.unwrap();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(entra.request_count(), 1);
    // Another scope is another fetch, with a new assertion.
    credential
        .get_token(&["https://storage.azure.com/.default"], None)
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let requests = entra.requests();
    let form: Vec<(&str, &str)> = requests[0]
        .form_pairs()
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        form,
        [
            ("client_id", CLIENT),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            ),
            ("client_assertion", "eyJ-callback-assertion-1"),
            ("grant_type", "client_credentials"),
            ("scope", SCOPE[0]),
        ]
    );
    assert_eq!(requests[0].tenant(), Some(TENANT));
    assert_eq!(
        requests[1].form("client_assertion"),
        Some("eyJ-callback-assertion-2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_callback_call() {
    let entra = MockEntra::start().await;
    let (builder, calls) = counting_builder(&entra, &fresh_cache());
    let credential = Arc::new(builder.build().unwrap());
    let gate = entra.hold_replies();
    let mut callers = Vec::new();
    for _ in 0..100 {
        let credential = credential.clone();
        callers.push(tokio::spawn(async move {
            credential.get_token(SCOPE, None).await.unwrap()
        }));
    }
    entra.wait_for_requests(1).await;
    gate.release();
    for caller in callers {
        assert_eq!(caller.await.unwrap().token().expose(), "mock-entra-token-1");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(entra.request_count(), 1);
}

#[tokio::test]
async fn a_failing_callback_errors_with_the_credentials_name_and_its_cause() {
    let entra = MockEntra::start().await;
    let credential = signing_in_at(entra.authority_host())
        .assertion(|| async {
            Err::<String, _>(std::io::Error::other("the identity provider is down"))
        })
        .build()
        .unwrap();
    let error = credential.get_token(SCOPE, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Other);
    assert!(
        error
            .to_string()
            .starts_with("ClientAssertionCredential: the client assertion callback failed"),
        "{error}"
    );
    let cause = std::error::Error::source(&error).expect("the callback's error is the cause");
    assert_eq!(cause.to_string(), "the identity provider is down");
    assert_eq!(entra.request_count(), 0, "nothing is sent to Entra");

    // Our own error's kind is kept: Unavailable lets a chain move on.
    let unavailable = signing_in_at(entra.authority_host())
        .assertion(|| async {
            Err::<String, _>(
                Error::unavailable("MyFederation", "no token here").with_fix("run it in CI"),
            )
        })
        .build()
        .unwrap();
    let error = unavailable.get_token(SCOPE, None).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(
        error.to_string().starts_with("ClientAssertionCredential:"),
        "{error}"
    );
    assert_eq!(error.fix(), Some("run it in CI"));
}

#[tokio::test]
async fn an_empty_assertion_is_an_error_and_whitespace_is_trimmed() {
    let entra = MockEntra::start().await;
    let build = |value: &'static str| {
        signing_in_at(entra.authority_host())
            .assertion(move || async move { Ok::<_, std::io::Error>(value) })
            .build()
            .unwrap()
    };
    let error = build(" \n").get_token(SCOPE, None).await.unwrap_err();
    assert!(error.to_string().contains("empty assertion"), "{error}");
    assert_eq!(entra.request_count(), 0);
    build(" eyJ-padded\n").get_token(SCOPE, None).await.unwrap();
    assert_eq!(
        entra.requests()[0].form("client_assertion"),
        Some("eyJ-padded")
    );
}

#[tokio::test(start_paused = true)]
async fn a_hanging_callback_times_out_after_30_s_by_default() {
    for (timeout, expected) in [
        (None, Duration::from_secs(30)),
        (Some(Duration::from_secs(5)), Duration::from_secs(5)),
    ] {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let mut builder = signing_in_at("http://127.0.0.1:9").assertion(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<Result<String, std::io::Error>>()
        });
        if let Some(timeout) = timeout {
            builder = builder.assertion_timeout(timeout);
        }
        let credential = builder.build().unwrap();
        let started = paused_now();
        let error = credential.get_token(SCOPE, None).await.unwrap_err();
        assert_eq!(paused_now() - started, expected);
        assert_eq!(error.kind(), ErrorKind::Timeout);
        let text = error.to_string();
        assert!(
            text.starts_with(
                "ClientAssertionCredential: the client assertion callback did not return within"
            ) && text.contains("assertion_timeout"),
            "{text}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn an_expired_assertion_is_replaced_by_a_new_call_and_retried_once() {
    let entra = MockEntra::start().await;
    let (builder, calls) = counting_builder(&entra, &fresh_cache());
    let credential = builder.build().unwrap();
    let expired = assertion_expired();
    entra.push(expired.clone());
    credential.get_token(SCOPE, None).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let sent = assertions_sent(&entra);
    assert_eq!(
        sent,
        ["eyJ-callback-assertion-1", "eyJ-callback-assertion-2"]
    );

    // Refused twice: the error is Entra's, named after the credential; no third try.
    entra.push_many([expired.clone(), expired]);
    let error = credential
        .get_token(&["https://storage.azure.com/.default"], None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Authentication);
    assert!(error.to_string().starts_with("ClientAssertionCredential:"));
    assert_eq!(error.aadsts_codes(), [700024]);
    assert_eq!(entra.request_count(), 4);
}

#[tokio::test]
async fn tokens_are_shared_by_clones_only_never_between_callbacks_or_with_a_client_secret() {
    let entra = MockEntra::start().await;
    let cache = fresh_cache();
    let secret = ClientSecretCredential::builder()
        .tenant_id(TENANT)
        .client_id(CLIENT)
        .secret("a client secret")
        .authority_host(entra.authority_host())
        .env(Env::empty())
        .cache(cache.clone())
        .build()
        .unwrap();
    let token = |t: azure_credentials::AccessToken| t.token().expose().to_owned();
    assert_eq!(
        token(secret.get_token(SCOPE, None).await.unwrap()),
        "mock-entra-token-1"
    );

    let (builder_a, calls_a) = counting_builder(&entra, &cache);
    let a = builder_a.clone().build().unwrap();
    assert_eq!(
        token(a.get_token(SCOPE, None).await.unwrap()),
        "mock-entra-token-2",
        "not the client secret credential's token"
    );
    let (builder_b, _) = counting_builder(&entra, &cache);
    let b = builder_b.build().unwrap();
    assert_eq!(
        token(b.get_token(SCOPE, None).await.unwrap()),
        "mock-entra-token-3",
        "another callback for the same client does not get a's token"
    );
    // The same callback (a clone of the credential, or another build of the same builder)
    // shares a's token.
    assert_eq!(
        token(a.clone().get_token(SCOPE, None).await.unwrap()),
        "mock-entra-token-2"
    );
    assert_eq!(
        token(
            builder_a
                .build()
                .unwrap()
                .get_token(SCOPE, None)
                .await
                .unwrap()
        ),
        "mock-entra-token-2"
    );
    assert_eq!(calls_a.load(Ordering::SeqCst), 1);
    assert_eq!(entra.request_count(), 3);
}

#[test]
fn build_refuses_what_cannot_work() {
    let base = || {
        ClientAssertionCredential::builder()
            .tenant_id(TENANT)
            .client_id(CLIENT)
            .env(Env::empty())
    };
    let callback = || async { Ok::<_, std::io::Error>("x") };
    for (builder, says) in [
        (base(), "no assertion callback was given"),
        (
            base().assertion(callback).assertion_timeout(Duration::ZERO),
            "greater than zero",
        ),
        (
            base().assertion(callback).tenant_id("a/b"),
            "invalid tenant id",
        ),
        (
            ClientAssertionCredential::builder()
                .tenant_id(TENANT)
                .assertion(callback)
                .env(Env::empty()),
            "no client_id was given",
        ),
        (
            base()
                .assertion(callback)
                .authority_host("http://login.example.com"),
            "https",
        ),
    ] {
        let error = builder.build().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        let text = error.to_string();
        assert!(
            text.starts_with("ClientAssertionCredential:") && text.contains(says),
            "{text}"
        );
    }
    let credential = base().assertion(callback).build().unwrap();
    let debug = format!("{credential:?}");
    assert!(debug.contains(CLIENT) && debug.contains(TENANT), "{debug}");
}

#[tokio::test]
async fn an_assertion_entra_does_not_trust_is_refused_with_its_aadsts_code() {
    let entra = MockEntra::start().await;
    entra.expect_client_assertion("eyJ-callback-assertion-1");
    let (builder, _) = counting_builder(&entra, &fresh_cache());
    let credential = builder.build().unwrap();
    // The first call's assertion is the trusted one.
    credential.get_token(SCOPE, None).await.unwrap();
    let error = credential
        .get_token(&["https://storage.azure.com/.default"], None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Authentication);
    assert_eq!(error.aadsts_codes(), [70021]);
    let text = error.to_string();
    assert!(
        text.starts_with("ClientAssertionCredential:") && !text.contains(ASSERTION),
        "{text}"
    );
}
