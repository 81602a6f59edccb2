//! Self-signed certificates for loopback TLS servers, and https fronts for the mock endpoints.

use azure_credentials::testing::MockManagedIdentity;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A fresh self-signed certificate for `127.0.0.1` and its key.
pub fn self_signed() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
    (generated.cert.der().clone(), key)
}

/// An https front for the mock with a fresh self-signed certificate (what Service Fabric pins):
/// its URL and the certificate's SHA-1 thumbprint in upper-case hex.
pub async fn tls_front(mock: &MockManagedIdentity) -> (url::Url, String) {
    let (cert, key) = self_signed();
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert);
    let thumbprint = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    (mock.serve_tls(vec![cert], key).await, thumbprint)
}
