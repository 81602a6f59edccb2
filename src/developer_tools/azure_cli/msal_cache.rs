//! The fast path: answering from the Azure CLI's own MSAL token cache, read-only, when — and only
//! when — the token there is unambiguously the one `az account get-access-token` would return.
//!
//! The rules follow what az 2.91 / MSAL 1.39 do (read in their source, and observed over
//! crafted config dirs):
//!
//! - az must be able to start and read its configuration the way this reads it: `config` and
//!   `clouds.config` parse as Python's `configparser` parses them ([`super::ini`]), the booleans
//!   az reads on the way are booleans, and `clouds.config` does not move `AzureCloud`'s
//!   endpoints;
//! - the cache must be the plaintext `msal_token_cache.json`: `encrypt_token_cache` in the
//!   config (or `AZURE_CORE_ENCRYPT_TOKEN_CACHE`, which wins) must be off — the default
//!   everywhere but Windows;
//! - the active cloud must be the public `AzureCloud`, and subscriptions of other clouds are
//!   ignored;
//! - no agent session (`COPILOT_AGENT_SESSION_ID`: az then binds its request to a client
//!   session, and MSAL looks only at tokens bound to it) and not Cloud Shell;
//! - the account is the user of the default subscription (or of the configured
//!   `--subscription`, matched by id or name case-insensitively), a plain user login (not a
//!   service principal, managed identity or Cloud Shell), matched to exactly one cache account
//!   the way MSAL's `get_accounts(username)` matches;
//! - the tenant is the requested one (a lower-case GUID; az maps anything else through its own
//!   lookup) or the subscription's;
//! - the token is the one MSAL's `_acquire_token_silent_from_cache_and_possibly_refresh_it`
//!   takes (see [`choose`]), it has no `refresh_on` in the past (MSAL would refresh it) and is a
//!   plain bearer token.
//!
//! Anything else — a missing or unreadable file, a parse error, two default subscriptions, two
//! accounts, two usable tokens where MSAL's pick depends on the file's order, a number MSAL
//! would read differently or not at all — is a miss, and the caller runs `az` as usual.
//! Nothing here writes a file.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::ini::{self, Ini};
use crate::env_vars;
use crate::system::{Env, Fs};

/// The Azure CLI's public client id.
pub(crate) const AZURE_CLI_CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
/// MSAL refuses a cached token with less than this left (seconds).
const MIN_REMAINING_SECS: i64 = 300;
const PUBLIC_CLOUD: &str = "AzureCloud";
const PUBLIC_AUTHORITY_HOST: &str = "login.microsoftonline.com";
/// Set (non-empty) by an agent orchestrator; az then adds a client session to its requests
/// (azure-cli-core 2.91 `auth/agentic_session.py`).
const AGENT_SESSION_VAR: &str = env_vars::COPILOT_AGENT_SESSION_ID;
/// MSAL's Cloud Shell detection (`cloudshell.py` `_is_running_in_cloud_shell`).
const CLOUD_SHELL_VAR: &str = env_vars::AZUREPS_HOST_ENVIRONMENT;

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

impl Query<'_> {
    /// The file `name` of az's configuration directory, at most `max` bytes, or `unreadable`.
    fn read(&self, name: &str, max: u64, unreadable: Miss) -> Result<Vec<u8>, Miss> {
        self.fs
            .read(&self.config_dir.join(name), max)
            .map_err(|_| unreadable)
    }
}

/// The token az would return for `query`, if that is certain.
pub(crate) fn lookup(query: &Query<'_>) -> Result<Found, Miss> {
    if query
        .env
        .var(AGENT_SESSION_VAR)
        .is_some_and(|v| !v.is_empty())
    {
        return Err("an agent session is set: az asks for tokens bound to it");
    }
    if query
        .env
        .var(CLOUD_SHELL_VAR)
        .is_some_and(|v| v.starts_with("cloud-shell"))
    {
        return Err("running in Cloud Shell");
    }
    check_config(query)?;
    let (username, tenant) = account_and_tenant(query)?;
    let bytes = query.read(
        "msal_token_cache.json",
        MAX_TOKEN_CACHE_BYTES,
        "msal_token_cache.json cannot be read",
    )?;
    // No byte order mark allowed: Python's json refuses one.
    let cache: TokenCacheFile =
        serde_json::from_slice(&bytes).map_err(|_| "msal_token_cache.json does not parse")?;
    choose(&cache, &username, &tenant, query)
}

// ---------------------------------------------------------------------------------------------
// Config: encryption and cloud.

