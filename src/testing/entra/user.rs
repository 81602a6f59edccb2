//! The user sign-in flows of [`MockEntra`](super::MockEntra): who signs in ([`MockUser`]), how
//! the sign-in page behaves ([`MockSignIn`]), the codes, device codes and refresh tokens the
//! mock issued, the protocol checks of the public-client grants (`device_code`,
//! `authorization_code`, `refresh_token`), the device code endpoint, and the user-flow fields of
//! a token (`scope`, `refresh_token`, `id_token`, `client_info`).

use std::collections::{HashMap, VecDeque};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use serde_json::{Map, Value, json};

use super::reply::{MockEntraReply, error_response};
use super::token_checks::{form_post, require};
use crate::testing::loopback_http::{Action, JSON, Outgoing, RecordedRequest, first_value};

/// The `grant_type` of device code polls.
pub(super) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// How long an authorization code can be redeemed, as Entra's (10 minutes).
const CODE_LIFETIME_SECS: i64 = 600;
/// How long an id token is valid.
const ID_TOKEN_LIFETIME_SECS: i64 = 3600;
/// Scopes Entra answers with an id token or refresh token rather than echoes in `scope`.
const OIDC_SCOPES: [&str; 3] = ["openid", "profile", "offline_access"];

/// The user a [`MockEntra`](super::MockEntra) signs in: the claims of its id tokens and
/// `client_info`. Set it with [`MockEntra::set_user`](super::MockEntra::set_user).
///
/// [`MockUser::default`] is `mock.user@contoso.example` ("Mock User"), object id
/// `11111111-2222-4333-8444-555555555555`, tenant `aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee`.
///
/// ```
/// use azure_credentials::testing::MockUser;
///
/// let user = MockUser::new("ada@fabrikam.example").name("Ada").tenant_id("fabrikam-tenant-id");
/// assert_eq!(user.get_username(), "ada@fabrikam.example");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockUser {
    username: String,
    object_id: String,
    tenant_id: String,
    name: String,
}

impl Default for MockUser {
    fn default() -> Self {
        MockUser::new("mock.user@contoso.example")
    }
}

impl MockUser {
    /// A user signing in as `username` (the id token's `preferred_username`), with the default
    /// object id, tenant id and name.
    pub fn new(username: &str) -> Self {
        MockUser {
            username: username.to_owned(),
            object_id: "11111111-2222-4333-8444-555555555555".to_owned(),
            tenant_id: "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee".to_owned(),
            name: "Mock User".to_owned(),
        }
    }

    /// Sets the object id (`oid`, and `uid` in `client_info`).
    pub fn object_id(mut self, object_id: &str) -> Self {
        object_id.clone_into(&mut self.object_id);
        self
    }

    /// Sets the home tenant id (`tid`, the tenant in `iss`, and `utid` in `client_info`).
    pub fn tenant_id(mut self, tenant_id: &str) -> Self {
        tenant_id.clone_into(&mut self.tenant_id);
        self
    }

    /// Sets the display name (`name`).
    pub fn name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    /// The user name (`preferred_username`).
    pub fn get_username(&self) -> &str {
        &self.username
    }

    /// The object id (`oid`).
    pub fn get_object_id(&self) -> &str {
        &self.object_id
    }

    /// The home tenant id (`tid`).
    pub fn get_tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// The display name (`name`).
    pub fn get_name(&self) -> &str {
        &self.name
    }

    /// The `sub` claim: stable per user, as Entra's pairwise subject is per user and app.
    fn subject(&self) -> String {
        format!("mock-sub-{}", self.object_id)
    }
}

/// What the user does on the next sign-in pages of a [`MockEntra`](super::MockEntra); set
/// with [`MockEntra::set_sign_in`](super::MockEntra::set_sign_in).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MockSignIn {
    /// The user signs in: the page sends the browser to the redirect URI with a new `code`
    /// and the request's `state`.
    #[default]
    Approve,
    /// The user declines: the page sends the browser to the redirect URI with `error`,
    /// `error_description` and the request's `state`.
    Deny {
        /// The `error` parameter, e.g. `access_denied`.
        error: String,
        /// The `error_description` parameter.
        description: String,
    },
    /// The page sends the browser to the redirect URI with a valid `code` but a `state` other
    /// than the request's, as a forged redirect would.
    WrongState,
    /// The user never finishes: the page never redirects and has no continue link.
    Never,
}

