//! What a `401`'s Bearer challenge asks for, and whether [`BearerAuth`](super::BearerAuth)
//! may answer it: the HTTP-client-independent half of the middleware.
//!
//! Two kinds of challenge are answered:
//!
//! - **claims** (continuous access evaluation, conditional access):
//!   `Bearer error="insufficient_claims", claims="<base64 JSON>"` asks for a new token
//!   carrying those claims, for the same scopes;
//! - **resource** (Key Vault, Storage): `Bearer authorization="https://login…/<tenant>",
//!   resource="https://vault.azure.net"` (or `authorization_uri=`, `scope=`, `resource_id=`)
//!   names the tenant and the resource the token must be for. Both can come together.
//!
//! A resource challenge is only answered when the resource is `https://` and the request's host
//! or a parent domain of it of three labels or more (`vault.azure.net` for
//! `myvault.vault.azure.net`; the Key Vault SDKs' rule, made stricter), or when the resource is
//! one the middleware was configured with (its tokens go to this server anyway: Azure
//! Storage's `https://storage.azure.com`): otherwise any server the client talks to could ask
//! for, and receive, a token for another service (a lying server asking for
//! `https://management.azure.com` would get the keys to the subscription). The tenant alone is
//! no such risk: the credential decides which tenants it accepts.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use url::Url;

use super::www_authenticate::{self, SyntaxError};
use crate::scope::{validate_scope, validate_tenant_id};

const NAME: &str = "BearerAuth";

/// What a challenge asks for, once it is known the middleware may answer it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Ask {
    /// The scope the challenge names (resource challenges), instead of the configured ones.
    pub(crate) scope: Option<String>,
    /// The tenant the challenge names (resource challenges), if any.
    pub(crate) tenant: Option<String>,
    /// The decoded claims JSON (claims challenges).
    pub(crate) claims: Option<String>,
}

// Claims are not secret, but are long and of no use in a log line.
impl std::fmt::Debug for Ask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ask")
            .field("scope", &self.scope)
            .field("tenant", &self.tenant)
            .field("claims", &self.claims.as_ref().map(|_| "…"))
            .finish()
    }
}

/// How a `401`'s challenges are to be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// No Bearer challenge this middleware answers (a plain `invalid_token`, another scheme, no
    /// header): the response goes back as it is.
    NotAnswerable,
    /// Get a token as asked and send the request again.
    Answer(Ask),
    /// A resource challenge for a resource outside the request's domain: refused.
    ForeignResource {
        /// The host of the scope the server asked for (scrubbed for messages).
        resource: String,
    },
}

/// Why a challenge could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ChallengeError {
    /// The header's syntax.
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// The header is not visible ASCII.
    #[error("the WWW-Authenticate header is not visible ASCII")]
    NotAscii,
    /// `claims` is not base64 of a JSON object.
    #[error("the challenge's claims are not base64 of a JSON object")]
    Claims,
    /// `authorization` / `authorization_uri` is not a URL with a valid tenant.
    #[error("the challenge's authorization URI is not a URL ending in a valid tenant")]
    Authority,
    /// `scope` / `resource` is not a valid scope.
    #[error("the challenge's scope or resource is not a valid scope")]
    Scope,
}

