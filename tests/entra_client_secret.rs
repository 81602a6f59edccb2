//! ClientSecretCredential against the loopback Entra mock: the exact request, the token it
//! returns, the cache, the tenant rules, claims and CAE, retries and bad input.

mod support;
use support::entra::{self, Setup};
use support::scopes::VAULT;

use std::time::Duration;

use azure_credentials::system::{Env, RetryPolicy};
use azure_credentials::testing::MockEntraReply;
use azure_credentials::{
    ClientSecretCredential, ClientSecretCredentialBuilder, ErrorKind, TokenCredential,
    TokenRequestOptions, authority_hosts,
};
use time::macros::datetime;

const TENANT: &str = "11111111-2222-3333-4444-555555555555";
const CLIENT: &str = "00000000-0000-0000-0000-0000000000c1";
const SECRET: &str = "client-secret-value-1";

async fn setup() -> Setup {
    let s = entra::setup().await;
    s.entra.expect_client_secret(SECRET);
    s
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(5))
        .with_jitter(0.0)
        .with_retry_statuses([429, 500, 502, 503, 504])
}

impl Setup {
    fn builder(&self) -> ClientSecretCredentialBuilder {
        ClientSecretCredential::builder()
            .tenant_id(TENANT)
            .client_id(CLIENT)
            .secret(SECRET)
            .authority_host(self.entra.authority_host())
            .env(Env::empty())
            .cache(self.cache.clone())
            .retry_policy(fast_retries())
    }

    fn credential(&self) -> ClientSecretCredential {
        self.builder().build().unwrap()
    }
}

#[tokio::test]
async fn sends_exactly_the_client_credentials_form_and_returns_a_described_token() {
    let s = setup().await;
    s.entra
        .push(MockEntraReply::token("secret-flow-token").expires_in(3599));
    let credential = s.credential();
    let token = credential.get_token(VAULT, None).await.unwrap();

    assert_eq!(token.token().expose(), "secret-flow-token");
    assert_eq!(token.expires_on(), datetime!(2030-01-01 0:59:59 UTC));
    entra::assert_issued(&token, "ClientSecretCredential", TENANT, CLIENT);

    let requests = s.entra.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method(), "POST");
    assert_eq!(request.path(), format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(request.header("accept"), Some("application/json"));
    let form = entra::form(request);
    assert_eq!(
        form,
        [
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "https://vault.azure.net/.default"),
        ]
    );
}

#[tokio::test]
async fn cached_tokens_are_served_without_a_request_and_refresh_in_is_honoured() {
    let s = setup().await;
    s.entra.push(
        MockEntraReply::token("long-lived")
            .expires_in(86_399)
            .refresh_in(3600),
    );
    let credential = s.credential();
    let first = credential.get_token(VAULT, None).await.unwrap();
    assert_eq!(first.refresh_on(), Some(datetime!(2030-01-01 1:00 UTC)));
    let again = credential.get_token(VAULT, None).await.unwrap();
    assert!(again.ptr_eq(&first) || again.token() == first.token());
    assert_eq!(s.entra.request_count(), 1);

    // A second instance for the same identity shares the cache; one with another secret does not.
    let twin = s.credential();
    twin.get_token(VAULT, None).await.unwrap();
    assert_eq!(s.entra.request_count(), 1);
    let other = s.builder().secret("another-secret").build().unwrap();
    let err = other.get_token(VAULT, None).await.unwrap_err();
    assert_eq!(err.aadsts_codes(), &[7000215]);
    assert_eq!(s.entra.request_count(), 2);
}