/// Booleans az 2.91 and knack 0.14 read with `getboolean` on the way to a token or may read
/// (a value that is not one makes az fail).
const BOOLEANS: [(&str, &str); 11] = [
    ("core", "encrypt_token_cache"),
    ("core", "use_msal_http_cache"),
    ("core", "enable_broker_on_windows"),
    ("core", "enable_broker_on_mac"),
    ("core", "instance_discovery"),
    ("core", "only_show_errors"),
    ("core", "collect_telemetry"),
    ("core", "use_command_index"),
    ("core", "survey_message"),
    ("logging", "enable_log_file"),
    ("clients", "show_secrets_warning"),
];

fn check_config(query: &Query<'_>) -> Result<(), Miss> {
    let config = read_ini(query.fs, &query.config_dir.join("config"))?;
    for (section, option) in BOOLEANS {
        if let Some(value) = config_value(query.env, &config, section, option) {
            let value = python_bool(&value).ok_or("a boolean az reads is not a boolean")?;
            if option == "encrypt_token_cache" && value {
                return Err("the CLI's token cache is encrypted");
            }
        } else if option == "encrypt_token_cache" && cfg!(windows) {
            return Err("the CLI's token cache is encrypted (the default on Windows)");
        }
    }
    if config_value(query.env, &config, "cloud", "name").is_some_and(|c| c != PUBLIC_CLOUD) {
        return Err("the active cloud is not AzureCloud");
    }
    // az lays `clouds.config` over its built-in clouds (azure-cli-core `cloud.py`
    // `get_clouds`): an endpoint set there (or in its DEFAULT section) for AzureCloud moves the
    // authority, and with it the cache entries az looks at.
    let clouds = read_ini(query.fs, &query.config_dir.join("clouds.config"))?;
    // az reads clouds.config in the locale's encoding (no encoding given); ASCII reads the same
    // in all of them.
    if !clouds.is_ascii() {
        return Err("clouds.config is not ASCII");
    }
    if clouds
        .options(PUBLIC_CLOUD)
        .any(|o| o.starts_with("endpoint_"))
    {
        return Err("clouds.config changes AzureCloud's endpoints");
    }
    Ok(())
}

/// An INI file of az's, or an empty one when it does not exist.
fn read_ini(fs: &Fs, path: &Path) -> Result<Ini, Miss> {
    match fs.read(path, MAX_CONFIG_BYTES) {
        Ok(bytes) => {
            ini::parse(std::str::from_utf8(&bytes).map_err(|_| "an INI file is not UTF-8")?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ini::default()),
        Err(_) => Err("an INI file cannot be read"),
    }
}

/// knack's `CLIConfig.get`: the variable `AZURE_<SECTION>_<OPTION>` when it is set at all
/// (even empty), else the file.
fn config_value(env: &Env, config: &Ini, section: &str, option: &str) -> Option<String> {
    let var = format!("AZURE_{section}_{option}").to_ascii_uppercase();
    env.var(&var)
        .or_else(|| config.get(section, option).map(str::to_owned))
}

/// knack's `getboolean`: the value lower-cased, not trimmed, one of its eight words.
fn python_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
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
    let bytes = query.read(
        "azureProfile.json",
        MAX_PROFILE_BYTES,
        "azureProfile.json cannot be read",
    )?;
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
    let username = match user.get("name").and_then(Value::as_str) {
        Some(name)
            if user.len() == 2
                && !name.is_empty()
                && user.get("type").and_then(Value::as_str) == Some("user") =>
        {
            name.to_owned()
        }
        _ => return Err("the subscription's login is not a plain user login"),
    };
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

/// The two sections the fast path reads, entries kept as JSON objects so that fields are
/// compared as MSAL compares them (present or not, string or not).
#[derive(Deserialize)]
struct TokenCacheFile {
    #[serde(rename = "Account", default)]
    accounts: HashMap<String, Map<String, Value>>,
    #[serde(rename = "AccessToken", default)]
    access_tokens: HashMap<String, Map<String, Value>>,
}

fn string<'a>(entry: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    entry.get(field).and_then(Value::as_str)
}

/// Python's `int(entry[field])` where that is certain to give the same number: a JSON integer,
/// or a string of an optional sign and ASCII digits within 64 bits, spaces around. Anything
/// else (missing, a float, `1_000`, huge) is a miss: MSAL would read it differently or fail.
fn int(entry: &Map<String, Value>, field: &str) -> Result<i64, Miss> {
    match entry.get(field) {
        Some(Value::Number(n)) => n.as_i64().ok_or("a cached number is not a 64-bit integer"),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| "a cached number is not an integer"),
        _ => Err("a cached number is missing or not a number"),
    }
}

/// How long a token has left, for MSAL's 5-minute rule.
enum Remaining {
    /// At least 5 minutes: MSAL takes it.
    Usable,
    /// Less: MSAL goes on (and refreshes when nothing else is usable).
    Expiring,
}

