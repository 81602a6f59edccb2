//! Reading the token endpoint's answers: a token, an Entra error body, or something else
//! (an HTML page from a proxy, garbage). Nothing here ever copies a response body into an error
//! or a log line: a body may hold a token. Entra's own `error_description` is the exception:
//! its first sentence is Entra's explanation and is kept (cleaned and cut short).

use serde_json::{Map, Value};

use crate::system::HttpResponse;
use crate::{Error, ErrorKind};

/// Longest accepted token lifetime (a sanity bound: Entra tokens live hours).
const MAX_LIFETIME_SECS: i64 = 10 * 365 * 24 * 3600;

/// Who was asking, for messages.
pub(crate) struct Context<'a> {
    pub(crate) credential: &'static str,
    pub(crate) tenant: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) authority: &'a str,
}

/// The parts of a token response the credentials use.
pub(crate) struct ParsedToken {
    pub(super) access_token: String,
    pub(super) expires_in: i64,
    pub(super) refresh_in: Option<i64>,
    /// What only the user grants return: the refresh token, the id token and `client_info`.
    pub(super) user: UserParts,
}

/// The parts of a token response only the user grants have. Each is `None` when absent,
/// empty or not a string. (Read only by the user sign-in credentials.)
#[derive(Default)]
#[cfg_attr(not(feature = "user-sign-in"), allow(dead_code))]
pub(crate) struct UserParts {
    pub(crate) refresh_token: Option<crate::Secret>,
    pub(crate) id_token: Option<crate::Secret>,
    /// Base64url JSON `{"uid": .., "utid": ..}`: the user's home account.
    pub(crate) client_info: Option<String>,
}

/// What kind of grant a request was, for the fix an error suggests.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum GrantKind {
    /// Client credentials: a token for the application itself.
    App,
    /// On-behalf-of: a user's token exchanged by an API.
    OnBehalfOf,
    /// A user's sign-in or refresh token (device code, authorization code, refresh token).
    #[cfg(feature = "user-sign-in")]
    User,
}

/// Parses a 200 response as a token.
pub(crate) fn parse_token(
    ctx: &Context<'_>,
    response: &HttpResponse,
) -> Result<ParsedToken, Error> {
    let unexpected = |what: &str| {
        Error::new(
            ErrorKind::Other,
            ctx.credential,
            format!(
                "Microsoft Entra ID answered 200 with {what} instead of a token response"
            ),
        )
        .with_status(200)
        .with_fix(format!(
            "check that the authority host {} is a Microsoft Entra endpoint and that no proxy answers for it",
            ctx.authority
        ))
    };
    let Some(body) = json_object(response) else {
        return Err(unexpected(&describe_body(response)));
    };
    let access_token = match body.get("access_token") {
        Some(Value::String(token)) if !token.is_empty() => token.clone(),
        _ => return Err(unexpected("JSON without an access_token")),
    };
    let Some(expires_in) = body.get("expires_in").and_then(seconds) else {
        return Err(unexpected("a token without a valid expires_in"));
    };
    let refresh_in = match body.get("refresh_in") {
        None | Some(Value::Null) => None,
        Some(value) => {
            let parsed = seconds(value).filter(|r| *r < expires_in);
            if parsed.is_none() {
                tracing::debug!(
                    credential = ctx.credential,
                    "ignoring an invalid refresh_in in the token response"
                );
            }
            parsed
        }
    };
    let text = |name: &str| match body.get(name) {
        Some(Value::String(value)) if !value.is_empty() => Some(value.clone()),
        _ => None,
    };
    let user = UserParts {
        refresh_token: text("refresh_token").map(crate::Secret::from),
        id_token: text("id_token").map(crate::Secret::from),
        client_info: text("client_info"),
    };
    Ok(ParsedToken {
        access_token,
        expires_in,
        refresh_in,
        user,
    })
}

/// The OAuth `error` code of an error answer (`authorization_pending`, `invalid_grant`, ...),
/// when the body is an Entra error with a well-formed code.
#[cfg(feature = "user-sign-in")]
pub(crate) fn oauth_error(response: &HttpResponse) -> Option<String> {
    let body = json_object(response)?;
    let error = body.get("error")?.as_str()?;
    is_error_code(error).then(|| error.to_owned())
}

/// A positive number of seconds, sent as a JSON number or a string of digits.
fn seconds(value: &Value) -> Option<i64> {
    let secs = match value {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()?
        }
        _ => return None,
    };
    (1..=MAX_LIFETIME_SECS).contains(&secs).then_some(secs)
}

