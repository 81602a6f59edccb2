//! TLS: rustls with *ring* and the platform's verifier, or one pinned server certificate.

use std::sync::Arc;

use super::{HttpError, HttpErrorKind};

/// rustls with *ring* and the platform verifier, without touching the process-wide provider.
///
/// A system without CA certificates (a minimal container) makes the platform verifier fail; the
/// client then trusts Mozilla's roots as bundled in `webpki-roots`, and says so once.
pub(super) fn tls_config(pinned_sha1: Option<[u8; 20]>) -> Result<rustls::ClientConfig, HttpError> {
    use rustls_platform_verifier::BuilderVerifierExt;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            HttpError::new(
                HttpErrorKind::Other,
                "the TLS provider supports no safe protocol version",
            )
            .with_source(e)
        })?;
    if let Some(sha1) = pinned_sha1 {
        let verifier = PinnedCertificate { sha1, provider };
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth());
    }
    let config = match builder.clone().with_platform_verifier() {
        Ok(builder) => builder.with_no_client_auth(),
        Err(error) => {
            tracing::warn!(
                %error,
                "no usable CA certificates on this system; trusting the Mozilla roots bundled with this crate"
            );
            let roots =
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(config)
}

/// Accepts exactly the server certificate whose DER encoding has this SHA-1 digest.
#[derive(Debug)]
struct PinnedCertificate {
    sha1: [u8; 20],
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, end_entity);
        // Not secret, but there is no reason to compare early-exit either.
        let differs = digest
            .as_ref()
            .iter()
            .zip(self.sha1)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differs == 0 {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(PinMismatch))),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A server certificate other than the pinned one.
#[derive(Debug, thiserror::Error)]
#[error("it is not the certificate pinned by its SHA-1 thumbprint")]
pub(super) struct PinMismatch;
