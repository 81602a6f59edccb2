//! The fast path: answering from the Azure CLI's own MSAL token cache, read-only, when — and only
//! when — the token there is unambiguously the one `az account get-access-token` would return.
//!
//! The rules follow what az 2.91 / MSAL 1.39 do (observed over crafted config dirs):
//!
//! - the cache must be the plaintext `msal_token_cache.json`: `encrypt_token_cache` in the
//!   config (or `AZURE_CORE_ENCRYPT_TOKEN_CACHE`, which wins) must be off — the default
//!   everywhere but Windows;
//! - the active cloud must be the public `AzureCloud`, and subscriptions of other clouds are
//!   ignored;
//! - the account is the user of the default subscription (or of the configured
//!   `--subscription`, matched by id or name case-insensitively), a plain user login (not a
//!   service principal, managed identity or Cloud Shell), matched to exactly one cache account
//!   by username case-insensitively;
//! - the tenant is the requested one (a lower-case GUID; az maps anything else through its own
//!   lookup) or the subscription's;
//! - among access tokens of that account, tenant and the Azure CLI's client id, one whose
//!   `target` equals the requested scope exactly is taken first, whatever its expiry;
//!   otherwise the only one whose `target` contains the scope (case-sensitively, no slash
//!   normalization) with at least 5 minutes left;
//! - it must have at least 5 minutes left, no `refresh_on` in the past (MSAL would refresh it)
//!   and be a plain bearer token.
//!
//! Anything else — a missing or unreadable file, a parse error, two default subscriptions, two
//! accounts, two usable tokens, a token alias in another authority host — is a miss, and the
//! caller runs `az` as usual. Nothing here writes a file.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::system::{Env, Fs};

/// The Azure CLI's public client id.
pub(crate) const AZURE_CLI_CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
/// MSAL refuses a cached token with less than this left (seconds).
const MIN_REMAINING_SECS: i64 = 300;
const PUBLIC_CLOUD: &str = "AzureCloud";
const PUBLIC_AUTHORITY_HOST: &str = "login.microsoftonline.com";

const MAX_PROFILE_BYTES: u64 = 4 * 1024 * 1024;
const MAX_TOKEN_CACHE_BYTES: u64 = 16 * 1024 * 1024;
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// What az would be asked.
#[derive(Debug)]
pub(crate) struct Query<'a> {
    pub(crate) fs: &'a Fs,
    pub(crate) env: &'a Env,
    pub(crate) config_dir: &'a Path,
    /// The scope az asks MSAL for: `<resource>/.default`.
    pub(crate) scope: &'a str,
    pub(crate) tenant: Option<&'a str>,
    pub(crate) subscription: Option<&'a str>,
    /// The current time, Unix seconds.
    pub(crate) now: i64,
}

/// A token found in the CLI's cache.
pub(crate) struct Found {
    pub(crate) secret: String,
    pub(crate) expires_on: i64,
    pub(crate) refresh_on: Option<i64>,
    pub(crate) tenant: String,
}

/// Why the cache could not answer (for a trace line; never holds file contents).
pub(crate) type Miss = &'static str;

/// The token az would return for `query`, if that is certain.
pub(crate) fn lookup(query: &Query<'_>) -> Result<Found, Miss> {
    check_config(query)?;
    let (username, tenant) = account_and_tenant(query)?;
    let bytes = query
        .fs
        .read(
            &query.config_dir.join("msal_token_cache.json"),
            MAX_TOKEN_CACHE_BYTES,
        )
        .map_err(|_| "msal_token_cache.json cannot be read")?;
    let cache: TokenCacheFile = serde_json::from_slice(strip_bom(&bytes))
        .map_err(|_| "msal_token_cache.json does not parse")?;
    choose(&cache, &username, &tenant, query)
}

// ---------------------------------------------------------------------------------------------
// Config: encryption and cloud.

fn check_config(query: &Query<'_>) -> Result<(), Miss> {
    let config = match query
        .fs
        .read(&query.config_dir.join("config"), MAX_CONFIG_BYTES)
    {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| "config is not UTF-8")?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(_) => return Err("config cannot be read"),
    };
    let encrypted = match query.env.var("AZURE_CORE_ENCRYPT_TOKEN_CACHE") {
        Some(value) => {
            parse_bool(&value).ok_or("AZURE_CORE_ENCRYPT_TOKEN_CACHE is not a boolean")?
        }
        None => match ini_value(&config, "core", "encrypt_token_cache")? {
            Some(value) => parse_bool(value).ok_or("encrypt_token_cache is not a boolean")?,
            None => cfg!(windows),
        },
    };
    if encrypted {
        return Err("the CLI's token cache is encrypted");
    }
    let cloud = match query.env.var("AZURE_CLOUD_NAME") {
        Some(value) => Some(value),
        None => ini_value(&config, "cloud", "name")?.map(str::to_owned),
    };
    if cloud.is_some_and(|c| c != PUBLIC_CLOUD) {
        return Err("the active cloud is not AzureCloud");
    }
    Ok(())
}

