//! ClientCertificateCredential against the loopback Entra mock, which verifies each assertion's
//! signature with the test certificate (fixtures/certs/): the exact form, the JWT's header and
//! claims, the chain, ADFS, and every kind of bad certificate input.

mod support;
use support::fixtures;

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::digest;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use azure_credentials::system::{Env, Fs, RetryPolicy};
use azure_credentials::{
    ClientCertificateCredential, ClientCertificateCredentialBuilder, ErrorKind, TokenCredential,
    TokenRequestOptions,
};

const TENANT: &str = "contoso.onmicrosoft.com";
const CLIENT: &str = "00000000-0000-0000-0000-0000000000c2";
const PASSWORD: &str = "fixture-password";
/// 2030-01-01T00:00:00Z.
const NOW: i64 = 1_893_456_000;

fn leaf_der() -> Vec<u8> {
    CertificateDer::from_pem_file(fixtures::cert("client-cert.pem"))
        .unwrap()
        .to_vec()
}

fn ca_der() -> Vec<u8> {
    CertificateDer::from_pem_file(fixtures::cert("ca.pem"))
        .unwrap()
        .to_vec()
}

use support::entra::Setup;
use support::entra::setup_verifying_assertions as setup;
use support::scopes::STORAGE as SCOPE;

impl Setup {
    fn builder(&self, file: &str) -> ClientCertificateCredentialBuilder {
        ClientCertificateCredential::builder()
            .tenant_id(TENANT)
            .client_id(CLIENT)
            .certificate_path(fixtures::cert(file))
            .authority_host(self.entra.authority_host())
            .env(Env::empty())
            .cache(self.cache.clone())
            .retry_policy(RetryPolicy::none())
    }
}

#[tokio::test]
async fn the_assertion_is_a_signed_ps256_jwt_for_the_token_endpoint() {
    let s = setup().await;
    let credential = s.builder("client.pem").build().unwrap();
    let token = credential.get_token(SCOPE, None).await.unwrap();
    assert_eq!(token.source(), "ClientCertificateCredential");
    assert_eq!(token.client_id(), Some(CLIENT));

    let request = &s.entra.requests()[0];
    assert_eq!(
        request.form_names(),
        [
            "client_id",
            "client_assertion_type",
            "client_assertion",
            "grant_type",
            "scope"
        ]
    );
    assert_eq!(request.form("client_id"), Some(CLIENT));
    assert_eq!(
        request.form("client_assertion_type"),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    assert_eq!(request.form("grant_type"), Some("client_credentials"));
    assert_eq!(request.form("scope"), Some(SCOPE[0]));

    let assertion = request.assertion().expect("a JWT assertion");
    assert_eq!(
        assertion.verified(),
        Some(&Ok(())),
        "signature, thumbprint and claims"
    );
    let thumbprint = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, &leaf_der()));
    assert_eq!(
        assertion.header(),
        &serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": thumbprint})
    );
    let claims = assertion.claims().as_object().unwrap();
    let mut names: Vec<&str> = claims.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["aud", "exp", "iss", "jti", "nbf", "sub"]);
    assert_eq!(claims["aud"], s.entra.token_endpoint(TENANT));
    assert_eq!(claims["iss"], CLIENT);
    assert_eq!(claims["sub"], CLIENT);
    assert_eq!(claims["nbf"], NOW);
    assert_eq!(claims["exp"], NOW + 600);
    let jti = claims["jti"].as_str().unwrap();
    assert_eq!(jti.len(), 36, "{jti}");

    // Every request gets a new assertion with a new id (a claims request bypasses the cache).
    let options = TokenRequestOptions::default().with_claims(r#"{"access_token":{}}"#);
    credential.get_token(SCOPE, Some(&options)).await.unwrap();
    let second = s.entra.requests()[1].assertion().unwrap().clone();
    assert_eq!(second.verified(), Some(&Ok(())));
    assert_ne!(second.claims()["jti"], jti);
}

