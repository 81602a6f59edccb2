//! WorkloadIdentityCredential against the loopback Entra mock: configuration from the
//! environment, the exact exchange, token file rotation and the AADSTS700024 re-read.

mod support;
use support::entra::{self, Setup, TENANT};
use support::federated::assertion_expired;
use support::scopes::VAULT as SCOPE;

use std::path::Path;
use std::time::Duration;

use azure_credentials::system::{Env, RetryPolicy};
use azure_credentials::testing::MockEntraReply;
use azure_credentials::{
    ErrorKind, TokenCredential, TokenRequestOptions, WorkloadIdentityCredential,
    WorkloadIdentityCredentialBuilder,
};

const CLIENT: &str = "00000000-0000-0000-0000-0000000000d3";
const TOKEN_FILE: &str = "/var/run/secrets/azure/tokens/azure-identity-token";

async fn setup() -> Setup {
    let s = entra::setup().await;
    s.fs.write(TOKEN_FILE, "federated-token-one\n");
    s
}

impl Setup {
    /// What the AKS webhook sets.
    fn env(&self) -> Env {
        Env::from_pairs([
            ("AZURE_FEDERATED_TOKEN_FILE", TOKEN_FILE.to_owned()),
            ("AZURE_CLIENT_ID", CLIENT.to_owned()),
            ("AZURE_TENANT_ID", TENANT.to_owned()),
            (
                "AZURE_AUTHORITY_HOST",
                format!("{}/", self.entra.authority_host()),
            ),
        ])
    }

    fn builder(&self) -> WorkloadIdentityCredentialBuilder {
        WorkloadIdentityCredential::builder()
            .env(self.env())
            .fs(self.fs.clone())
            .cache(self.cache.clone())
            .retry_policy(RetryPolicy::none())
    }

    /// [`Setup::builder`] with one variable more (or changed) in the environment.
    fn builder_with_env(&self, name: &str, value: &str) -> WorkloadIdentityCredentialBuilder {
        self.builder().env(self.env().with(name, value))
    }

    fn credential(&self) -> WorkloadIdentityCredential {
        self.builder().build().unwrap()
    }
}

#[tokio::test]
async fn the_token_file_is_exchanged_as_configured_by_the_webhook() {
    let s = setup().await;
    let credential = s.credential();
    assert_eq!(credential.token_file_path(), Path::new(TOKEN_FILE));
    let token = credential.get_token(SCOPE, None).await.unwrap();
    entra::assert_issued(&token, "WorkloadIdentityCredential", TENANT, CLIENT);

    let request = &s.entra.requests()[0];
    assert_eq!(request.path(), format!("/{TENANT}/oauth2/v2.0/token"));
    let form = entra::form(request);
    assert_eq!(
        form,
        [
            ("client_id", CLIENT),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            ),
            ("client_assertion", "federated-token-one"),
            ("grant_type", "client_credentials"),
            ("scope", SCOPE[0]),
        ]
    );
    let debug = format!("{credential:?}");
    assert!(
        debug.contains(TOKEN_FILE) && debug.contains(CLIENT),
        "{debug}"
    );
    assert!(!debug.contains("federated-token-one"));
}

#[tokio::test]
async fn builder_values_take_precedence_over_the_environment() {
    let s = setup().await;
    s.fs.write("/other/token", "federated-token-other");
    let credential = s
        .builder()
        .tenant_id("fabrikam.com")
        .client_id("builder-client")
        .token_file_path("/other/token")
        .build()
        .unwrap();
    credential.get_token(SCOPE, None).await.unwrap();
    let request = &s.entra.requests()[0];
    assert_eq!(request.tenant(), Some("fabrikam.com"));
    assert_eq!(request.form("client_id"), Some("builder-client"));
    assert_eq!(
        request.form("client_assertion"),
        Some("federated-token-other")
    );
}

