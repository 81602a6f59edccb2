//! The client assertion of a certificate credential: a JWT signed with the certificate's key.
//!
//! Header: `alg` `PS256` with the certificate's SHA-256 thumbprint as `x5t#S256` (ADFS: `RS256`
//! with the SHA-1 thumbprint as `x5t`), `typ` `JWT`, and the certificate chain as `x5c` when
//! asked. Claims: `aud` = the token endpoint, `iss` = `sub` = the client id, a random `jti`,
//! `nbf` = now and `exp` = now + 10 minutes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature;
use serde::Serialize;
use time::OffsetDateTime;

use super::ClientCertificate;
use crate::{Error, ErrorKind, Secret};

/// How long an assertion is valid.
pub(crate) const ASSERTION_LIFETIME_SECS: i64 = 600;

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    #[serde(rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    x5t_s256: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x5t: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x5c: Option<&'a [String]>,
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: &'a str,
    nbf: i64,
    exp: i64,
}

/// What an assertion is for.
pub(crate) struct AssertionFor<'a> {
    pub(crate) credential: &'static str,
    pub(crate) client_id: &'a str,
    /// The token endpoint URL.
    pub(crate) audience: &'a str,
    pub(crate) now: OffsetDateTime,
    /// ADFS: RS256 and the SHA-1 thumbprint.
    pub(crate) adfs: bool,
    /// Send the certificate chain as `x5c`.
    pub(crate) send_chain: bool,
}

/// Builds and signs a client assertion.
pub(crate) fn client_assertion(
    certificate: &ClientCertificate,
    target: &AssertionFor<'_>,
) -> Result<Secret, Error> {
    let rng = SystemRandom::new();
    let failed = || {
        Error::new(
            ErrorKind::Other,
            target.credential,
            "could not sign the client assertion",
        )
        .with_fix("this is unexpected: the system's random number generator or the key failed; please report it")
    };
    let jti = random_uuid(&rng).ok_or_else(failed)?;
    let header = Header {
        alg: if target.adfs { "RS256" } else { "PS256" },
        typ: "JWT",
        x5t_s256: (!target.adfs).then_some(certificate.x5t_s256()),
        x5t: target.adfs.then_some(certificate.x5t()),
        x5c: target.send_chain.then_some(certificate.x5c()),
    };
    let now = target.now.unix_timestamp();
    let claims = Claims {
        aud: target.audience,
        iss: target.client_id,
        sub: target.client_id,
        jti: &jti,
        nbf: now,
        exp: now + ASSERTION_LIFETIME_SECS,
    };
    let header = serde_json::to_vec(&header).map_err(|_| failed())?;
    let claims = serde_json::to_vec(&claims).map_err(|_| failed())?;
    let mut jwt = URL_SAFE_NO_PAD.encode(header);
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(claims, &mut jwt);
    let padding: &'static dyn signature::RsaEncoding = if target.adfs {
        &signature::RSA_PKCS1_SHA256
    } else {
        &signature::RSA_PSS_SHA256
    };
    let key = certificate.key();
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(padding, &rng, jwt.as_bytes(), &mut sig)
        .map_err(|_| failed())?;
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(sig, &mut jwt);
    Ok(Secret::new(jwt))
}

/// A random (version 4) UUID, as a JWT id.
fn random_uuid(rng: &SystemRandom) -> Option<String> {
    let mut b = [0u8; 16];
    rng.fill(&mut b).ok()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_random() {
        let rng = SystemRandom::new();
        let a = random_uuid(&rng).unwrap();
        let b = random_uuid(&rng).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert!(a.bytes().all(|c| c == b'-' || c.is_ascii_hexdigit()));
    }
}
