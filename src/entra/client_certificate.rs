//! [`ClientCertificateCredential`]: a service principal with a certificate, and
//! [`ClientCertificate`], the certificate and key it signs assertions with.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::digest;
use ring::signature::RsaKeyPair;
use rustls_pki_types::pem::{PemObject, SectionKind};
use time::OffsetDateTime;
use url::Url;

use super::assertion::{AssertionFor, client_assertion};
use super::{ClientProof, EntraClient, EntraOptions, entra_debug, entra_setters};
use crate::context::seam_setters;
use crate::credential::delegate_token_credential;
use crate::der::{self, OID_EC, OID_RSA};
use crate::setters::debug_fields;
use crate::system::Fs;
use crate::{AccessToken, CachedCredential, Context, Error, Secret, TokenFetcher, TokenRequest};

const NAME: &str = "ClientCertificateCredential";
/// The largest certificate file read (a PKCS#12 file with a long chain is a few tens of KB).
pub(crate) const MAX_CERTIFICATE_BYTES: u64 = 1024 * 1024;

/// A service principal (an app registration) that authenticates with a certificate: each
/// token request carries a client assertion (a JWT) signed with the certificate's private key.
///
/// The certificate is a PEM file (the certificate, optionally its chain, and an unencrypted
/// PKCS#8 or PKCS#1 RSA private key, in any order) or, with the crate's feature `pkcs12`, a
/// PKCS#12 (`.pfx`, `.p12`) file, with or without a password. Without the feature a PKCS#12 file
/// is refused with an [`InvalidInput`](crate::ErrorKind::InvalidInput) error that names the
/// feature and the command converting the file to PEM:
/// `openssl pkcs12 -in cert.pfx -out cert.pem -nodes`. The certificate is read and checked once,
/// when the credential is built; the key never leaves the credential and is never printed.
///
/// ```no_run
/// // With the feature "pkcs12"; a PEM file needs no password.
/// use azure_credentials::{ClientCertificateCredential, TokenCredential};
///
/// # async fn run() -> Result<(), azure_credentials::Error> {
/// let credential = ClientCertificateCredential::builder()
///     .tenant_id("00000000-0000-0000-0000-000000000000")
///     .client_id("00000000-0000-0000-0000-000000000001")
///     .certificate_path("/etc/secrets/app.pfx")
///     .password("pfx password")
///     .build()?;
/// let token = credential.get_token(&["https://vault.azure.net/.default"], None).await?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
///
/// Assertions are signed `PS256` and name the certificate by its SHA-256 thumbprint
/// (`x5t#S256`); for the `adfs` tenant, `RS256` with the SHA-1 thumbprint (`x5t`). With
/// [`send_certificate_chain`](ClientCertificateCredentialBuilder::send_certificate_chain) the
/// chain goes along as `x5c`, as subject name / issuer authentication needs.
#[derive(Clone)]
pub struct ClientCertificateCredential {
    credential: CachedCredential,
    client: EntraClient,
    thumbprint: Arc<str>,
}

impl ClientCertificateCredential {
    /// A credential for `client_id` in `tenant_id` with the certificate file at `path` (PEM, or
    /// with the feature `pkcs12` PKCS#12 without a password), other options from the environment
    /// and the defaults.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when the file is missing, unreadable or invalid, its key does not fit, or an option
    /// is invalid: see [`ClientCertificateCredentialBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use azure_credentials::ClientCertificateCredential;
    ///
    /// let credential = ClientCertificateCredential::new(
    ///     "contoso.onmicrosoft.com",
    ///     "00000000-0000-0000-0000-000000000001",
    ///     "/etc/secrets/app.pem",
    /// )?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        path: impl Into<PathBuf>,
    ) -> Result<Self, Error> {
        ClientCertificateCredential::builder()
            .tenant_id(tenant_id)
            .client_id(client_id)
            .certificate_path(path)
            .build()
    }

    /// Options for a client certificate credential, validated by
    /// [`build`](ClientCertificateCredentialBuilder::build).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use azure_credentials::ClientCertificateCredential;
    ///
    /// let credential = ClientCertificateCredential::builder()
    ///     .tenant_id("contoso.onmicrosoft.com")
    ///     .client_id("00000000-0000-0000-0000-000000000001")
    ///     .certificate_path("/etc/secrets/app.pfx")
    ///     .password(std::env::var("APP_PFX_PASSWORD")?)
    ///     .send_certificate_chain(true) // subject name / issuer authentication
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> ClientCertificateCredentialBuilder {
        ClientCertificateCredentialBuilder::default()
    }

    /// The SHA-1 thumbprint of the certificate, in upper-case hex as the Azure portal shows it.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }
}