/// Reads the `WWW-Authenticate` headers of a `401` (`headers`, in order) for a request to
/// `request_host` that was sent with a token for `configured` scopes. With `verify_resource`, a
/// resource challenge must name the request's host or a parent domain of it, or the resource of
/// one of the `configured` scopes.
///
/// The challenge answered is the first `Bearer` challenge with `claims` (CAE), else the first
/// `Bearer` one, of any header. A header that cannot be read (another scheme's odd syntax,
/// bytes that are not ASCII) is passed over; its error is returned only when no header has a
/// `Bearer` challenge.
pub(crate) fn read<'h>(
    headers: impl IntoIterator<Item = &'h [u8]>,
    request_host: &str,
    configured: &[String],
    verify_resource: bool,
) -> Result<Outcome, ChallengeError> {
    let mut bearer: Option<www_authenticate::Challenge> = None;
    let mut unreadable = None;
    'headers: for header in headers {
        let challenges = std::str::from_utf8(header)
            .ok()
            .filter(|t| t.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)))
            .ok_or(ChallengeError::NotAscii)
            .and_then(|text| Ok(www_authenticate::parse(text)?));
        let challenges = match challenges {
            Ok(challenges) => challenges,
            Err(error) => {
                unreadable.get_or_insert(error);
                continue;
            }
        };
        for challenge in challenges.into_iter().filter(|c| c.is("Bearer")) {
            let has_claims = challenge.param("claims").is_some();
            if has_claims || bearer.is_none() {
                bearer = Some(challenge);
            }
            if has_claims {
                break 'headers;
            }
        }
    }
    let Some(bearer) = bearer else {
        return match unreadable {
            Some(error) => Err(error),
            None => Ok(Outcome::NotAnswerable),
        };
    };

    let claims = match (bearer.param("error"), bearer.param("claims")) {
        (Some(error), Some(claims)) if error.eq_ignore_ascii_case("insufficient_claims") => {
            Some(decode_claims(claims)?)
        }
        _ => None,
    };
    let scope = match (
        bearer.param("scope"),
        bearer
            .param("resource")
            .or_else(|| bearer.param("resource_id")),
    ) {
        (Some(scope), _) if !scope.is_empty() => Some(scope.to_owned()),
        (_, Some(resource)) if !resource.is_empty() => Some(format!("{resource}/.default")),
        _ => None,
    };
    let Some(scope) = scope else {
        return Ok(match claims {
            Some(claims) => Outcome::Answer(Ask {
                scope: None,
                tenant: None,
                claims: Some(claims),
            }),
            None => Outcome::NotAnswerable,
        });
    };
    validate_scope(NAME, &scope).map_err(|_| ChallengeError::Scope)?;
    if verify_resource && !trusted(&scope, request_host, configured) {
        let resource = Url::parse(&scope)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| scope.clone());
        return Ok(Outcome::ForeignResource {
            resource: crate::scrub::line(&resource),
        });
    }
    let tenant = match bearer
        .param("authorization_uri")
        .or_else(|| bearer.param("authorization"))
    {
        Some(authority) => tenant_of(authority)?,
        None => None,
    };
    Ok(Outcome::Answer(Ask {
        scope: Some(scope),
        tenant,
        claims,
    }))
}

/// The decoded claims: base64 (URL-safe or standard, padded or not) of a JSON object.
fn decode_claims(encoded: &str) -> Result<String, ChallengeError> {
    let trimmed = encoded.trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| STANDARD_NO_PAD.decode(trimmed))
        .map_err(|_| ChallengeError::Claims)?;
    let json = String::from_utf8(bytes).map_err(|_| ChallengeError::Claims)?;
    match serde_json::from_str::<serde_json::Value>(&json) {
        Ok(serde_json::Value::Object(_)) => Ok(json),
        _ => Err(ChallengeError::Claims),
    }
}

/// The tenant an authorization URI ends in (`https://login.microsoftonline.com/<tenant>`, maybe
/// followed by `/oauth2/authorize`); `None` when it names none, or names AD FS (which has no
/// tenants).
fn tenant_of(authority: &str) -> Result<Option<String>, ChallengeError> {
    let url = Url::parse(authority).map_err(|_| ChallengeError::Authority)?;
    if url.cannot_be_a_base() || !matches!(url.scheme(), "https" | "http") {
        return Err(ChallengeError::Authority);
    }
    let tenant = url
        .path_segments()
        .and_then(|mut segments| segments.next())
        .unwrap_or_default();
    if tenant.is_empty() || tenant.eq_ignore_ascii_case("adfs") {
        return Ok(None);
    }
    validate_tenant_id(NAME, tenant).map_err(|_| ChallengeError::Authority)?;
    Ok(Some(tenant.to_owned()))
}

