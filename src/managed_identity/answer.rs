//! How an endpoint's answer becomes a token or an error.
//!
//! After the retries, [`read_token`] turns an answer into a token or an error by this rule
//! (tested case by case in `tests/managed_identity/`), asking the source where sources
//! differ.
//!
//! A managed identity endpoint always answers in JSON and never redirects. So only an answer
//! that clearly did not come from one moves a credential chain on; an answer that looks like
//! the endpoint's, however broken, stops it, so that a failing endpoint never silently hands
//! the program to another identity (a developer's `az login`, say).
//!
//! | answer | IMDS (its address is a guess) | a source the environment names |
//! | --- | --- | --- |
//! | 2xx with a JSON object holding a bearer `access_token` and a readable expiry (after an optional UTF-8 BOM) | the token | the token |
//! | 2xx with an HTML page (a body starting with `<`) | `Unavailable`: not IMDS (a proxy, a captive portal) | `Other`: not the endpoint |
//! | 2xx with anything else: JSON cut short or malformed, `[]`, `null`, `{}` or another object without `access_token`, fields of the wrong type, no readable expiry, a token type other than bearer, an empty body, plain text | `ServiceFailure` | `ServiceFailure` |
//! | 2xx naming a different identity than the user-assigned one asked for (`client_id`, `object_id`, `msi_res_id`/`mi_res_id`, compared case-insensitively; from Azure Arc, also naming none) | `Authentication` | `Authentication` |
//! | 3xx | `Unavailable` | `Other` |
//! | 403 whose body says "unreachable" (Docker Desktop) | `Unavailable` | by status, below |
//! | 4xx or 5xx with a body that is neither JSON nor empty (HTML, plain text from a proxy) | `Unavailable` | by status, below |
//! | 400 "Identity not found" (from IMDS, any 400) | system-assigned: `Unavailable`; user-assigned: `Authentication` | same |
//! | 429 | `Throttled` | `Throttled` |
//! | 410 or 5xx | `ServiceFailure` | `ServiceFailure` |
//! | any other 4xx | `Authentication` | `Authentication` |
//!
//! A body cut short of its `Content-Length`, a reset or a closed connection never reaches this
//! rule: the HTTP seam reports it ([`ErrorKind::Io`] after the retries), which stops a chain too
//! ([`transport_failure`]).
//!
//! The IMDS probe (chains) applies the same rule to its answer: a redirect, an HTML page, plain
//! text with an error status or Docker Desktop's 403 is `Unavailable` at once, before any token
//! request; any other answer means IMDS is there.

use time::OffsetDateTime;
use url::Url;

use super::response::{self, Shape, TokenBody, error_summary};
use super::source::{Endpoint, NAME, UserAssignedId};
use crate::system::redacted_url;
use crate::system::{HttpError, HttpErrorKind, HttpResponse};
use crate::{AccessToken, Error, ErrorKind};

