//! [`ChainedTokenCredential`]: members tried in order, the first that works kept for good.
//!
//! # The rule: when the chain moves on and when it stops
//!
//! | outcome of a member | chain |
//! | --- | --- |
//! | [unavailable](crate::ErrorKind::Unavailable): not configured, not installed, not logged in, endpoint refused or absent | continue |
//! | a [developer tool](ChainedTokenCredentialBuilder::developer_tool) (az, pwsh, azd) failed in any other way | continue |
//! | any other member reached its provider and was refused ([`Authentication`](crate::ErrorKind::Authentication)), the provider failed ([`ServiceFailure`](crate::ErrorKind::ServiceFailure): a 5xx, a truncated or malformed answer), timed out, throttled, or the member's configuration is half-set or invalid | **stop**, return that error |
//! | the caller's input is invalid ([`InvalidInput`](crate::ErrorKind::InvalidInput): a scope, a tenant) | stop |
//!
//! A deployed source that tried and failed stops the chain on purpose: falling through to
//! another identity (a developer's `az login` on a production VM, say) would turn a
//! configuration mistake into a security incident.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::credential::shared;
use crate::setters::setters;
use crate::system::monotonic_now;
use crate::{
    AccessToken, Attempt, Error, ErrorKind, TokenCredential, TokenFuture, TokenRequestOptions,
};

const NONE_SELECTED: usize = usize::MAX;

/// How a member's failures are read: see the rule table in the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberKind {
    /// A deployed source: only "unavailable" moves the chain on.
    Deployed,
    /// A developer tool: any failure but invalid input moves the chain on.
    DeveloperTool,
}

struct Member {
    name: Cow<'static, str>,
    credential: Arc<dyn TokenCredential>,
    kind: MemberKind,
}

/// The identity a chain must produce tokens for; any other fails closed.
///
/// Checked against what the token says about itself ([`AccessToken::tenant_id`],
/// [`AccessToken::client_id`]); a token that does not say is refused too.
///
/// ```
/// use azure_credentials::RequiredIdentity;
///
/// let required = RequiredIdentity::default()
///     .with_tenant_id("72f988bf-86f1-41af-91ab-2d7cd011db47")
///     .with_client_id("00000000-0000-0000-0000-000000000001");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequiredIdentity {
    tenant_id: Option<String>,
    client_id: Option<String>,
}

impl RequiredIdentity {
    setters! {
        /// Tokens must be issued in this tenant.
        with_tenant_id(tenant_id: impl Into<String>) => Some(tenant_id);

        /// Tokens must be for this client (application) id.
        with_client_id(client_id: impl Into<String>) => Some(client_id);
    }

    /// Checks a token's identity, case-insensitively (ids are GUIDs).
    fn check(&self, chain: &str, member: &str, token: &AccessToken) -> Result<(), Error> {
        let mismatch = |what: &str, expected: &str, actual: Option<&str>| {
            let actual = actual.map_or_else(|| "an unknown one".to_owned(), |a| format!("{a:?}"));
            Error::authentication(
                chain.to_owned(),
                format!("{member} produced a token for {what} {actual}, but {what} {expected:?} is required; refusing it"),
            )
            .with_fix("fix the configuration so the intended identity is used, or change require_identity")
        };
        if let Some(expected) = &self.tenant_id
            && !token
                .tenant_id()
                .is_some_and(|t| t.eq_ignore_ascii_case(expected))
        {
            return Err(mismatch("tenant", expected, token.tenant_id()));
        }
        if let Some(expected) = &self.client_id
            && !token
                .client_id()
                .is_some_and(|c| c.eq_ignore_ascii_case(expected))
        {
            return Err(mismatch("client id", expected, token.client_id()));
        }
        Ok(())
    }
}

