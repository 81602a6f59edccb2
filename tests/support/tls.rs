//! Self-signed certificates for loopback TLS servers, and https fronts for the mock endpoints.

use azure_credentials::testing::MockManagedIdentity;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A fresh self-signed certificate for `127.0.0.1` and its key.
pub fn self_signed() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
    (generated.cert.der().clone(), key)
}

/// A fresh self-signed certificate for `127.0.0.1`, its key, and the certificate in PEM (what
/// a Python client is given as its CA bundle).
pub fn self_signed_with_pem() -> (CertificateDer<'static>, PrivateKeyDer<'static>, String) {
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
    (generated.cert.der().clone(), key, generated.cert.pem())
}

/// The SHA-1 thumbprint of a DER certificate (what `pin_server_certificate_sha1` takes).
pub fn sha1(cert: &CertificateDer<'_>) -> [u8; 20] {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert);
    digest.as_ref().try_into().unwrap()
}

/// An https front for the mock with a fresh self-signed certificate (what Service Fabric pins):
/// its URL and the certificate's SHA-1 thumbprint in upper-case hex.
pub async fn tls_front(mock: &MockManagedIdentity) -> (url::Url, String) {
    let (cert, key) = self_signed();
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert);
    let thumbprint = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    (mock.serve_tls(vec![cert], key).await, thumbprint)
}