#[tokio::test]
async fn a_rotated_token_file_is_used_by_the_next_exchange() {
    let s = setup().await;
    let credential = s.credential();
    credential.get_token(SCOPE, None).await.unwrap();
    // Kubernetes writes a new token; the cached Entra token is still served...
    s.fs.write(TOKEN_FILE, "federated-token-two");
    credential.get_token(SCOPE, None).await.unwrap();
    assert_eq!(s.entra.request_count(), 1);
    // ...and the next exchange (here: the Entra token expired) sends the new file contents.
    s.clock.advance(Duration::from_secs(3600));
    credential.get_token(SCOPE, None).await.unwrap();
    // A claims challenge forces an exchange too.
    s.fs.write(TOKEN_FILE, "federated-token-three");
    let claims = TokenRequestOptions::default().with_claims(r#"{"access_token":{}}"#);
    credential.get_token(SCOPE, Some(&claims)).await.unwrap();
    assert_eq!(
        s.sent("client_assertion"),
        [
            "federated-token-one",
            "federated-token-two",
            "federated-token-three"
        ]
    );
}

#[tokio::test]
async fn an_expired_assertion_makes_the_credential_read_the_file_again_and_retry_once() {
    let s = setup().await;
    let credential = s.credential();
    s.entra.push(assertion_expired());
    // Hold Entra's answer until the file has been rotated behind the credential's back.
    let gate = s.entra.hold_replies();
    let fetch = tokio::spawn({
        let credential = credential.clone();
        async move { credential.get_token(SCOPE, None).await }
    });
    tokio::time::timeout(Duration::from_secs(30), s.entra.wait_for_requests(1))
        .await
        .expect("the first exchange arrives");
    s.fs.write(TOKEN_FILE, "federated-token-renewed");
    gate.release();
    let token = tokio::time::timeout(Duration::from_secs(30), fetch)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(token.token().expose().starts_with("mock-entra-token-"));
    assert_eq!(
        s.sent("client_assertion"),
        ["federated-token-one", "federated-token-renewed"]
    );
}

#[tokio::test]
async fn a_stale_file_is_retried_once_then_reported_with_its_expiry() {
    let s = setup().await;
    // A JWT-shaped token whose exp is readable (the signature is not checked by anyone here).
    let stale = "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE4OTM0NTI0MDAsInN1YiI6InN5c3RlbTpzZXJ2aWNlYWNjb3VudDpkZWZhdWx0Ondvcmtsb2FkIn0.c2ln";
    s.fs.write(TOKEN_FILE, stale);
    s.entra.set_default(assertion_expired());
    let err = s.credential().get_token(SCOPE, None).await.unwrap_err();
    assert_eq!(s.entra.request_count(), 2, "one retry, no more");
    assert_eq!(err.kind(), ErrorKind::Authentication);
    assert_eq!(err.aadsts_codes(), &[700024]);
    assert_eq!(err.status(), Some(400));
    assert!(err.correlation_id().is_some());
    let text = err.to_string();
    assert!(text.contains("AADSTS700024"), "{text}");
    assert!(text.contains(TOKEN_FILE), "{text}");
    assert!(text.contains("expires at 2029-12-31 23:00:00"), "{text}");
    assert!(text.contains("not being renewed"), "{text}");
    assert!(!text.contains(stale), "{text}");

    // Other refusals are not retried.
    s.entra.set_default(MockEntraReply::error(
        400,
        "invalid_request",
        70021,
        "No matching federated identity record found for presented assertion.",
    ));
    s.entra.clear_requests();
    let err = s.credential().get_token(SCOPE, None).await.unwrap_err();
    assert_eq!(s.entra.request_count(), 1);
    assert!(
        err.fix().unwrap().contains("federated identity credential"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_or_empty_file_is_an_error_naming_the_path_and_is_not_remembered() {
    let s = setup().await;
    let credential = s.credential();
    s.fs.remove(Path::new(TOKEN_FILE));
    let err = credential.get_token(SCOPE, None).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Io,
        "not Unavailable: the chain must not fall through"
    );
    let text = err.to_string();
    assert!(
        text.contains(TOKEN_FILE) && text.contains("does not exist"),
        "{text}"
    );
    assert!(
        err.fix().unwrap().contains("AZURE_FEDERATED_TOKEN_FILE"),
        "{text}"
    );

    s.fs.write(TOKEN_FILE, "   \n");
    let err = credential.get_token(SCOPE, None).await.unwrap_err();
    assert!(err.to_string().contains("is empty"), "{err}");
    assert_eq!(s.entra.request_count(), 0);

    // The webhook's volume shows up: the next call works.
    s.fs.write(TOKEN_FILE, "federated-token-late");
    credential.get_token(SCOPE, None).await.unwrap();
    assert_eq!(
        s.entra.requests()[0].form("client_assertion"),
        Some("federated-token-late")
    );
}

#[tokio::test]
async fn configuration_from_the_environment_is_checked_at_build() {
    let s = setup().await;
    // Nothing set: unavailable (a chain moves on), naming the variable.
    let err = WorkloadIdentityCredential::builder()
        .env(Env::empty())
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        err.to_string().contains("AZURE_FEDERATED_TOKEN_FILE"),
        "{err}"
    );
    // Client id and tenant alone are not workload identity (managed identity uses them too).
    let err = WorkloadIdentityCredential::builder()
        .env(Env::from_pairs([
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_TENANT_ID", TENANT),
        ]))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);

    // The token file without the rest: the user meant this source, so it is an error.
    for (missing, env) in [
        (
            "AZURE_CLIENT_ID",
            Env::from_pairs([
                ("AZURE_FEDERATED_TOKEN_FILE", TOKEN_FILE),
                ("AZURE_TENANT_ID", TENANT),
            ]),
        ),
        (
            "AZURE_TENANT_ID",
            Env::from_pairs([
                ("AZURE_FEDERATED_TOKEN_FILE", TOKEN_FILE),
                ("AZURE_CLIENT_ID", CLIENT),
            ]),
        ),
        (
            "AZURE_TENANT_ID and AZURE_CLIENT_ID",
            Env::from_pairs([
                ("AZURE_FEDERATED_TOKEN_FILE", TOKEN_FILE),
                ("AZURE_CLIENT_ID", " "),
            ]),
        ),
    ] {
        let err = WorkloadIdentityCredential::builder()
            .env(env)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains(missing), "{missing}: {err}");
    }

    // Invalid values.
    let err = s
        .builder_with_env("AZURE_TENANT_ID", "bad tenant")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("invalid tenant id"), "{err}");
    let err = s
        .builder_with_env("AZURE_AUTHORITY_HOST", "http://login.example.com")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("AZURE_AUTHORITY_HOST"), "{err}");

    // The file is not read at build: it may not exist yet.
    s.fs.remove(Path::new(TOKEN_FILE));
    assert!(s.builder().build().is_ok());
}

#[tokio::test]
async fn other_tenants_follow_the_allow_list() {
    let s = setup().await;
    let credential = s
        .builder_with_env("AZURE_ADDITIONALLY_ALLOWED_TENANTS", "fabrikam.com")
        .build()
        .unwrap();
    let fabrikam = TokenRequestOptions::default().with_tenant_id("fabrikam.com");
    let token = credential.get_token(SCOPE, Some(&fabrikam)).await.unwrap();
    assert_eq!(token.tenant_id(), Some("fabrikam.com"));
    assert_eq!(s.entra.requests()[0].tenant(), Some("fabrikam.com"));
    let other = TokenRequestOptions::default().with_tenant_id("contoso.com");
    let err = credential.get_token(SCOPE, Some(&other)).await.unwrap_err();
    assert!(
        err.to_string().contains("\"contoso.com\" is not allowed"),
        "{err}"
    );
}