/// Token credentials tried in order until one produces a token; that one is then used for every
/// later call (the chain is *sticky*) and never silently replaced by another.
///
/// Concurrent first callers wait for one walk through the members and then all use its
/// winner; if that walk fails, the callers that queued behind it for the same request get its
/// error instead of each walking again. Nothing else is remembered: the next call walks the
/// chain again (each member's own cache remembers its failure only briefly), so an endpoint
/// that comes up later is found without a restart.
///
/// ```
/// use azure_credentials::{ChainedTokenCredential, ManagedIdentityCredential};
///
/// # fn build() -> Result<(), azure_credentials::Error> {
/// let managed_identity = ManagedIdentityCredential::builder().probe(true).build()?;
/// let chain = ChainedTokenCredential::builder()
///     .member("ManagedIdentityCredential", managed_identity)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ChainedTokenCredential {
    inner: Arc<ChainInner>,
}

struct ChainInner {
    name: Cow<'static, str>,
    members: Vec<Member>,
    selected: AtomicUsize,
    /// Whom the selected member's first token was for (user, tenant, client), as it said.
    identity: std::sync::OnceLock<String>,
    /// One walk through the members at a time; holds the last walk's failure, if it failed.
    walking: tokio::sync::Mutex<Option<FailedWalk>>,
    /// Walks finished so far: a caller that queued behind a walk knows it finished.
    walks: AtomicU64,
    required: Option<RequiredIdentity>,
}

impl ChainedTokenCredential {
    /// Members and options for a chain, built by [`build`](ChainedTokenCredentialBuilder::build).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use azure_credentials::{AzureCliCredential, ChainedTokenCredential, ManagedIdentityCredential};
    ///
    /// let chain = ChainedTokenCredential::builder()
    ///     .member("ManagedIdentityCredential", Arc::new(ManagedIdentityCredential::new()?))
    ///     .developer_tool("AzureCliCredential", Arc::new(AzureCliCredential::new()?))
    ///     .build()?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn builder() -> ChainedTokenCredentialBuilder {
        ChainedTokenCredentialBuilder::default()
    }

    /// The member in use, once one has produced a token.
    pub fn selected(&self) -> Option<&str> {
        let i = self.inner.selected.load(Ordering::Acquire);
        self.inner.members.get(i).map(|m| &*m.name)
    }

    /// Whom the selected member's first token was for, as the token said: the user's name or
    /// object id, the tenant and the client id, e.g. `user ada@contoso.com, tenant 72f9…`.
    /// Never the token itself.
    pub fn identity(&self) -> Option<&str> {
        self.inner.identity.get().map(String::as_str)
    }

    /// The members' names, in order.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.inner.members.iter().map(|m| &*m.name)
    }

    /// Tries the members in order (one caller at a time) and remembers the first that works.
    async fn select(
        &self,
        scopes: &[&str],
        options: Option<&TokenRequestOptions>,
    ) -> Result<AccessToken, Error> {
        let inner = &*self.inner;
        let walks_before = inner.walks.load(Ordering::Acquire);
        let mut last_failure = inner.walking.lock().await;
        let i = inner.selected.load(Ordering::Acquire);
        if let Some(member) = inner.members.get(i) {
            // Another caller finished the walk while this one waited.
            let result = member.credential.get_token(scopes, options).await;
            return self.checked(member, result);
        }
        let request = WalkRequest::new(scopes, options);
        if inner.walks.load(Ordering::Acquire) != walks_before
            && let Some(failed) = &*last_failure
            && failed.request == request
        {
            // A walk for the same request failed while this caller queued behind it: its
            // answer is this caller's too (as single-flight shares one source's failure).
            return Err(failed.error.clone());
        }
        let result = self.walk(scopes, options).await;
        *last_failure = match &result {
            Ok(_) => None,
            Err(error) => Some(FailedWalk {
                request,
                error: error.clone(),
            }),
        };
        inner.walks.fetch_add(1, Ordering::AcqRel);
        result
    }

    /// Tries each member in order until one produces a token (see the rule table).
    async fn walk(
        &self,
        scopes: &[&str],
        options: Option<&TokenRequestOptions>,
    ) -> Result<AccessToken, Error> {
        let inner = &*self.inner;
        let mut attempts = Vec::new();
        for (i, member) in inner.members.iter().enumerate() {
            let started = monotonic_now();
            let result = member.credential.get_token(scopes, options).await;
            let elapsed = monotonic_now().saturating_duration_since(started);
            match result {
                Ok(token) => {
                    let token = self.checked(member, Ok(token))?;
                    if let Some(identity) = describe_identity(&token) {
                        let _ = inner.identity.set(identity);
                    }
                    inner.selected.store(i, Ordering::Release);
                    let skipped: Vec<String> = attempts
                        .iter()
                        .map(|a: &Attempt| {
                            format!(
                                "{} ({}, {} ms)",
                                a.credential,
                                a.error.message(),
                                a.elapsed.as_millis()
                            )
                        })
                        .collect();
                    tracing::info!(
                        chain = %inner.name,
                        selected = %member.name,
                        elapsed_ms = elapsed.as_millis() as u64,
                        skipped = %if skipped.is_empty() { "none".to_owned() } else { skipped.join("; ") },
                        "credential selected; it is used from now on"
                    );
                    return Ok(token);
                }
                Err(error) => {
                    let stop = error.is_invalid_input()
                        || !(error.is_unavailable() || member.kind == MemberKind::DeveloperTool);
                    if stop {
                        tracing::debug!(chain = %inner.name, member = %member.name, error = %error, "member failed; the chain stops here");
                        return Err(error);
                    }
                    tracing::debug!(chain = %inner.name, member = %member.name, elapsed_ms = elapsed.as_millis() as u64, error = %error, "member cannot provide a token; trying the next");
                    attempts.push(Attempt::new(member.name.clone(), error, elapsed));
                }
            }
        }
        Err(aggregate(&inner.name, attempts))
    }

    fn checked(
        &self,
        member: &Member,
        result: Result<AccessToken, Error>,
    ) -> Result<AccessToken, Error> {
        match (&self.inner.required, result) {
            (Some(required), Ok(token)) => required
                .check(&self.inner.name, &member.name, &token)
                .map(|()| token),
            (_, result) => result,
        }
    }
}

