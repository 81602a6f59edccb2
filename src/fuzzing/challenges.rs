//! The `WWW-Authenticate` challenges of a `401`, as the reqwest middleware reads them.

use super::{Input, text};
use crate::interop::challenge::{self, Outcome, trusted};

/// The hosts a request may have been sent to.
const HOSTS: [&str; 4] = [
    "myvault.vault.azure.net",
    "management.azure.com",
    "evil.example",
    "",
];

/// The scopes a middleware may have been configured with.
const CONFIGURED: [&str; 2] = [
    "https://storage.azure.com/.default",
    "https://vault.azure.net/.default",
];

/// The `WWW-Authenticate` headers of a `401` (one per line of the rest), read for a request
/// to one of [`HOSTS`], and what a user relies on: an answered resource challenge, when the
/// resource is verified, names an `https` resource of the request's domain or the configured
/// scope's resource; every answer holds a
/// valid scope and tenant and claims that are a JSON object; a foreign resource is only
/// reported when verifying.
///
/// Layout: `[u8: bits 0-1 the host, bit 2 do not verify the resource, bit 3 the configured
/// scope][headers, \n-separated]`.
pub fn www_authenticate(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.u8();
    let host = HOSTS[usize::from(flags & 0b11)];
    let verify = flags & 0b100 == 0;
    let configured = [CONFIGURED[usize::from(flags >> 3 & 0b1)].to_owned()];
    let rest = input.rest();
    let headers = rest.split(|&b| b == b'\n');
    match challenge::read(headers, host, &configured, verify) {
        Ok(Outcome::Answer(ask)) => {
            if let Some(scope) = &ask.scope {
                assert!(
                    crate::scope::validate_scope("fuzz", scope).is_ok(),
                    "an invalid scope was answered: {scope:?}"
                );
                assert!(
                    !verify || trusted(scope, host, &configured),
                    "a scope outside {host:?} was answered: {scope:?}"
                );
            }
            if let Some(tenant) = &ask.tenant {
                assert!(
                    crate::scope::validate_tenant_id("fuzz", tenant).is_ok(),
                    "an invalid tenant was answered: {tenant:?}"
                );
            }
            if let Some(claims) = &ask.claims {
                assert!(
                    serde_json::from_str::<serde_json::Value>(claims).is_ok_and(|v| v.is_object()),
                    "claims that are not a JSON object were answered"
                );
            }
            std::hint::black_box(format!("{ask:?}"));
        }
        Ok(Outcome::ForeignResource { resource }) => {
            assert!(verify, "a foreign resource was reported without verifying");
            std::hint::black_box(resource);
        }
        Ok(Outcome::NotAnswerable) => {}
        Err(error) => {
            std::hint::black_box(error.to_string());
        }
    }
    std::hint::black_box(text(rest));
}