delegate_token_credential!(ClientCertificateCredential => credential);

entra_debug!(ClientCertificateCredential(client) { thumbprint });

/// Where a certificate comes from: what a builder was given.
#[derive(Clone)]
pub(crate) enum CertificateSource {
    Path(PathBuf),
    Bytes(Arc<[u8]>),
}

impl CertificateSource {
    /// Reads (from `fs`) and parses the certificate.
    pub(crate) fn load(
        &self,
        credential: &'static str,
        fs: &Fs,
        password: Option<&Secret>,
    ) -> Result<ClientCertificate, Error> {
        match self {
            CertificateSource::Path(path) => {
                ClientCertificate::read(credential, fs, path, password)
            }
            CertificateSource::Bytes(bytes) => {
                ClientCertificate::parse(credential, bytes, password, "the certificate")
            }
        }
    }

    /// What `Debug` shows: the path, or the length of the bytes.
    fn describe(&self) -> String {
        match self {
            CertificateSource::Path(path) => path.display().to_string(),
            CertificateSource::Bytes(bytes) => format!("<{} bytes>", bytes.len()),
        }
    }
}

/// The path, or the length of the bytes (quoted, as a string): never the key.
impl fmt::Debug for CertificateSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.describe(), f)
    }
}

/// The setters of a builder that takes a certificate, storing it in its fields `certificate`,
/// `password` and `send_chain`: `certificate_setters!(certificate_path = "doc",
/// certificate = "doc")` with a paragraph of the builder's own for each of the first two,
/// after `reset: field,` when each of the first three setters also resets a field (a
/// certificate read earlier).
macro_rules! certificate_setters {
    (
        $(reset: $loaded:ident,)?
        certificate_path = $path_doc:literal,
        certificate = $bytes_doc:literal $(,)?
    ) => {
        /// The certificate file: PEM (certificate and private key) or, with the crate's feature
        /// `pkcs12`, PKCS#12 (`.pfx`, `.p12`).
        #[doc = ""]
        #[doc = $path_doc]
        pub fn certificate_path(mut self, path: impl Into<std::path::PathBuf>) -> Self {
            self.certificate = Some($crate::entra::CertificateSource::Path(path.into()));
            $(self.$loaded = Default::default();)?
            self
        }

        /// The certificate's bytes: PEM (certificate and private key) or, with the crate's
        /// feature `pkcs12`, PKCS#12.
        #[doc = ""]
        #[doc = $bytes_doc]
        pub fn certificate(mut self, bytes: impl Into<Vec<u8>>) -> Self {
            self.certificate = Some($crate::entra::CertificateSource::Bytes(
                std::sync::Arc::from(bytes.into()),
            ));
            $(self.$loaded = Default::default();)?
            self
        }

        /// The password of a PKCS#12 certificate (not needed for one without a password).
        pub fn password(mut self, password: impl Into<$crate::Secret>) -> Self {
            self.password = Some(password.into());
            $(self.$loaded = Default::default();)?
            self
        }

        /// Sends the certificate chain (`x5c`) with each client assertion, for subject name /
        /// issuer authentication. Default: `false`.
        pub fn send_certificate_chain(mut self, send: bool) -> Self {
            self.send_chain = send;
            self
        }
    };
}
pub(crate) use certificate_setters;

