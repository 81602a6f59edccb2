//! Reading a JWT's claims without verifying it: what a token we were just given says about the
//! identity it is for, and when a federated token expires. Never used to trust a token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use time::OffsetDateTime;

/// The claims this crate reads. Every one is optional: a token need not be a JWT at all.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Claims {
    /// The tenant the token was issued in.
    pub(crate) tid: Option<String>,
    /// The application (client) id, in v1 tokens.
    pub(crate) appid: Option<String>,
    /// The application (client) id, in v2 tokens.
    pub(crate) azp: Option<String>,
    /// Expiry, seconds since the epoch.
    pub(crate) exp: Option<i64>,
}

impl Claims {
    /// The claims of `jwt`, or `None` when it is not a JWT with a JSON payload.
    pub(crate) fn of(jwt: &str) -> Option<Claims> {
        let payload = jwt.split('.').nth(1)?;
        // Payloads are small; a huge one is not a token worth reading.
        if payload.len() > 64 * 1024 {
            return None;
        }
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }

    /// The client id, whichever claim carries it.
    pub(crate) fn client_id(&self) -> Option<&str> {
        self.appid.as_deref().or(self.azp.as_deref())
    }

    /// When the token expires.
    pub(crate) fn expires_on(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp(self.exp?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "eyJhbGciOiJub25lIn0.{}.sig",
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn claims_are_read_when_present() {
        let claims = Claims::of(&jwt(
            r#"{"tid":"t","appid":"a","exp":1893456000,"other":[1]}"#,
        ))
        .unwrap();
        assert_eq!(claims.tid.as_deref(), Some("t"));
        assert_eq!(claims.client_id(), Some("a"));
        assert_eq!(claims.expires_on().unwrap().unix_timestamp(), 1893456000);
        let v2 = Claims::of(&jwt(r#"{"azp":"b"}"#)).unwrap();
        assert_eq!(v2.client_id(), Some("b"));
    }

    #[test]
    fn anything_else_is_none() {
        for bad in [
            "",
            "not-a-jwt",
            "a.b.c",
            "a.!!!.c",
            &jwt("[1,2]"),
            &jwt(r#"{"tid":5}"#),
        ] {
            assert!(Claims::of(bad).is_none(), "{bad}");
        }
    }
}