impl MockSignIn {
    /// The user declines consent: `access_denied`, `AADSTS65004`.
    pub fn denied() -> Self {
        MockSignIn::Deny {
            error: "access_denied".to_owned(),
            description: "AADSTS65004: User declined to consent to access the app.".to_owned(),
        }
    }
}

/// An authorization code the mock issued.
struct IssuedCode {
    client_id: String,
    redirect_uri: String,
    challenge: Option<String>,
    nonce: Option<String>,
    scope: String,
    user: MockUser,
    issued_at: i64,
    redeemed: bool,
}

/// A device code the mock issued.
struct DeviceCode {
    client_id: String,
    scope: String,
    expires_at: i64,
    redeemed: bool,
}

/// A refresh token the mock issued.
struct RefreshToken {
    client_id: String,
    user: MockUser,
    revoked: bool,
}

/// What a user grant that passed the checks redeems, if the reply is a token.
pub(super) struct UserGrant {
    redeems: Redeems,
    client_id: String,
    scope: String,
    nonce: Option<String>,
    user: MockUser,
}

enum Redeems {
    Code(String),
    DeviceCode(String),
    RefreshToken,
}

type Refusal = (u16, &'static str, Vec<u8>);

/// The user flows' settings and records.
pub(super) struct UserFlows {
    pub(super) user: MockUser,
    pub(super) sign_in: MockSignIn,
    pub(super) device_interval: u64,
    pub(super) device_expires_in: u64,
    pub(super) device_replies: VecDeque<MockEntraReply>,
    codes: HashMap<String, IssuedCode>,
    device_codes: HashMap<String, DeviceCode>,
    refresh_tokens: HashMap<String, RefreshToken>,
    codes_issued: u64,
    device_codes_issued: u64,
    refresh_tokens_issued: u64,
}

impl Default for UserFlows {
    fn default() -> Self {
        UserFlows {
            user: MockUser::default(),
            sign_in: MockSignIn::Approve,
            device_interval: 5,
            device_expires_in: 900,
            device_replies: VecDeque::new(),
            codes: HashMap::new(),
            device_codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            codes_issued: 0,
            device_codes_issued: 0,
            refresh_tokens_issued: 0,
        }
    }
}

/// What the authorize endpoint remembers with a code, for its redemption.
pub(super) struct CodeRequest<'a> {
    pub(super) client_id: &'a str,
    pub(super) redirect_uri: &'a str,
    pub(super) challenge: Option<&'a str>,
    pub(super) nonce: Option<&'a str>,
    pub(super) scope: &'a str,
}

impl UserFlows {
    /// Issues `mock-entra-code-<n>` for the current user.
    pub(super) fn issue_code(&mut self, request: &CodeRequest<'_>, now: i64) -> String {
        self.codes_issued += 1;
        let code = format!("mock-entra-code-{}", self.codes_issued);
        self.codes.insert(
            code.clone(),
            IssuedCode {
                client_id: request.client_id.to_owned(),
                redirect_uri: request.redirect_uri.to_owned(),
                challenge: request.challenge.map(str::to_owned),
                nonce: request.nonce.map(str::to_owned),
                scope: request.scope.to_owned(),
                user: self.user.clone(),
                issued_at: now,
                redeemed: false,
            },
        );
        code
    }

    /// Refuses every refresh token issued so far.
    pub(super) fn revoke_refresh_tokens(&mut self) {
        for token in self.refresh_tokens.values_mut() {
            token.revoked = true;
        }
    }

