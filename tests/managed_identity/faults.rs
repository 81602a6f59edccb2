//! Faults, with paused time: retries, budgets, timeouts, hostile answers.

use super::*;

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_until_a_token_comes() {
    let setup = Setup::new(Host::Imds).await;
    setup.mock.push_many([
        MockReply::status(500),
        MockReply::status(500),
        MockReply::auto_token(),
    ]);
    let token = setup.credential().get_token(&SCOPE, None).await.unwrap();
    assert!(token.token().expose().starts_with("mock-imds-token-"));
    assert_eq!(setup.mock.request_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_waited_for() {
    let setup = Setup::new(Host::Imds).await;
    setup.mock.push_many([
        MockReply::status(429).with_header("Retry-After", "2"),
        MockReply::auto_token(),
    ]);
    let started = paused_now();
    setup.credential().get_token(&SCOPE, None).await.unwrap();
    // Never sooner; the jitter on top adds at most another 2 s.
    let (secs_2, secs_4) = (Duration::from_secs(2), Duration::from_secs(4));
    assert_waited(started, secs_2..=secs_4, "Retry-After: 2 plus jitter");
    assert_eq!(setup.mock.request_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn gone_keeps_being_retried_for_at_least_seventy_seconds() {
    let setup = Setup::new(Host::Imds).await;
    let (err, started) = setup.fails_on_every(MockReply::status(410)).await;
    assert_waited(started, Duration::from_secs(70)..=BUDGET, "70 s of 410s");
    assert_eq!(setup.mock.request_count(), 9);
    assert!(err.to_string().contains("after 9 attempts"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn persistent_server_errors_stop_within_the_budget_and_say_so() {
    let setup = Setup::new(Host::Imds).await;
    let (err, started) = setup.fails_on_every(MockReply::status(500)).await;
    assert_eq!(setup.mock.request_count(), 5);
    assert_waited(started, ..Duration::from_secs(30), "within the 30 s budget");
    assert_eq!(err.status(), Some(500));
    assert!(err.to_string().contains("after 5 attempts"), "{err}");
    // The endpoint failed; it did not refuse.
    assert_eq!(err.kind(), ErrorKind::ServiceFailure, "{err}");
    assert!(!err.is_authentication(), "{err}");
}

#[tokio::test(start_paused = true)]
async fn client_errors_are_not_retried() {
    let setup = Setup::new(Host::Imds).await;
    setup
        .mock
        .push(MockReply::error(400, "invalid_request", "Bad resource"));
    setup.fails().await;
    assert_eq!(setup.mock.request_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_endpoint_is_a_timeout_within_the_budget() {
    let setup = Setup::new(Host::Imds).await;
    let (err, started) = setup.fails_on_every(MockReply::hang()).await;
    assert!(err.is_timeout(), "{err}");
    assert_waited(started, ..=BUDGET, "the retry budget");
}

#[tokio::test]
async fn broken_and_hostile_responses_are_typed_errors() {
    for (reply, kind) in [
        (MockReply::reset(), ErrorKind::Io),
        (MockReply::half_body(), ErrorKind::Io),
        (MockReply::close(), ErrorKind::Io),
        (MockReply::malformed_json(), ErrorKind::ServiceFailure),
        (MockReply::html(200), ErrorKind::Unavailable),
        (MockReply::oversized(5 * 1024 * 1024), ErrorKind::Other),
    ] {
        let setup = Setup::new(Host::Imds).await;
        setup.mock.push(reply.clone());
        let credential = setup
            .builder()
            .retry_policy(RetryPolicy::none())
            .build()
            .unwrap();
        let err = credential.get_token(&SCOPE, None).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{reply:?}: {err}");
        assert!(!err.to_string().contains("mock-imds-token"), "{err}");
        assert_eq!(setup.mock.request_count(), 1, "{reply:?}");
    }
}

/// A chain of this managed identity credential and, behind it, a developer's login: whether the
/// chain moves on is whether the developer's token comes back.
fn chain_with_a_developer_login_behind(
    credential: ManagedIdentityCredential,
) -> ChainedTokenCredential {
    let developer =
        StaticTokenCredential::new("developer-login-token", datetime!(2100-01-01 0:00 UTC));
    ChainedTokenCredential::builder()
        .member("ManagedIdentityCredential", Arc::new(credential))
        .member("Developer", Arc::new(developer))
        .build()
        .unwrap()
}

const TOKEN_JSON: &str =
    r#"{"access_token":"mock-imds-token-bom","expires_in":"3600","token_type":"Bearer"}"#;

/// The rule of the module docs, row by row, at IMDS: only an answer that clearly is not IMDS's
/// (HTML, a redirect, Docker Desktop's 403, plain text with an error status) moves a chain on;
/// anything that looks like IMDS's answer, however broken, is an error that stops it.
#[tokio::test(start_paused = true)]
async fn only_answers_that_are_not_imds_move_the_chain_on() {
    use ErrorKind::*;
    let docker = fixtures::read_to_string("managed_identity", "docker_desktop_403.txt");
    let cases: Vec<(&str, MockReply, ErrorKind, &str)> = vec![
        (
            "HTML 200",
            MockReply::html(200),
            Unavailable,
            "an HTML page",
        ),
        (
            "HTML 502",
            MockReply::html(502),
            Unavailable,
            "an HTML page",
        ),
        (
            "redirect",
            MockReply::redirect(302, "http://portal.example/login"),
            Unavailable,
            "a redirect",
        ),
        (
            "Docker Desktop 403",
            MockReply::raw(403, Some("text/plain"), docker),
            Unavailable,
            "unreachable",
        ),
        (
            "plain-text 404 (another cloud's metadata server)",
            MockReply::raw(404, Some("text/plain"), "404 page not found"),
            Unavailable,
            "something other than IMDS",
        ),
        (
            "truncated JSON",
            MockReply::json(200, r#"{"access_token":"mock-imds-token-ab"#),
            ServiceFailure,
            "cut short or malformed",
        ),
        (
            "body shorter than its Content-Length",
            MockReply::short_body(200, r#"{"access_token":"mock-imds-token-short""#, 400),
            Io,
            "",
        ),
        (
            "[]",
            MockReply::json(200, "[]"),
            ServiceFailure,
            "a JSON array",
        ),
        (
            "null",
            MockReply::json(200, "null"),
            ServiceFailure,
            "JSON null",
        ),
        (
            "{}",
            MockReply::json(200, "{}"),
            ServiceFailure,
            "without an access_token",
        ),
        (
            "plain-text 200",
            MockReply::raw(200, Some("text/plain"), "OK"),
            ServiceFailure,
            "not JSON",
        ),
        (
            "empty 200",
            MockReply::json(200, ""),
            ServiceFailure,
            "an empty body",
        ),
        (
            "access_token of the wrong type",
            MockReply::json(200, r#"{"access_token":42,"expires_in":"3600"}"#),
            ServiceFailure,
            "wrong types",
        ),
        (
            "persistent 503",
            MockReply::status(503),
            ServiceFailure,
            "failed: it answered 503 after 5 attempts",
        ),
        (
            "persistent 500 with JSON cut short",
            MockReply::json(500, r#"{"error":"server_er"#),
            ServiceFailure,
            "answered 500",
        ),
    ];
    for (name, reply, kind, says) in cases {
        let setup = Setup::new(Host::Imds).await;
        setup.mock.set_default(reply);
        // Directly: the kind and what it says.
        let err = setup.fails().await;
        assert_eq!(err.kind(), kind, "{name}: {err}");
        assert!(err.to_string().contains(says), "{name}: {err}");
        assert!(
            !err.to_string().contains("mock-imds-token"),
            "{name}: {err}"
        );
        assert!(!err.to_string().contains("<html"), "{name}: {err}");
        // In a chain: only Unavailable lets the developer's login be used.
        let chain = chain_with_a_developer_login_behind(setup.credential());
        let result = chain.get_token(&SCOPE, None).await;
        match kind {
            Unavailable => {
                let token = result.unwrap_or_else(|e| panic!("{name}: the chain stopped: {e}"));
                assert_eq!(token.token().expose(), "developer-login-token", "{name}");
            }
            _ => {
                let err = result.expect_err(name);
                assert_eq!(err.kind(), kind, "{name}: {err}");
                assert_eq!(chain.selected(), None, "{name}");
            }
        }
    }
}

#[tokio::test]
async fn json_after_a_byte_order_mark_is_a_token() {
    for host in HOSTS {
        let setup = Setup::new(host).await;
        let body = [b"\xEF\xBB\xBF".as_slice(), TOKEN_JSON.as_bytes()].concat();
        setup
            .mock
            .push(MockReply::raw(200, Some("application/json"), body));
        let token = setup
            .credential()
            .get_token(&SCOPE, None)
            .await
            .unwrap_or_else(|e| panic!("{host:?}: {e}"));
        assert_eq!(token.token().expose(), "mock-imds-token-bom", "{host:?}");
    }
}

/// From a source the environment names, nothing moves the chain on: the environment says this
/// is the host. A broken answer is a failure of the endpoint; a proxy's page is `Other`.
#[tokio::test(start_paused = true)]
async fn a_named_endpoints_broken_answers_are_failures_and_stop_the_chain() {
    use ErrorKind::*;
    let cases: Vec<(MockReply, ErrorKind)> = vec![
        (
            MockReply::json(200, r#"{"access_token":"mock-imds-token-ab"#),
            ServiceFailure,
        ),
        (MockReply::json(200, "[]"), ServiceFailure),
        (
            MockReply::raw(200, Some("text/plain"), "OK"),
            ServiceFailure,
        ),
        (MockReply::status(503), ServiceFailure),
        (
            MockReply::raw(502, Some("text/plain"), "Bad Gateway"),
            ServiceFailure,
        ),
        (MockReply::html(200), Other),
        (MockReply::redirect(307, "http://portal.example/"), Other),
        (MockReply::status(401), Authentication),
    ];
    for host in [
        Host::AppService,
        Host::AzureMl,
        Host::CloudShell,
        Host::ServiceFabric,
    ] {
        for (reply, kind) in &cases {
            let setup = Setup::new(host).await;
            setup.mock.set_default(reply.clone());
            let chain = chain_with_a_developer_login_behind(setup.credential());
            let err = chain.get_token(&SCOPE, None).await.unwrap_err();
            assert_eq!(err.kind(), *kind, "{host:?} {reply:?}: {err}");
            assert!(!err.to_string().contains("mock-imds-token"), "{err}");
        }
    }
}

const OTHER_CLIENT_ID: &str = "99999999-8888-7777-6666-555555555555";

/// An endpoint that answers a request for one user-assigned identity with another identity's
/// token: refused (fail closed), naming both ids, and the chain stops.
#[tokio::test]
async fn a_token_naming_another_client_id_than_the_one_requested_is_refused() {
    for host in [Host::Imds, Host::AppService, Host::AzureMl, Host::AzureArc] {
        let setup = Setup::new(host).await;
        setup
            .mock
            .set_default(MockReply::auto_token().client_id(OTHER_CLIENT_ID));
        let credential = setup.builder().client_id(CLIENT_ID).build().unwrap();
        let err = credential.get_token(&SCOPE, None).await.unwrap_err();
        assert!(err.is_authentication(), "{host:?}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(CLIENT_ID) && text.contains(OTHER_CLIENT_ID),
            "{host:?}: {text}"
        );
        assert!(!text.contains("mock-imds-token"), "{text}");
        let chain = chain_with_a_developer_login_behind(credential);
        let err = chain.get_token(&SCOPE, None).await.unwrap_err();
        assert!(
            err.is_authentication(),
            "{host:?}: the chain must stop: {err}"
        );
    }
}

#[tokio::test]
async fn the_echoed_id_is_compared_case_insensitively_and_may_be_absent() {
    let setup = Setup::new(Host::Imds).await;
    setup
        .mock
        .push(MockReply::auto_token().client_id(CLIENT_ID.to_ascii_uppercase()));
    // A source that does not echo the id at all.
    setup.mock.push(MockReply::json(200, TOKEN_JSON));
    let credential = setup.builder().client_id(CLIENT_ID).build().unwrap();
    credential.get_token(&SCOPE, None).await.unwrap();
    credential
        .get_token(&["https://storage.azure.com/.default"], None)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_echoed_object_id_or_resource_id_must_match_too() {
    let setup = Setup::new(Host::Imds).await;
    setup.mock.push(MockReply::json(
        200,
        r#"{"access_token":"mock-imds-token-x","expires_in":"3600","object_id":"other-object"}"#,
    ));
    let credential = setup.builder().object_id("my-object").build().unwrap();
    let err = credential.get_token(&SCOPE, None).await.unwrap_err();
    assert!(err.is_authentication(), "{err}");
    assert!(
        err.to_string().contains("other-object") && err.to_string().contains("my-object"),
        "{err}"
    );

    let err = asking_for_mine_answered(
        Host::AppService,
        r#"{"access_token":"mock-imds-token-x","expires_on":"4102444800","mi_res_id":"/subscriptions/x/other"}"#,
    )
    .await;
    assert!(err.is_authentication(), "{err}");
}

/// The error of a credential on `host` asking for the identity `/subscriptions/x/mine` when
/// every answer is a token with `body`.
async fn asking_for_mine_answered(host: Host, body: &'static str) -> azure_credentials::Error {
    let setup = Setup::new(host).await;
    setup.mock.set_default(MockReply::json(200, body));
    let credential = setup
        .builder()
        .resource_id("/subscriptions/x/mine")
        .build()
        .unwrap();
    credential.get_token(&SCOPE, None).await.unwrap_err()
}

/// Caught by the `mi_response` fuzz target's identity check: an empty `msi_res_id` hid a
/// `mi_res_id` naming another identity, and the token was accepted.
#[tokio::test]
async fn a_resource_id_echo_naming_another_identity_is_refused_beside_an_empty_one() {
    for host in [Host::Imds, Host::AppService, Host::AzureArc] {
        let err = asking_for_mine_answered(
            host,
            r#"{"access_token":"mock-imds-token-x","expires_on":"4102444800","msi_res_id":"","mi_res_id":"/subscriptions/x/other"}"#,
        )
        .await;
        assert!(err.is_authentication(), "{host:?}: {err}");
        let text = err.to_string();
        assert!(
            text.contains("/subscriptions/x/other") && text.contains("/subscriptions/x/mine"),
            "{host:?}: {text}"
        );
        assert!(!text.contains("mock-imds-token"), "{text}");
    }
}

#[tokio::test(start_paused = true)]
async fn without_the_probe_a_refused_local_port_is_unavailable_after_one_attempt() {
    // ManagedIdentityCredential used directly (or with AZURE_POD_IDENTITY_AUTHORITY_HOST in a
    // chain): nothing listens on a loopback or link-local endpoint, so there is no identity here.
    let refused = MockManagedIdentity::refused_address();
    let imds = ManagedIdentityCredential::builder()
        .env(Env::empty())
        .fs(Fs::memory())
        .cache(TokenCache::builder().build())
        .imds_endpoint(
            format!("http://{refused}/metadata/identity/oauth2/token")
                .parse()
                .unwrap(),
        )
        .build()
        .unwrap();
    let app_service = ManagedIdentityCredential::builder()
        .env(
            Env::empty()
                .with("IDENTITY_ENDPOINT", format!("http://{refused}/msi/token"))
                .with("IDENTITY_HEADER", SECRET),
        )
        .fs(Fs::memory())
        .cache(TokenCache::builder().build())
        .build()
        .unwrap();
    for credential in [imds, app_service] {
        let started = paused_now();
        let err = credential.get_token(&SCOPE, None).await.unwrap_err();
        assert!(err.is_unavailable(), "{err}");
        assert!(err.to_string().contains("refused"), "{err}");
        assert!(err.to_string().contains("after 1 attempt"), "{err}");
        assert_waited(started, ..Duration::from_millis(100), "refused at once");
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_but_steady_body_is_read_once_and_not_cut_by_the_attempt_timeout() {
    // The token arrives 16 bytes a second: some 25 s in all, longer than the 10 s an attempt
    // may wait for the response to start, but it never pauses.
    let setup = Setup::new(Host::Imds).await;
    setup
        .mock
        .push(MockReply::trickle(16, Duration::from_secs(1)));
    let started = paused_now();
    let token = setup.credential().get_token(&SCOPE, None).await.unwrap();
    assert!(token.token().expose().starts_with("mock-imds-token-"));
    assert_eq!(setup.mock.request_count(), 1, "downloaded once");
    assert_waited(
        started,
        (Excluded(Duration::from_secs(10)), Unbounded),
        "past the attempt timeout",
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_connection_is_retried_at_once_then_with_backoff() {
    for fault in [MockReply::reset(), MockReply::close()] {
        // Once: the retry follows at once.
        let setup = Setup::new(Host::Imds).await;
        setup.mock.push(fault.clone());
        let started = paused_now();
        setup.credential().get_token(&SCOPE, None).await.unwrap();
        assert_eq!(setup.mock.request_count(), 2, "{fault:?}");
        assert_waited(
            started,
            ..Duration::from_millis(100),
            format!("{fault:?} retried at once"),
        );
        // Twice: the second retry waits for the backoff (IMDS: 1 s, jittered).
        let setup = Setup::new(Host::Imds).await;
        setup.mock.push_many([fault.clone(), fault.clone()]);
        let started = paused_now();
        setup.credential().get_token(&SCOPE, None).await.unwrap();
        assert_eq!(setup.mock.request_count(), 3, "{fault:?}");
        let backoff = Duration::from_millis(800)..Duration::from_millis(1300);
        assert_waited(started, backoff, format!("{fault:?} twice: backoff"));
    }
}

#[tokio::test(start_paused = true)]
async fn throttling_is_retried_until_the_budget_runs_out_not_a_count() {
    // Eight 429s with Retry-After: 1, more than the four retries 5xx get; then a token.
    let setup = Setup::new(Host::Imds).await;
    for _ in 0..8 {
        setup
            .mock
            .push(MockReply::status(429).with_header("Retry-After", "1"));
    }
    let started = paused_now();
    setup.credential().get_token(&SCOPE, None).await.unwrap();
    assert_eq!(setup.mock.request_count(), 9);
    // Never sooner than asked; the jitter on top adds at most one more Retry-After each.
    let (secs_8, secs_16) = (Duration::from_secs(8), Duration::from_secs(16));
    assert_waited(started, secs_8..=secs_16, "8 Retry-After: 1");

    // Throttled for good: retried for the whole 90 s budget, then the 429 is reported.
    let setup = Setup::new(Host::Imds).await;
    let (err, started) = setup
        .fails_on_every(MockReply::status(429).with_header("Retry-After", "1"))
        .await;
    assert!(err.is_throttled(), "{err}");
    assert_waited(started, ..=BUDGET, "the retry budget");
    assert!(
        setup.mock.request_count() > 30,
        "{}",
        setup.mock.request_count()
    );
}

#[test]
fn a_secret_sent_over_plain_http_to_a_remote_host_fails_at_build() {
    let build = |env: Env| {
        ManagedIdentityCredential::builder()
            .env(env)
            .fs(Fs::memory())
            .cache(TokenCache::builder().build())
            .build()
    };
    for (env, variable) in [
        (
            Env::empty()
                .with("IDENTITY_ENDPOINT", "http://msi.example.com:8081/msi/token")
                .with("IDENTITY_HEADER", SECRET),
            "IDENTITY_ENDPOINT",
        ),
        (
            Env::empty()
                .with("MSI_ENDPOINT", "http://ml.example.com/token")
                .with("MSI_SECRET", SECRET),
            "MSI_ENDPOINT",
        ),
        (
            Env::empty()
                .with("IDENTITY_ENDPOINT", "http://arc.example.com:40342/token")
                .with("IMDS_ENDPOINT", "http://arc.example.com:40342"),
            "IDENTITY_ENDPOINT",
        ),
    ] {
        let err = build(env).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let text = err.to_string();
        assert!(text.contains(variable), "{text}");
        assert!(text.contains("plain http"), "{text}");
        assert!(err.fix().is_some_and(|f| f.contains("https")), "{err}");
        assert!(!text.contains(SECRET));
    }
    // Loopback endpoints, https, and sources that send no secret are fine (link-local and
    // private addresses: source.rs's unit test, which parses them without building anything).
    for env in [
        Env::empty()
            .with("IDENTITY_ENDPOINT", "http://127.0.0.1:41741/msi/token")
            .with("IDENTITY_HEADER", SECRET),
        Env::empty()
            .with("IDENTITY_ENDPOINT", "http://localhost:8081/msi/token")
            .with("IDENTITY_HEADER", SECRET),
        Env::empty()
            .with(
                "IDENTITY_ENDPOINT",
                "https://identity.example.com/msi/token",
            )
            .with("IDENTITY_HEADER", SECRET),
        Env::empty().with("MSI_ENDPOINT", "http://cloudshell.example.com/oauth2/token"),
        Env::empty().with(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            "http://pod.example.com",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        if let Err(e) = build(env.1) {
            panic!("case {}: {e}", env.0);
        }
    }
}
