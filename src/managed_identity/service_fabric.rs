//! Service Fabric (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER` + `IDENTITY_SERVER_THUMBPRINT`): an
//! https endpoint whose self-signed certificate is pinned to the thumbprint.

use super::source::{
    Ask, Detection, Endpoint, ManagedIdentitySource, NAME, Source, UserAssignedId, env_url,
};
use crate::env_vars::{IDENTITY_ENDPOINT, IDENTITY_HEADER, IDENTITY_SERVER_THUMBPRINT};
use crate::system::{Http, HttpRequest};
use crate::{CacheIdentity, Error, Secret};

const API_VERSION: &str = "2019-07-01-preview";

/// All three variables; the endpoint must be https (its certificate is what is pinned).
pub(super) fn detect(detection: &Detection<'_>) -> Result<Option<Endpoint>, Error> {
    let Some([url, header, thumbprint]) = detection.all([
        IDENTITY_ENDPOINT,
        IDENTITY_HEADER,
        IDENTITY_SERVER_THUMBPRINT,
    ]) else {
        return Ok(None);
    };
    let url = env_url(IDENTITY_ENDPOINT, &url)?;
    if url.scheme() != "https" {
        return Err(Error::invalid_input(
            NAME,
            "IDENTITY_ENDPOINT of a Service Fabric cluster must be an https URL",
        )
        .with_fix("check the cluster's managed identity configuration"));
    }
    let source = ServiceFabric {
        secret: Secret::new(header),
        thumbprint: parse_thumbprint(&thumbprint)?,
    };
    Endpoint::found(ManagedIdentitySource::ServiceFabric, url, source)
}

struct ServiceFabric {
    /// `IDENTITY_HEADER`.
    secret: Secret,
    /// `IDENTITY_SERVER_THUMBPRINT`: the SHA-1 of the cluster's certificate.
    thumbprint: [u8; 20],
}

impl Source for ServiceFabric {
    /// A copy of the client's settings that trusts only the cluster's certificate (normal CA
    /// validation cannot apply to a self-signed one).
    fn http(&self, http: Http) -> Result<Http, Error> {
        http.pinned_to_server_certificate_sha1(self.thumbprint)
            .map_err(|e| Error::from_http(NAME, &e))
    }

    /// `GET $IDENTITY_ENDPOINT?api-version=2019-07-01-preview&resource=…` with
    /// `Secret: $IDENTITY_HEADER`.
    fn token_request(&self, ask: &Ask<'_>) -> HttpRequest {
        HttpRequest::get(ask.url(API_VERSION))
            .secret_header("Secret", &self.secret)
            .header("Accept", "application/json")
    }

    /// The identity is the cluster's choice.
    fn check_id(&self, _id: &UserAssignedId) -> Result<(), &'static str> {
        Err("Service Fabric has no user-assigned identities (the cluster configures the identity)")
    }

    /// Only a client that trusts the pinned certificate could have fetched the token.
    fn partition(&self, identity: CacheIdentity, _id: Option<&UserAssignedId>) -> CacheIdentity {
        let hex: String = self.thumbprint.iter().map(|b| format!("{b:02x}")).collect();
        identity
            .with("server_certificate_sha1", hex)
            .with_secret(self.secret.expose().as_bytes())
    }

    fn tls_fix(&self) -> Option<&'static str> {
        Some(
            "IDENTITY_SERVER_THUMBPRINT must be the SHA-1 thumbprint of the cluster's certificate: check the cluster's managed identity configuration",
        )
    }
}

/// The SHA-1 thumbprint of the cluster's certificate: 40 hex digits, colons and whitespace
/// allowed.
fn parse_thumbprint(text: &str) -> Result<[u8; 20], Error> {
    let hex: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b':')
        .collect();
    let invalid = || {
        Error::invalid_input(
            NAME,
            "IDENTITY_SERVER_THUMBPRINT is not a SHA-1 thumbprint (40 hexadecimal digits)",
        )
        .with_fix("check the cluster's managed identity configuration")
    };
    if hex.len() != 40 {
        return Err(invalid());
    }
    let mut out = [0u8; 20];
    for (i, pair) in hex.chunks(2).enumerate() {
        let digits = std::str::from_utf8(pair).map_err(|_| invalid())?;
        out[i] = u8::from_str_radix(digits, 16).map_err(|_| invalid())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints() {
        let t = parse_thumbprint("0123456789abcdefABCDEF0123456789abcdef01").unwrap();
        assert_eq!(t[0], 0x01);
        assert_eq!(t[19], 0x01);
        let spaced = "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:ab:cd:ef:01:23:45:67";
        assert_eq!(parse_thumbprint(spaced).unwrap()[5], 0xab);
        for bad in [
            "",
            "0123",
            "zz23456789abcdef0123456789abcdef01234567",
            &"a".repeat(42),
        ] {
            assert!(
                parse_thumbprint(bad).unwrap_err().is_invalid_input(),
                "{bad}"
            );
        }
    }
}