/// The error for a response other than 200 to a client-credentials request (the fuzz
/// targets' entry point; the client calls [`from_grant_response`]).
#[cfg(any(test, fuzzing))]
pub(crate) fn from_response(ctx: &Context<'_>, response: &HttpResponse) -> Error {
    from_grant_response(ctx, response, GrantKind::App)
}

/// The error for a response other than 200 to a request of kind `grant` (an on-behalf-of
/// refusal may be about the user assertion, a user grant's about the user's sign-in).
pub(crate) fn from_grant_response(
    ctx: &Context<'_>,
    response: &HttpResponse,
    grant: GrantKind,
) -> Error {
    let status = response.status();
    let attempts = attempts_note(response.attempts());
    let entra = json_object(response).and_then(|body| EntraError::from_body(&body));
    let Some(entra) = entra else {
        let what = describe_body(response);
        let (kind, fix) = if status == 429 {
            (
                ErrorKind::Throttled,
                "wait before asking again, and share one credential across the process so tokens come from its cache".to_owned(),
            )
        } else if what.contains("HTML") {
            (
                ErrorKind::Other,
                format!(
                    "a proxy, firewall or captive portal may be answering for {}: check HTTPS_PROXY and NO_PROXY",
                    ctx.authority
                ),
            )
        } else if status >= 500 {
            // Not a proxy's page (above): the service failed, and a later try may work.
            (
                ErrorKind::ServiceFailure,
                "Microsoft Entra ID may be having an outage: try again later".to_owned(),
            )
        } else {
            (
                ErrorKind::Other,
                format!(
                    "check that the authority host {} is a Microsoft Entra endpoint",
                    ctx.authority
                ),
            )
        };
        let mut error = Error::new(
            kind,
            ctx.credential,
            format!("Microsoft Entra ID answered {status} with {what}{attempts}"),
        )
        .with_status(status)
        .with_fix(fix);
        if let Some(after) = response.retry_after() {
            error = error.with_retry_after(after);
        }
        return error;
    };

    let mut details = format!("{status} {}", entra.error);
    if let Some(description) = &entra.description {
        details.push_str(": ");
        details.push_str(description);
    }
    let ids = match (&entra.trace_id, &entra.correlation_id) {
        (Some(t), Some(c)) => format!(" [trace id {t}, correlation id {c}]"),
        (Some(t), None) => format!(" [trace id {t}]"),
        (None, Some(c)) => format!(" [correlation id {c}]"),
        (None, None) => String::new(),
    };
    let (kind, message, fix) = if status == 429 {
        (
            ErrorKind::Throttled,
            format!("Microsoft Entra ID throttled the token request ({details}){attempts}{ids}"),
            "wait before asking again, and share one credential across the process so tokens come from its cache".to_owned(),
        )
    } else if status >= 500 {
        (
            ErrorKind::ServiceFailure,
            format!(
                "Microsoft Entra ID failed to answer the token request ({details}){attempts}{ids}"
            ),
            "Microsoft Entra ID may be having an outage: try again later".to_owned(),
        )
    } else {
        (
            ErrorKind::Authentication,
            format!(
                "Microsoft Entra ID refused the token request for client {} in tenant {} ({details}){ids}",
                super::quoted(ctx.client_id),
                super::quoted(ctx.tenant)
            ),
            fix_for(&entra, grant),
        )
    };
    let mut error = Error::new(kind, ctx.credential, message)
        .with_status(status)
        .with_aadsts_codes(entra.codes.iter().copied())
        .with_fix(fix);
    if let Some(id) = entra.correlation_id {
        error = error.with_correlation_id(id);
    }
    if let Some(after) = response.retry_after() {
        error = error.with_retry_after(after);
    }
    error
}

fn attempts_note(attempts: u32) -> String {
    if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    }
}

/// What an Entra error body says.
struct EntraError {
    error: String,
    description: Option<String>,
    codes: Vec<u32>,
    trace_id: Option<String>,
    correlation_id: Option<String>,
}