/// Reads a token from a success, or classifies a failure, by the rule in the module docs.
pub(super) fn read_token(
    endpoint: &Endpoint,
    id: Option<&UserAssignedId>,
    response: &HttpResponse,
    requested_at: OffsetDateTime,
) -> Result<AccessToken, Error> {
    if !(200..300).contains(&response.status()) {
        return Err(failure(endpoint, id, response));
    }
    match response::shape(response.body()) {
        Shape::Object(_) => {}
        Shape::Markup => {
            return Err(not_the_endpoint(
                endpoint,
                response.status(),
                "an HTML page",
            ));
        }
        other => return Err(not_a_token(endpoint, response, describe(&other))),
    }
    let Some(body) = TokenBody::parse(response.body()) else {
        return Err(not_a_token(
            endpoint,
            response,
            "JSON whose fields have the wrong types or appear twice",
        ));
    };
    let token = body
        .access_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| not_a_token(endpoint, response, "JSON without an access_token"))?;
    if let Some(kind) = body.token_type.as_deref()
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(not_a_token(
            endpoint,
            response,
            &format!("a {:?} token, not a bearer token", crate::scrub::line(kind)),
        ));
    }
    if let Some(id) = id {
        check_echo(endpoint, id, &body)?;
    }
    let expires_on = body.expires_on(requested_at).ok_or_else(|| {
        not_a_token(
            endpoint,
            response,
            "a token without a readable expiry (expires_on or expires_in)",
        )
    })?;
    // Which identity: the response names the client id; the token itself says the tenant.
    let claims = crate::jwt::Claims::of(token).unwrap_or_default();
    let mut token = AccessToken::new(token.to_owned(), expires_on).with_source(NAME);
    if let Some(refresh_on) = body.refresh_on(requested_at, expires_on) {
        token = token.with_refresh_on(refresh_on);
    }
    let client_id = body.client_id.as_deref().filter(|c| !c.is_empty());
    if let Some(client_id) = client_id.or(claims.client_id()) {
        token = token.with_client_id(client_id);
    }
    if let Some(tenant) = claims.tid.as_deref() {
        token = token.with_tenant_id(tenant);
    }
    tracing::debug!(credential = NAME, source = %endpoint.kind, %expires_on, attempts = response.attempts(), "managed identity token received");
    Ok(token)
}

/// A request that got no answer: a refused or unreachable endpoint is
/// [`ErrorKind::Unavailable`] (there is no managed identity here); the rest is the HTTP seam's
/// own error, with the source's fix where it has one.
pub(super) fn transport_failure(endpoint: &Endpoint, error: &HttpError, url: &Url) -> Error {
    match error.kind() {
        HttpErrorKind::ConnectionRefused | HttpErrorKind::Unreachable => {
            let unavailable = Error::unavailable(
                NAME,
                format!(
                    "the {} endpoint {} is not reachable: {error}",
                    endpoint.kind,
                    redacted_url(url)
                ),
            );
            match endpoint.source.unreachable_fix() {
                Some(fix) => unavailable.with_fix(fix),
                None => unavailable,
            }
        }
        HttpErrorKind::Tls => match endpoint.source.tls_fix() {
            Some(fix) => Error::from_http(NAME, error).with_fix(fix),
            None => Error::from_http(NAME, error),
        },
        _ => Error::from_http(NAME, error),
    }
}

/// The endpoint answered, but not with a usable token: it failed ([`ErrorKind::ServiceFailure`]).
fn not_a_token(endpoint: &Endpoint, response: &HttpResponse, what: &str) -> Error {
    let status = response.status();
    Error::new(
        ErrorKind::ServiceFailure,
        NAME,
        format!(
            "the {} endpoint answered {status} with {what} instead of a token",
            endpoint.kind
        ),
    )
    .with_status(status)
    .with_fix("the managed identity endpoint is failing: try again later")
}

/// Something other than the endpoint answered, with `what` (a redirect, an HTML page): an
/// endpoint the environment names is misconfigured or intercepted, unless the source says
/// otherwise.
fn not_the_endpoint(endpoint: &Endpoint, status: u16, what: &str) -> Error {
    endpoint
        .source
        .not_the_endpoint(status, what)
        .unwrap_or_else(|| {
            Error::new(
                ErrorKind::Other,
                NAME,
                format!(
                    "the {} endpoint answered {status} with {what}, not JSON: something other than the endpoint answered (a proxy?)",
                    endpoint.kind
                ),
            )
            .with_status(status)
            .with_fix("check the endpoint the environment names, and that no proxy answers for it")
        })
}