#[tokio::test]
async fn every_file_format_signs_with_the_same_certificate() {
    let s = setup().await;
    let expected = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, &leaf_der()));
    #[allow(unused_mut)] // PKCS#12 only with the feature.
    let mut cases: Vec<(&str, Option<&str>)> = vec![
        ("client.pem", None),
        ("client-pkcs1.pem", None),
        ("client-chain.pem", None),
    ];
    #[cfg(feature = "pkcs12")]
    cases.extend([
        ("client.pfx", Some(PASSWORD)),
        ("client-legacy.pfx", Some(PASSWORD)),
        ("client-nopass.pfx", None),
        ("client-unencrypted.pfx", None),
    ]);
    for (i, (file, password)) in cases.into_iter().enumerate() {
        let mut builder = s.builder(file).client_id(format!("client-{i}"));
        if let Some(password) = password {
            builder = builder.password(password);
        }
        let credential = builder.build().unwrap_or_else(|e| panic!("{file}: {e}"));
        credential
            .get_token(SCOPE, None)
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let request = s.entra.requests().pop().unwrap();
        let assertion = request.assertion().unwrap();
        assert_eq!(assertion.verified(), Some(&Ok(())), "{file}");
        assert_eq!(assertion.header()["x5t#S256"], expected, "{file}");
        let debug = format!("{credential:?}");
        assert!(debug.contains(credential.thumbprint()), "{debug}");
    }
    // The same bytes through the Fs seam and as bytes.
    let fs = Fs::memory();
    fs.write(
        "/secrets/app.pem",
        std::fs::read(fixtures::cert("client.pem")).unwrap(),
    );
    s.builder("ignored")
        .certificate_path("/secrets/app.pem")
        .fs(fs)
        .build()
        .unwrap();
    let (file, password) = fixtures::chain_cert();
    let mut builder = s
        .builder("ignored")
        .certificate(std::fs::read(file).unwrap());
    if let Some(password) = password {
        builder = builder.password(password);
    }
    builder.build().unwrap();
}

#[tokio::test]
async fn the_chain_is_sent_as_x5c_when_asked() {
    let s = setup().await;
    let (file, password) = fixtures::chain_cert();
    let mut builder = s.builder("ignored").certificate_path(file);
    if let Some(password) = password {
        builder = builder.password(password);
    }
    let credential = builder.send_certificate_chain(true).build().unwrap();
    credential.get_token(SCOPE, None).await.unwrap();
    let request = &s.entra.requests()[0];
    let assertion = request.assertion().unwrap();
    assert_eq!(assertion.verified(), Some(&Ok(())));
    assert_eq!(
        assertion.header()["x5c"],
        serde_json::json!([STANDARD.encode(leaf_der()), STANDARD.encode(ca_der())])
    );
    // Not sent unless asked.
    let plain = s
        .builder("client-chain.pem")
        .client_id("other")
        .build()
        .unwrap();
    plain.get_token(SCOPE, None).await.unwrap();
    assert!(
        s.entra.requests()[1]
            .assertion()
            .unwrap()
            .header()
            .get("x5c")
            .is_none()
    );
}

#[tokio::test]
async fn adfs_gets_rs256_with_a_sha1_thumbprint_at_its_own_endpoint() {
    let s = setup().await;
    let credential = s.builder("client.pem").tenant_id("adfs").build().unwrap();
    credential.get_token(SCOPE, None).await.unwrap();
    let request = &s.entra.requests()[0];
    assert_eq!(request.path(), "/adfs/oauth2/token");
    let assertion = request.assertion().unwrap();
    assert_eq!(assertion.verified(), Some(&Ok(())));
    assert_eq!(assertion.header()["alg"], "RS256");
    assert!(assertion.header().get("x5t").is_some());
    assert!(assertion.header().get("x5t#S256").is_none());
    assert_eq!(
        assertion.claims()["aud"],
        format!("{}/adfs/oauth2/token", s.entra.authority_host())
    );
}