/// The failure of the last walk, and what it was for.
struct FailedWalk {
    request: WalkRequest,
    error: Error,
}

/// What a walk was asked for: callers asking for the same can share its failure.
#[derive(PartialEq, Eq)]
struct WalkRequest {
    scopes: Vec<String>,
    tenant_id: Option<String>,
    claims: Option<String>,
    enable_cae: bool,
}

impl WalkRequest {
    fn new(scopes: &[&str], options: Option<&TokenRequestOptions>) -> Self {
        let mut scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        scopes.sort_unstable();
        scopes.dedup();
        WalkRequest {
            scopes,
            tenant_id: options.and_then(|o| o.tenant_id()).map(str::to_owned),
            claims: options.and_then(|o| o.claims()).map(str::to_owned),
            enable_cae: options.is_some_and(|o| o.enable_cae()),
        }
    }
}

/// `user <name>` (or `object id <oid>`), `tenant <id>`, `client <id>`: what the token says of
/// whom it is for; `None` when it says nothing.
fn describe_identity(token: &AccessToken) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(user) = token.username() {
        parts.push(format!("user {user}"));
    } else if let Some(oid) = token.object_id() {
        parts.push(format!("object id {oid}"));
    }
    if let Some(tenant) = token.tenant_id() {
        parts.push(format!("tenant {tenant}"));
    }
    if let Some(client) = token.client_id() {
        parts.push(format!("client {client}"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Every member failed: one error listing each attempt, the most actionable first. A chain
/// has at least one member (`build` refuses an empty one), so there is at least one attempt.
fn aggregate(chain: &str, mut attempts: Vec<Attempt>) -> Error {
    // A real failure says more than "not configured"; otherwise keep the chain's order.
    attempts.sort_by_key(|a| match a.error.kind() {
        ErrorKind::Unavailable => 1,
        _ => 0,
    });
    let kind = attempts
        .first()
        .map_or(ErrorKind::Unavailable, |a| a.error.kind());
    let message = format!(
        "none of the {} credentials produced a token:",
        attempts.len()
    );
    Error::new(kind, chain.to_owned(), message).with_attempts(attempts)
}

impl TokenCredential for ChainedTokenCredential {
    fn get_token<'a>(
        &'a self,
        scopes: &'a [&'a str],
        options: Option<&'a TokenRequestOptions>,
    ) -> TokenFuture<'a> {
        let inner = &*self.inner;
        let i = inner.selected.load(Ordering::Acquire);
        match inner.members.get(i) {
            // The selected member answers directly: a cache hit stays allocation-free.
            Some(member) => {
                let future = member.credential.get_token(scopes, options);
                match &inner.required {
                    None => future,
                    Some(_) => future.map(move |result| self.checked(member, result)),
                }
            }
            None => TokenFuture::new(self.select(scopes, options)),
        }
    }
}

