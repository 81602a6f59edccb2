//! Reading a JWT's claims without verifying it: what a token we were just given says about the
//! identity it is for, and when a federated token expires. Never used to trust a token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::AccessToken;

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
    /// The object id of the user or service principal.
    pub(crate) oid: Option<String>,
    /// The user's name, in v2 tokens.
    pub(crate) preferred_username: Option<String>,
    /// The user's name, in v1 tokens.
    pub(crate) upn: Option<String>,
    pub(crate) unique_name: Option<String>,
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

    /// The user's name, whichever claim carries it, when it is printable and of a sane length.
    pub(crate) fn username(&self) -> Option<&str> {
        [&self.preferred_username, &self.upn, &self.unique_name]
            .into_iter()
            .flatten()
            .map(|name| name.trim())
            .find(|name| printable_id(name))
    }

    /// When the token expires.
    pub(crate) fn expires_on(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp(self.exp?).ok()
    }
}

/// What an access token says about whom it is for, put on it: the tenant (when not already
/// known), the object id and the user's name (for the developer tools, whose output says
/// neither). Never used to trust the token.
pub(crate) fn identify(token: AccessToken) -> AccessToken {
    let Some(claims) = Claims::of(token.token().expose()) else {
        return token;
    };
    let mut token = token;
    if token.tenant_id().is_none()
        && let Some(tid) = claims.tid.as_deref().filter(|t| printable_id(t))
    {
        token = token.with_tenant_id(tid);
    }
    if let Some(oid) = claims.oid.as_deref().filter(|o| printable_id(o)) {
        token = token.with_object_id(oid);
    }
    if let Some(name) = claims.username() {
        token = token.with_username(name);
    }
    token
}

/// A claim value fit to be shown and logged: no control characters, at most 256 characters.
fn printable_id(value: &str) -> bool {
    !value.is_empty() && value.chars().count() <= 256 && !value.chars().any(char::is_control)
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
    fn a_token_is_identified_by_its_own_claims() {
        let token = AccessToken::new(
            jwt(r#"{"tid":"t","oid":"o","upn":"ada@contoso.example"}"#),
            time::macros::datetime!(2030-01-01 0:00 UTC),
        );
        let token = identify(token);
        assert_eq!(token.tenant_id(), Some("t"));
        assert_eq!(token.object_id(), Some("o"));
        assert_eq!(token.username(), Some("ada@contoso.example"));
        // A name with control characters is left out; an opaque token is left as it is.
        let token = identify(AccessToken::new(
            jwt(r#"{"preferred_username":"a\u001b[2J"}"#),
            time::macros::datetime!(2030-01-01 0:00 UTC),
        ));
        assert_eq!(token.username(), None);
        let opaque = identify(AccessToken::new(
            "opaque",
            time::macros::datetime!(2030-01-01 0:00 UTC),
        ));
        assert_eq!(opaque.tenant_id(), None);
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