#[tokio::test]
async fn an_assertion_the_app_does_not_know_is_refused_by_entra() {
    let s = setup().await;
    // Entra knows another certificate (the CA's key) for this app.
    s.entra
        .verify_assertions_with(&std::fs::read(fixtures::cert("ca.pem")).unwrap());
    let credential = s.builder("client.pem").build().unwrap();
    let err = credential.get_token(SCOPE, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Authentication, "{err}");
    assert_eq!(err.aadsts_codes(), &[700027]);
    assert!(err.fix().unwrap().contains("uploaded"), "{err}");
    assert!(
        s.entra.requests()[0]
            .assertion()
            .unwrap()
            .verified()
            .unwrap()
            .is_err()
    );
}

/// Without the feature `pkcs12`, a PKCS#12 file (told by its content, or by its name when its
/// content is not PEM) is refused when the credential is built, with an error naming the
/// feature and the command that converts the file to PEM. PEM keeps working, and DER that is
/// not PKCS#12 keeps its own error.
#[cfg(not(feature = "pkcs12"))]
#[tokio::test]
async fn without_the_pkcs12_feature_a_pfx_is_refused_naming_the_feature_and_the_conversion() {
    let s = setup().await;
    let dir = fixtures::scratch_dir("pkcs12-off", "certs");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let pfx = std::fs::read(fixtures::cert("client.pfx")).unwrap();
    let convert = "openssl pkcs12 -in cert.pfx -out cert.pem -nodes";
    let check = |err: azure_credentials::Error, origin: &str| {
        let text = err.to_string();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{text}");
        assert!(text.starts_with("ClientCertificateCredential: "), "{text}");
        assert!(text.contains(origin), "{origin:?} not in {text}");
        assert!(text.contains("PKCS#12"), "{text}");
        assert!(text.contains("feature \"pkcs12\""), "{text}");
        assert!(text.contains(convert), "{text}");
        assert!(err.fix().unwrap().contains(convert), "{text}");
        assert!(!text.contains(PASSWORD), "{text}");
    };
    for (path, password) in [
        // By content, whatever the name: with or without a password, legacy, EC.
        (fixtures::cert("client.pfx"), Some(PASSWORD)),
        (fixtures::cert("client.pfx"), None),
        (fixtures::cert("client-legacy.pfx"), Some(PASSWORD)),
        (fixtures::cert("client-nopass.pfx"), None),
        (fixtures::cert("ec.pfx"), Some(PASSWORD)),
        (write("renamed.pem", &pfx), Some(PASSWORD)),
        (write("truncated.bin", &pfx[..pfx.len() / 2]), None),
        // By name, when the content is not PEM.
        (write("garbage.p12", b"not a certificate"), None),
        (write("empty.PFX", b""), None),
    ] {
        let mut builder = s.builder("ignored").certificate_path(&path);
        if let Some(password) = password {
            builder = builder.password(password);
        }
        let err = builder.build().unwrap_err();
        check(err, &format!("{:?}", path.display().to_string()));
    }
    // The bytes of a PKCS#12 file, and EnvironmentCredential's certificate path.
    let err = s
        .builder("ignored")
        .certificate(pfx.clone())
        .password(PASSWORD)
        .build()
        .unwrap_err();
    check(err, "the certificate is a PKCS#12");
    let err = azure_credentials::EnvironmentCredential::builder()
        .env(Env::from_pairs([
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT),
            (
                "AZURE_CLIENT_CERTIFICATE_PATH",
                fixtures::cert("client.pfx").to_str().unwrap(),
            ),
            ("AZURE_CLIENT_CERTIFICATE_PASSWORD", PASSWORD),
        ]))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("feature \"pkcs12\""), "{err}");

    // A DER certificate that is not PKCS#12 keeps the plain error, which offers PEM only.
    let der = write("client.cer", &leaf_der());
    let err = s
        .builder("ignored")
        .certificate_path(&der)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("neither PEM nor PKCS#12"), "{err}");
    assert!(!err.to_string().contains("feature \"pkcs12\""), "{err}");
    // PEM works, a PEM file named .pfx included.
    let renamed = write(
        "pem-named.pfx",
        &std::fs::read(fixtures::cert("client.pem")).unwrap(),
    );
    for path in [fixtures::cert("client.pem"), renamed] {
        let credential = s
            .builder("ignored")
            .certificate_path(&path)
            .build()
            .unwrap();
        credential.get_token(SCOPE, None).await.unwrap();
    }
}