/// Python's `configparser` booleans.
fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// The value of `key` in `[section]` of an INI file, the way `configparser` reads it (keys are
/// case-insensitive, `=` or `:`, comment lines start with `#` or `;`). Anything this simple
/// reader cannot be sure of — a repeated key, a continuation line — is a miss.
fn ini_value<'a>(text: &'a str, section: &str, key: &str) -> Result<Option<&'a str>, Miss> {
    let mut in_section = false;
    let mut found: Option<&str> = None;
    let mut after_found = false;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            after_found = false;
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            if after_found {
                return Err("config has a multi-line value");
            }
            continue;
        }
        after_found = false;
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = name.trim() == section;
            continue;
        }
        if !in_section {
            continue;
        }
        let Some(i) = line.find(['=', ':']) else {
            continue;
        };
        if line[..i].trim().eq_ignore_ascii_case(key) {
            if found.is_some() {
                return Err("config sets a value twice");
            }
            found = Some(line[i + 1..].trim());
            after_found = true;
        }
    }
    Ok(found)
}

// ---------------------------------------------------------------------------------------------
// azureProfile.json: which account and tenant.

#[derive(Deserialize)]
struct Profile {
    subscriptions: Vec<Subscription>,
}

#[derive(Deserialize)]
struct Subscription {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "isDefault", default)]
    is_default: bool,
    #[serde(rename = "tenantId")]
    tenant_id: String,
    #[serde(rename = "environmentName")]
    environment_name: String,
    user: serde_json::Map<String, serde_json::Value>,
}

/// The username and tenant az would use.
fn account_and_tenant(query: &Query<'_>) -> Result<(String, String), Miss> {
    let bytes = query
        .fs
        .read(
            &query.config_dir.join("azureProfile.json"),
            MAX_PROFILE_BYTES,
        )
        .map_err(|_| "azureProfile.json cannot be read")?;
    let profile: Profile = serde_json::from_slice(strip_bom(&bytes))
        .map_err(|_| "azureProfile.json does not parse")?;
    let mut candidates = profile
        .subscriptions
        .iter()
        .filter(|s| s.environment_name == PUBLIC_CLOUD)
        .filter(|s| match query.subscription {
            Some(wanted) => {
                s.id.to_lowercase() == wanted.to_lowercase()
                    || s.name
                        .as_deref()
                        .is_some_and(|n| n.to_lowercase() == wanted.to_lowercase())
            }
            None => s.is_default,
        });
    let (Some(subscription), None) = (candidates.next(), candidates.next()) else {
        return Err("not exactly one subscription matches");
    };
    let user = &subscription.user;
    let plain_user = user.len() == 2
        && user.get("type").and_then(|t| t.as_str()) == Some("user")
        && user
            .get("name")
            .and_then(|n| n.as_str())
            .is_some_and(|n| !n.is_empty());
    if !plain_user {
        return Err("the subscription's login is not a plain user login");
    }
    let username = user["name"].as_str().unwrap_or_default().to_owned();
    let tenant = match query.tenant {
        Some(tenant) => tenant,
        None => &subscription.tenant_id,
    };
    if !is_lower_case_guid(tenant) {
        return Err("the tenant is not a lower-case GUID");
    }
    Ok((username, tenant.to_owned()))
}

fn is_lower_case_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

// ---------------------------------------------------------------------------------------------
// msal_token_cache.json: which token.

#[derive(Deserialize)]
struct TokenCacheFile {
    #[serde(rename = "Account", default)]
    accounts: HashMap<String, AccountEntry>,
    #[serde(rename = "AccessToken", default)]
    access_tokens: HashMap<String, AccessTokenEntry>,
}

#[derive(Deserialize)]
struct AccountEntry {
    home_account_id: String,
    environment: String,
    #[serde(default)]
    username: Option<String>,
}

#[derive(Deserialize)]
struct AccessTokenEntry {
    #[serde(default)]
    home_account_id: Option<String>,
    environment: String,
    client_id: String,
    #[serde(default)]
    realm: Option<String>,
    #[serde(default)]
    target: Option<String>,
    secret: String,
    expires_on: Number,
    #[serde(default)]
    refresh_on: Option<Number>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    key_id: Option<String>,
}

/// MSAL Python writes numbers as strings; accept either.
#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Int(i64),
    Text(String),
}

impl Number {
    fn get(&self) -> Option<i64> {
        match self {
            Number::Int(n) => Some(*n),
            Number::Text(s) => s.trim().parse().ok(),
        }
    }
}

