//! [`EntraOptions`]: what every Entra ID credential builder has (tenant, client id, authority
//! host, additionally allowed tenants, retry policy), its setters ([`entra_setters!`]) and
//! what building makes of it: the [`EntraClient`].

use std::sync::Arc;

use super::{ClientInner, EntraClient, authority_hosts, parse_authority};
use crate::env_vars::{AZURE_AUTHORITY_HOST, AZURE_CLIENT_ID, AZURE_TENANT_ID};
use crate::scope::{quoted, validate_tenant_id};
use crate::setters::debug_fields;
use crate::system::{Env, RetryPolicy};
use crate::tenant::TenantPolicy;
use crate::{Context, Error};

/// Options every Entra credential builder shares; the seams come from the builder's
/// [`Context`]. Unset values come from the environment (authority host, allowed tenants) or
/// the defaults.
#[derive(Clone, Default)]
pub(crate) struct EntraOptions {
    pub(crate) tenant_id: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) authority_host: Option<String>,
    pub(crate) allowed_tenants: Option<Vec<String>>,
    pub(crate) retry: Option<RetryPolicy>,
    pub(crate) persistence: Option<crate::cache::persist::TokenCachePersistence>,
}

/// Adds the shared setters to an Entra credential builder whose `options` field is an
/// [`EntraOptions`]: `entra_setters!(tenant_id = "...", client_id = "...", authority_host,
/// additionally_allowed_tenants, retry_policy)` (any subset, in that order). The string after
/// an option is a paragraph of the builder's own (where its default comes from, say).
macro_rules! entra_setters {
    ($($option:ident $(= $doc:literal)?),* $(,)?) => {
        $($crate::entra::options::entra_setters!(@one $option [$($doc)?]);)*
    };
    (@one tenant_id [$($doc:literal)?]) => {
        $crate::setters::option_setter!(
            /// The tenant (directory) id of the app registration.
            $(#[doc = ""] #[doc = $doc])?
            tenant_id: String => options.tenant_id
        );
    };
    (@one client_id [$($doc:literal)?]) => {
        $crate::setters::option_setter!(
            /// The application (client) id of the app registration.
            $(#[doc = ""] #[doc = $doc])?
            client_id: String => options.client_id
        );
    };
    (@one authority_host [$($doc:literal)?]) => {
        $crate::setters::option_setter!(
            /// The Microsoft Entra authority host, e.g.
            /// [`authority_hosts::AZURE_GOVERNMENT`](crate::authority_hosts::AZURE_GOVERNMENT).
            /// Must be `https` (plain `http` is accepted for loopback hosts only). Default:
            /// `AZURE_AUTHORITY_HOST`, else the public cloud.
            $(#[doc = ""] #[doc = $doc])?
            authority_host: String => options.authority_host
        );
    };
    (@one additionally_allowed_tenants [$($doc:literal)?]) => {
        $crate::setters::allowed_tenants_setter!(options.allowed_tenants $(, $doc)?);
    };
    (@one persistence [$($doc:literal)?]) => {
        $crate::setters::option_setter!(
            #[cfg(feature = "persistence")]
            /// Keeps the tokens across processes in the persistent token cache (MSAL's format,
            /// shared with the other Azure SDKs): see
            /// [`TokenCachePersistence`](crate::TokenCachePersistence). Default: the
            /// [`TokenCache`](crate::TokenCache)'s, else none (memory only).
            $(#[doc = ""] #[doc = $doc])?
            persistence: $crate::TokenCachePersistence => options.persistence
        );
    };
    (@one retry_policy [$($doc:literal)?]) => {
        $crate::setters::option_setter!(
            /// The retry policy of token requests. Default: up to 3 retries of 429 and 5xx
            /// answers and broken connections, with backoff.
            $(#[doc = ""] #[doc = $doc])?
            retry_policy: $crate::system::RetryPolicy => options.retry
        );
    };
}
pub(crate) use entra_setters;

impl EntraOptions {
    /// Validates the options and builds the client for `credential` over `context`'s seams.
    /// `tenant_id` and `client_id` must have been set (the caller names what is missing first).
    pub(crate) fn client(
        &self,
        credential: &'static str,
        context: &Context,
    ) -> Result<EntraClient, Error> {
        let env = context.env();
        let tenant_id = required(credential, self.tenant_id.as_deref(), "tenant_id")?;
        validate_tenant_id(credential, tenant_id)?;
        let client_id = required(credential, self.client_id.as_deref(), "client_id")?;
        validate_client_id(credential, client_id)?;
        let authority = match &self.authority_host {
            Some(host) => parse_authority(credential, host, "the authority host")?,
            None => match env.var_non_empty(AZURE_AUTHORITY_HOST) {
                Some(host) => parse_authority(credential, &host, AZURE_AUTHORITY_HOST)?,
                None => parse_authority(
                    credential,
                    authority_hosts::AZURE_PUBLIC_CLOUD,
                    "the authority host",
                )?,
            },
        };
        // `organizations`, `common` and `consumers` (the user credentials' defaults) name no
        // tenant of the credential's own: a requested tenant is taken as it is.
        let own_tenant = (!is_multi_tenant_alias(tenant_id)).then_some(tenant_id);
        let tenants = TenantPolicy::new(
            credential,
            own_tenant,
            self.allowed_tenants.as_deref(),
            &env,
        )?;
        Ok(EntraClient {
            inner: Arc::new(ClientInner {
                credential,
                tenant_id: tenant_id.to_owned(),
                client_id: Arc::from(client_id),
                authority,
                tenants,
                http: context.http(),
                retry: self.retry.clone().unwrap_or_else(RetryPolicy::entra),
                clock: context.clock(),
            }),
        })
    }
}

impl EntraOptions {
    /// The persistent caches the options (or the context's cache) ask for, opened for
    /// `credential`; `None` without persistence.
    pub(crate) fn persistent_caches(
        &self,
        credential: &'static str,
        context: &Context,
    ) -> Result<Option<crate::cache::persist::PersistedCaches>, Error> {
        self.persistence
            .clone()
            .or_else(|| context.cache().persistence().cloned())
            .map(|p| p.open(credential, &context.env()))
            .transpose()
    }

    /// `fetcher` behind `caches` (as it is without); `home_account` and `decorate` as
    /// [`TokenOwner`](crate::cache::persist::TokenOwner) says.
    #[allow(clippy::too_many_arguments, clippy::let_and_return)]
    pub(crate) fn persisted<F>(
        credential: &'static str,
        client: &EntraClient,
        clock: crate::system::Clock,
        fetcher: F,
        caches: Option<crate::cache::persist::PersistedCaches>,
        home_account: std::sync::Arc<dyn Fn() -> Option<String> + Send + Sync>,
        decorate: std::sync::Arc<dyn Fn(crate::AccessToken) -> crate::AccessToken + Send + Sync>,
    ) -> crate::cache::persist::Persisted<F> {
        #[cfg(feature = "persistence")]
        let persisted = crate::cache::persist::Persisted::new(
            fetcher,
            crate::cache::persist::TokenOwner {
                credential,
                environment: client.authority_host_name(),
                client_id: client.client_id().to_owned(),
                tenant: client.tenant_id().to_owned(),
                home_account,
                decorate,
                clock,
            },
            caches,
        );
        #[cfg(not(feature = "persistence"))]
        let persisted = {
            let _ = (credential, client, clock, caches, home_account, decorate);
            fetcher
        };
        persisted
    }

    /// [`persisted`](Self::persisted) for an application's own tokens.
    pub(crate) fn persisted_app<F>(
        &self,
        credential: &'static str,
        client: &EntraClient,
        context: &Context,
        fetcher: F,
    ) -> Result<crate::cache::persist::Persisted<F>, Error> {
        let caches = self.persistent_caches(credential, context)?;
        Ok(Self::persisted(
            credential,
            client,
            context.clock(),
            fetcher,
            caches,
            // An application's own tokens: MSAL's empty home account.
            std::sync::Arc::new(|| Some(String::new())),
            std::sync::Arc::new(|token| token),
        ))
    }
}

/// The tenant ids that stand for a set of tenants rather than one: where a user signs in.
pub(crate) fn is_multi_tenant_alias(tenant: &str) -> bool {
    ["organizations", "common", "consumers"]
        .iter()
        .any(|alias| tenant.eq_ignore_ascii_case(alias))
}

debug_fields!(EntraOptions {
    tenant_id,
    client_id,
    authority_host,
    allowed_tenants,
    persistence,
    ..
});

impl EntraOptions {
    /// Takes the tenant and client ids the builder did not give from `AZURE_TENANT_ID` and
    /// `AZURE_CLIENT_ID` in `env`, and says which are still missing, as [`missing_ids`] does.
    pub(crate) fn ids_or_env(&mut self, env: &Env) -> Option<(String, &'static str)> {
        if self.tenant_id.is_none() {
            self.tenant_id = env.var_non_empty(AZURE_TENANT_ID);
        }
        if self.client_id.is_none() {
            self.client_id = env.var_non_empty(AZURE_CLIENT_ID);
        }
        missing_ids(self.tenant_id.is_none(), self.client_id.is_none())
    }
}

/// Which of `AZURE_TENANT_ID` and `AZURE_CLIENT_ID` a credential configured by the environment
/// lacks, as `"A and B"` with the verb that agrees with it (`"is"`, `"are"`), if any.
pub(crate) fn missing_ids(tenant: bool, client: bool) -> Option<(String, &'static str)> {
    let missing: Vec<&str> = [(tenant, AZURE_TENANT_ID), (client, AZURE_CLIENT_ID)]
        .into_iter()
        .filter_map(|(missing, name)| missing.then_some(name))
        .collect();
    let verb = if missing.len() == 1 { "is" } else { "are" };
    (!missing.is_empty()).then(|| (missing.join(" and "), verb))
}

fn required<'a>(
    credential: &'static str,
    value: Option<&'a str>,
    option: &'static str,
) -> Result<&'a str, Error> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(
            Error::invalid_input(credential, format!("no {option} was given"))
                .with_fix(format!("set the builder's {option}")),
        ),
    }
}

/// A client id is a GUID (or, for ADFS, an identifier): printable ASCII without spaces.
fn validate_client_id(credential: &'static str, client_id: &str) -> Result<(), Error> {
    if client_id.bytes().all(|b| b.is_ascii_graphic()) && client_id.len() <= 256 {
        return Ok(());
    }
    Err(Error::invalid_input(
        credential,
        format!("invalid client id {}", quoted(client_id)),
    )
    .with_fix("the client id is the application (client) id of the app registration, a GUID"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env_vars::{
        AZURE_ADDITIONALLY_ALLOWED_TENANTS, AZURE_IDENTITY_DISABLE_MULTITENANTAUTH,
    };
    use crate::system::Env;

    fn options() -> EntraOptions {
        EntraOptions {
            tenant_id: Some("tenant-a".into()),
            client_id: Some("client-1".into()),
            ..EntraOptions::default()
        }
    }

    /// The client of `options` with the variables `env` (and nothing else) set.
    fn build<const N: usize>(
        options: &EntraOptions,
        env: [(&str, &str); N],
    ) -> Result<EntraClient, Error> {
        options.client("X", &Context::default().with_env(Env::from_pairs(env)))
    }

    #[test]
    fn token_endpoints() {
        let client = build(&options(), []).unwrap();
        assert_eq!(
            client.token_endpoint("tenant-a").unwrap().as_str(),
            "https://login.microsoftonline.com/tenant-a/oauth2/v2.0/token"
        );
        assert_eq!(
            client.token_endpoint("adfs").unwrap().as_str(),
            "https://login.microsoftonline.com/adfs/oauth2/token"
        );
    }

    #[test]
    fn sovereign_clouds_get_their_own_token_endpoints() {
        for (host, endpoint) in [
            (
                authority_hosts::AZURE_PUBLIC_CLOUD,
                "https://login.microsoftonline.com/t/oauth2/v2.0/token",
            ),
            (
                authority_hosts::AZURE_GOVERNMENT,
                "https://login.microsoftonline.us/t/oauth2/v2.0/token",
            ),
            (
                authority_hosts::AZURE_CHINA,
                "https://login.chinacloudapi.cn/t/oauth2/v2.0/token",
            ),
        ] {
            let mut o = options();
            o.authority_host = Some(host.to_owned());
            let from_builder = build(&o, []).unwrap();
            assert_eq!(from_builder.token_endpoint("t").unwrap().as_str(), endpoint);
            // The same from AZURE_AUTHORITY_HOST.
            let from_env = build(&options(), [(AZURE_AUTHORITY_HOST, host)]).unwrap();
            assert_eq!(from_env.token_endpoint("t").unwrap().as_str(), endpoint);
        }
    }

    #[test]
    fn tenant_rules() {
        let client = build(&options(), []).unwrap();
        assert_eq!(client.resolve_tenant("tenant-a").unwrap(), None);
        assert_eq!(client.resolve_tenant("TENANT-A").unwrap(), None);
        let err = client.resolve_tenant("tenant-b").unwrap_err();
        assert!(err.is_invalid_input());
        let text = err.to_string();
        assert!(
            text.contains("\"tenant-b\"")
                && text.contains("additionally_allowed_tenants")
                && text.contains(AZURE_ADDITIONALLY_ALLOWED_TENANTS),
            "{text}"
        );
        assert!(
            client
                .resolve_tenant("bad/tenant")
                .unwrap_err()
                .to_string()
                .contains("invalid tenant id")
        );

        let mut allowed = options();
        allowed.allowed_tenants = Some(vec!["Tenant-B".into()]);
        let from_builder = build(&allowed, []).unwrap();
        assert_eq!(
            from_builder.resolve_tenant("tenant-b").unwrap(),
            Some("tenant-b")
        );
        assert!(from_builder.resolve_tenant("tenant-c").is_err());

        let env = [(AZURE_ADDITIONALLY_ALLOWED_TENANTS, " tenant-c ; * ;")];
        let from_env = build(&options(), env).unwrap();
        assert_eq!(
            from_env.resolve_tenant("anything").unwrap(),
            Some("anything")
        );
        assert!(
            from_env
                .resolve_tenant("a b")
                .unwrap_err()
                .is_invalid_input()
        );

        // The builder's list replaces the environment's.
        let mut none = options();
        none.allowed_tenants = Some(vec![]);
        assert!(
            build(&none, env)
                .unwrap()
                .resolve_tenant("anything")
                .is_err()
        );

        let disabled = build(
            &options(),
            [
                (AZURE_ADDITIONALLY_ALLOWED_TENANTS, "*"),
                (AZURE_IDENTITY_DISABLE_MULTITENANTAUTH, "1"),
            ],
        )
        .unwrap();
        assert_eq!(disabled.resolve_tenant("other").unwrap(), None);

        let mut adfs = options();
        adfs.tenant_id = Some("adfs".into());
        adfs.allowed_tenants = Some(vec!["*".into()]);
        let client = build(&adfs, []).unwrap();
        assert!(client.is_adfs());
        assert!(
            client
                .resolve_tenant("other")
                .unwrap_err()
                .to_string()
                .contains("ADFS")
        );
    }

    #[test]
    fn invalid_options() {
        // (what is wrong, what the message names); every one is invalid input.
        type Spoil = fn(&mut EntraOptions);
        let cases: [(Spoil, &str); 3] = [
            (
                |o| o.tenant_id = Some("tenant/../x".into()),
                "invalid tenant id",
            ),
            (
                |o| o.allowed_tenants = Some(vec!["ok".into(), "not ok".into()]),
                "not ok",
            ),
            (|o| o.client_id = Some("  ".into()), "client_id"),
        ];
        for (spoil, names) in cases {
            let mut bad = options();
            spoil(&mut bad);
            let err = build(&bad, []).unwrap_err();
            assert!(err.is_invalid_input(), "{err}");
            assert!(err.to_string().contains(names), "{err}");
        }
        let err = build(
            &options(),
            [(AZURE_AUTHORITY_HOST, "http://login.example.com")],
        )
        .unwrap_err();
        assert!(err.to_string().contains(AZURE_AUTHORITY_HOST), "{err}");
    }
}
