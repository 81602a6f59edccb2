//! Signing a user in: [`DeviceCodeCredential`], [`InteractiveBrowserCredential`],
//! [`AuthorizationCodeCredential`], and what keeps them signed in.
//!
//! - `session.rs`: the account a credential is for, the user's refresh token (kept in the
//!   token cache's [`SignedInUsers`](session::SignedInUsers)), silent refreshes, one sign-in at
//!   a time, `invalid_grant` turning into a new sign-in or an
//!   [`AuthenticationRequired`](crate::ErrorKind::AuthenticationRequired) error;
//! - `account.rs`: who signed in, from the id token and `client_info`;
//! - `record.rs`: [`AuthenticationRecord`];
//! - `device_code.rs`, `interactive_browser.rs` (with `redirect.rs`, the loopback listener,
//!   and `browser.rs`, opening the browser), `authorization_code.rs`: the flows.

mod account;
mod authorization_code;
mod browser;
mod device_code;
mod interactive_browser;
mod record;
mod redirect;
mod session;

use std::sync::Arc;

pub use authorization_code::{AuthorizationCodeCredential, AuthorizationCodeCredentialBuilder};
pub use browser::BrowserCommand;
pub use device_code::{DeviceCodeCredential, DeviceCodeCredentialBuilder, DeviceCodeInfo};
pub use interactive_browser::{InteractiveBrowserCredential, InteractiveBrowserCredentialBuilder};
pub use record::AuthenticationRecord;
pub(crate) use session::{SignInFlow, UserFetcher, UserSession};

#[cfg(any(test, fuzzing))]
pub(crate) use account::Account;
#[cfg(any(test, fuzzing))]
pub(crate) use device_code::parse_device_code;
#[cfg(any(test, fuzzing))]
pub(crate) use redirect::parse_redirect_request;

use super::{EntraClient, EntraOptions};
use crate::{CachedCredential, Context, Error, Secret, TokenRequest};

/// The Azure development client (the Azure CLI's application id): the client id of the user
/// credentials when none is given, as in the other Azure SDKs.
pub const DEVELOPER_CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
/// Where users sign in when no tenant is given: any work or school account.
const DEFAULT_TENANT: &str = "organizations";

/// What the interactive user credentials' builders share besides the Entra options.
#[derive(Clone, Default)]
pub(crate) struct UserOptions {
    pub(crate) record: Option<AuthenticationRecord>,
    pub(crate) disable_automatic: bool,
}

crate::setters::debug_fields!(UserOptions {
    authentication_record: record,
    disable_automatic_authentication: disable_automatic,
});

/// The setters of [`UserOptions`] (field `user`) and the documented defaults of the tenant and
/// client ids, for the builders of the credentials that sign a user in interactively.
macro_rules! user_setters {
    () => {
        $crate::entra::entra_setters!(
            tenant_id = "Default: the authentication record's tenant, else `organizations` \
                (any work or school account). Environment variables are not read: a service \
                principal's `AZURE_TENANT_ID` is not a user's.",
            client_id = "Default: the Azure development client \
                ([`DEVELOPER_CLIENT_ID`](crate::DEVELOPER_CLIENT_ID)) — fine for tools and \
                experiments; production applications should register their own (a public \
                client with `http://localhost` as a \"Mobile and desktop\" redirect URI and \
                public client flows allowed).",
            authority_host,
            additionally_allowed_tenants,
            retry_policy,
            persistence = "With it the user stays signed in across runs: the user's refresh \
                token and account are kept too, and a credential built with the user's \
                [`AuthenticationRecord`](crate::AuthenticationRecord) in a later process \
                is silent.",
        );

        /// The user to sign in silently: the record an earlier `authenticate` returned (saved with
        /// [`AuthenticationRecord::serialize`](crate::AuthenticationRecord::serialize)). Tokens
        /// then come from that user's refresh token when this process has it (another
        /// credential of the same [`TokenCache`](crate::TokenCache) signed the user in), and a
        /// sign-in as anyone else is refused. Its client id and authority must match this
        /// credential's.
        pub fn authentication_record(mut self, record: $crate::AuthenticationRecord) -> Self {
            self.user.record = Some(record);
            self
        }

        /// When `true`, `get_token` never prompts: without a signed-in user (or when the
        /// user's refresh token is refused) it fails with
        /// [`ErrorKind::AuthenticationRequired`](crate::ErrorKind::AuthenticationRequired), and
        /// the application calls `authenticate` at a moment of its choosing. Default: `false`.
        pub fn disable_automatic_authentication(mut self, disable: bool) -> Self {
            self.user.disable_automatic = disable;
            self
        }
    };
}
pub(crate) use user_setters;