impl EntraError {
    /// An Entra (OAuth 2) error body: an object with a string `error`.
    fn from_body(body: &Map<String, Value>) -> Option<EntraError> {
        let error = body.get("error")?.as_str()?;
        let error = if is_error_code(error) {
            error.to_owned()
        } else {
            "error".to_owned()
        };
        let description = body
            .get("error_description")
            .and_then(Value::as_str)
            .map(crate::scrub::sentence)
            .filter(|d| !d.is_empty());
        let mut codes: Vec<u32> = match body.get("error_codes") {
            Some(Value::Array(codes)) => codes
                .iter()
                .filter_map(|c| c.as_u64().and_then(|c| u32::try_from(c).ok()))
                .collect(),
            _ => Vec::new(),
        };
        if codes.is_empty() {
            // Some answers carry the code only in the description ("AADSTS700024: ...").
            codes.extend(description.as_deref().and_then(aadsts_in));
        }
        Some(EntraError {
            error,
            description,
            codes,
            trace_id: body
                .get("trace_id")
                .and_then(Value::as_str)
                .and_then(clean_id),
            correlation_id: body
                .get("correlation_id")
                .and_then(Value::as_str)
                .and_then(clean_id),
        })
    }

    fn has(&self, codes: &[u32]) -> bool {
        self.codes.iter().any(|c| codes.contains(c))
    }
}

/// An OAuth error code: `invalid_client` and the like.
fn is_error_code(error: &str) -> bool {
    !error.is_empty()
        && error.len() <= 64
        && error
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A trace or correlation id as Entra sends them (GUIDs); anything else is dropped.
fn clean_id(id: &str) -> Option<String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ok.then(|| id.to_owned())
}

/// The code of a description starting `AADSTS<digits>:`.
fn aadsts_in(description: &str) -> Option<u32> {
    let rest = description.strip_prefix("AADSTS")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// What to change, for the AADSTS codes users meet most, first those of the grant's kind.
fn fix_for(error: &EntraError, grant: GrantKind) -> String {
    let first = match grant {
        GrantKind::App => None,
        GrantKind::OnBehalfOf => user_assertion_fix(error),
        #[cfg(feature = "user-sign-in")]
        GrantKind::User => user_sign_in_fix(error),
    };
    let fix = if let Some(fix) = first {
        fix
    } else if error.has(&[7000215]) {
        "check the client secret: use the secret's value (not its id) from the app registration's Certificates & secrets, and check that it has not expired"
    } else if error.has(&[7000222]) {
        "the client secret has expired: create a new one in the app registration's Certificates & secrets"
    } else if error.has(&[700016]) {
        "check the client id and the tenant id: no application with this client id exists in this tenant"
    } else if error.has(&[90002, 900023, 90013]) {
        "check the tenant id: Microsoft Entra ID does not know this tenant"
    } else if error.has(&[700027, 700023, 50012]) {
        "check that this certificate is uploaded to the app registration (Certificates & secrets) and has not expired"
    } else if error.has(&[700024]) {
        "the client assertion has expired: for workload identity, the federated token file is stale (is the service account token being renewed?)"
    } else if error.has(&[70021, 700211, 700212, 700213]) {
        "check the app's federated identity credential: its issuer, subject and audience must match the service account token"
    } else if error.has(&[500011]) {
        "check the scope: its resource does not exist in this tenant"
    } else if error.has(&[70011, 1002012]) {
        "check the scope: app-only tokens need a scope of the form \"<resource>/.default\""
    } else if error.has(&[7000112]) {
        "the application is disabled: enable it in the tenant's enterprise applications"
    } else if error.has(&[53003, 53000, 53001, 530003]) {
        "a Conditional Access policy blocked the request: ask the tenant's administrator"
    } else if error.error == "invalid_scope" {
        "check the scope: app-only tokens need a scope of the form \"<resource>/.default\""
    } else if error.error == "invalid_client" || error.error == "unauthorized_client" {
        "check the client id, the tenant id and the client's secret or certificate in the app registration"
    } else {
        "check the credential's tenant id, client id and secret or certificate; quote the correlation id to Azure support"
    };
    fix.to_owned()
}

/// What to change when an on-behalf-of request was refused over the user's token (the user
/// assertion) or what the user may do, `None` when the refusal is about something else.
fn user_assertion_fix(error: &EntraError) -> Option<&'static str> {
    let fix = if error.has(&[500133]) {
        "the user assertion (the access token the API was called with) has expired: the caller must get a new token and call again"
    } else if error.has(&[50027, 50013]) {
        "the user assertion was refused: it must be the access token the API was called with, unexpired and issued for this API (its `aud` is this app's client id or Application ID URI), without the \"Bearer \" prefix; not an ID token or a token for another resource"
    } else if error.has(&[65001]) {
        "the API may not act for the user on this scope: grant consent (admin consent for the tenant) to the delegated permission in the app registration's API permissions"
    } else if error.has(&[50076, 50079, 50158]) || error.error == "interaction_required" {
        "the user must satisfy a Conditional Access policy (such as MFA) interactively: answer the caller with 401 so that its client signs the user in again"
    } else if error.error == "invalid_grant" {
        "the user assertion was refused: check that it is the unexpired access token the API was called with, issued for this API"
    } else {
        return None;
    };
    Some(fix)
}

