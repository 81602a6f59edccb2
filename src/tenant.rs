//! Which tenant a request goes to: the rules every Azure SDK applies to per-request tenants
//! (`TokenRequestOptions::with_tenant_id`), in one place for every credential that honours them.

use crate::Error;
use crate::env_vars::{AZURE_ADDITIONALLY_ALLOWED_TENANTS, AZURE_IDENTITY_DISABLE_MULTITENANTAUTH};
use crate::scope::{quoted, validate_tenant_id};
use crate::system::Env;

/// A credential's tenant rules: its own tenant (if it has one), the other tenants it may be
/// asked for, and whether multi-tenant requests are switched off.
#[derive(Debug, Clone)]
pub(crate) struct TenantPolicy {
    credential: &'static str,
    configured: Option<String>,
    any: bool,
    allowed: Vec<String>,
    disabled: bool,
}

impl TenantPolicy {
    /// The rules for `credential`, whose own tenant is `configured`. The allow-list is
    /// `allowed` when given, else `AZURE_ADDITIONALLY_ALLOWED_TENANTS` (`;`-separated); `*`
    /// allows any tenant. `AZURE_IDENTITY_DISABLE_MULTITENANTAUTH` (any value) pins every
    /// request to the credential's own tenant (a developer tool's: the tool's default).
    pub(crate) fn new(
        credential: &'static str,
        configured: Option<&str>,
        allowed: Option<&[String]>,
        env: &Env,
    ) -> Result<Self, Error> {
        let from_env;
        let list: Vec<&str> = match allowed {
            Some(list) => list.iter().map(String::as_str).collect(),
            None => {
                from_env = env
                    .var(AZURE_ADDITIONALLY_ALLOWED_TENANTS)
                    .unwrap_or_default();
                from_env.split(';').collect()
            }
        };
        let mut policy = TenantPolicy {
            credential,
            configured: configured.map(str::to_owned),
            any: false,
            allowed: Vec::new(),
            disabled: env.is_set(AZURE_IDENTITY_DISABLE_MULTITENANTAUTH),
        };
        for tenant in list.into_iter().map(str::trim).filter(|t| !t.is_empty()) {
            if tenant == "*" {
                policy.any = true;
            } else {
                validate_tenant_id(credential, tenant).map_err(|e| {
                    e.with_fix(format!(
                        "each additionally allowed tenant is a tenant id or \"*\"; separate them with ; in {AZURE_ADDITIONALLY_ALLOWED_TENANTS}"
                    ))
                })?;
                policy.allowed.push(tenant.to_owned());
            }
        }
        Ok(policy)
    }

    /// `Ok(None)` when the request goes to the credential's own tenant, `Ok(Some(t))` for
    /// another allowed tenant (or any valid one, for a credential without a tenant of its own),
    /// an [`InvalidInput`](crate::ErrorKind::InvalidInput) error naming the tenant and the
    /// allow-list otherwise.
    pub(crate) fn resolve<'a>(&self, requested: &'a str) -> Result<Option<&'a str>, Error> {
        let configured = self.configured.as_deref();
        if configured.is_some_and(|c| requested.eq_ignore_ascii_case(c)) {
            return Ok(None);
        }
        // Also for a credential without a tenant of its own (a developer tool): it then asks
        // the tool for its default tenant, not the requested one.
        if self.disabled {
            tracing::debug!(
                credential = self.credential,
                "{AZURE_IDENTITY_DISABLE_MULTITENANTAUTH} is set: ignoring the requested tenant"
            );
            return Ok(None);
        }
        validate_tenant_id(self.credential, requested)?;
        let Some(configured) = configured else {
            return Ok(Some(requested));
        };
        if self.any
            || self
                .allowed
                .iter()
                .any(|t| t.eq_ignore_ascii_case(requested))
        {
            return Ok(Some(requested));
        }
        Err(Error::invalid_input(
            self.credential,
            format!(
                "tenant {} is not allowed: this credential is configured for tenant {}",
                quoted(requested),
                quoted(configured)
            ),
        )
        .with_fix(format!(
            "add {} to the builder's additionally_allowed_tenants or to {AZURE_ADDITIONALLY_ALLOWED_TENANTS} (\"*\" allows any tenant)",
            quoted(requested)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(configured: Option<&str>, allowed: Option<&[&str]>, env: Env) -> TenantPolicy {
        let allowed: Option<Vec<String>> =
            allowed.map(|a| a.iter().map(|s| s.to_string()).collect());
        TenantPolicy::new("X", configured, allowed.as_deref(), &env).unwrap()
    }

    #[test]
    fn the_rules() {
        let own = policy(Some("Contoso.com"), Some(&["fabrikam.com"]), Env::empty());
        assert_eq!(own.resolve("contoso.com").unwrap(), None);
        assert_eq!(own.resolve("FABRIKAM.com").unwrap(), Some("FABRIKAM.com"));
        let err = own.resolve("other.com").unwrap_err();
        assert!(err.is_invalid_input());
        assert!(
            err.to_string().contains("\"other.com\" is not allowed")
                && err.to_string().contains("additionally_allowed_tenants")
        );
        assert!(own.resolve("bad tenant").unwrap_err().is_invalid_input());

        let any = policy(Some("contoso.com"), Some(&["*"]), Env::empty());
        assert_eq!(any.resolve("other.com").unwrap(), Some("other.com"));

        let from_env = policy(
            Some("contoso.com"),
            None,
            Env::empty().with(AZURE_ADDITIONALLY_ALLOWED_TENANTS, " a.com ; b.com;"),
        );
        assert_eq!(from_env.resolve("b.com").unwrap(), Some("b.com"));
        // The option replaces the variable.
        let option = policy(
            Some("contoso.com"),
            Some(&["c.com"]),
            Env::empty().with(AZURE_ADDITIONALLY_ALLOWED_TENANTS, "b.com"),
        );
        assert!(option.resolve("b.com").is_err());

        let disabled = policy(
            Some("contoso.com"),
            None,
            Env::empty().with(AZURE_IDENTITY_DISABLE_MULTITENANTAUTH, "1"),
        );
        assert_eq!(disabled.resolve("other.com").unwrap(), None);

        // No tenant of its own (a developer tool): any valid tenant.
        let tool = policy(None, None, Env::empty());
        assert_eq!(tool.resolve("other.com").unwrap(), Some("other.com"));
        assert!(tool.resolve("a/b").unwrap_err().is_invalid_input());
    }

    #[test]
    fn disabled_multitenant_auth_pins_a_tool_without_a_tenant_to_its_default() {
        let env = Env::empty().with(AZURE_IDENTITY_DISABLE_MULTITENANTAUTH, "true");
        let tool = policy(None, None, env.clone());
        assert_eq!(tool.resolve("other.com").unwrap(), None);
        // The allow-list does not undo it.
        let any = policy(None, Some(&["*"]), env);
        assert_eq!(any.resolve("other.com").unwrap(), None);
    }

    #[test]
    fn an_invalid_allowed_tenant_is_refused() {
        let err = TenantPolicy::new(
            "X",
            Some("t"),
            Some(&["ok".to_owned(), "no way".to_owned()]),
            &Env::empty(),
        )
        .unwrap_err();
        assert!(err.is_invalid_input());
        let err = TenantPolicy::new(
            "X",
            Some("t"),
            None,
            &Env::empty().with(AZURE_ADDITIONALLY_ALLOWED_TENANTS, "a;b c"),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("AZURE_ADDITIONALLY_ALLOWED_TENANTS"),
            "{err}"
        );
    }
}