/// What the interactive user credentials share besides their builders: `authenticate`,
/// `authentication_record`, [`TokenCredential`](crate::TokenCredential) through their
/// `user` field, and a `Debug` that says whether someone signed in (never who's token it is).
/// `errors` is the `# Errors` paragraph of `authenticate`.
macro_rules! interactive_credential {
    ($ty:ident, errors = $errors:literal) => {
        impl $ty {
            /// Signs the user in now for `scopes`, even when automatic authentication is
            /// disabled, and returns who signed in. The token it got is served to the first
            /// `get_token` for the same scopes.
            ///
            /// # Errors
            ///
            #[doc = $errors]
            pub async fn authenticate(
                &self,
                scopes: &[&str],
            ) -> Result<$crate::AuthenticationRecord, $crate::Error> {
                self.user.authenticate(scopes).await
            }

            /// Who signed in with this credential (or the record it was built with), if anyone.
            pub fn authentication_record(&self) -> Option<$crate::AuthenticationRecord> {
                self.user.record()
            }
        }

        $crate::credential::delegate_token_credential!($ty => user);

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.user
                    .client()
                    .debug_struct(f, stringify!($ty))
                    .field("signed_in", &self.user.record().is_some())
                    .finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use interactive_credential;

/// The parts of every user credential: its cached credential and its session.
#[derive(Clone)]
pub(crate) struct UserCredential {
    pub(crate) credential: CachedCredential,
    pub(crate) session: Arc<UserSession>,
}

impl UserCredential {
    /// Builds a user credential `name` signing in with `flow`; `client_secret` for a
    /// confidential client.
    pub(crate) fn build(
        name: &'static str,
        options: &EntraOptions,
        user: &UserOptions,
        context: &Context,
        flow: Arc<dyn SignInFlow>,
        client_secret: Option<Secret>,
    ) -> Result<Self, Error> {
        let record = user.record.as_ref();
        let mut options = options.clone();
        if options.tenant_id.is_none() {
            options.tenant_id = Some(record.map_or(DEFAULT_TENANT, |r| r.tenant_id()).to_owned());
        }
        if options.client_id.is_none() {
            options.client_id = Some(
                record
                    .map_or(DEVELOPER_CLIENT_ID, |r| r.client_id())
                    .to_owned(),
            );
        }
        let client = options.client(name, context)?;
        if let Some(record) = record {
            check_record(name, &client, record)?;
        }
        if let Some(secret) = &client_secret
            && secret.expose().trim().is_empty()
        {
            return Err(Error::invalid_input(name, "the client secret is empty")
                .with_fix("set the client secret's value from the app registration, or leave it out for a public client"));
        }
        let cache = context.cache();
        let mut identity = client.cache_identity(name);
        identity = match record {
            // Every credential for this user shares the user's tokens.
            Some(record) => identity.with("account", record.home_account_id()),
            // Whoever signs in, the tokens stay with this credential.
            None => identity.with("instance", format!("{:016x}", fastrand::u64(..))),
        };
        if let Some(secret) = &client_secret {
            identity = identity.with_secret(secret.expose().as_bytes());
        }
        let persistent = options.persistent_caches(name, context)?;
        let session = Arc::new(UserSession::new(
            client.clone(),
            client_secret,
            cache.extension(),
            record,
            flow,
            !user.disable_automatic,
            persistent.clone(),
        ));
        let home_account = {
            let session = session.clone();
            Arc::new(move || session.home_account_id())
        };
        let decorate = {
            let session = session.clone();
            Arc::new(move |token| session.decorate(token))
        };
        let fetcher = EntraOptions::persisted(
            name,
            &client,
            context.clock(),
            UserFetcher {
                session: session.clone(),
            },
            persistent,
            home_account,
            decorate,
        );
        Ok(UserCredential {
            credential: cache.credential(identity, fetcher),
            session,
        })
    }

    /// Signs the user in for `scopes` now (even when automatic authentication is disabled)
    /// and returns the record of who signed in.
    pub(crate) async fn authenticate(
        &self,
        scopes: &[&str],
    ) -> Result<AuthenticationRecord, Error> {
        let mut sorted: Vec<&str> = scopes.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let record = self.session.authenticate(TokenRequest::new(sorted)).await?;
        // A failure remembered from before the sign-in must not stand in its way.
        self.credential.forget_failures();
        Ok(record)
    }

    /// The record of the signed-in user, if any.
    pub(crate) fn record(&self) -> Option<AuthenticationRecord> {
        self.session.record()
    }

    pub(crate) fn client(&self) -> &EntraClient {
        self.session.client()
    }
}

crate::credential::delegate_token_credential!(UserCredential => credential);

impl std::fmt::Debug for UserCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.client()
            .debug_struct(f, "UserCredential")
            .finish_non_exhaustive()
    }
}

/// A sign-in's timeout: the one given, else `default`; zero is refused.
fn sign_in_timeout(
    name: &'static str,
    given: Option<std::time::Duration>,
    default: std::time::Duration,
) -> Result<std::time::Duration, Error> {
    let timeout = given.unwrap_or(default);
    if timeout.is_zero() {
        return Err(Error::invalid_input(
            name,
            "the timeout must be greater than zero",
        ));
    }
    Ok(timeout)
}

/// Refuses a record made for another application or authority.
fn check_record(
    name: &'static str,
    client: &EntraClient,
    record: &AuthenticationRecord,
) -> Result<(), Error> {
    if !record.client_id().eq_ignore_ascii_case(client.client_id()) {
        return Err(Error::invalid_input(
            name,
            format!(
                "the authentication record is for client {}, not this credential's client {}",
                crate::scope::quoted(record.client_id()),
                crate::scope::quoted(client.client_id())
            ),
        )
        .with_fix("use the record this application's sign-in returned, or leave client_id unset to take the record's"));
    }
    let authority = client.authority_host_name();
    if !record.authority().eq_ignore_ascii_case(&authority) {
        return Err(Error::invalid_input(
            name,
            format!(
                "the authentication record is for authority {}, not this credential's {}",
                crate::scope::quoted(record.authority()),
                crate::scope::quoted(&authority)
            ),
        )
        .with_fix("set the authority host the user signed in at, or sign in again"));
    }
    Ok(())
}
