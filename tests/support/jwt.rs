//! JWT-shaped test tokens: unsigned, read but never verified by the code under test.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

/// A token with the header `{"alg":"RS256"}`, these claims (JSON) and `signature` as its third
/// part, as it stands.
pub fn jwt(claims: &str, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

/// A user access token shaped like the ones Communication Services issues, expiring at `exp`;
/// `marker` makes each token distinct (in its identity and its signature).
pub fn user_token(exp: OffsetDateTime, marker: &str) -> String {
    let payload = format!(
        r#"{{"skypeid":"acs:1b5cc06b-f352-4571-b1e6-d9b259b7c776_{marker}","scp":1792,"csi":"{}","exp":{},"rgn":"amer","acsScope":"chat,voip","resourceId":"1b5cc06b-f352-4571-b1e6-d9b259b7c776","resourceLocation":"unitedstates"}}"#,
        exp.unix_timestamp() - 86400,
        exp.unix_timestamp()
    );
    format!(
        "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEwNiIsIng1dCI6Im9QMWFxQnlfR3hZU3pSaXhuQ25zdE5PU2p2cyIsInR5cCI6IkpXVCJ9.{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(format!("signature-of-{marker}"))
    )
}
