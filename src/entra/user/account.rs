//! [`Account`]: who signed in, read from the id token and `client_info` of a user grant's
//! answer. Both come from the token endpoint we asked over TLS; they are read, not trusted for
//! more than naming the user, and checked against what we sent (the client id, the nonce).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::Secret;

/// The longest id token read (they are a few KB).
const MAX_ID_TOKEN_BYTES: usize = 64 * 1024;
/// The longest value kept of a claim (ids are GUIDs, user names email addresses).
const MAX_CLAIM_CHARS: usize = 256;

/// A user who signed in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Account {
    /// `<uid>.<utid>`: the user's object id and tenant in their home tenant (as MSAL keys
    /// accounts), from `client_info`, else `<oid>.<tid>` of the id token.
    pub(crate) home_account_id: String,
    /// The tenant the id token was issued in (`tid`).
    pub(crate) tenant_id: String,
    /// `preferred_username` (else `upn`, else `email`); empty when the token has none.
    pub(crate) username: String,
    /// `oid`.
    pub(crate) object_id: String,
}

/// Why an answer names no usable account. Never quotes the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AccountError {
    /// No id token: the `openid` scope was refused or dropped.
    NoIdToken,
    /// The id token is not a JWT with a JSON payload, or lacks `tid` / `oid`.
    Malformed(&'static str),
    /// The id token is for another client (`aud`).
    WrongAudience,
    /// The id token's `nonce` is not the one the sign-in sent.
    WrongNonce,
}

impl AccountError {
    pub(crate) fn describe(&self) -> String {
        match self {
            AccountError::NoIdToken => "the answer has no id token".to_owned(),
            AccountError::Malformed(what) => format!("the id token is unusable: {what}"),
            AccountError::WrongAudience => {
                "the id token was issued for another application (its aud is not this client id)"
                    .to_owned()
            }
            AccountError::WrongNonce => {
                "the id token's nonce is not the one this sign-in sent (a replayed or mixed-up answer)"
                    .to_owned()
            }
        }
    }
}

#[derive(Deserialize)]
struct IdClaims {
    aud: Option<serde_json::Value>,
    tid: Option<String>,
    oid: Option<String>,
    preferred_username: Option<String>,
    upn: Option<String>,
    email: Option<String>,
    nonce: Option<String>,
}

#[derive(Deserialize)]
struct ClientInfo {
    uid: Option<String>,
    utid: Option<String>,
}

impl Account {
    /// The account an answer's `id_token` and `client_info` name, for `client_id`; `nonce` is
    /// the one the sign-in sent, if any (refresh answers carry none to check).
    pub(crate) fn from_answer(
        id_token: Option<&Secret>,
        client_info: Option<&str>,
        client_id: &str,
        nonce: Option<&str>,
    ) -> Result<Account, AccountError> {
        let id_token = id_token.ok_or(AccountError::NoIdToken)?;
        let claims: IdClaims = decode_segment(id_token.expose(), 1)
            .ok_or(AccountError::Malformed("not a JWT with a JSON payload"))?;
        let audience_ok = match &claims.aud {
            Some(serde_json::Value::String(aud)) => aud.eq_ignore_ascii_case(client_id),
            Some(serde_json::Value::Array(list)) => list.iter().any(|a| {
                a.as_str()
                    .is_some_and(|a| a.eq_ignore_ascii_case(client_id))
            }),
            _ => false,
        };
        if !audience_ok {
            return Err(AccountError::WrongAudience);
        }
        if let Some(sent) = nonce
            && claims.nonce.as_deref() != Some(sent)
        {
            return Err(AccountError::WrongNonce);
        }
        let tenant_id = claims
            .tid
            .as_deref()
            .and_then(clean_id)
            .ok_or(AccountError::Malformed("no valid tid claim"))?;
        let object_id = claims
            .oid
            .as_deref()
            .and_then(clean_id)
            .ok_or(AccountError::Malformed("no valid oid claim"))?;
        let username = [&claims.preferred_username, &claims.upn, &claims.email]
            .into_iter()
            .flatten()
            .find_map(|name| clean_text(name))
            .unwrap_or_default();
        let home_account_id = client_info
            .and_then(|info| {
                let bytes = URL_SAFE_NO_PAD
                    .decode(info.trim_end_matches('=').as_bytes())
                    .ok()?;
                let info: ClientInfo = serde_json::from_slice(&bytes).ok()?;
                let uid = clean_id(info.uid.as_deref()?)?;
                let utid = clean_id(info.utid.as_deref()?)?;
                Some(format!("{uid}.{utid}"))
            })
            .unwrap_or_else(|| format!("{object_id}.{tenant_id}"));
        Ok(Account {
            home_account_id,
            tenant_id,
            username,
            object_id,
        })
    }
}

