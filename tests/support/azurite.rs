//! Azurite, the Azure Storage emulator users run locally (npm package `azurite`), as a child
//! process of the test: its Blob service in OAuth mode (`--oauth basic`) over HTTPS with a
//! certificate made for the test, on a free loopback port, in memory, without telemetry.
//!
//! In OAuth basic mode Azurite accepts a bearer JWT without checking its signature, but checks
//! its claims: `nbf`, `exp` and `iat` present and `nbf <= now <= exp` (403 "Lifetime validation
//! failed. The token is expired."), an `iss` starting with an Entra issuer such as
//! `https://sts.windows.net/` ("Invalid token issuer."), and an `aud` of
//! `https://storage.azure.com`, Storage's app id or the account's blob endpoint ("Invalid token
//! audience."). `MockReply::jwt` issues such tokens. Bearer tokens over plain http are refused,
//! hence the certificate.
//!
//! Where `azurite-blob` is: `$AZURITE_BLOB` (`.ci/run` installs Azurite with npm into a cache
//! directory and sets it), else `azurite-blob` on `PATH`. Without it, [`Azurite::start`] prints
//! why and returns `None` (the test passes as skipped), unless
//! `AZURE_CREDENTIALS_REQUIRE_AZURITE` is set (as `.ci/run` sets it): then it panics.
//!
//! A test needs a few lines:
//!
//! ```ignore
//! let Some(azurite) = Azurite::start("my-test").await else { return };
//! let imds = azurite::managed_identity().await;        // the mock, issuing Entra-shaped JWTs
//! let credential = azurite::default_credential(&imds); // the chain finding it
//! azurite.create_container(&azurite.setup_token(), "data").await;
//! let client = azurite.client();                       // reqwest, trusting the certificate
//! let blob = azurite.blob_url("data", "hello.txt");    // https://127.0.0.1:PORT/devstoreaccount1/data/hello.txt
//! // PUT it with `x-ms-blob-type: BlockBlob` and `x-ms-version: azurite::API_VERSION`.
//! ```

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use azure_credentials::DefaultAzureCredential;
use azure_credentials::system::{Clock, Env};
use azure_credentials::testing::{MockManagedIdentity, MockReply};
use parking_lot::Mutex;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use url::Url;

use super::fixtures;

/// The variable naming the `azurite-blob` executable.
pub const AZURITE_BLOB: &str = "AZURITE_BLOB";
/// When set, a missing Azurite fails the test instead of skipping it.
pub const REQUIRE: &str = "AZURE_CREDENTIALS_REQUIRE_AZURITE";
/// Azurite's built-in account (path-style URLs on an IP host name it in the first segment).
pub const ACCOUNT: &str = "devstoreaccount1";
/// The Blob REST API version the tests' plain requests send.
pub const API_VERSION: &str = "2021-08-06";
/// What Azurite prints once it listens: `… successfully listens on https://127.0.0.1:PORT`.
const LISTENING: &str = "successfully listens on ";
/// An upper bound for Node to start Azurite on a slow, busy machine (not a measure).
const START_BOUND: Duration = Duration::from_secs(90);

/// A running Azurite Blob service, killed when dropped.
pub struct Azurite {
    child: Child,
    base: Url,
    certificate: CertificateDer<'static>,
    certificate_pem: String,
    output: Arc<Mutex<String>>,
    dir: PathBuf,
}

/// The `azurite-blob` executable, or `None` (with a message) when it is not installed and not
/// required.
pub fn executable() -> Option<PathBuf> {
    let env = Env::process();
    if let Some(path) = env.var(AZURITE_BLOB) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{AZURITE_BLOB}={} is not a file (reinstall Azurite or unset the variable)",
            path.display()
        );
        return Some(path);
    }
    let on_path = env.var("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("azurite-blob"))
            .find(|candidate| candidate.is_file())
    });
    if on_path.is_some() {
        return on_path;
    }
    if env.is_set(REQUIRE) {
        panic!(
            "Azurite is required ({REQUIRE}) but {AZURITE_BLOB} is unset and azurite-blob is not on PATH"
        );
    }
    // Straight to stderr, past the test harness's capture (a skip must be seen), in one write,
    // once per test binary.
    static SKIP_NOTICE: std::sync::Once = std::sync::Once::new();
    SKIP_NOTICE.call_once(|| {
        let notice = format!(
            "\nSKIPPED: the Azurite tests need Azurite: run .ci/run, or `npm install --prefix DIR \
             azurite` and set {AZURITE_BLOB}=DIR/node_modules/.bin/azurite-blob\n"
        );
        let _ = std::io::stderr().write_all(notice.as_bytes());
    });
    None
}