#[tokio::test]
async fn several_scopes_are_sent_space_separated_and_each_is_validated() {
    let s = setup().await;
    let credential = s.credential();
    credential
        .get_token(
            &["https://b.example/.default", "https://a.example/.default"],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        s.entra.requests()[0].form("scope"),
        Some("https://a.example/.default https://b.example/.default")
    );

    for bad in [&["https://vault.azure.net/.default\nx"][..], &["a b"], &[]] {
        let err = credential.get_token(bad, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
        assert!(
            err.to_string().starts_with("ClientSecretCredential: "),
            "{err}"
        );
    }
    assert_eq!(
        s.entra.request_count(),
        1,
        "invalid scopes never reach Entra"
    );
}

#[tokio::test]
async fn another_tenant_is_used_only_when_allowed() {
    let s = setup().await;
    let other = "contoso.onmicrosoft.com";
    let options = TokenRequestOptions::default().with_tenant_id(other);

    // Refused: the error names the tenant and the option to add it, and nothing is sent.
    let strict = s.credential();
    let err = strict.get_token(VAULT, Some(&options)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let text = err.to_string();
    assert!(text.contains("\"contoso.onmicrosoft.com\""), "{text}");
    assert!(text.contains("additionally_allowed_tenants"), "{text}");
    assert!(
        text.contains("AZURE_ADDITIONALLY_ALLOWED_TENANTS"),
        "{text}"
    );
    assert_eq!(s.entra.request_count(), 0);

    // Explicitly allowed.
    let allowed = s
        .builder()
        .additionally_allowed_tenants([other])
        .build()
        .unwrap();
    let token = allowed.get_token(VAULT, Some(&options)).await.unwrap();
    assert_eq!(token.tenant_id(), Some(other));
    assert_eq!(s.entra.requests()[0].tenant(), Some(other));

    // The configured tenant, asked for explicitly (any case), is the configured tenant.
    let own = TokenRequestOptions::default().with_tenant_id(TENANT.to_uppercase());
    let token = allowed.get_token(VAULT, Some(&own)).await.unwrap();
    assert_eq!(token.tenant_id(), Some(TENANT));

    // The wildcard, from the environment.
    let wildcard = s
        .builder()
        .env(Env::from_pairs([(
            "AZURE_ADDITIONALLY_ALLOWED_TENANTS",
            "*",
        )]))
        .build()
        .unwrap();
    let anywhere = TokenRequestOptions::default().with_tenant_id("fabrikam.com");
    let token = wildcard.get_token(VAULT, Some(&anywhere)).await.unwrap();
    assert_eq!(token.tenant_id(), Some("fabrikam.com"));
    assert_eq!(
        s.entra.requests().last().unwrap().tenant(),
        Some("fabrikam.com")
    );

    // An invalid tenant is refused even with the wildcard.
    let bad = TokenRequestOptions::default().with_tenant_id("../evil");
    let err = wildcard.get_token(VAULT, Some(&bad)).await.unwrap_err();
    assert!(err.is_invalid_input(), "{err}");

    // AZURE_IDENTITY_DISABLE_MULTITENANTAUTH pins every request to the configured tenant.
    let pinned = s
        .builder()
        .additionally_allowed_tenants(["*"])
        .env(Env::from_pairs([(
            "AZURE_IDENTITY_DISABLE_MULTITENANTAUTH",
            "true",
        )]))
        .build()
        .unwrap();
    let requests = s.entra.request_count();
    let token = pinned.get_token(VAULT, Some(&anywhere)).await.unwrap();
    assert_eq!(token.tenant_id(), Some(TENANT));
    // The configured tenant's token was already cached (the same identity fetched it above).
    assert_eq!(s.entra.request_count(), requests);
}

#[tokio::test]
async fn claims_bypass_the_cache_and_cae_adds_the_client_capability() {
    let s = setup().await;
    let credential = s.credential();
    let first = credential.get_token(VAULT, None).await.unwrap();
    assert_eq!(s.entra.requests()[0].form("claims"), None);

    let challenge = r#"{"access_token":{"nbf":{"essential":true,"value":"1893456000"}}}"#;
    let options = TokenRequestOptions::default().with_claims(challenge);
    let fresh = credential.get_token(VAULT, Some(&options)).await.unwrap();
    assert_ne!(fresh.token(), first.token());
    assert_eq!(s.entra.request_count(), 2);
    assert_eq!(s.entra.requests()[1].form("claims"), Some(challenge));
    // The new token replaced the cached one.
    let cached = credential.get_token(VAULT, None).await.unwrap();
    assert_eq!(cached.token(), fresh.token());
    assert_eq!(s.entra.request_count(), 2);

    let cae = TokenRequestOptions::default().with_enable_cae(true);
    credential.get_token(VAULT, Some(&cae)).await.unwrap();
    assert_eq!(
        s.entra.requests()[2].form("claims"),
        Some(r#"{"access_token":{"xms_cc":{"values":["CP1"]}}}"#)
    );
    let both = TokenRequestOptions::default()
        .with_enable_cae(true)
        .with_claims(challenge);
    credential.get_token(VAULT, Some(&both)).await.unwrap();
    let merged: serde_json::Value =
        serde_json::from_str(s.entra.requests()[3].form("claims").unwrap()).unwrap();
    assert_eq!(
        merged,
        serde_json::json!({"access_token":{"nbf":{"essential":true,"value":"1893456000"},"xms_cc":{"values":["CP1"]}}})
    );
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_and_refusals_are_not() {
    let s = setup().await;
    let credential = s.credential();
    s.entra.push_many([
        MockEntraReply::error(
            503,
            "temporarily_unavailable",
            90033,
            "A transient error has occurred.",
        ),
        MockEntraReply::error(429, "temporarily_unavailable", 50196, "Too many requests.")
            .with_header("Retry-After", "0"),
        MockEntraReply::token("after-retries"),
    ]);
    let token = credential.get_token(VAULT, None).await.unwrap();
    assert_eq!(token.token().expose(), "after-retries");
    assert_eq!(s.entra.request_count(), 3);

    // A refusal is returned after one request.
    s.clock.advance(Duration::from_secs(2 * 3600));
    s.entra.push(MockEntraReply::error(
        400,
        "invalid_request",
        90002,
        "Tenant not found.",
    ));
    let err = credential.get_token(VAULT, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Authentication);
    assert_eq!(s.entra.request_count(), 4);

    // Throttled to the end: a Throttled error carrying the wait.
    s.entra.set_default(
        MockEntraReply::error(429, "temporarily_unavailable", 50196, "Too many requests.")
            .with_header("Retry-After", "120"),
    );
    let err = credential.get_token(VAULT, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled, "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(err.status(), Some(429));
}

#[tokio::test]
async fn the_authority_host_comes_from_the_builder_or_the_environment() {
    let s = setup().await;
    // AZURE_AUTHORITY_HOST, when the builder names none.
    let from_env = ClientSecretCredential::builder()
        .tenant_id(TENANT)
        .client_id(CLIENT)
        .secret(SECRET)
        .env(Env::from_pairs([(
            "AZURE_AUTHORITY_HOST",
            s.entra.authority_host() + "/",
        )]))
        .cache(s.cache.clone())
        .build()
        .unwrap();
    from_env.get_token(VAULT, None).await.unwrap();
    assert_eq!(s.entra.request_count(), 1);

    // Sovereign clouds: the credential targets their hosts (Debug shows the authority).
    for (host, shown) in [
        (
            authority_hosts::AZURE_PUBLIC_CLOUD,
            "https://login.microsoftonline.com",
        ),
        (
            authority_hosts::AZURE_GOVERNMENT,
            "https://login.microsoftonline.us",
        ),
        (
            authority_hosts::AZURE_CHINA,
            "https://login.chinacloudapi.cn",
        ),
        (
            "login.microsoftonline.us/",
            "https://login.microsoftonline.us",
        ),
    ] {
        let credential = ClientSecretCredential::builder()
            .tenant_id(TENANT)
            .client_id(CLIENT)
            .secret(SECRET)
            .authority_host(host)
            .env(Env::empty())
            .build()
            .unwrap();
        let debug = format!("{credential:?}");
        assert!(debug.contains(&format!("\"{shown}\"")), "{debug}");
        assert!(!debug.contains(SECRET));
    }
    let default = ClientSecretCredential::builder()
        .tenant_id(TENANT)
        .client_id(CLIENT)
        .secret(SECRET)
        .env(Env::empty())
        .build()
        .unwrap();
    assert!(format!("{default:?}").contains("https://login.microsoftonline.com"));
}

#[tokio::test]
async fn bad_configuration_fails_at_build_with_what_to_change() {
    let s = setup().await;
    let cases: Vec<(ClientSecretCredentialBuilder, &str)> = vec![
        (
            s.builder()
                .authority_host("http://login.microsoftonline.com"),
            "https",
        ),
        (
            s.builder()
                .authority_host("ftp://login.microsoftonline.com"),
            "https",
        ),
        (
            ClientSecretCredential::builder()
                .tenant_id(TENANT)
                .client_id(CLIENT)
                .secret(SECRET)
                .env(Env::from_pairs([(
                    "AZURE_AUTHORITY_HOST",
                    "http://evil.example",
                )])),
            "AZURE_AUTHORITY_HOST",
        ),
        (s.builder().tenant_id("contoso/../x"), "invalid tenant id"),
        (s.builder().tenant_id("tenant id"), "invalid tenant id"),
        (s.builder().tenant_id(""), "tenant_id"),
        (s.builder().client_id(""), "client_id"),
        (s.builder().secret(""), "client secret is empty"),
        (
            ClientSecretCredential::builder()
                .tenant_id(TENANT)
                .client_id(CLIENT),
            "no client secret",
        ),
        (
            s.builder().additionally_allowed_tenants(["ok", "not ok"]),
            "invalid tenant id",
        ),
    ];
    for (builder, expected) in cases {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let text = err.to_string();
        assert!(text.starts_with("ClientSecretCredential: "), "{text}");
        assert!(text.contains(expected), "{expected:?} not in {text}");
        assert!(err.fix().is_some(), "{text}");
        assert!(!text.contains(SECRET));
    }
    // ClientSecretCredential::new uses the process environment's authority host (not set in CI),
    // and validates the same way.
    assert!(ClientSecretCredential::new("bad tenant", CLIENT, SECRET).is_err());
}

#[tokio::test]
async fn a_closed_connection_is_an_io_error_naming_the_authority() {
    let s = setup().await;
    let credential = s
        .builder()
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    s.entra.push(MockEntraReply::close());
    let err = credential.get_token(VAULT, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    let text = err.to_string();
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(text.contains("proxy, firewall, DNS"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_callers_cause_one_token_request() {
    let s = setup().await;
    let credential = std::sync::Arc::new(s.credential());
    let callers: Vec<_> = (0..100)
        .map(|_| {
            let credential = credential.clone();
            tokio::spawn(async move { credential.get_token(VAULT, None).await })
        })
        .collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap().unwrap());
    }
    assert!(tokens.iter().all(|t| t.token() == tokens[0].token()));
    assert_eq!(s.entra.request_count(), 1);
}
