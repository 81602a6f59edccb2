//! EnvironmentCredential: which variables select which credential, what a half-set or
//! unsupported configuration says, and the requests it makes against the loopback Entra mock.

mod support;
use support::fixtures;

use azure_credentials::system::{Env, Fs, RetryPolicy};
use azure_credentials::testing::MockEntraReply;
use azure_credentials::{
    EnvironmentCredential, EnvironmentCredentialBuilder, ErrorKind, TokenCredential,
    TokenRequestOptions,
};

const CLIENT: &str = "00000000-0000-0000-0000-0000000000e4";
const SECRET: &str = "env-client-secret-value";
/// A service principal with a client secret.
const WITH_SECRET: [(&str, &str); 3] = [
    ("AZURE_TENANT_ID", TENANT),
    ("AZURE_CLIENT_ID", CLIENT),
    ("AZURE_CLIENT_SECRET", SECRET),
];

use support::entra::setup_verifying_assertions as setup;
use support::entra::{self, Setup, TENANT};
use support::scopes::ARM as SCOPE;

impl Setup {
    fn env(&self, pairs: &[(&str, &str)]) -> Env {
        let mut env = Env::from_pairs([("AZURE_AUTHORITY_HOST", self.entra.authority_host())]);
        for (name, value) in pairs {
            env = env.with(*name, *value);
        }
        env
    }

    fn builder(&self, pairs: &[(&str, &str)]) -> EnvironmentCredentialBuilder {
        EnvironmentCredential::builder()
            .env(self.env(pairs))
            .cache(self.cache.clone())
            .retry_policy(RetryPolicy::none())
    }
}

#[tokio::test]
async fn a_client_secret_in_the_environment_is_used() {
    let s = setup().await;
    let credential = s.builder(&WITH_SECRET).build().unwrap();
    let token = credential.get_token(SCOPE, None).await.unwrap();
    entra::assert_issued(&token, "EnvironmentCredential", TENANT, CLIENT);
    let request = &s.entra.requests()[0];
    assert_eq!(request.path(), format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(
        request.form_names(),
        ["client_id", "client_secret", "grant_type", "scope"]
    );
    assert_eq!(request.form("client_secret"), Some(SECRET));
    let debug = format!("{credential:?}");
    assert!(
        debug.contains("EnvironmentCredential") && debug.contains(CLIENT),
        "{debug}"
    );
    assert!(!debug.contains(SECRET));
}

#[tokio::test]
async fn a_certificate_in_the_environment_is_used_when_there_is_no_secret() {
    let s = setup().await;
    let (file, password) = fixtures::chain_cert();
    let credential = s
        .builder(&[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_CLIENT_CERTIFICATE_PATH", file.to_str().unwrap()),
            ("AZURE_CLIENT_CERTIFICATE_PASSWORD", password.unwrap_or("")),
            ("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "true"),
        ])
        .build()
        .unwrap();
    let token = credential.get_token(SCOPE, None).await.unwrap();
    assert_eq!(token.source(), "EnvironmentCredential");
    let assertion = s.entra.requests()[0].assertion().unwrap().clone();
    assert_eq!(assertion.verified(), Some(&Ok(())));
    assert_eq!(assertion.header()["x5c"].as_array().unwrap().len(), 2);

    // AZURE_CLIENT_SEND_CERTIFICATE_CHAIN: "1" or "true" (any case) only.
    for (value, sends) in [
        ("1", true),
        ("TRUE", true),
        ("0", false),
        ("false", false),
        ("yes", false),
        ("", false),
    ] {
        s.entra.clear_requests();
        let credential = s
            .builder(&[
                ("AZURE_TENANT_ID", TENANT),
                // A new client id per case, so each makes a request.
                ("AZURE_CLIENT_ID", &format!("client-{value}-{sends}")),
                (
                    "AZURE_CLIENT_CERTIFICATE_PATH",
                    fixtures::cert("client.pem").to_str().unwrap(),
                ),
                ("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", value),
            ])
            .build()
            .unwrap();
        credential.get_token(SCOPE, None).await.unwrap();
        let header = s.entra.requests()[0].assertion().unwrap().header().clone();
        assert_eq!(header.get("x5c").is_some(), sends, "{value:?}");
    }
}

#[tokio::test]
async fn the_secret_wins_over_the_certificate() {
    let s = setup().await;
    let with_both = [
        &WITH_SECRET[..],
        &[("AZURE_CLIENT_CERTIFICATE_PATH", "/does/not/matter.pem")],
    ]
    .concat();
    let credential = s.builder(&with_both).build().unwrap();
    credential.get_token(SCOPE, None).await.unwrap();
    assert_eq!(s.entra.requests()[0].form("client_secret"), Some(SECRET));
}

#[tokio::test]
async fn nothing_configured_is_unavailable_and_names_the_variables() {
    let s = setup().await;
    for pairs in [
        &[][..],
        &[("AZURE_CLIENT_ID", CLIENT)][..],
        // What workload identity and managed identity use: not this source.
        &[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT),
            (
                "AZURE_FEDERATED_TOKEN_FILE",
                "/var/run/secrets/azure/tokens/azure-identity-token",
            ),
        ][..],
        &[("AZURE_CLIENT_SECRET", "  ")][..],
    ] {
        let err = s.builder(pairs).build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{pairs:?}: {err}");
        let text = err.to_string();
        assert!(
            text.starts_with("EnvironmentCredential: not configured"),
            "{text}"
        );
        assert!(
            text.contains("AZURE_CLIENT_SECRET") && text.contains("AZURE_CLIENT_CERTIFICATE_PATH"),
            "{text}"
        );
        assert!(err.fix().unwrap().contains("AZURE_TENANT_ID"), "{text}");
    }
    let err = s
        .builder(&[("AZURE_TENANT_ID", TENANT), ("AZURE_CLIENT_ID", CLIENT)])
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("AZURE_TENANT_ID and AZURE_CLIENT_ID are set"),
        "{err}"
    );
}