/// What to change when a user grant (a sign-in, a refresh token) was refused over something the
/// user or the app registration must do; `None` when the refusal is about something else.
#[cfg(feature = "user-sign-in")]
fn user_sign_in_fix(error: &EntraError) -> Option<&'static str> {
    let fix = if error.has(&[7000218]) {
        "the app registration does not allow public client flows: set \"Allow public client flows\" to Yes in its Authentication page, or give the client secret"
    } else if error.has(&[50011, 500113]) {
        "the redirect URI is not registered: add it (http://localhost for the browser sign-in) as a \"Mobile and desktop applications\" redirect URI of the app registration"
    } else if error.has(&[500117]) {
        "the redirect URI must be exactly the one the sign-in request sent the user back to (the one the authorization code was issued for)"
    } else if error.has(&[50148, 501481]) {
        "the PKCE code verifier does not match the sign-in request's code_challenge: give the verifier of that sign-in's challenge"
    } else if error.has(&[65001, 65004]) {
        "the user has not consented to this scope: sign in interactively to consent, or ask the tenant's administrator to grant consent"
    } else if error.has(&[50076, 50079, 50158]) || error.error == "interaction_required" {
        "the user must satisfy a Conditional Access policy (such as MFA) interactively: sign in again"
    } else if error.has(&[54005, 70008]) {
        "the authorization code was already redeemed or has expired: sign the user in again for a new code"
    } else if error.error == "invalid_grant" {
        "the user's sign-in is no longer valid (revoked, password changed, expired): sign in again"
    } else {
        return None;
    };
    Some(fix)
}

/// The body as a JSON object, when it is one.
fn json_object(response: &HttpResponse) -> Option<Map<String, Value>> {
    match serde_json::from_slice(response.body()) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// A short description of a body that is not what was expected, never its contents.
fn describe_body(response: &HttpResponse) -> String {
    let body = response.body();
    let trimmed = body.trim_ascii_start();
    let content_type = response
        .content_type()
        .map(|ct| ct.to_ascii_lowercase())
        .unwrap_or_default();
    if body.is_empty() {
        "an empty body".to_owned()
    } else if content_type.contains("html")
        || trimmed.starts_with(b"<!")
        || trimmed
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case(b"<html"))
    {
        format!("an HTML page ({} bytes)", body.len())
    } else if serde_json::from_slice::<Value>(body).is_ok() {
        format!(
            "JSON that is not a Microsoft Entra answer ({} bytes)",
            body.len()
        )
    } else {
        format!("a body that is not JSON ({} bytes)", body.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_keep_the_first_sentence_only() {
        let d = "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent is the value.\r\nTrace ID: abc\r\nCorrelation ID: def";
        assert_eq!(
            crate::scrub::sentence(d),
            "AADSTS7000215: Invalid client secret provided."
        );
        assert_eq!(
            aadsts_in("AADSTS700024: Client assertion is not within its valid time range."),
            Some(700024)
        );
        assert_eq!(aadsts_in("nothing"), None);
    }

    #[test]
    fn ids_and_codes_are_checked() {
        assert_eq!(
            clean_id("2b6e6b44-4f6c-4c3c-9f3b-0f2a1e2b3c4d").as_deref(),
            Some("2b6e6b44-4f6c-4c3c-9f3b-0f2a1e2b3c4d")
        );
        assert_eq!(clean_id("a\nb"), None);
        assert_eq!(clean_id(""), None);
        assert!(is_error_code("invalid_client"));
        assert!(!is_error_code("invalid client\n"));
    }

    #[test]
    fn lifetimes() {
        assert_eq!(seconds(&serde_json::json!(3599)), Some(3599));
        assert_eq!(seconds(&serde_json::json!("3599")), Some(3599));
        for bad in [
            serde_json::json!(0),
            serde_json::json!(-5),
            serde_json::json!("12s"),
            serde_json::json!(1.5),
            serde_json::json!(null),
            serde_json::json!(i64::MAX),
        ] {
            assert_eq!(seconds(&bad), None, "{bad}");
        }
    }
}