/// Options of a [`ClientCertificateCredential`]; see [`ClientCertificateCredential::builder`].
#[derive(Clone, Default)]
pub struct ClientCertificateCredentialBuilder {
    context: Context,
    options: EntraOptions,
    certificate: Option<CertificateSource>,
    password: Option<Secret>,
    send_chain: bool,
}

impl ClientCertificateCredentialBuilder {
    entra_setters!(
        tenant_id = "Required.",
        client_id = "Required.",
        authority_host,
        additionally_allowed_tenants,
        retry_policy,
        persistence,
    );

    certificate_setters!(
        certificate_path = "This or [`certificate`](Self::certificate) is required.",
        certificate = "This or [`certificate_path`](Self::certificate_path) is required.",
    );

    seam_setters!(
        env = "`AZURE_AUTHORITY_HOST`, `AZURE_ADDITIONALLY_ALLOWED_TENANTS` and \
               `AZURE_IDENTITY_DISABLE_MULTITENANTAUTH` are read there.",
        fs = "The certificate file is read there.",
        http,
        cache = "Its clock also dates the assertions.",
    );

    /// Reads and checks the certificate and the options, and builds the credential.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for a missing, unreadable or invalid certificate, a wrong password, a key that is not
    /// RSA or does not belong to the certificate, a PKCS#12 file without the feature `pkcs12`,
    /// and for invalid options (tenant id, client id, authority host). The message names the
    /// file and what to do.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{ClientCertificateCredential, ErrorKind};
    ///
    /// let error = ClientCertificateCredential::builder()
    ///     .tenant_id("contoso.onmicrosoft.com")
    ///     .client_id("00000000-0000-0000-0000-000000000001")
    ///     .certificate_path("/nonexistent/app.pem")
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::InvalidInput);
    /// assert!(error.to_string().contains("/nonexistent/app.pem"));
    /// ```
    pub fn build(self) -> Result<ClientCertificateCredential, Error> {
        let Some(source) = &self.certificate else {
            return Err(Error::invalid_input(NAME, "no certificate was given")
                .with_fix("set the builder's certificate_path or certificate"));
        };
        let certificate = source.load(NAME, &self.context.fs(), self.password.as_ref())?;
        ClientCertificateCredential::build_named(
            &self.options,
            &self.context,
            certificate,
            self.send_chain,
            NAME,
        )
    }
}

debug_fields!(ClientCertificateCredentialBuilder {
    options,
    certificate,
    password,
    send_certificate_chain: send_chain,
    ..
});

impl ClientCertificateCredential {
    /// Builds the credential under another name (`EnvironmentCredential`).
    pub(crate) fn build_named(
        options: &EntraOptions,
        context: &Context,
        certificate: ClientCertificate,
        send_chain: bool,
        name: &'static str,
    ) -> Result<Self, Error> {
        let client = options.client(name, context)?;
        let thumbprint: Arc<str> = Arc::from(certificate.thumbprint_hex.as_str());
        let identity = client
            .cache_identity(name)
            .with("thumbprint", &*thumbprint)
            .with_secret(&certificate.key_digest);
        let fetcher = options.persisted_app(
            name,
            &client,
            context,
            ClientCertificateFetcher {
                client: client.clone(),
                certificate: Arc::new(certificate),
                send_chain,
            },
        )?;
        Ok(ClientCertificateCredential {
            credential: context.cache().credential(identity, fetcher),
            client,
            thumbprint,
        })
    }
}

#[derive(Debug)]
struct ClientCertificateFetcher {
    client: EntraClient,
    certificate: Arc<ClientCertificate>,
    send_chain: bool,
}

#[async_trait]
impl TokenFetcher for ClientCertificateFetcher {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        let client = &self.client;
        client
            .request_token(request, &|endpoint, now| {
                self.certificate
                    .proof(client, request, self.send_chain, endpoint, now)
            })
            .await
    }

    fn resolve_tenant<'a>(&'a self, requested: &'a str) -> Result<Option<&'a str>, Error> {
        self.client.resolve_tenant(requested)
    }
}

