//! Service Fabric (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER` + `IDENTITY_SERVER_THUMBPRINT`).

use url::Url;

use super::NAME;
use crate::system::HttpRequest;
use crate::{Error, Secret};

const API_VERSION: &str = "2019-07-01-preview";

/// `GET $IDENTITY_ENDPOINT?api-version=2019-07-01-preview&resource=…` with
/// `Secret: $IDENTITY_HEADER`, over https to a server whose certificate is pinned to
/// `IDENTITY_SERVER_THUMBPRINT` (the cluster's self-signed certificate: normal CA validation
/// cannot apply). The identity is the cluster's choice: no user-assigned ids.
pub(super) fn token_request(url: &Url, secret: &Secret, resource: &str) -> HttpRequest {
    let mut url = url.clone();
    url.query_pairs_mut()
        .append_pair("api-version", API_VERSION)
        .append_pair("resource", resource);
    HttpRequest::get(url)
        .secret_header("Secret", secret)
        .header("Accept", "application/json")
}

/// The SHA-1 thumbprint of the cluster's certificate: 40 hex digits, colons and whitespace
/// allowed.
pub(super) fn parse_thumbprint(text: &str) -> Result<[u8; 20], Error> {
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
