//! The probe of IMDS in a chain.

use super::*;

#[tokio::test]
async fn a_refused_port_is_unavailable_at_once() {
    let credential = support::imds::probing_credential_off_azure();
    let err = credential.get_token(&SCOPE, None).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("refused"), "{err}");
    // Without the probe, a refused connection is unavailable too (no retries of a refusal
    // make it anything else).
}

#[tokio::test]
async fn a_probe_answered_400_means_imds_is_there() {
    let setup = Setup::new(Host::Imds).await;
    let credential = setup.builder().probe(true).build().unwrap();
    credential.get_token(&SCOPE, None).await.unwrap();
    let requests = setup.mock.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].header("metadata"),
        None,
        "the probe has no Metadata header"
    );
    assert_eq!(requests[1].header("metadata"), Some("true"));
    // Never probed again.
    credential
        .get_token(&["https://storage.azure.com/.default"], None)
        .await
        .unwrap();
    assert_eq!(setup.mock.request_count(), 3);
}

/// A silent IMDS probed by a credential made with `configure`: the setup, the error, and when
/// the call started.
async fn probe_a_silent_imds(
    configure: impl FnOnce(ManagedIdentityCredentialBuilder) -> ManagedIdentityCredentialBuilder,
) -> (Setup, azure_credentials::Error, tokio::time::Instant) {
    let setup = Setup::new(Host::Imds).await;
    setup.mock.require_metadata_header(false);
    setup.mock.set_default(MockReply::hang());
    let credential = configure(setup.builder().probe(true)).build().unwrap();
    let started = paused_now();
    let err = credential.get_token(&SCOPE, None).await.unwrap_err();
    (setup, err, started)
}

#[tokio::test(start_paused = true)]
async fn a_silent_imds_fails_the_probe_within_its_timeout() {
    let (setup, err, started) =
        probe_a_silent_imds(|b| b.probe_timeout(Duration::from_millis(1500))).await;
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("1.5s"), "{err}");
    assert_waited(started, ..Duration::from_secs(2), "probe timeout");
    assert_eq!(setup.mock.request_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_probe_timeout_comes_from_the_environment() {
    // A silent IMDS: the probe gives up after the variable's 2.5 s, not the default 1 s.
    let env = Env::empty().with("AZURE_CREDENTIALS_IMDS_PROBE_TIMEOUT_MS", "2500");
    let (_setup, err, started) = probe_a_silent_imds(|b| b.env(env)).await;
    let probe_timeout = Duration::from_millis(2500)..Duration::from_secs(3);
    assert_waited(started, probe_timeout, "probe timeout from the env");
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("2.5s"), "{err}");
}

#[tokio::test]
async fn pod_identity_names_the_endpoint_and_skips_the_probe() {
    let setup = Setup::new(Host::Imds).await;
    let base = setup.mock.base_url();
    let credential = ManagedIdentityCredential::builder()
        .env(Env::empty().with("AZURE_POD_IDENTITY_AUTHORITY_HOST", format!("{base}")))
        .fs(Fs::memory())
        .cache(TokenCache::builder().build())
        .probe(true)
        .build()
        .unwrap();
    credential.get_token(&SCOPE, None).await.unwrap();
    let requests = setup.mock.requests();
    assert_eq!(requests.len(), 1, "no probe");
    assert_eq!(requests[0].path(), "/metadata/identity/oauth2/token");
}

#[tokio::test]
async fn an_imds_that_comes_up_later_is_found_without_a_restart() {
    // First the probe is refused; later the same credential finds IMDS.
    let setup = Setup::new(Host::Imds).await;
    let clock = azure_credentials::system::ManualClock::new(Clock::system().now());
    let cache = TokenCache::builder().clock(clock.clock()).build();
    setup.mock.require_metadata_header(false);
    setup.mock.push(MockReply::reset());
    let credential = setup.builder().cache(cache).probe(true).build().unwrap();
    let err = credential.get_token(&SCOPE, None).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    // Remembered only briefly.
    clock.advance(Duration::from_secs(2));
    credential.get_token(&SCOPE, None).await.unwrap();
}