    /// The checks of a user grant's token request (`grant_type` is one of the three).
    pub(super) fn check_grant(
        &self,
        grant_type: &str,
        form: &[(String, String)],
        now: i64,
        n: u64,
    ) -> Result<UserGrant, Refusal> {
        let field = |name: &str| first_value(form, name).unwrap_or_default();
        let invalid_grant =
            |code: u32, text: &str| Err(error_response(400, "invalid_grant", code, text, n));
        match grant_type {
            DEVICE_CODE_GRANT => {
                require(form, &["client_id", "device_code"], n)?;
                let Some(issued) = self.device_codes.get(field("device_code")) else {
                    return invalid_grant(
                        70000,
                        "The provided value for the input parameter 'device_code' is not valid: bad verification code.",
                    );
                };
                if issued.client_id != field("client_id") {
                    return invalid_grant(70000, "The device code was issued to another client.");
                }
                if issued.redeemed {
                    return invalid_grant(
                        70000,
                        "The provided value for the input parameter 'device_code' is not valid: it was already redeemed.",
                    );
                }
                if now >= issued.expires_at {
                    return Err(error_response(
                        400,
                        "expired_token",
                        70020,
                        "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
                        n,
                    ));
                }
                let scope = first_value(form, "scope")
                    .filter(|s| !s.is_empty())
                    .unwrap_or(&issued.scope);
                Ok(UserGrant {
                    redeems: Redeems::DeviceCode(field("device_code").to_owned()),
                    client_id: issued.client_id.clone(),
                    scope: scope.to_owned(),
                    nonce: None,
                    user: self.user.clone(),
                })
            }
            "authorization_code" => {
                require(form, &["client_id", "code", "redirect_uri"], n)?;
                let Some(issued) = self.codes.get(field("code")) else {
                    return invalid_grant(
                        70000,
                        "The provided authorization code is invalid or was not issued by this authority.",
                    );
                };
                if issued.redeemed {
                    return invalid_grant(
                        54005,
                        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
                    );
                }
                if issued.client_id != field("client_id") {
                    return invalid_grant(
                        700005,
                        "Provided Authorization Code is intended to use against other client.",
                    );
                }
                if issued.redirect_uri != field("redirect_uri") {
                    return invalid_grant(
                        500117,
                        "The reply uri specified in the token request does not match the reply uri used to obtain the authorization code.",
                    );
                }
                if now.saturating_sub(issued.issued_at) >= CODE_LIFETIME_SECS {
                    return invalid_grant(
                        70008,
                        "The provided authorization code or refresh token has expired due to inactivity.",
                    );
                }
                if let Some(challenge) = &issued.challenge {
                    let Some(verifier) = first_value(form, "code_verifier") else {
                        return invalid_grant(
                            50148,
                            "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.",
                        );
                    };
                    if pkce_challenge(verifier) != *challenge {
                        return invalid_grant(
                            501481,
                            "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                        );
                    }
                }
                let scope = first_value(form, "scope")
                    .filter(|s| !s.is_empty())
                    .unwrap_or(&issued.scope);
                Ok(UserGrant {
                    redeems: Redeems::Code(field("code").to_owned()),
                    client_id: issued.client_id.clone(),
                    scope: scope.to_owned(),
                    nonce: issued.nonce.clone(),
                    user: issued.user.clone(),
                })
            }
            _ => {
                require(form, &["client_id", "refresh_token", "scope"], n)?;
                let Some(issued) = self
                    .refresh_tokens
                    .get(field("refresh_token"))
                    .filter(|t| !t.revoked)
                else {
                    return invalid_grant(
                        700082,
                        "The refresh token has expired due to inactivity.",
                    );
                };
                if issued.client_id != field("client_id") {
                    return invalid_grant(
                        700005,
                        "The refresh token was issued to another client.",
                    );
                }
                Ok(UserGrant {
                    redeems: Redeems::RefreshToken,
                    client_id: issued.client_id.clone(),
                    scope: field("scope").to_owned(),
                    nonce: None,
                    user: issued.user.clone(),
                })
            }
        }
    }

    /// Redeems `grant` (codes are one-time), issues a new refresh token and returns the
    /// user-flow fields of the token: `scope`, `refresh_token`, `id_token`, `client_info`.
    pub(super) fn redeem(
        &mut self,
        grant: UserGrant,
        authority: &str,
        now: i64,
    ) -> Map<String, Value> {
        match &grant.redeems {
            Redeems::Code(code) => {
                if let Some(issued) = self.codes.get_mut(code) {
                    issued.redeemed = true;
                }
            }
            Redeems::DeviceCode(code) => {
                if let Some(issued) = self.device_codes.get_mut(code) {
                    issued.redeemed = true;
                }
            }
            Redeems::RefreshToken => {}
        }
        self.refresh_tokens_issued += 1;
        let refresh_token = format!("mock-entra-refresh-{}", self.refresh_tokens_issued);
        self.refresh_tokens.insert(
            refresh_token.clone(),
            RefreshToken {
                client_id: grant.client_id.clone(),
                user: grant.user.clone(),
                revoked: false,
            },
        );
        let scope: Vec<&str> = grant
            .scope
            .split_whitespace()
            .filter(|s| !OIDC_SCOPES.contains(s))
            .collect();
        let user = &grant.user;
        let client_info = json!({"uid": user.object_id, "utid": user.tenant_id});
        let mut extras = Map::new();
        extras.insert("scope".into(), scope.join(" ").into());
        extras.insert("refresh_token".into(), refresh_token.into());
        extras.insert(
            "id_token".into(),
            id_token(
                authority,
                &grant.client_id,
                user,
                grant.nonce.as_deref(),
                now,
            )
            .into(),
        );
        extras.insert(
            "client_info".into(),
            URL_SAFE_NO_PAD.encode(client_info.to_string()).into(),
        );
        extras
    }

    /// `POST /{tenant}/oauth2/v2.0/devicecode`: a device code from the settings, or the next
    /// pushed reply.
    pub(super) fn device_code(
        &mut self,
        request: &RecordedRequest,
        form: &[(String, String)],
        authority: &str,
        tokens_issued: &mut u64,
        now: i64,
        n: u64,
    ) -> Outgoing {
        let refused = |(status, content_type, body): Refusal| {
            Outgoing::new(Action::respond(status, content_type, body))
        };
        if let Err(refusal) =
            form_post(request, n).and_then(|()| require(form, &["client_id", "scope"], n))
        {
            return refused(refusal);
        }
        if let Some(reply) = self.device_replies.pop_front() {
            return reply.answer(tokens_issued, n, None, None);
        }
        self.device_codes_issued += 1;
        let number = self.device_codes_issued;
        let device_code = format!("mock-entra-device-code-{number}");
        let user_code = format!("MOCK{number:05}");
        let verification_uri = format!("{authority}/devicelogin");
        let expires_in = self.device_expires_in;
        self.device_codes.insert(
            device_code.clone(),
            DeviceCode {
                client_id: first_value(form, "client_id")
                    .unwrap_or_default()
                    .to_owned(),
                scope: first_value(form, "scope").unwrap_or_default().to_owned(),
                expires_at: now.saturating_add(i64::try_from(expires_in).unwrap_or(i64::MAX)),
                redeemed: false,
            },
        );
        let body = json!({
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": verification_uri,
            "expires_in": expires_in,
            "interval": self.device_interval,
            "message": format!(
                "To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."
            ),
        });
        Outgoing::new(Action::respond(200, JSON, body.to_string().into_bytes()))
    }
}

/// BASE64URL-NOPAD(SHA256(verifier)): the S256 code challenge of `verifier`.
pub(super) fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

/// An id token shaped like Entra's (RS256 header, `kid` "mock", signature `mock-signature`).
fn id_token(
    authority: &str,
    client_id: &str,
    user: &MockUser,
    nonce: Option<&str>,
    now: i64,
) -> String {
    let header = json!({"typ": "JWT", "alg": "RS256", "kid": "mock"});
    let mut payload = json!({
        "aud": client_id,
        "iss": format!("{authority}/{}/v2.0", user.tenant_id),
        "iat": now,
        "nbf": now,
        "exp": now.saturating_add(ID_TOKEN_LIFETIME_SECS),
        "tid": user.tenant_id,
        "oid": user.object_id,
        "sub": user.subject(),
        "preferred_username": user.username,
        "name": user.name,
        "ver": "2.0",
    });
    if let Some(nonce) = nonce {
        payload["nonce"] = json!(nonce);
    }
    format!(
        "{}.{}.mock-signature",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}
