//! The token endpoint's protocol checks of [`MockEntra`](super::MockEntra): path, method and
//! form, grant type (the user grants' own checks are in `user.rs`), and client authentication
//! (secret, assertion, public client).

use super::assertion::MockAssertion;
use super::reply::error_response;
use super::user::{DEVICE_CODE_GRANT, UserGrant};
use super::{ASSERTION_TYPE, FORM, JWT_BEARER_GRANT, State, tenant_of};
use crate::Secret;
use crate::testing::loopback_http::{RecordedRequest, first_value};

impl State {
    /// The token endpoint's protocol checks: `Err` is the answer to a request that fails one;
    /// `Ok` names what a user grant redeems.
    pub(super) fn check(
        &self,
        request: &RecordedRequest,
        form: &[(String, String)],
        assertion: Option<&MockAssertion>,
        now: i64,
    ) -> Result<Option<UserGrant>, (u16, &'static str, Vec<u8>)> {
        let field = |name: &str| first_value(form, name);
        let n = self.requests.len() as u64 + 1;
        if tenant_of(request.path()).is_none() {
            return Err(error_response(
                404,
                "invalid_request",
                90002,
                "Tenant not found: the path is not a token endpoint.",
                n,
            ));
        }
        form_post(request, n)?;
        let grant = match field("grant_type") {
            Some("client_credentials") => None,
            Some(JWT_BEARER_GRANT) => {
                check_on_behalf_of(form, n)?;
                None
            }
            Some(grant @ (DEVICE_CODE_GRANT | "authorization_code" | "refresh_token")) => {
                Some(self.user.check_grant(grant, form, now, n)?)
            }
            _ => {
                return Err(error_response(
                    400,
                    "unsupported_grant_type",
                    70003,
                    "The app requested an unsupported grant type.",
                    n,
                ));
            }
        };
        if grant.is_none() {
            require(form, &["client_id", "scope"], n)?;
        }
        match (field("client_secret"), field("client_assertion")) {
            // A public client (the user grants) authenticates with neither.
            (None, None) if grant.is_some() => {}
            (Some(secret), None) => {
                if self
                    .secret
                    .as_ref()
                    .is_some_and(|s| *s != Secret::new(secret))
                {
                    return Err(error_response(
                        401,
                        "invalid_client",
                        7000215,
                        "Invalid client secret provided.",
                        n,
                    ));
                }
            }
            (None, Some(sent)) => {
                if field("client_assertion_type") != Some(ASSERTION_TYPE) {
                    return Err(error_response(
                        400,
                        "invalid_request",
                        900144,
                        "The request body must contain the following parameter: 'client_assertion_type'.",
                        n,
                    ));
                }
                if self
                    .assertion
                    .as_ref()
                    .is_some_and(|expected| *expected != Secret::new(sent))
                {
                    return Err(error_response(
                        400,
                        "invalid_request",
                        70021,
                        "No matching federated identity record found for presented assertion.",
                        n,
                    ));
                }
                if self.trusted.is_some() {
                    match assertion.and_then(MockAssertion::verified) {
                        Some(Ok(())) => {}
                        Some(Err(why)) if why.starts_with("expired") => {
                            return Err(error_response(
                                400,
                                "invalid_client",
                                700024,
                                "Client assertion is not within its valid time range.",
                                n,
                            ));
                        }
                        _ => {
                            return Err(error_response(
                                401,
                                "invalid_client",
                                700027,
                                "Client assertion failed signature validation.",
                                n,
                            ));
                        }
                    }
                }
            }
            _ => {
                return Err(error_response(
                    401,
                    "invalid_client",
                    7000218,
                    "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                    n,
                ));
            }
        }
        Ok(grant)
    }
}

/// Refuses a request lacking one of the `required` form fields (or sending it empty), as Entra
/// does (`AADSTS900144`).
/// The check every form endpoint makes first: a `POST` with a form body.
pub(super) fn form_post(
    request: &RecordedRequest,
    n: u64,
) -> Result<(), (u16, &'static str, Vec<u8>)> {
    if request.method() != "POST" {
        return Err(error_response(
            405,
            "invalid_request",
            900561,
            "The endpoint only accepts POST requests.",
            n,
        ));
    }
    if !request
        .header("content-type")
        .is_some_and(|ct| ct.starts_with(FORM))
    {
        return Err(error_response(
            400,
            "invalid_request",
            900144,
            "The request body must be application/x-www-form-urlencoded.",
            n,
        ));
    }
    Ok(())
}

pub(super) fn require(
    form: &[(String, String)],
    required: &[&str],
    n: u64,
) -> Result<(), (u16, &'static str, Vec<u8>)> {
    match required
        .iter()
        .find(|name| first_value(form, name).is_none_or(str::is_empty))
    {
        None => Ok(()),
        Some(missing) => Err(error_response(
            400,
            "invalid_request",
            900144,
            &format!("The request body must contain the following parameter: '{missing}'."),
            n,
        )),
    }
}

/// The on-behalf-of fields: `requested_token_use=on_behalf_of` and an `assertion` shaped like
/// an access token (a JWS or JWE: three or five base64url parts).
fn check_on_behalf_of(
    form: &[(String, String)],
    n: u64,
) -> Result<(), (u16, &'static str, Vec<u8>)> {
    let field = |name: &str| first_value(form, name);
    require(form, &["requested_token_use", "assertion"], n)?;
    if field("requested_token_use") != Some("on_behalf_of") {
        return Err(error_response(
            400,
            "invalid_request",
            90014,
            "The value of 'requested_token_use' is not valid: only 'on_behalf_of' is supported.",
            n,
        ));
    }
    let jwt_shaped = field("assertion").is_some_and(|assertion| {
        let parts: Vec<&str> = assertion.split('.').collect();
        matches!(parts.len(), 3 | 5)
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    });
    if !jwt_shaped {
        return Err(error_response(
            400,
            "invalid_grant",
            50027,
            "JWT token is invalid or malformed.",
            n,
        ));
    }
    Ok(())
}