/// A certificate and its RSA private key, checked to belong together, with what assertions
/// need precomputed. `Debug` shows the thumbprint only.
pub(crate) struct ClientCertificate {
    key: RsaKeyPair,
    /// SHA-256 of the private key's DER: identifies the key in the cache, never printed.
    key_digest: [u8; 32],
    /// The certificate chain as standard base64 DER, the key's certificate first.
    x5c: Vec<String>,
    x5t_s256: String,
    x5t: String,
    thumbprint_hex: String,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("thumbprint", &self.thumbprint_hex)
            .field("chain_len", &self.x5c.len())
            .finish_non_exhaustive()
    }
}

/// A private key as found in the input.
enum KeyDer {
    Pkcs8(Vec<u8>),
    Pkcs1(Vec<u8>),
}

impl ClientCertificate {
    /// Reads and parses a certificate file.
    pub(crate) fn read(
        credential: &'static str,
        fs: &Fs,
        path: &Path,
        password: Option<&Secret>,
    ) -> Result<Self, Error> {
        let origin = format!(
            "the certificate file {}",
            super::quoted(&path.display().to_string())
        );
        let bytes = fs.read(path, MAX_CERTIFICATE_BYTES).map_err(|e| {
            let what = match e.kind() {
                std::io::ErrorKind::NotFound => "does not exist",
                std::io::ErrorKind::PermissionDenied => "cannot be read (permission denied)",
                std::io::ErrorKind::InvalidData => "is larger than 1 MiB",
                _ => "cannot be read",
            };
            Error::invalid_input(credential, format!("{origin} {what}"))
                .with_fix(
                    "point the certificate path at a PEM or PKCS#12 file this process can read",
                )
                .with_source(e)
        })?;
        let named_pkcs12 = path.extension().is_some_and(|extension| {
            extension.eq_ignore_ascii_case("pfx") || extension.eq_ignore_ascii_case("p12")
        });
        ClientCertificate::parse_named(credential, &bytes, password, &origin, named_pkcs12)
    }

    /// Parses PEM or PKCS#12 bytes; `origin` names them in messages.
    pub(crate) fn parse(
        credential: &'static str,
        bytes: &[u8],
        password: Option<&Secret>,
        origin: &str,
    ) -> Result<Self, Error> {
        ClientCertificate::parse_named(credential, bytes, password, origin, false)
    }

