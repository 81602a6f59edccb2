//! [`MockAssertion`]: a client assertion as the Entra mock decoded it, and its verification
//! against a trusted certificate.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::{digest, signature};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::Value;

use crate::der;

/// Clock skew the mock tolerates on `nbf`, as Entra does (a few minutes).
const SKEW_SECS: i64 = 300;

/// A client assertion JWT as the mock decoded it.
#[derive(Clone)]
pub struct MockAssertion {
    header: Value,
    claims: Value,
    verified: Option<Result<(), String>>,
}

impl MockAssertion {
    /// The JOSE header, e.g. `{"alg":"PS256","typ":"JWT","x5t#S256":"…"}`.
    pub fn header(&self) -> &Value {
        &self.header
    }

    /// The claims: `aud`, `iss`, `sub`, `jti`, `nbf`, `exp`.
    pub fn claims(&self) -> &Value {
        &self.claims
    }

    /// `None` when no certificate was configured with
    /// [`MockEntra::verify_assertions_with`](super::MockEntra::verify_assertions_with); otherwise whether the assertion verified, and if
    /// not, why.
    pub fn verified(&self) -> Option<&Result<(), String>> {
        self.verified.as_ref()
    }
}

impl fmt::Debug for MockAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockAssertion")
            .field("alg", &self.header.get("alg"))
            .field("verified", &self.verified)
            .finish_non_exhaustive()
    }
}

/// The certificate assertions must be signed with.
pub(super) struct Trusted {
    /// The certificate's `RSAPublicKey`.
    key: Vec<u8>,
    x5t_s256: String,
    x5t: String,
}

impl Trusted {
    /// The RSA certificate in `certificate` (PEM or DER); `None` when it holds none.
    pub(super) fn from_certificate(certificate: &[u8]) -> Option<Trusted> {
        let der = CertificateDer::from_pem_slice(certificate)
            .map(|c| c.to_vec())
            .unwrap_or_else(|_| certificate.to_vec());
        let key = der::certificate_public_key(&der)
            .filter(|pk| pk.algorithm == der::OID_RSA)
            .map(|pk| pk.key.to_vec())?;
        Some(Trusted {
            key,
            x5t_s256: URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, &der)),
            x5t: URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &der)),
        })
    }
}

/// Decodes a JWT assertion and, with a trusted certificate, verifies it.
pub(super) fn decode_assertion(
    jwt: &str,
    trusted: Option<&Trusted>,
    audience: &str,
    client_id: Option<&str>,
    now: i64,
) -> Option<MockAssertion> {
    let mut parts = jwt.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    let signature = URL_SAFE_NO_PAD.decode(s).ok()?;
    let verified = trusted.map(|trusted| {
        let signed = &jwt[..h.len() + 1 + c.len()];
        let (alg, thumbprint_field, thumbprint): (
            &'static dyn signature::VerificationAlgorithm,
            _,
            _,
        ) = match header.get("alg").and_then(Value::as_str) {
            Some("PS256") => (
                &signature::RSA_PSS_2048_8192_SHA256,
                "x5t#S256",
                &trusted.x5t_s256,
            ),
            Some("RS256") => (&signature::RSA_PKCS1_2048_8192_SHA256, "x5t", &trusted.x5t),
            other => return Err(format!("unsupported alg {other:?}")),
        };
        if header.get(thumbprint_field).and_then(Value::as_str) != Some(thumbprint.as_str()) {
            return Err(format!("{thumbprint_field} does not match the certificate"));
        }
        signature::UnparsedPublicKey::new(alg, &trusted.key)
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| "bad signature".to_owned())?;
        if claims.get("aud").and_then(Value::as_str) != Some(audience) {
            return Err(format!("aud is not {audience}"));
        }
        for name in ["iss", "sub"] {
            if client_id.is_none() || claims.get(name).and_then(Value::as_str) != client_id {
                return Err(format!("{name} is not the client id"));
            }
        }
        let nbf = claims.get("nbf").and_then(Value::as_i64).ok_or("no nbf")?;
        let exp = claims.get("exp").and_then(Value::as_i64).ok_or("no exp")?;
        if nbf > now + SKEW_SECS {
            return Err("not valid yet (nbf)".to_owned());
        }
        if exp <= now {
            return Err("expired (exp)".to_owned());
        }
        Ok(())
    });
    Some(MockAssertion {
        header,
        claims,
        verified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_assertions_are_not_decoded() {
        assert!(decode_assertion("not-a-jwt", None, "aud", None, 0).is_none());
        assert!(decode_assertion("a.b.c", None, "aud", None, 0).is_none());
        assert!(decode_assertion("a.b.c.d", None, "aud", None, 0).is_none());
    }
}
