//! Validation of what callers pass in (scopes, tenants, subscriptions) and scope → resource.
//!
//! The character sets are the ones every Azure SDK uses, restricted to ASCII: these values end
//! up in URLs and on command lines, so anything else is refused before it gets there.

use crate::Error;

/// Checks a scope: non-empty, ASCII letters, digits and `. - _ : /` only.
pub(crate) fn validate_scope(credential: &'static str, scope: &str) -> Result<(), Error> {
    check_charset(
        credential,
        ("scope", scope),
        b".-_:/",
        "a scope has only ASCII letters, digits and . - _ : /, e.g. \"https://management.azure.com/.default\"",
    )
}

/// Checks a request's scopes: at least one, each valid ([`validate_scope`]).
pub(crate) fn validate_scopes(credential: &'static str, scopes: &[String]) -> Result<(), Error> {
    if scopes.is_empty() {
        return Err(
            Error::invalid_input(credential, "no scope was requested").with_fix(
                "request at least one scope, e.g. \"https://management.azure.com/.default\"",
            ),
        );
    }
    scopes
        .iter()
        .try_for_each(|scope| validate_scope(credential, scope))
}

/// Checks a tenant id: non-empty, ASCII letters, digits, `-` and `.` only.
pub(crate) fn validate_tenant_id(credential: &'static str, tenant: &str) -> Result<(), Error> {
    check_charset(
        credential,
        ("tenant id", tenant),
        b"-.",
        "a tenant id is a GUID or a domain name (ASCII letters, digits, - and .)",
    )
}

/// Checks a subscription name or id: non-empty, ASCII letters, digits, `- _ .` and space only.
pub(crate) fn validate_subscription(
    credential: &'static str,
    subscription: &str,
) -> Result<(), Error> {
    check_charset(
        credential,
        ("subscription", subscription),
        b"-_. ",
        "use the subscription's id (a GUID) instead of its name",
    )
}

/// `Ok` when `value` is not blank and has only ASCII letters, digits and the bytes of `extra`;
/// else an invalid-input error naming what the value is (`what`), the value, and `fix`.
fn check_charset(
    credential: &'static str,
    (what, value): (&str, &str),
    extra: &[u8],
    fix: &'static str,
) -> Result<(), Error> {
    let ok = !value.trim().is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b));
    if ok {
        return Ok(());
    }
    Err(Error::invalid_input(credential, format!("invalid {what} {}", quoted(value))).with_fix(fix))
}

/// Exactly one scope, validated, for sources that speak in resources (managed identity, CLI).
pub(crate) fn single_scope<'a>(
    credential: &'static str,
    scopes: &[&'a str],
) -> Result<&'a str, Error> {
    match scopes {
        [scope] => {
            validate_scope(credential, scope)?;
            Ok(scope)
        }
        _ => Err(Error::invalid_input(
            credential,
            format!("exactly one scope is required, got {}", scopes.len()),
        )
        .with_fix("request one scope per call, e.g. \"https://vault.azure.net/.default\"")),
    }
}

/// The v1 resource for a scope: the scope with exactly one trailing `/.default` removed, and
/// nothing else touched (slashes matter to some resources).
pub(crate) fn scope_to_resource(scope: &str) -> &str {
    scope.strip_suffix("/.default").unwrap_or(scope)
}

/// A caller's value for an error message: escaped and cut short, so odd input cannot forge
/// log lines or flood them.
pub(crate) fn quoted(value: &str) -> String {
    const MAX: usize = 100;
    let mut end = value.len().min(MAX);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let cut = if end < value.len() { "…" } else { "" };
    format!("{:?}{cut}", &value[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    type Validator = fn(&'static str, &str) -> Result<(), Error>;

    /// Each validator, what it accepts, what it refuses, and what its message names.
    const VALIDATORS: &[(Validator, &[&str], &[&str], &str)] = &[
        (
            validate_scope,
            &[
                "https://management.azure.com/.default",
                "https://storage.azure.com//.default",
                "api://my-app_1/scope:x",
                // Made of allowed characters, so valid; the CLI source passes it as one
                // argument, so it cannot become a flag of its own there.
                "--tenant",
            ],
            &[
                "",
                "https://x/.default; rm -rf /",
                "a b",
                "https://x/.default\n",
                "scopé",
                "$(whoami)",
                "a\"b",
                "a'b",
                "a&b",
                "a|b",
            ],
            "scope",
        ),
        (
            validate_tenant_id,
            &[
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "contoso.onmicrosoft.com",
                "adfs",
            ],
            &["", "a b", "tenant/..", "tenant_1", "ténant", "a;b"],
            "tenant",
        ),
        (
            validate_subscription,
            &[
                "My Subscription",
                "sub_1.prod-2",
                "00000000-0000-0000-0000-000000000000",
            ],
            &["", "   ", "a\"b", "a;b", "a$b", "sub\n"],
            "subscription's id",
        ),
    ];

    #[test]
    fn scopes_tenants_and_subscriptions_are_checked_and_bad_ones_are_invalid_input() {
        for (validate, good, bad, names) in VALIDATORS {
            for good in *good {
                assert!(validate("X", good).is_ok(), "{good}");
            }
            for bad in *bad {
                let err = validate("X", bad).unwrap_err();
                assert!(err.is_invalid_input(), "{bad}");
                assert!(err.to_string().contains(names), "{bad}: {err}");
            }
        }
    }

    #[test]
    fn resource_strips_exactly_one_default() {
        assert_eq!(
            scope_to_resource("https://vault.azure.net/.default"),
            "https://vault.azure.net"
        );
        assert_eq!(
            scope_to_resource("https://storage.azure.com//.default"),
            "https://storage.azure.com/"
        );
        assert_eq!(
            scope_to_resource("https://x/.default/.default"),
            "https://x/.default"
        );
        assert_eq!(
            scope_to_resource("https://vault.azure.net"),
            "https://vault.azure.net"
        );
    }

    #[test]
    fn single_scope_rule() {
        assert_eq!(
            single_scope("X", &["https://a/.default"]).unwrap(),
            "https://a/.default"
        );
        assert!(single_scope("X", &[]).unwrap_err().is_invalid_input());
        assert!(
            single_scope("X", &["a", "b"])
                .unwrap_err()
                .is_invalid_input()
        );
        assert!(single_scope("X", &["a b"]).unwrap_err().is_invalid_input());
    }

    #[test]
    fn error_messages_escape_and_truncate_input() {
        let long = "x\n".repeat(200);
        let err = validate_scope("X", &long).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.len() < 400, "{}", text.len());
    }
}