    /// [`parse`](Self::parse), told whether the file's name says PKCS#12 (`.pfx`, `.p12`): without
    /// the feature `pkcs12`, such a file that is not PEM gets the error naming the feature.
    fn parse_named(
        credential: &'static str,
        bytes: &[u8],
        password: Option<&Secret>,
        origin: &str,
        named_pkcs12: bool,
    ) -> Result<Self, Error> {
        let invalid = |what: String, fix: &'static str| {
            Error::invalid_input(credential, format!("{origin} {what}")).with_fix(fix)
        };
        let is_pem = bytes.windows(11).any(|w| w == b"-----BEGIN ");
        let (keys, certs, ec) = if is_pem {
            read_pem(bytes).map_err(|what| invalid(what, PEM_FIX))?
        } else if looks_like_pkcs12(bytes, named_pkcs12) {
            read_pkcs12(bytes, password).map_err(|(what, fix)| invalid(what, fix))?
        } else {
            return Err(invalid(
                "is neither PEM nor PKCS#12".to_owned(),
                NEITHER_FIX,
            ));
        };
        let ec_fix = "Microsoft Entra client assertions here are signed with RSA: create an RSA (2048 bits or more) certificate and upload it to the app registration";
        let key = match keys.as_slice() {
            [] if ec => {
                return Err(invalid(
                    "holds an EC private key; an RSA key is needed".to_owned(),
                    ec_fix,
                ));
            }
            [] => {
                return Err(invalid(
                    "holds no private key".to_owned(),
                    "put the certificate's private key in the file (PEM: an unencrypted \"PRIVATE KEY\" or \"RSA PRIVATE KEY\" section)",
                ));
            }
            [key] => key,
            _ => {
                return Err(invalid(
                    "holds more than one private key".to_owned(),
                    "keep only the certificate's own private key in the file",
                ));
            }
        };
        // `pkcs1` identifies the key whatever the file's format, for the cache identity.
        let (pair, pkcs1) = match key {
            KeyDer::Pkcs1(der) => (RsaKeyPair::from_der(der), der.as_slice()),
            KeyDer::Pkcs8(der) => match der::pkcs8_algorithm(der) {
                Some(OID_RSA) => (
                    RsaKeyPair::from_pkcs8(der),
                    der::pkcs8_private_key(der).unwrap_or(der),
                ),
                Some(OID_EC) => {
                    return Err(invalid(
                        "holds an EC private key; an RSA key is needed".to_owned(),
                        ec_fix,
                    ));
                }
                _ => {
                    return Err(invalid(
                        "holds a private key that is not RSA".to_owned(),
                        ec_fix,
                    ));
                }
            },
        };
        let pair = pair.map_err(|rejected| {
            invalid(
                format!("holds an RSA private key that cannot be used ({rejected})"),
                "use an RSA key of 2048 to 4096 bits",
            )
        })?;
        let public = pair.public().as_ref();
        let Some(leaf) = certs.iter().position(|cert| {
            der::certificate_public_key(cert)
                .is_some_and(|pk| pk.algorithm == OID_RSA && pk.key == public)
        }) else {
            let what = if certs.is_empty() {
                "holds no certificate"
            } else {
                "holds no certificate for its private key (the key belongs to another certificate)"
            };
            return Err(invalid(
                what.to_owned(),
                "put the certificate and its own private key in the file",
            ));
        };
        let mut chain: Vec<&Vec<u8>> = vec![&certs[leaf]];
        for (i, cert) in certs.iter().enumerate() {
            if i != leaf && !chain.contains(&cert) {
                chain.push(cert);
            }
        }
        let leaf = &certs[leaf];
        let sha1 = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, leaf);
        let sha256 = digest::digest(&digest::SHA256, leaf);
        let key_digest = digest::digest(&digest::SHA256, pkcs1);
        Ok(ClientCertificate {
            key: pair,
            key_digest: key_digest
                .as_ref()
                .try_into()
                .expect("a SHA-256 digest is 32 bytes"),
            x5c: chain.iter().map(|c| STANDARD.encode(c)).collect(),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha256),
            x5t: URL_SAFE_NO_PAD.encode(sha1),
            thumbprint_hex: sha1.as_ref().iter().map(|b| format!("{b:02X}")).collect(),
        })
    }

    /// The proof of `client`'s identity in one token request: a client assertion for the token
    /// endpoint `endpoint`, dated `now` (`RS256` with the SHA-1 thumbprint when the request goes
    /// to ADFS), with the chain when `send_chain`.
    pub(crate) fn proof(
        &self,
        client: &EntraClient,
        request: &TokenRequest,
        send_chain: bool,
        endpoint: &Url,
        now: OffsetDateTime,
    ) -> Result<ClientProof, Error> {
        let adfs = request
            .tenant_id()
            .unwrap_or(client.tenant_id())
            .eq_ignore_ascii_case(super::ADFS);
        let assertion = client_assertion(
            self,
            &AssertionFor {
                credential: client.credential(),
                client_id: client.client_id(),
                audience: endpoint.as_str(),
                now,
                adfs,
                send_chain,
            },
        )?;
        Ok(ClientProof::Assertion(assertion))
    }

    /// The SHA-1 thumbprint, upper-case hex as the Azure portal shows it.
    pub(crate) fn thumbprint(&self) -> &str {
        &self.thumbprint_hex
    }

    /// SHA-256 of the private key: what identifies the key in the cache. Never printed.
    pub(crate) fn key_digest(&self) -> &[u8; 32] {
        &self.key_digest
    }

    pub(crate) fn key(&self) -> &RsaKeyPair {
        &self.key
    }

    /// The certificate's SHA-256 thumbprint, base64url.
    pub(crate) fn x5t_s256(&self) -> &str {
        &self.x5t_s256
    }

    /// The certificate's SHA-1 thumbprint, base64url.
    pub(crate) fn x5t(&self) -> &str {
        &self.x5t
    }

    /// The chain, standard base64 DER, the certificate first.
    pub(crate) fn x5c(&self) -> &[String] {
        &self.x5c
    }
}