/// Whether a challenge may be answered with a token for `scope`: the scope is in the request's
/// domain ([`within_domain`]) or is for the resource of one of the `configured` scopes.
pub(crate) fn trusted(scope: &str, request_host: &str, configured: &[String]) -> bool {
    within_domain(scope, request_host)
        || configured
            .iter()
            .any(|c| resource_of(c).eq_ignore_ascii_case(resource_of(scope)))
}

/// A scope's resource: without `/.default` and a trailing `/`.
fn resource_of(scope: &str) -> &str {
    let resource = scope.strip_suffix("/.default").unwrap_or(scope);
    resource.strip_suffix('/').unwrap_or(resource)
}

/// Whether `scope` is for `https://<host>` (nothing more: no user info, port or path, so the host
/// checked is the resource Entra reads) where the host is `request_host` or a parent domain of
/// it with three labels or more (`vault.azure.net` for `x.vault.azure.net`; not `azure.com`,
/// under which anyone can name a host). Compared without case and without a trailing dot.
pub(crate) fn within_domain(scope: &str, request_host: &str) -> bool {
    let resource = resource_of(scope);
    let Some(resource) = resource
        .get(..8)
        .filter(|scheme| scheme.eq_ignore_ascii_case("https://"))
        .and_then(|_| resource.get(8..))
        .map(|host| host.trim_end_matches('.').to_ascii_lowercase())
    else {
        return false;
    };
    let host = request_host.trim_end_matches('.').to_ascii_lowercase();
    let is_host = |h: &str| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !h.split('.').any(str::is_empty)
    };
    if !is_host(&resource) || host.is_empty() {
        return false;
    }
    // An IP address has no parent domains.
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    host == resource
        || (!is_ip
            && resource.split('.').count() >= 3
            && host
                .strip_suffix(resource.as_str())
                .is_some_and(|prefix| prefix.ends_with('.')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    // {"access_token":{"nbf":{"essential":true,"value":"1603742800"}}}
    const CLAIMS: &str = r#"{"access_token":{"nbf":{"essential":true,"value":"1603742800"}}}"#;

    fn read_one(header: &str, host: &str) -> Result<Outcome, ChallengeError> {
        read([header.as_bytes()], host, &[], true)
    }

    fn encoded(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn a_cae_challenge_asks_for_its_claims() {
        for padding in ["", "=", "=="] {
            let header = format!(
                r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="{}{padding}""#,
                encoded(CLAIMS)
            );
            let outcome = read_one(&header, "management.azure.com").unwrap();
            assert_eq!(
                outcome,
                Outcome::Answer(Ask {
                    scope: None,
                    tenant: None,
                    claims: Some(CLAIMS.to_owned())
                })
            );
        }
    }

    #[test]
    fn claims_without_insufficient_claims_are_not_answered() {
        let header = format!(
            r#"Bearer error="invalid_token", claims="{}""#,
            encoded(CLAIMS)
        );
        assert_eq!(
            read_one(&header, "management.azure.com"),
            Ok(Outcome::NotAnswerable)
        );
        assert_eq!(
            read_one(r#"Bearer error="insufficient_claims""#, "x.example"),
            Ok(Outcome::NotAnswerable)
        );
    }

    #[test]
    fn a_key_vault_challenge_names_tenant_and_scope() {
        let header = format!(
            r#"Bearer authorization="https://login.microsoftonline.com/{TENANT}", resource="https://vault.azure.net""#
        );
        let outcome = read_one(&header, "myvault.vault.azure.net").unwrap();
        assert_eq!(
            outcome,
            Outcome::Answer(Ask {
                scope: Some("https://vault.azure.net/.default".to_owned()),
                tenant: Some(TENANT.to_owned()),
                claims: None
            })
        );
        let scoped = format!(
            r#"Bearer authorization_uri="https://login.microsoftonline.com/{TENANT}/oauth2/authorize", scope="https://vault.azure.net/.default""#
        );
        assert_eq!(read_one(&scoped, "MyVault.Vault.Azure.Net."), Ok(outcome));
    }

    #[test]
    fn a_storage_challenge_names_its_resource_id() {
        let header = format!(
            "Bearer authorization_uri=https://login.microsoftonline.com/{TENANT}/oauth2/authorize resource_id=https://storage.azure.com"
        );
        let Ok(Outcome::Answer(ask)) = read(
            [header.as_bytes()],
            "acct.blob.core.windows.net",
            &[],
            false,
        ) else {
            panic!("not answered")
        };
        assert_eq!(
            ask.scope.as_deref(),
            Some("https://storage.azure.com/.default")
        );
        assert_eq!(ask.tenant.as_deref(), Some(TENANT));
    }

    #[test]
    fn a_storage_challenge_for_the_configured_resource_is_answered_with_the_check_on() {
        let header = format!(
            "Bearer authorization_uri=https://login.microsoftonline.com/{TENANT}/oauth2/authorize resource_id=https://storage.azure.com"
        );
        let host = "acct.blob.core.windows.net";
        for configured in [
            "https://storage.azure.com/.default",
            "https://Storage.azure.com/",
            "https://storage.azure.com",
        ] {
            let outcome = read([header.as_bytes()], host, &[configured.to_owned()], true);
            assert!(
                matches!(&outcome, Ok(Outcome::Answer(ask)) if ask.tenant.as_deref() == Some(TENANT)),
                "{configured}: {outcome:?}"
            );
        }
        // Configured for another resource, the storage challenge is foreign.
        let other = ["https://management.azure.com/.default".to_owned()];
        assert!(matches!(
            read([header.as_bytes()], host, &other, true),
            Ok(Outcome::ForeignResource { .. })
        ));
    }

    #[test]
    fn a_resource_outside_the_request_domain_is_refused() {
        for (resource, host) in [
            ("https://management.azure.com", "myvault.vault.azure.net"),
            ("https://vault.azure.net", "evil.example"),
            ("https://vault.azure.net", "evilvault.azure.net"),
            ("https://vault.azure.net", "vault.azure.net.evil.example"),
            ("http://vault.azure.net", "myvault.vault.azure.net"),
            ("api://7a1d", "myvault.vault.azure.net"),
        ] {
            let header = format!(
                r#"Bearer authorization="https://login.microsoftonline.com/{TENANT}", resource="{resource}""#
            );
            let outcome = read_one(&header, host).unwrap();
            assert!(
                matches!(outcome, Outcome::ForeignResource { .. }),
                "{resource} for {host}: {outcome:?}"
            );
        }
        // Refused here or already by the scope's syntax; answered never.
        for (resource, host) in [
            // Not a host alone: what Entra would read is not what was checked.
            ("https:vault.azure.net", "myvault.vault.azure.net"),
            ("https:/vault.azure.net", "myvault.vault.azure.net"),
            (
                "https://vault.azure.net//management.azure.com",
                "myvault.vault.azure.net",
            ),
            ("https://vault.azure.net:443", "myvault.vault.azure.net"),
            ("https://user@vault.azure.net", "myvault.vault.azure.net"),
            ("https://0x7f.1", "127.0.0.1"),
            ("https://0.0.1", "127.0.0.1"),
            // A parent domain of two labels, under which anyone can name a host.
            ("https://azure.com", "evil.eastus.cloudapp.azure.com"),
            ("https://net", "x.vault.azure.net"),
        ] {
            let header = format!(r#"Bearer resource="{resource}""#);
            let outcome = read_one(&header, host);
            assert!(
                !matches!(outcome, Ok(Outcome::Answer(_))),
                "{resource} for {host}: {outcome:?}"
            );
        }
        // The same resources still match exactly, and a parent of three labels or more.
        for (resource, host) in [
            ("https://vault.azure.net", "vault.azure.net"),
            ("https://Vault.Azure.Net.", "x.vault.azure.net"),
            ("https://azure.com", "azure.com"),
            ("https://127.0.0.1", "127.0.0.1"),
        ] {
            assert!(
                within_domain(&format!("{resource}/.default"), host),
                "{resource} for {host}"
            );
        }
    }

    #[test]
    fn the_first_bearer_challenge_of_any_header_counts() {
        let headers: [&[u8]; 2] = [
            b"Basic realm=\"x\"",
            b"PoP nonce=\"n\", Bearer error=\"insufficient_claims\", claims=\"eyJhIjoxfQ\"",
        ];
        let outcome = read(headers, "x.example", &[], true).unwrap();
        assert!(
            matches!(outcome, Outcome::Answer(Ask { claims: Some(c), .. }) if c == r#"{"a":1}"#)
        );
        assert_eq!(
            read([b"Basic realm=x".as_slice()], "x", &[], true),
            Ok(Outcome::NotAnswerable)
        );
        assert_eq!(read([], "x", &[], true), Ok(Outcome::NotAnswerable));
    }

    #[test]
    fn an_unreadable_header_or_a_bearer_challenge_without_claims_hides_no_cae_challenge() {
        let cae = b"Bearer error=\"insufficient_claims\", claims=\"eyJhIjoxfQ\"".as_slice();
        let answers_the_claims = |outcome: Result<Outcome, ChallengeError>| matches!(outcome, Ok(Outcome::Answer(Ask { claims: Some(c), .. })) if c == r#"{"a":1}"#);
        // Another scheme's header that is not RFC 9110 syntax, or not ASCII, before the CAE one.
        for first in [b"Negotiate \"x\"".as_slice(), b"Basic realm=\"\xc3\xa9\""] {
            assert!(answers_the_claims(read([first, cae], "x", &[], true)));
        }
        // Two Bearer challenges: the one with claims is answered, wherever it is.
        let both = b"Bearer error=\"invalid_token\", Bearer error=\"insufficient_claims\", claims=\"eyJhIjoxfQ\"";
        assert!(answers_the_claims(read([both.as_slice()], "x", &[], true)));
        assert!(answers_the_claims(read(
            [b"Bearer error=\"invalid_token\"".as_slice(), cae],
            "x",
            &[],
            true
        )));
        // Nothing readable has a Bearer challenge: the first header's error.
        assert_eq!(
            read(
                [b"Negotiate \"x\"".as_slice(), b"Basic realm=x"],
                "x",
                &[],
                true
            ),
            Err(ChallengeError::Syntax(SyntaxError::UnexpectedByte(10)))
        );
    }

    #[test]
    fn malformed_challenges_are_typed_errors() {
        for (header, error) in [
            (
                "Bearer error=insufficient_claims, claims=!!!",
                ChallengeError::Claims,
            ),
            (
                "Bearer error=insufficient_claims, claims=WzFd",
                ChallengeError::Claims,
            ),
            (
                "Bearer authorization=nonsense, resource=https://vault.azure.net",
                ChallengeError::Authority,
            ),
            (
                "Bearer authorization=https://login.microsoftonline.com/a%20b, resource=https://vault.azure.net",
                ChallengeError::Authority,
            ),
            (
                "Bearer authorization=https://login.microsoftonline.com/t, resource=\"https://vault.azure.net/a b\"",
                ChallengeError::Scope,
            ),
            (
                "Bearer claims=\"x",
                ChallengeError::Syntax(SyntaxError::UnclosedQuote),
            ),
        ] {
            assert_eq!(
                read_one(header, "myvault.vault.azure.net"),
                Err(error),
                "{header}"
            );
        }
        assert_eq!(
            read([b"Bearer realm=\"\xc3\xa9\"".as_slice()], "x", &[], true),
            Err(ChallengeError::NotAscii)
        );
    }

    #[test]
    fn adfs_and_bare_authorities_name_no_tenant() {
        for authority in [
            "https://adfs.contoso.com/adfs",
            "https://login.windows.net/",
        ] {
            let header = format!(
                r#"Bearer authorization="{authority}", resource="https://vault.azure.net""#
            );
            let Ok(Outcome::Answer(ask)) = read_one(&header, "v.vault.azure.net") else {
                panic!("{authority}")
            };
            assert_eq!(ask.tenant, None, "{authority}");
        }
    }
}