#[tokio::test]
async fn bad_certificates_are_clear_errors_at_build() {
    let s = setup().await;
    let dir = std::env::temp_dir().join(format!("azure-credentials-certs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let cert_only = std::fs::read(fixtures::cert("client-cert.pem")).unwrap();
    let encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n";
    #[allow(unused_mut)] // PKCS#12 only with the feature.
    let mut cases: Vec<(PathBuf, Option<&str>, &str)> = vec![
        (dir.join("missing.pem"), None, "does not exist"),
        (dir.clone(), None, "cannot be read"),
        (
            write("garbage.pem", b"this is not a certificate"),
            None,
            "neither PEM nor PKCS#12",
        ),
        (write("empty.pem", b""), None, "neither PEM nor PKCS#12"),
        (
            write(
                "broken.pem",
                b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            ),
            None,
            "not valid PEM",
        ),
        (
            write("cert-only.pem", &cert_only),
            None,
            "holds no private key",
        ),
        (
            write("encrypted.pem", encrypted),
            None,
            "encrypted PEM private key",
        ),
        (
            fixtures::cert("wrong-key.pem"),
            None,
            "holds no certificate for its private key",
        ),
        (
            fixtures::cert("ec.pem"),
            None,
            "EC private key; an RSA key is needed",
        ),
    ];
    #[cfg(feature = "pkcs12")]
    {
        let pfx = std::fs::read(fixtures::cert("client.pfx")).unwrap();
        cases.extend([
            (
                fixtures::cert("ec.pfx"),
                Some(PASSWORD),
                "EC private key; an RSA key is needed",
            ),
            (
                fixtures::cert("client.pfx"),
                Some("wrong password"),
                "wrong password",
            ),
            (
                fixtures::cert("client.pfx"),
                None,
                "protected by a password and none was given",
            ),
            (
                fixtures::cert("client-legacy.pfx"),
                Some("wrong"),
                "wrong password",
            ),
            (
                write("truncated.pfx", &pfx[..pfx.len() / 2]),
                Some(PASSWORD),
                "neither valid PEM nor a valid PKCS#12",
            ),
            (
                write("der-garbage.pfx", &[0x30, 0x82, 0xff, 0xff, 1, 2, 3]),
                None,
                "neither valid PEM nor a valid PKCS#12",
            ),
        ]);
    }
    for (path, password, says) in cases {
        let mut builder = s.builder("ignored").certificate_path(&path);
        if let Some(password) = password {
            builder = builder.password(password);
        }
        let err = builder.build().unwrap_err();
        let text = err.to_string();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{text}");
        assert!(text.starts_with("ClientCertificateCredential: "), "{text}");
        assert!(text.contains(says), "{says:?} not in {text}");
        assert!(
            text.contains(&format!("{:?}", path.display().to_string())),
            "the path: {text}"
        );
        assert!(err.fix().is_some(), "{text}");
        assert!(
            !text.contains(PASSWORD) && !text.contains("wrong password\""),
            "{text}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();

    // Bytes instead of a file say so; no certificate at all is an error too.
    let err = s
        .builder("x")
        .certificate(b"nonsense".to_vec())
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the certificate is neither PEM nor PKCS#12"),
        "{err}"
    );
    let err = ClientCertificateCredential::builder()
        .tenant_id(TENANT)
        .client_id(CLIENT)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("no certificate"), "{err}");
    // Other options are validated too.
    let err = s
        .builder("client.pem")
        .authority_host("http://login.example.com")
        .build()
        .unwrap_err();
    assert!(err.is_invalid_input());
    let err = s
        .builder("client.pem")
        .tenant_id("not/a tenant")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("invalid tenant id"), "{err}");
}