type Parsed = (Vec<KeyDer>, Vec<Vec<u8>>, bool);

/// Keys, certificates, and whether an EC key was seen, from PEM. The error says what is wrong.
fn read_pem(bytes: &[u8]) -> Result<Parsed, String> {
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    if has(b"ENCRYPTED PRIVATE KEY") || has(b"Proc-Type: 4,ENCRYPTED") {
        return Err("holds an encrypted PEM private key, which is not supported".to_owned());
    }
    let mut keys = Vec::new();
    let mut certs = Vec::new();
    let mut ec = false;
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes) {
        // The parser's error text is not used: it can quote lines of the input.
        let (kind, der) = item.map_err(|_| "is not valid PEM".to_owned())?;
        match kind {
            SectionKind::Certificate => certs.push(der),
            SectionKind::PrivateKey => keys.push(KeyDer::Pkcs8(der)),
            SectionKind::RsaPrivateKey => keys.push(KeyDer::Pkcs1(der)),
            SectionKind::EcPrivateKey => ec = true,
            _ => {}
        }
    }
    Ok((keys, certs, ec))
}

/// What to do with a PEM file that cannot be used, and with a file that is neither PEM nor
/// PKCS#12 (PKCS#12 is offered only when this build reads it).
#[cfg(feature = "pkcs12")]
const PEM_FIX: &str = "use a PEM file holding the certificate and its unencrypted RSA private key (PKCS#8 or PKCS#1), or a PKCS#12 file";
#[cfg(feature = "pkcs12")]
const NEITHER_FIX: &str = "use a PEM file (certificate and private key) or a PKCS#12 (.pfx) file";
#[cfg(not(feature = "pkcs12"))]
const PEM_FIX: &str =
    "use a PEM file holding the certificate and its unencrypted RSA private key (PKCS#8 or PKCS#1)";
#[cfg(not(feature = "pkcs12"))]
const NEITHER_FIX: &str = "use a PEM file holding the certificate and its private key";

/// Whether bytes that are not PEM are to be read as PKCS#12. With the feature `pkcs12`, any DER
/// goes to the PKCS#12 reader, whose errors say what is wrong. Without it, a file that starts
/// like a PKCS#12 `PFX` or is named `.pfx` / `.p12` gets the error naming the feature, and
/// anything else (a DER certificate, say) the plain "neither PEM nor PKCS#12".
fn looks_like_pkcs12(bytes: &[u8], named_pkcs12: bool) -> bool {
    if cfg!(feature = "pkcs12") {
        bytes.first() == Some(&0x30)
    } else {
        named_pkcs12 || der::starts_like_pfx(bytes)
    }
}

/// Without the feature `pkcs12`: the error for a PKCS#12 file (or one named so), which names
/// the feature and the command that converts the file to PEM.
#[cfg(not(feature = "pkcs12"))]
fn read_pkcs12(
    _bytes: &[u8],
    _password: Option<&Secret>,
) -> Result<Parsed, (String, &'static str)> {
    Err((
        "is a PKCS#12 (.pfx/.p12) file, which this build of azure-credentials cannot read: it \
         needs the crate's feature \"pkcs12\""
            .to_owned(),
        "enable the feature (azure-credentials = { features = [\"pkcs12\"] }), or convert the \
         file to PEM: `openssl pkcs12 -in cert.pfx -out cert.pem -nodes` (the PEM file holds the \
         unencrypted private key: protect it like the .pfx and its password)",
    ))
}