impl fmt::Debug for ChainedTokenCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(&self.inner.name)
            .field("members", &self.members().collect::<Vec<_>>())
            .field("selected", &self.selected())
            .field("required_identity", &self.inner.required)
            .finish()
    }
}

/// Members and options of a [`ChainedTokenCredential`].
#[derive(Default)]
pub struct ChainedTokenCredentialBuilder {
    name: Option<Cow<'static, str>>,
    members: Vec<Member>,
    required: Option<RequiredIdentity>,
}

impl fmt::Debug for ChainedTokenCredentialBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainedTokenCredentialBuilder")
            .field("name", &self.name)
            .field(
                "members",
                &self.members.iter().map(|m| &m.name).collect::<Vec<_>>(),
            )
            .field("required_identity", &self.required)
            .finish()
    }
}

impl ChainedTokenCredentialBuilder {
    /// The chain's name in errors and logs. Default: `"ChainedTokenCredential"`.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Adds a member: the chain moves past it only when it is unavailable. Any credential
    /// will do; an `Arc<dyn TokenCredential>` is shared as it is.
    pub fn member(
        self,
        name: impl Into<Cow<'static, str>>,
        credential: impl TokenCredential + 'static,
    ) -> Self {
        self.push(name.into(), shared(credential), MemberKind::Deployed)
    }

    /// Adds a developer tool (Azure CLI, Azure Developer CLI): the chain moves past any failure
    /// of it but invalid input.
    pub fn developer_tool(
        self,
        name: impl Into<Cow<'static, str>>,
        credential: impl TokenCredential + 'static,
    ) -> Self {
        self.push(name.into(), shared(credential), MemberKind::DeveloperTool)
    }

    fn push(
        mut self,
        name: Cow<'static, str>,
        credential: Arc<dyn TokenCredential>,
        kind: MemberKind,
    ) -> Self {
        self.members.push(Member {
            name,
            credential,
            kind,
        });
        self
    }

    /// Refuses tokens for any other identity than `required` (fail closed), also from the
    /// member already selected.
    pub fn require_identity(mut self, required: RequiredIdentity) -> Self {
        self.required = Some(required);
        self
    }

    /// Builds the chain.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when no member was added.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{ChainedTokenCredential, ErrorKind};
    ///
    /// let error = ChainedTokenCredential::builder().build().unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::InvalidInput);
    /// ```
    pub fn build(self) -> Result<ChainedTokenCredential, Error> {
        let name = self.name.unwrap_or(Cow::Borrowed("ChainedTokenCredential"));
        if self.members.is_empty() {
            return Err(Error::invalid_input(
                name,
                "a credential chain needs at least one member",
            ));
        }
        Ok(ChainedTokenCredential {
            inner: Arc::new(ChainInner {
                name,
                members: self.members,
                selected: AtomicUsize::new(NONE_SELECTED),
                identity: std::sync::OnceLock::new(),
                walking: tokio::sync::Mutex::new(None),
                walks: AtomicU64::new(0),
                required: self.required,
            }),
        })
    }
}