fn choose(
    cache: &TokenCacheFile,
    username: &str,
    tenant: &str,
    query: &Query<'_>,
) -> Result<Found, Miss> {
    // The account: every cache account with this username (MSAL groups them by home account
    // id; two ids is "Found multiple accounts" in az).
    let wanted = username.to_lowercase();
    let mut home_account_id: Option<&str> = None;
    for account in cache.accounts.values() {
        if account.username.as_deref().map(str::to_lowercase) != Some(wanted.clone()) {
            continue;
        }
        if account.environment != PUBLIC_AUTHORITY_HOST {
            return Err("the account is cached under another authority host");
        }
        match home_account_id {
            Some(id) if id != account.home_account_id => {
                return Err("several cached accounts have the username");
            }
            _ => home_account_id = Some(&account.home_account_id),
        }
    }
    let home_account_id = home_account_id.ok_or("no cached account has the username")?;

    let mut exact: Vec<(&String, &AccessTokenEntry)> = Vec::new();
    let mut containing: Vec<&AccessTokenEntry> = Vec::new();
    for (key, entry) in &cache.access_tokens {
        if entry.home_account_id.as_deref() != Some(home_account_id)
            || entry.client_id != AZURE_CLI_CLIENT_ID
            || entry.realm.as_deref() != Some(tenant)
        {
            continue;
        }
        let Some(target) = entry.target.as_deref() else {
            continue;
        };
        let relevant = target.eq_ignore_ascii_case(query.scope)
            || target
                .split(' ')
                .any(|t| t.eq_ignore_ascii_case(query.scope));
        if !relevant {
            continue;
        }
        if entry.environment != PUBLIC_AUTHORITY_HOST {
            return Err("a matching token is cached under another authority host");
        }
        if target == query.scope {
            exact.push((key, entry));
        } else if target.eq_ignore_ascii_case(query.scope) {
            // MSAL looks up an exact target through a lower-cased key.
            return Err("a token's target differs from the scope only in case");
        } else if target.split(' ').any(|t| t == query.scope) {
            containing.push(entry);
        }
    }

    let entry = match exact.as_slice() {
        [(key, entry)] => {
            let expected = format!(
                "{home_account_id}-{PUBLIC_AUTHORITY_HOST}-accesstoken-{AZURE_CLI_CLIENT_ID}-{tenant}-{}",
                query.scope
            )
            .to_lowercase();
            if **key != expected {
                return Err("the exact token's key does not match its fields");
            }
            *entry
        }
        [] => {
            let mut usable = containing.into_iter().filter(|e| {
                e.expires_on
                    .get()
                    .is_some_and(|t| t - query.now >= MIN_REMAINING_SECS)
            });
            match (usable.next(), usable.next()) {
                (Some(entry), None) => entry,
                (None, _) => return Err("no cached token for the scope has 5 minutes left"),
                (Some(_), Some(_)) => return Err("several cached tokens could answer"),
            }
        }
        _ => return Err("several cached tokens have exactly the scope"),
    };

    let expires_on = entry
        .expires_on
        .get()
        .ok_or("a token's expires_on is not a number")?;
    if expires_on - query.now < MIN_REMAINING_SECS {
        return Err("the cached token has less than 5 minutes left");
    }
    let refresh_on = match &entry.refresh_on {
        None => None,
        Some(n) => Some(n.get().ok_or("a token's refresh_on is not a number")?),
    };
    if refresh_on.is_some_and(|r| r <= query.now) {
        return Err("the cached token is due for refresh");
    }
    let bearer = entry
        .token_type
        .as_deref()
        .is_none_or(|t| t.eq_ignore_ascii_case("bearer"));
    if !bearer || entry.key_id.is_some() {
        return Err("the cached token is not a plain bearer token");
    }
    if entry.secret.is_empty() {
        return Err("the cached token is empty");
    }
    Ok(Found {
        secret: entry.secret.clone(),
        expires_on,
        refresh_on,
        tenant: tenant.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_reading() {
        let text = "[core]\nEncrypt_Token_Cache = true\n[cloud]\nname: AzureCloud\n";
        assert_eq!(
            ini_value(text, "core", "encrypt_token_cache").unwrap(),
            Some("true")
        );
        assert_eq!(
            ini_value(text, "cloud", "name").unwrap(),
            Some("AzureCloud")
        );
        assert_eq!(
            ini_value(text, "cloud", "encrypt_token_cache").unwrap(),
            None
        );
        assert!(ini_value("[core]\na=1\na=2\n", "core", "a").is_err());
        assert!(ini_value("[core]\na=1\n  more\n", "core", "a").is_err());
        assert_eq!(
            ini_value("[core]\n# a=1\n; a=2\n", "core", "a").unwrap(),
            None
        );
        assert_eq!(parse_bool(" On "), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn guids() {
        assert!(is_lower_case_guid("72f988bf-86f1-41af-91ab-2d7cd011db47"));
        assert!(!is_lower_case_guid("72F988BF-86F1-41AF-91AB-2D7CD011DB47"));
        assert!(!is_lower_case_guid("contoso.onmicrosoft.com"));
    }
}
