//! Python azure-identity and this crate share a persisted token cache, both ways: a token one
//! of them fetched (and kept with unencrypted storage in `~/.IdentityService/msal.cache.nocae`)
//! is found by the other, with the same client, tenant and authority, without a token request.
//!
//! Python runs `azure-identity==1.27.0` from a virtualenv under `target/` (made when missing;
//! the tests print `SKIPPED: ...` and pass when PyPI cannot be reached) against `MockEntra`
//! behind an https front (azure-identity refuses http authorities) whose self-signed
//! certificate Python trusts through `REQUESTS_CA_BUNDLE` and our credential by its pin. Both
//! sides get a scratch `HOME`; this process's own environment is never changed.

mod support;
use support::{fixtures, python, tls};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use azure_credentials::system::{Env, Http, RetryPolicy};
use azure_credentials::testing::MockEntra;
use azure_credentials::{
    ClientSecretCredential, TokenCache, TokenCachePersistence, TokenCredential,
};

const AZURE_IDENTITY: &str = "azure-identity==1.27.0";
const TENANT: &str = "6a1d8ee1-0000-4000-8000-00000000a7e1";
const CLIENT: &str = "6a1d8ee1-0000-4000-8000-0000000000c1";
const SECRET: &str = "shared-cache-secret";
const SCOPE: &str = "https://vault.azure.net/.default";

/// Gets a token for argv's scope with a ClientSecretCredential persisting its cache
/// unencrypted, and prints it (mock tokens only).
const SCRIPT: &str = r#"
import sys
from azure.identity import ClientSecretCredential, TokenCachePersistenceOptions

tenant, client, secret, authority, scope = sys.argv[1:6]
credential = ClientSecretCredential(
    tenant, client, secret, authority=authority, disable_instance_discovery=True,
    cache_persistence_options=TokenCachePersistenceOptions(allow_unencrypted_storage=True),
)
print("TOKEN " + credential.get_token(scope).token)
"#;

/// A MockEntra with an https front: the mock, the front's authority (`https://127.0.0.1:PORT`),
/// the certificate's PEM and SHA-1 thumbprint.
struct Entra {
    mock: MockEntra,
    authority: String,
    pem: String,
    pin: [u8; 20],
}

async fn entra() -> Entra {
    let mock = MockEntra::start().await;
    let (cert, key, pem) = tls::self_signed_with_pem();
    let pin = tls::sha1(&cert);
    let front = mock.serve_tls(vec![cert], key).await;
    Entra {
        mock,
        authority: front.as_str().trim_end_matches('/').to_owned(),
        pem,
        pin,
    }
}

impl Entra {
    /// The token requests received (the OpenID configuration document MSAL reads is not one).
    fn token_requests(&self) -> usize {
        self.mock
            .requests()
            .iter()
            .filter(|r| r.path().ends_with("/oauth2/v2.0/token"))
            .count()
    }

    /// What the mock received, method and path, for failure messages.
    fn seen(&self) -> Vec<String> {
        self.mock
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method(), r.path()))
            .collect()
    }
}

/// A new process's credential: a fresh in-memory cache, the persistent one under `home`.
async fn rust_token(entra: &Entra, home: &Path) -> String {
    let http = Http::builder()
        .pin_server_certificate_sha1(entra.pin)
        .build()
        .unwrap();
    let credential = ClientSecretCredential::builder()
        .tenant_id(TENANT)
        .client_id(CLIENT)
        .secret(SECRET)
        .authority_host(&entra.authority)
        .env(Env::from_pairs([("HOME", home.to_str().unwrap())]))
        .http(http)
        .cache(TokenCache::builder().build())
        .retry_policy(RetryPolicy::none())
        .persistence(TokenCachePersistence::new().allow_unencrypted_storage(true))
        .build()
        .unwrap();
    credential
        .get_token(&[SCOPE], None)
        .await
        .unwrap()
        .token()
        .expose()
        .to_owned()
}

/// Runs the script with `home` as HOME and the front's certificate as the only CA; the token
/// it printed.
async fn python_token(python: PathBuf, entra: &Entra, home: &Path) -> String {
    python_token_for(python, entra, home, SCOPE).await
}

async fn python_token_for(python: PathBuf, entra: &Entra, home: &Path, scope: &str) -> String {
    let ca = home.join("mock-entra-ca.pem");
    std::fs::write(&ca, &entra.pem).unwrap();
    let script = home.join("get_token.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let mut command = Command::new(python);
    command
        .arg(&script)
        .args([TENANT, CLIENT, SECRET, &entra.authority, scope])
        .env_clear()
        .env("HOME", home)
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("SSL_CERT_FILE", &ca)
        .env("NO_PROXY", "127.0.0.1");
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed:\n{stdout}{}\nthe mock saw {:?}",
        String::from_utf8_lossy(&out.stderr),
        entra.seen()
    );
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("TOKEN "))
        .unwrap_or_else(|| panic!("python printed no token:\n{stdout}"))
        .to_owned()
}

/// The virtualenv's python (made once for the tests of this binary, which run at once).
fn azure_identity() -> Option<PathBuf> {
    static PYTHON: OnceLock<Option<PathBuf>> = OnceLock::new();
    PYTHON
        .get_or_init(|| python::venv("azure-identity-1.27.0", AZURE_IDENTITY))
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_python_azure_identity_persisted_is_ours_without_a_request() {
    let Some(python) = azure_identity() else {
        return;
    };
    let entra = entra().await;
    let home = fixtures::scratch_dir("azure-identity-python", "python-first");

    let from_python = python_token(python, &entra, &home).await;
    assert_eq!(entra.token_requests(), 1, "{:?}", entra.seen());
    let from_rust = rust_token(&entra, &home).await;

    assert_eq!(from_rust, from_python);
    assert_eq!(entra.token_requests(), 1, "{:?}", entra.seen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_we_persisted_is_python_azure_identitys_without_a_request() {
    let Some(python) = azure_identity() else {
        return;
    };
    let entra = entra().await;
    let home = fixtures::scratch_dir("azure-identity-python", "rust-first");

    let from_rust = rust_token(&entra, &home).await;
    assert_eq!(entra.token_requests(), 1, "{:?}", entra.seen());
    let from_python = python_token(python, &entra, &home).await;

    assert_eq!(from_python, from_rust);
    // MSAL's only request: the OpenID configuration document it reads before anything else.
    assert_eq!(
        entra.seen(),
        [
            format!("POST /{TENANT}/oauth2/v2.0/token"),
            format!("GET /{TENANT}/v2.0/.well-known/openid-configuration"),
        ]
    );
}

/// msal-extensions as `pip install azure-identity` installs it (without portalocker) locks the
/// cache by creating `msal.cache.nocae.lockfile` exclusively and deleting it afterwards; ours
/// speaks that protocol too (and flocks the file, as portalocker does), so Python can write
/// after we did. (Before our lock deleted its file, Python's write waited 5 s and failed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_azure_identity_writes_a_cache_we_wrote_before() {
    let Some(python) = azure_identity() else {
        return;
    };
    let entra = entra().await;
    let home = fixtures::scratch_dir("azure-identity-python", "python-writes-after-us");

    rust_token(&entra, &home).await;
    // Another scope: a miss, so Python fetches and writes under the lock.
    python_token_for(python, &entra, &home, "https://storage.azure.com/.default").await;
    assert_eq!(entra.token_requests(), 2, "{:?}", entra.seen());
}