fn failure(endpoint: &Endpoint, id: Option<&UserAssignedId>, response: &HttpResponse) -> Error {
    let source = &endpoint.source;
    if let Some(error) = source.foreign_failure(response) {
        return error;
    }
    let status = response.status();
    let kind = endpoint.kind;
    if (300..400).contains(&status) {
        return not_the_endpoint(endpoint, status, "a redirect");
    }
    let summary = error_summary(response.body());
    let detail = summary
        .as_deref()
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    let tries = attempts_text(response);
    if status == 429 {
        let mut error = Error::new(
            ErrorKind::Throttled,
            NAME,
            format!("the {kind} endpoint is throttling requests (429{tries}){detail}"),
        )
        .with_status(status)
        .with_fix(
            "share one credential across the process and let its cache serve repeated requests",
        );
        if let Some(after) = response.retry_after() {
            error = error.with_retry_after(after);
        }
        return error;
    }
    let identity_not_found = summary
        .as_deref()
        .is_some_and(|s| s.to_ascii_lowercase().contains("identity not found"));
    if status == 400 && (identity_not_found || source.any_400_means_no_identity()) {
        return match id {
            None => Error::unavailable(
                NAME,
                format!("no managed identity is assigned to this resource ({kind} answered 400{detail})"),
            )
            .with_status(status)
            .with_fix("enable the system-assigned identity, or name a user-assigned one with AZURE_CLIENT_ID or the builder"),
            Some(id) => Error::authentication(
                NAME,
                format!("the requested identity ({id}) is not assigned to this resource ({kind} answered 400{detail})"),
            )
            .with_status(status)
            .with_fix("check the id, or assign that identity to this resource"),
        };
    }
    // 410 is IMDS saying it is updating; 5xx a failure of the service. Both were retried.
    if status == 410 || (500..600).contains(&status) {
        return Error::new(
            ErrorKind::ServiceFailure,
            NAME,
            format!("the {kind} endpoint failed: it answered {status}{tries}{detail}"),
        )
        .with_status(status)
        .with_fix("the managed identity endpoint is failing: try again later");
    }
    Error::authentication(
        NAME,
        format!("the {kind} endpoint answered {status}{tries}{detail}"),
    )
    .with_status(status)
}

/// Describes a body that is not a token response, for messages (never its contents).
fn describe(shape: &Shape) -> &'static str {
    match shape {
        Shape::Object(_) => "a JSON object",
        Shape::BrokenJson(what) => what,
        Shape::Markup => "an HTML page",
        Shape::Empty => "an empty body",
        Shape::Text => "a body that is not JSON",
    }
}

/// The identity a response names must be the one asked for. IMDS and App Service echo the
/// `client_id` (and newer Azure Arc agents every kind of id): an echo of a different id fails
/// closed, compared case-insensitively. A response that names no id of the requested kind is
/// accepted unless the source says otherwise (`Source::unconfirmed`: Azure Arc, whose older
/// agents ignore a requested identity and answer for the system-assigned one).
fn check_echo(endpoint: &Endpoint, id: &UserAssignedId, body: &TokenBody) -> Result<(), Error> {
    // Every field that can name the identity must name this one (an empty one names none).
    let fields = match id {
        UserAssignedId::ClientId(_) => [body.client_id.as_deref(), None],
        UserAssignedId::ObjectId(_) => [body.object_id.as_deref(), None],
        UserAssignedId::ResourceId(_) => [body.msi_res_id.as_deref(), body.mi_res_id.as_deref()],
    };
    let mut echoed = fields
        .into_iter()
        .flatten()
        .filter(|e| !e.is_empty())
        .peekable();
    let confirmed = echoed.peek().is_some();
    match echoed.find(|e| !e.eq_ignore_ascii_case(id.value())) {
        None if confirmed => Ok(()),
        Some(echoed) => Err(Error::authentication(
            NAME,
            format!(
                "the {} endpoint returned a token for {} {:?}, but {id} was requested; refusing a token that belongs to another identity",
                endpoint.kind,
                id.kind(),
                crate::scrub::line(echoed)
            ),
        )
        .with_fix(endpoint.source.wrong_identity_fix())),
        None => endpoint.source.unconfirmed(id),
    }
}

/// `" after 6 attempts over 31 s"` when the request was retried.
fn attempts_text(response: &HttpResponse) -> String {
    if response.attempts() > 1 {
        format!(
            " after {} attempts over {:.1} s",
            response.attempts(),
            response.elapsed().as_secs_f64()
        )
    } else {
        String::new()
    }
}