/// `expires_on - now` against the 5 minutes. MSAL compares with `time.time()`, a fraction of
/// a second past `now`: exactly 300 s is on the edge, so uncertain.
fn remaining(entry: &Map<String, Value>, now: i64) -> Result<Remaining, Miss> {
    let left = int(entry, "expires_on")?.saturating_sub(now);
    match left.cmp(&MIN_REMAINING_SECS) {
        std::cmp::Ordering::Greater => Ok(Remaining::Usable),
        std::cmp::Ordering::Less => Ok(Remaining::Expiring),
        std::cmp::Ordering::Equal => Err("a cached token has exactly 5 minutes left"),
    }
}

/// The home account id of the one cache account az would use for `username`: MSAL 1.39
/// `ClientApplication.get_accounts(username)` and `_find_msal_accounts` (`application.py`,
/// lines 1392-1453) as az 2.91's `UserCredential` calls it: accounts of the authority's
/// host whose `authority_type` is MSSTS or ADFS (a missing one raises), grouped by
/// `home_account_id` with the last entry of a group speaking for it, matched by username
/// case-insensitively; az fails on two ("Found multiple accounts") and on none.
fn home_account_id<'a>(cache: &'a TokenCacheFile, username: &str) -> Result<&'a str, Miss> {
    if !username.is_ascii() {
        return Err("the username is not ASCII (Python and Rust lower-case differently)");
    }
    let wanted = username.to_ascii_lowercase();
    // home account id → the lower-cased usernames of its entries.
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for account in cache.accounts.values() {
        if string(account, "environment") != Some(PUBLIC_AUTHORITY_HOST) {
            continue;
        }
        match account.get("authority_type") {
            None => return Err("a cached account has no authority_type"),
            Some(Value::String(t)) if t == "MSSTS" || t == "ADFS" => {}
            Some(_) => continue,
        }
        let home =
            string(account, "home_account_id").ok_or("a cached account has no home_account_id")?;
        let name = string(account, "username").ok_or("a cached account has no username")?;
        if !name.is_ascii() {
            return Err("a cached username is not ASCII");
        }
        let name = name.to_ascii_lowercase();
        match groups.iter_mut().find(|(h, _)| *h == home) {
            Some((_, names)) => names.push(name),
            None => groups.push((home, vec![name])),
        }
    }
    let mut found = None;
    for (home, names) in &groups {
        if !names.contains(&wanted) {
            continue;
        }
        // Which entry is last depends on the file's order.
        if names.iter().any(|n| *n != wanted) {
            return Err("a cached account's entries disagree on its username");
        }
        if found.replace(*home).is_some() {
            return Err("several cached accounts have the username");
        }
    }
    found.ok_or("no cached account has the username")
}

/// The token MSAL 1.39 returns from the cache, following
/// `ClientApplication._acquire_token_silent_from_cache_and_possibly_refresh_it`
/// (msal 1.39.0 `application.py`, lines 1737-1778) over `TokenCache.search` (`token_cache.py`,
/// lines 314-367):
///
/// 1. `search` first yields the entry filed under the key the query makes
///    (`<home>-<host>-accesstoken-<client>-<tenant>-<scope>`, lower-cased), if its fields match
///    the query — whatever its target or `ext_cache_key`;
/// 2. then, in file order, every other entry of the section: `int(expires_on) < now` drops it
///    (and raises for a value that is no integer); one not matching the query's home account,
///    host, client id and realm, whose `target` (split on whitespace) lacks the scope, or that
///    has an `ext_cache_key` (bound to a client session) is skipped;
/// 3. the loop skips every yielded entry with less than 5 minutes left and takes the first
///    other one — unless its `refresh_on` has passed, when MSAL refreshes instead.
///
/// So an exact entry with 5 minutes left is the answer; otherwise the answer is the first usable
/// entry of step 2. The file's order is not kept here, so that is certain only when exactly
/// one is usable; and any entry whose expiry cannot be read is a miss (MSAL may reach it first
/// and fail).
fn choose(
    cache: &TokenCacheFile,
    username: &str,
    tenant: &str,
    query: &Query<'_>,
) -> Result<Found, Miss> {
    let home = home_account_id(cache, username)?;
    if !home.is_ascii() {
        return Err("the home account id is not ASCII");
    }
    let matches_query = |entry: &Map<String, Value>| {
        string(entry, "home_account_id") == Some(home)
            && string(entry, "environment") == Some(PUBLIC_AUTHORITY_HOST)
            && string(entry, "client_id") == Some(AZURE_CLI_CLIENT_ID)
            && string(entry, "realm") == Some(tenant)
    };
    let now = query.now;

    let key = format!(
        "{home}-{PUBLIC_AUTHORITY_HOST}-accesstoken-{AZURE_CLI_CLIENT_ID}-{tenant}-{}",
        query.scope
    )
    .to_ascii_lowercase();
    if let Some(entry) = cache.access_tokens.get(&key) {
        if !matches_query(entry) {
            return Err("the entry under the scope's key belongs to another query");
        }
        if entry.contains_key("ext_cache_key") {
            return Err("the entry under the scope's key is bound to a client session");
        }
        if string(entry, "target") != Some(query.scope) {
            return Err("the entry under the scope's key has another target");
        }
        if let Remaining::Usable = remaining(entry, now)? {
            return found(entry, tenant, now);
        }
    }

    let mut usable = None;
    for (entry_key, entry) in &cache.access_tokens {
        // MSAL reads every entry's expiry on its way through the section.
        let expires_on = int(entry, "expires_on")?;
        if expires_on < now || *entry_key == key || !matches_query(entry) {
            continue;
        }
        let target = match entry.get("target") {
            None => continue,
            Some(Value::String(target)) => target,
            Some(_) => return Err("a cached target is not a string"),
        };
        // Python's str.split() splits where Rust's is_whitespace does, and also at \x1c-\x1f.
        if target.contains(|c| ('\u{1c}'..='\u{1f}').contains(&c)) {
            return Err("a cached target holds separator control characters");
        }
        if !target.split_whitespace().any(|t| t == query.scope)
            || entry.contains_key("ext_cache_key")
        {
            continue;
        }
        if let Remaining::Usable = remaining(entry, now)?
            && usable.replace(entry).is_some()
        {
            return Err("several cached tokens could answer: MSAL takes the first in the file");
        }
    }
    let entry = usable.ok_or("no cached token for the scope has 5 minutes left: az refreshes")?;
    found(entry, tenant, now)
}