/// Segment `n` of a JWT, base64url-decoded and parsed as JSON.
fn decode_segment<T: serde::de::DeserializeOwned>(jwt: &str, n: usize) -> Option<T> {
    if jwt.len() > MAX_ID_TOKEN_BYTES {
        return None;
    }
    let segment = jwt.split('.').nth(n)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).ok()?).ok()
}

/// An id (a GUID, or a tenant's domain): letters, digits, `-`, `.`, `_`, bounded.
fn clean_id(id: &str) -> Option<String> {
    let ok = !id.is_empty()
        && id.len() <= MAX_CLAIM_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    ok.then(|| id.to_owned())
}

/// A user name as it may be shown and logged: no control characters, bounded.
fn clean_text(text: &str) -> Option<String> {
    let text = text.trim();
    let ok = !text.is_empty()
        && text.chars().count() <= MAX_CLAIM_CHARS
        && !text.chars().any(char::is_control);
    ok.then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> Secret {
        Secret::new(format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.sig",
            URL_SAFE_NO_PAD.encode(payload)
        ))
    }

    const CLIENT: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

    #[test]
    fn an_id_token_and_client_info_name_the_account() {
        let token = jwt(&format!(
            r#"{{"aud":"{CLIENT}","tid":"t1","oid":"o1","preferred_username":"ada@contoso.example","nonce":"n"}}"#
        ));
        let info = URL_SAFE_NO_PAD.encode(r#"{"uid":"u9","utid":"home"}"#);
        let account = Account::from_answer(Some(&token), Some(&info), CLIENT, Some("n")).unwrap();
        assert_eq!(account.home_account_id, "u9.home");
        assert_eq!(account.tenant_id, "t1");
        assert_eq!(account.object_id, "o1");
        assert_eq!(account.username, "ada@contoso.example");
        // Without client_info the home account is the id token's.
        let account = Account::from_answer(Some(&token), None, CLIENT, None).unwrap();
        assert_eq!(account.home_account_id, "o1.t1");
    }

    #[test]
    fn what_does_not_match_the_sign_in_is_refused() {
        let token = jwt(r#"{"aud":"other","tid":"t","oid":"o"}"#);
        assert_eq!(
            Account::from_answer(Some(&token), None, CLIENT, None),
            Err(AccountError::WrongAudience)
        );
        let token = jwt(&format!(
            r#"{{"aud":"{CLIENT}","tid":"t","oid":"o","nonce":"a"}}"#
        ));
        assert_eq!(
            Account::from_answer(Some(&token), None, CLIENT, Some("b")),
            Err(AccountError::WrongNonce)
        );
        assert_eq!(
            Account::from_answer(None, None, CLIENT, None),
            Err(AccountError::NoIdToken)
        );
        for bad in [
            jwt(&format!(r#"{{"aud":"{CLIENT}","oid":"o"}}"#)),
            jwt(&format!(r#"{{"aud":"{CLIENT}","tid":"t\n","oid":"o"}}"#)),
            Secret::new("not a jwt"),
            jwt("[1]"),
        ] {
            assert!(matches!(
                Account::from_answer(Some(&bad), None, CLIENT, None),
                Err(AccountError::Malformed(_) | AccountError::WrongAudience)
            ));
        }
        // A user name with control characters is dropped, not shown.
        let token = jwt(&format!(
            r#"{{"aud":"{CLIENT}","tid":"t","oid":"o","preferred_username":"a\u001b[31m"}}"#
        ));
        let account = Account::from_answer(Some(&token), None, CLIENT, None).unwrap();
        assert_eq!(account.username, "");
    }
}