impl Azurite {
    /// Starts Azurite's Blob service for the test `name` (see the module docs), or returns
    /// `None` when Azurite is not installed and not required.
    ///
    /// # Panics
    ///
    /// If Azurite is required but missing, or does not start.
    pub async fn start(name: &str) -> Option<Azurite> {
        let executable = executable()?;
        let dir = fixtures::scratch_dir("azurite", name);
        // A fresh certificate (and key) for 127.0.0.1: nothing private is committed.
        let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let certificate_pem = generated.cert.pem();
        std::fs::write(dir.join("cert.pem"), &certificate_pem).unwrap();
        std::fs::write(dir.join("key.pem"), generated.signing_key.serialize_pem()).unwrap();

        let mut child = Command::new(&executable)
            .args(["--blobHost", "127.0.0.1", "--blobPort", "0"])
            .args(["--oauth", "basic", "--cert", "cert.pem", "--key", "key.pem"])
            // Whatever API version the client speaks; blobs in memory, nothing on disk.
            .args(["--skipApiVersionCheck", "--inMemoryPersistence"])
            // No telemetry to Application Insights (Azurite sends it by default): the tests
            // talk to loopback only. No access log on stdout.
            .args(["--disableTelemetry", "--silent"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", executable.display()));

        let output = Arc::new(Mutex::new(String::new()));
        let (listening, mut listening_rx) = tokio::sync::mpsc::unbounded_channel();
        collect(child.stdout.take(), output.clone(), Some(listening));
        collect(child.stderr.take(), output.clone(), None);
        let base = tokio::select! {
            Some(base) = listening_rx.recv() => base,
            status = child.wait() => panic!(
                "Azurite ({}) exited ({status:?}) before listening:\n{}",
                executable.display(),
                output.lock()
            ),
            () = tokio::time::sleep(START_BOUND) => panic!(
                "Azurite ({}) did not listen within {START_BOUND:?}:\n{}",
                executable.display(),
                output.lock()
            ),
        };
        Some(Azurite {
            child,
            base,
            certificate: generated.cert.der().clone(),
            certificate_pem,
            output,
            dir,
        })
    }

    /// The account's Blob endpoint: `https://127.0.0.1:PORT/devstoreaccount1` (path style: the
    /// account is the first segment).
    pub fn account_url(&self) -> Url {
        self.base.join(ACCOUNT).unwrap()
    }

    /// `https://127.0.0.1:PORT/devstoreaccount1/{container}`.
    pub fn container_url(&self, container: &str) -> Url {
        let mut url = self.account_url();
        url.path_segments_mut().unwrap().push(container);
        url
    }

    /// `https://127.0.0.1:PORT/devstoreaccount1/{container}/{blob}` (`blob`'s `/` separate
    /// path segments).
    pub fn blob_url(&self, container: &str, blob: &str) -> Url {
        let mut url = self.container_url(container);
        url.path_segments_mut().unwrap().extend(blob.split('/'));
        url
    }

    /// The server's (self-signed) certificate, to trust.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    /// The server's certificate in PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// A rustls client configuration (ring, as this crate builds rustls) trusting only the
    /// server's certificate.
    pub fn tls_config(&self) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.certificate.clone()).unwrap();
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
    }

    /// A reqwest client trusting only the server's certificate, with no proxy.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_backend_preconfigured(self.tls_config())
            .no_proxy()
            .build()
            .unwrap()
    }

    /// A token Azurite accepts, made by the test (not by the code under test), for setting up.
    pub fn setup_token(&self) -> String {
        storage_jwt(
            Clock::system().now().unix_timestamp(),
            "https://storage.azure.com",
        )
    }

    /// Creates `container` with a plain Blob REST request (`PUT …?restype=container`) bearing
    /// `token` (object_store cannot create containers).
    ///
    /// # Panics
    ///
    /// Unless Azurite answers `201 Created`.
    pub async fn create_container(&self, token: &str, container: &str) {
        let mut url = self.container_url(container);
        url.set_query(Some("restype=container"));
        let response = self
            .client()
            .put(url)
            .bearer_auth(token)
            .header("x-ms-version", API_VERSION)
            .header("content-length", "0")
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, 201, "creating container {container}: {body}");
    }

    /// What Azurite printed so far (its start-up lines; errors).
    pub fn output(&self) -> String {
        self.output.lock().clone()
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        // The private key and certificate are the test's own; remove them.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads `stream` line by line into `output`; the first listening line's URL goes to `listening`.
fn collect(
    stream: Option<impl AsyncRead + Unpin + Send + 'static>,
    output: Arc<Mutex<String>>,
    listening: Option<tokio::sync::mpsc::UnboundedSender<Url>>,
) {
    let Some(stream) = stream else { return };
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(listening) = &listening
                && let Some((_, url)) = line.split_once(LISTENING)
                && let Ok(url) = Url::parse(url.trim())
            {
                let _ = listening.send(url);
            }
            let mut output = output.lock();
            output.push_str(&line);
            output.push('\n');
        }
    });
}

/// An unsigned JWT with the claims Azurite checks, issued at `now` (Unix seconds) for `audience`
/// and valid for an hour.
pub fn storage_jwt(now: i64, audience: &str) -> String {
    let claims = serde_json::json!({
        "aud": audience,
        "iss": format!("https://sts.windows.net/{}/", MockManagedIdentity::TENANT_ID),
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "tid": MockManagedIdentity::TENANT_ID,
    });
    super::jwt::jwt(&claims.to_string(), "test-setup-signature")
}

/// `DefaultAzureCredential` on a machine whose only identity is `imds` (see
/// [`managed_identity`]), with a cache of its own.
pub fn default_credential(imds: &MockManagedIdentity) -> DefaultAzureCredential {
    super::default_chain::only_managed_identity(imds.imds_endpoint())
        .build()
        .unwrap()
}

/// A managed identity (the mock) whose tokens are JWTs with Entra's claims for the requested
/// resource ([`MockReply::jwt`]): what Azurite accepts for `https://storage.azure.com`.
pub async fn managed_identity() -> MockManagedIdentity {
    let imds = MockManagedIdentity::start().await;
    imds.set_default(MockReply::jwt());
    imds
}