/// The answer from the entry MSAL takes, if MSAL returns it as it is and it is a plain bearer
/// token.
fn found(entry: &Map<String, Value>, tenant: &str, now: i64) -> Result<Found, Miss> {
    let expires_on = int(entry, "expires_on")?;
    if time::OffsetDateTime::from_unix_timestamp(expires_on).is_err() {
        return Err("a cached expiry is out of range");
    }
    let refresh_on = match entry.get("refresh_on") {
        None => None,
        Some(_) => Some(int(entry, "refresh_on")?),
    };
    // MSAL refreshes when refresh_on < time.time(); equal to `now` is on the edge.
    if refresh_on.is_some_and(|r| r <= now) {
        return Err("the cached token is due for refresh");
    }
    let bearer = match entry.get("token_type") {
        None => true,
        Some(Value::String(t)) => t.eq_ignore_ascii_case("bearer"),
        Some(_) => false,
    };
    if !bearer || entry.contains_key("key_id") {
        return Err("the cached token is not a plain bearer token");
    }
    match string(entry, "secret") {
        Some(secret) if !secret.is_empty() => Ok(Found {
            secret: secret.to_owned(),
            expires_on,
            refresh_on,
            tenant: tenant.to_owned(),
        }),
        _ => Err("the cached token is empty"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_are_read_as_knack_reads_them() {
        assert_eq!(python_bool("On"), Some(true));
        assert_eq!(python_bool("0"), Some(false));
        assert_eq!(python_bool(" true"), None);
        assert_eq!(python_bool(""), None);
        assert_eq!(python_bool("maybe"), None);
    }

    #[test]
    fn numbers_are_read_only_where_python_reads_them_the_same() {
        let entry = |v: Value| Map::from_iter([("n".to_owned(), v)]);
        assert_eq!(int(&entry(Value::from(5)), "n"), Ok(5));
        assert_eq!(int(&entry(Value::from(" -5 ")), "n"), Ok(-5));
        assert_eq!(int(&entry(Value::from("+7")), "n"), Ok(7));
        for bad in [
            Value::from("1_000"),
            Value::from("99999999999999999999"),
            Value::from(1.5),
            Value::from(u64::MAX),
            Value::Null,
        ] {
            assert!(int(&entry(bad.clone()), "n").is_err(), "{bad}");
        }
        assert!(int(&entry(Value::from(1)), "missing").is_err());
        let expiring = |v: &str| {
            let entry = Map::from_iter([("expires_on".to_owned(), Value::from(v))]);
            matches!(remaining(&entry, 1_893_456_000), Ok(Remaining::Expiring))
        };
        assert!(expiring(&i64::MIN.to_string()));
        assert!(expiring("1893456299"));
        assert!(!expiring("1893456301"));
    }

    #[test]
    fn guids() {
        assert!(is_lower_case_guid("72f988bf-86f1-41af-91ab-2d7cd011db47"));
        assert!(!is_lower_case_guid("72F988BF-86F1-41AF-91AB-2D7CD011DB47"));
        assert!(!is_lower_case_guid("contoso.onmicrosoft.com"));
    }
}
