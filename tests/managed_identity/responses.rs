//! Responses: fixtures of every shape, the chain's reading of them, and answers naming
//! another identity.

use super::*;

#[tokio::test]
async fn success_fixtures_give_tokens_with_the_right_expiry() {
    use Host::*;
    let cases = [
        (Imds, "imds_token.json", FIXTURE_EXPIRY),
        (Imds, "imds_token_numbers.json", FIXTURE_EXPIRY),
        (AppService, "app_service_token.json", FIXTURE_EXPIRY),
        (AzureMl, "azure_ml_token_linux_date.json", FIXTURE_EXPIRY),
        (AzureMl, "azure_ml_token_windows_date.json", FIXTURE_EXPIRY),
        (CloudShell, "cloud_shell_token.json", CLOUD_SHELL_EXPIRY),
        (ServiceFabric, "service_fabric_token.json", FIXTURE_EXPIRY),
        (AzureArc, "arc_token_user_assigned.json", FIXTURE_EXPIRY),
    ];
    for (host, file, expires_on) in cases {
        let setup = Setup::new(host).await;
        let body = fixtures::read_to_string("managed_identity", file);
        setup.mock.push(MockReply::json(200, body.clone()));
        let token = setup.credential().get_token(&SCOPE, None).await.unwrap();
        assert!(
            token.token().expose().starts_with("fixture-mi-token-"),
            "{file}"
        );
        assert_eq!(token.expires_on(), expires_on, "{file}");
    }
}

#[tokio::test]
async fn expires_in_only_counts_from_the_request() {
    let setup = Setup::new(Host::Imds).await;
    setup.mock.push(MockReply::json(
        200,
        fixtures::read_to_string("managed_identity", "imds_token_expires_in_only.json"),
    ));
    let before = Clock::system().now();
    let token = setup.credential().get_token(&SCOPE, None).await.unwrap();
    let lifetime = token.expires_on() - before;
    // Counted from when the request was sent: a little after `before`.
    assert!(
        lifetime >= time::Duration::seconds(3600) && lifetime < time::Duration::seconds(3610),
        "{lifetime}"
    );
}

#[tokio::test]
async fn refresh_in_and_half_life_set_the_refresh_time() {
    // A 24 h token with refresh_in 12 h: the cache refreshes at the provider's hint.
    let setup = Setup::new(Host::Imds).await;
    let now = Clock::system().now();
    setup
        .mock
        .push(MockReply::token("t").expires_in(86_400).refresh_in(3600));
    let token = setup.credential().get_token(&SCOPE, None).await.unwrap();
    let refresh_in = token.refresh_on().unwrap() - now;
    // Drawn from a window a quarter of the interval wide, centred on the target.
    assert!(
        refresh_in <= time::Duration::minutes(68) && refresh_in > time::Duration::minutes(52),
        "{refresh_in}"
    );
    // Without a hint, half of the lifetime (± 1.5 h).
    let setup = Setup::new(Host::Imds).await;
    setup.mock.push(MockReply::token("t").expires_in(86_400));
    let token = setup.credential().get_token(&SCOPE, None).await.unwrap();
    let refresh_in = token.refresh_on().unwrap() - now;
    assert!(
        refresh_in <= time::Duration::minutes(12 * 60 + 91)
            && refresh_in > time::Duration::minutes(12 * 60 - 91),
        "{refresh_in}"
    );
}

#[tokio::test]
async fn error_fixtures_are_classified_for_the_chain() {
    use ErrorKind::*;
    let cases: &[(Host, u16, &str, bool, ErrorKind, &str)] = &[
        // system-assigned identity missing: nothing here to use, the chain moves on
        (
            Host::Imds,
            400,
            "imds_identity_not_found.json",
            false,
            Unavailable,
            "no managed identity is assigned",
        ),
        // the requested user-assigned identity is not there: a real refusal, the chain stops
        (
            Host::Imds,
            400,
            "imds_identity_not_found.json",
            true,
            Authentication,
            "not assigned",
        ),
        (
            Host::Imds,
            403,
            "docker_desktop_403.txt",
            false,
            Unavailable,
            "unreachable",
        ),
        (
            Host::Imds,
            200,
            "proxy_page.html",
            false,
            Unavailable,
            "an HTML page, not JSON: something other than IMDS answered",
        ),
        (
            Host::Imds,
            502,
            "proxy_page.html",
            false,
            Unavailable,
            "an HTML page, not JSON: something other than IMDS answered",
        ),
        (
            Host::AppService,
            400,
            "app_service_error.json",
            false,
            Authentication,
            "Unable to load the proper Managed Identity",
        ),
        (
            Host::AppService,
            200,
            "proxy_page.html",
            false,
            Other,
            "not JSON",
        ),
        (
            Host::ServiceFabric,
            404,
            "service_fabric_error.json",
            false,
            Authentication,
            "No managed identity is configured",
        ),
        (
            Host::Imds,
            200,
            "no_access_token.json",
            false,
            ServiceFailure,
            "without an access_token",
        ),
        (
            Host::Imds,
            200,
            "not_bearer.json",
            false,
            ServiceFailure,
            "not a bearer token",
        ),
        (
            Host::Imds,
            200,
            "no_expiry.json",
            false,
            ServiceFailure,
            "without a readable expiry",
        ),
        (
            Host::Imds,
            401,
            "imds_unexpected_error.json",
            false,
            Authentication,
            "An unexpected error occurred",
        ),
    ];
    for &(host, status, file, user_assigned, kind, says) in cases {
        let setup = Setup::new(host).await;
        setup.mock.set_default(MockReply::json(
            status,
            fixtures::read_to_string("managed_identity", file),
        ));
        // Retries are tested below; here one answer is classified.
        let mut builder = setup.builder().retry_policy(RetryPolicy::none());
        if user_assigned {
            builder = builder.client_id(CLIENT_ID);
        }
        let credential = builder.build().unwrap();
        let err = credential.get_token(&SCOPE, None).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{file}: {err}");
        assert!(err.to_string().contains(says), "{file}: {err}");
        assert!(!err.to_string().contains("fixture-mi-token"), "{err}");
        assert!(!err.to_string().contains("<html"), "{err}");
    }
}