/// Keys and certificates from PKCS#12. The error says what is wrong and what to do.
#[cfg(feature = "pkcs12")]
fn read_pkcs12(bytes: &[u8], password: Option<&Secret>) -> Result<Parsed, (String, &'static str)> {
    use p12_keystore::error::Error as P12Error;
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(
        bytes,
        password.map_or("", Secret::expose),
    )
    .map_err(|e| match e {
        P12Error::MacError(_) | P12Error::UnpadError | P12Error::Pkcs5Error(_) => {
            if password.is_some() {
                (
                    "cannot be opened with the password given (wrong password?)".to_owned(),
                    "check the certificate password (AZURE_CLIENT_CERTIFICATE_PASSWORD for EnvironmentCredential)",
                )
            } else {
                (
                    "is protected by a password and none was given".to_owned(),
                    "set the certificate password (AZURE_CLIENT_CERTIFICATE_PASSWORD for EnvironmentCredential)",
                )
            }
        }
        P12Error::UnsupportedEncryptionScheme | P12Error::UnsupportedMacAlgorithm => (
            "uses an encryption or integrity algorithm that is not supported".to_owned(),
            "export the PKCS#12 file again with AES-256 (OpenSSL 3's default) or 3DES, e.g. `openssl pkcs12 -export ...`",
        ),
        _ => (
            "is neither valid PEM nor a valid PKCS#12 file".to_owned(),
            "use a PEM file (certificate and private key) or a PKCS#12 (.pfx) file",
        ),
    })?;
    let keys = archive
        .keys
        .iter()
        .map(|bag| KeyDer::Pkcs8(bag.key.as_der().to_vec()))
        .collect::<Vec<_>>();
    let ec = keys.is_empty()
        && archive.certs.iter().any(|c| {
            der::certificate_public_key(c.cert.as_der()).is_some_and(|pk| pk.algorithm == OID_EC)
        });
    let certs = archive
        .certs
        .iter()
        .map(|bag| bag.cert.as_der().to_vec())
        .collect();
    Ok((keys, certs, ec))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/certs")
                .join(name),
        )
        .unwrap()
    }

    fn parse(name: &str, password: Option<&str>) -> Result<ClientCertificate, Error> {
        ClientCertificate::parse(
            "X",
            &fixture(name),
            password.map(Secret::new).as_ref(),
            "the file",
        )
    }

    #[test]
    fn every_supported_format_gives_the_same_certificate_and_key() {
        let reference = parse("client.pem", None).unwrap();
        #[allow(unused_mut)] // PKCS#12 only with the feature.
        let mut files = vec![("client-pkcs1.pem", None), ("client-chain.pem", None)];
        #[cfg(feature = "pkcs12")]
        files.extend([
            ("client.pfx", Some("fixture-password")),
            ("client-legacy.pfx", Some("fixture-password")),
            ("client-nopass.pfx", None),
            ("client-nopass.pfx", Some("")),
            ("client-unencrypted.pfx", None),
        ]);
        for (name, password) in files {
            let cert = parse(name, password).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(cert.thumbprint_hex, reference.thumbprint_hex, "{name}");
            assert_eq!(cert.x5t_s256, reference.x5t_s256, "{name}");
            assert_eq!(cert.key_digest, reference.key_digest, "{name}");
            assert_eq!(
                cert.x5c[0], reference.x5c[0],
                "{name}: the leaf comes first"
            );
        }
        assert_eq!(reference.x5c.len(), 1);
        assert_eq!(parse("client-chain.pem", None).unwrap().x5c.len(), 2);
        #[cfg(feature = "pkcs12")]
        assert_eq!(
            parse("client.pfx", Some("fixture-password"))
                .unwrap()
                .x5c
                .len(),
            2
        );
        let printed = format!("{reference:?}");
        assert!(printed.contains(&reference.thumbprint_hex), "{printed}");
        assert_eq!(reference.thumbprint_hex.len(), 40);
    }
}