#[tokio::test]
async fn a_half_set_configuration_is_an_error_naming_what_is_missing() {
    let s = setup().await;
    let pem = fixtures::cert("client.pem").display().to_string();
    let pfx = fixtures::cert("client.pfx").display().to_string();
    let ec = fixtures::cert("ec.pem").display().to_string();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("AZURE_CLIENT_SECRET", SECRET), ("AZURE_CLIENT_ID", CLIENT)],
            "AZURE_CLIENT_SECRET is set but AZURE_TENANT_ID is not",
        ),
        (
            vec![("AZURE_CLIENT_SECRET", SECRET), ("AZURE_TENANT_ID", TENANT)],
            "AZURE_CLIENT_SECRET is set but AZURE_CLIENT_ID is not",
        ),
        (
            vec![("AZURE_CLIENT_SECRET", SECRET)],
            "AZURE_TENANT_ID and AZURE_CLIENT_ID are not",
        ),
        (
            vec![
                ("AZURE_CLIENT_CERTIFICATE_PATH", &pem),
                ("AZURE_TENANT_ID", TENANT),
            ],
            "AZURE_CLIENT_CERTIFICATE_PATH is set but AZURE_CLIENT_ID is not",
        ),
        (
            vec![
                ("AZURE_USERNAME", "user@contoso.com"),
                ("AZURE_PASSWORD", "env-user-password"),
                ("AZURE_TENANT_ID", TENANT),
                ("AZURE_CLIENT_ID", CLIENT),
            ],
            "username and password authentication is not supported",
        ),
        (
            vec![("AZURE_USERNAME", "user@contoso.com")],
            "not supported",
        ),
        (
            vec![
                ("AZURE_CLIENT_SECRET", SECRET),
                ("AZURE_CLIENT_ID", CLIENT),
                ("AZURE_TENANT_ID", "contoso.com/evil"),
            ],
            "invalid tenant id",
        ),
        (
            vec![
                ("AZURE_CLIENT_CERTIFICATE_PATH", "/nowhere/cert.pem"),
                ("AZURE_CLIENT_ID", CLIENT),
                ("AZURE_TENANT_ID", TENANT),
            ],
            "\"/nowhere/cert.pem\" does not exist",
        ),
        (
            vec![
                ("AZURE_CLIENT_CERTIFICATE_PATH", &pfx),
                ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "env-wrong-password"),
                ("AZURE_CLIENT_ID", CLIENT),
                ("AZURE_TENANT_ID", TENANT),
            ],
            if cfg!(feature = "pkcs12") {
                "wrong password"
            } else {
                "feature \"pkcs12\""
            },
        ),
        (
            vec![
                ("AZURE_CLIENT_CERTIFICATE_PATH", &ec),
                ("AZURE_CLIENT_ID", CLIENT),
                ("AZURE_TENANT_ID", TENANT),
            ],
            "an RSA key is needed",
        ),
        (
            vec![
                ("AZURE_CLIENT_SECRET", SECRET),
                ("AZURE_CLIENT_ID", CLIENT),
                ("AZURE_TENANT_ID", TENANT),
                ("AZURE_AUTHORITY_HOST", "http://login.example.com"),
            ],
            "AZURE_AUTHORITY_HOST",
        ),
    ];
    for (pairs, says) in cases {
        let err = s.builder(&pairs).build().unwrap_err();
        let text = err.to_string();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{text}");
        assert!(text.starts_with("EnvironmentCredential: "), "{text}");
        assert!(text.contains(says), "{says:?} not in {text}");
        assert!(err.fix().is_some(), "{text}");
        assert!(
            !text.contains(SECRET)
                && !text.contains("password\"")
                && !text.contains("env-wrong-password")
                && !text.contains("env-user-password"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn entra_errors_name_the_environment_credential() {
    let s = setup().await;
    s.entra.expect_client_secret("the real secret");
    let allowing_fabrikam = [
        &WITH_SECRET[..],
        &[("AZURE_ADDITIONALLY_ALLOWED_TENANTS", "fabrikam.com")],
    ]
    .concat();
    let credential = s.builder(&allowing_fabrikam).build().unwrap();
    let err = credential.get_token(SCOPE, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Authentication);
    assert_eq!(err.aadsts_codes(), &[7000215]);
    assert!(
        err.to_string()
            .starts_with("EnvironmentCredential: Microsoft Entra ID refused"),
        "{err}"
    );

    // The allow-list comes from AZURE_ADDITIONALLY_ALLOWED_TENANTS.
    s.entra.push(MockEntraReply::token("fabrikam-token"));
    s.entra.expect_client_secret(SECRET);
    let fabrikam = TokenRequestOptions::default().with_tenant_id("fabrikam.com");
    let token = credential.get_token(SCOPE, Some(&fabrikam)).await.unwrap();
    assert_eq!(token.tenant_id(), Some("fabrikam.com"));
    let contoso = TokenRequestOptions::default().with_tenant_id("contoso.com");
    assert!(
        credential
            .get_token(SCOPE, Some(&contoso))
            .await
            .unwrap_err()
            .is_invalid_input()
    );

    // The certificate goes through the Fs seam.
    let fs = Fs::memory();
    fs.write(
        "/certs/app.pem",
        std::fs::read(fixtures::cert("client.pem")).unwrap(),
    );
    let from_fs = s
        .builder(&[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", "fs-client"),
            ("AZURE_CLIENT_CERTIFICATE_PATH", "/certs/app.pem"),
        ])
        .fs(fs)
        .build()
        .unwrap();
    from_fs.get_token(SCOPE, None).await.unwrap();
}
