//! Azure Arc and Service Fabric specifics.

use super::*;

#[tokio::test]
async fn arc_refuses_a_key_outside_the_agents_directory() {
    let setup = Setup::new(Host::AzureArc).await;
    setup.mock.set_arc_key("/etc/passwd.key", "x");
    setup.fs.write("/etc/passwd.key", "stolen");
    let err = setup.fails().await;
    assert!(
        err.to_string().contains("not in the agent's directory"),
        "{err}"
    );
    // Only the challenge was sent; the file was never offered.
    assert_eq!(setup.mock.request_count(), 1);
}

#[tokio::test]
async fn arc_fails_closed_when_an_old_agent_ignores_the_user_assigned_id() {
    let setup = Setup::new(Host::AzureArc).await;
    let credential = setup.builder().client_id(CLIENT_ID).build().unwrap();
    credential.get_token(&SCOPE, None).await.unwrap();

    let old = Setup::new(Host::AzureArc).await;
    old.mock.arc_echoes_user_assigned_id(false);
    let credential = old.builder().client_id(CLIENT_ID).build().unwrap();
    let err = credential.get_token(&SCOPE, None).await.unwrap_err();
    assert!(err.is_authentication(), "{err}");
    assert!(err.to_string().contains("refusing a token"), "{err}");
    assert!(
        err.to_string().contains("update the Azure Arc agent"),
        "{err}"
    );
}

/// An Azure Arc host whose agent names `key_name` in its real key directory.
#[cfg(unix)]
async fn arc_on_real_files(
    dir: &Path,
    key_name: &str,
) -> (MockManagedIdentity, ManagedIdentityCredential) {
    let setup = Setup::new(Host::AzureArc).await;
    setup.mock.set_arc_key(dir.join(key_name), ARC_KEY);
    let credential = setup
        .builder()
        .fs(Fs::real())
        .arc_key_directory(dir)
        .build()
        .unwrap();
    (setup.mock, credential)
}

#[cfg(unix)]
#[tokio::test]
async fn arc_reads_only_a_regular_key_file_and_never_follows_or_blocks() {
    let dir = fixtures::scratch_dir("managed-identity", "arc-keys");
    let outside = fixtures::scratch_dir("managed-identity", "arc-outside");
    std::fs::write(dir.join("good.key"), ARC_KEY).unwrap();
    std::fs::write(outside.join("secret.key"), "outside-secret").unwrap();
    std::os::unix::fs::symlink(outside.join("secret.key"), dir.join("link.key")).unwrap();
    // A link to the right key is still a link.
    std::os::unix::fs::symlink(dir.join("good.key"), dir.join("link-to-good.key")).unwrap();
    std::fs::create_dir(dir.join("dir.key")).unwrap();
    std::fs::write(dir.join("big.key"), vec![b'k'; 4097]).unwrap();

    let (mock, credential) = arc_on_real_files(&dir, "good.key").await;
    credential.get_token(&SCOPE, None).await.unwrap();
    assert_eq!(mock.request_count(), 2, "challenge, then the key");

    for (name, says) in [
        ("link.key", "symbolic link"),
        ("link-to-good.key", "symbolic link"),
        ("dir.key", "directory"),
        ("big.key", "larger than 4096"),
    ] {
        let (mock, credential) = arc_on_real_files(&dir, name).await;
        let err = credential.get_token(&SCOPE, None).await.unwrap_err();
        assert!(err.to_string().contains(says), "{name}: {err}");
        assert!(!err.to_string().contains("outside-secret"), "{err}");
        assert_eq!(
            mock.request_count(),
            1,
            "{name}: nothing was sent after the challenge"
        );
    }
}

/// A FIFO named by the agent is refused without being opened. Before, opening it blocked the
/// thread until a writer came: forever here.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arc_never_opens_a_fifo_named_as_the_key() {
    let dir = fixtures::scratch_dir("managed-identity", "arc-fifo");
    let fifo = dir.join("fifo.key");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let (mock, credential) = arc_on_real_files(&dir, "fifo.key").await;
    let attempt = tokio::spawn(async move { credential.get_token(&SCOPE, None).await.err() });
    // A watchdog, not a timing assertion: a refusal needs no waiting at all, and a blocked open
    // would never return. On a hang, a writer releases the blocked thread so the test can end.
    let Ok(result) = tokio::time::timeout(Duration::from_secs(60), attempt).await else {
        let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
        panic!("the credential blocked opening the FIFO");
    };
    let err = result.unwrap().expect("no token from a FIFO");
    assert!(err.to_string().contains("not a regular file"), "{err}");
    assert_eq!(
        mock.request_count(),
        1,
        "nothing was sent after the challenge"
    );
}

#[tokio::test]
async fn service_fabric_rejects_a_certificate_other_than_the_pinned_one() {
    let setup = Setup::new(Host::ServiceFabric).await;
    let other = "00112233445566778899aabbccddeeff00112233";
    let credential = setup
        .builder()
        .env(setup.env.clone().with("IDENTITY_SERVER_THUMBPRINT", other))
        .build()
        .unwrap();
    let err = credential.get_token(&SCOPE, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("TLS handshake"), "{err}");
    assert!(
        err.to_string()
            .contains("not the certificate pinned by its SHA-1 thumbprint"),
        "{err}"
    );
    assert!(
        err.fix()
            .is_some_and(|f| f.contains("IDENTITY_SERVER_THUMBPRINT")),
        "{err}"
    );
    assert!(
        err.to_string().contains("after 1 attempt"),
        "not retried: {err}"
    );
    assert_eq!(setup.mock.request_count(), 0, "nothing reached the server");
    assert!(!format!("{err:?}").contains(SECRET));
}

/// An in-memory endpoint that answers every request with a token and records the URLs asked.
#[derive(Debug, Default)]
struct TokenTransport {
    urls: std::sync::Mutex<Vec<String>>,
}

impl HttpTransport for TokenTransport {
    fn send<'a>(&'a self, request: &'a HttpRequest) -> TransportFuture<'a> {
        self.urls.lock().unwrap().push(request.url().to_string());
        Box::pin(async {
            Ok(HttpResponse::new(
                200,
                [("content-type", "application/json")],
                r#"{"access_token":"fixture-mi-token-transport","expires_on":"1893542399","token_type":"Bearer"}"#,
            ))
        })
    }
}

/// Service Fabric used to build its own pinned client and ignore the builder's `http`: its
/// settings (timeouts, transport) were lost and requests went to the network.
#[tokio::test]
async fn service_fabric_uses_the_given_http_client_with_the_pin() {
    let refused = MockManagedIdentity::refused_address();
    let transport = Arc::new(TokenTransport::default());
    let credential = ManagedIdentityCredential::builder()
        .env(Env::from_pairs([
            (
                "IDENTITY_ENDPOINT",
                format!("https://{refused}/servicefabric/token"),
            ),
            ("IDENTITY_HEADER", SECRET.to_owned()),
            (
                "IDENTITY_SERVER_THUMBPRINT",
                "0123456789abcdef0123456789abcdef01234567".to_owned(),
            ),
        ]))
        .fs(Fs::memory())
        .http(
            Http::builder()
                .transport(transport.clone())
                .build()
                .unwrap(),
        )
        .cache(TokenCache::builder().build())
        .build()
        .unwrap();
    assert_eq!(credential.source(), ManagedIdentitySource::ServiceFabric);
    let token = credential.get_token(&SCOPE, None).await.unwrap();
    assert_eq!(token.token().expose(), "fixture-mi-token-transport");
    let urls = transport.urls.lock().unwrap();
    assert_eq!(urls.len(), 1, "{urls:?}");
    assert!(
        urls[0].starts_with(&format!("https://{refused}/servicefabric/token?")),
        "{urls:?}"
    );
}

#[tokio::test]
async fn debug_shows_the_source_and_no_secret() {
    for host in HOSTS {
        let setup = Setup::new(host).await;
        let credential = setup.credential();
        let printed = format!("{credential:?}");
        assert!(printed.contains("source"), "{printed}");
        assert!(
            !printed.contains(SECRET) && !printed.contains(ARC_KEY),
            "{printed}"
        );
    }
}

/// Issue 17: 200 processes (each its own credential and cache) start together against an IMDS
/// that allows its documented 20 requests a second (burst 5, then 429 with `Retry-After: 1`).
/// Serving them all needs 10 s; every one gets its token, within 1.5 × that, through the real
/// credential, HTTP client and loopback sockets. (Before, half of them failed after 5 attempts.)
#[tokio::test(start_paused = true)]
async fn a_start_up_herd_against_a_throttled_imds_is_served_in_full_within_15_s() {
    let mock = MockManagedIdentity::start().await;
    mock.rate_limit(20.0, 5, Duration::from_secs(1));
    let started = paused_now();
    let mut herd = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let credential = ManagedIdentityCredential::builder()
            .env(Env::empty())
            .fs(Fs::memory())
            .cache(TokenCache::builder().build())
            .imds_endpoint(mock.imds_endpoint())
            .build()
            .unwrap();
        herd.spawn(async move {
            credential
                .get_token(&SCOPE, None)
                .await
                .map(|_| paused_now())
        });
    }
    let mut last = started;
    while let Some(outcome) = herd.join_next().await {
        let served_at = outcome
            .unwrap()
            .expect("a call the budget could serve failed");
        last = last.max(served_at);
    }
    let all_served = last - started;
    assert!(all_served <= Duration::from_secs(15), "{all_served:?}");
    assert!(
        all_served >= Duration::from_secs(9),
        "the limit held: {all_served:?}"
    );
    assert_eq!(mock.token_request_count(), 200);
    assert!(mock.throttled_count() > 0);
}
