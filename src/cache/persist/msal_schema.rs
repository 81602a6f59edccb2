//! MSAL's unified token cache: the JSON document Python msal's `SerializableTokenCache` (and
//! az's `msal_token_cache.json`, and the other SDKs' persistent caches) read and write.
//!
//! The document is an object of sections (`AccessToken`, `RefreshToken`, `IdToken`, `Account`,
//! `AppMetadata`), each an object of entries filed under a key. What is written follows msal
//! 1.3x `token_cache.py` exactly, so Python reads our entries and we read Python's:
//!
//! - keys: `{home_account_id}-{environment}-{credential type}-{client_id}-{realm}-{target}`
//!   lower-cased for access tokens (`AccessToken`), `...-refreshtoken-{client_id}--{target}`
//!   for refresh tokens (no realm: they are cross-tenant), `...-idtoken-{client_id}-{realm}-`
//!   for id tokens, `{home_account_id}-{environment}-{realm}` for accounts, and
//!   `appmetadata-{environment}-{client_id}` (not lower-cased) for app metadata;
//! - `target` is the scopes sorted and joined with one space; `environment` is the authority's
//!   host, lower-cased, without a port (Python msal's `urlparse(authority).hostname`, MSAL
//!   .NET's `Uri.Host`: `https://127.0.0.1:8443/tenant` files its tokens under `127.0.0.1`);
//!   an app's (client credential) token has `home_account_id` `null`;
//! - `cached_at`, `expires_on`, `extended_expires_on`, `refresh_on` and
//!   `last_modification_time` are strings of Unix seconds (read: a string or a number, as
//!   Python's `int()` reads them).
//!
//! Unknown sections, unknown entries and unknown fields of known entries are kept as they were:
//! another tool's data is never lost on a write. An entry this module cannot read (a field of
//! the wrong type, a number that is no integer) is never an answer, and stays in the document.

use serde_json::{Map, Value};

use crate::Secret;

/// The largest document accepted (bytes), like az's cache in the CLI fast path.
pub(crate) const MAX_BYTES: usize = 16 * 1024 * 1024;
/// MSAL does not return an access token with less than this left (seconds).
const MIN_REMAINING_SECS: i64 = 300;

const ACCESS_TOKEN: &str = "AccessToken";
const REFRESH_TOKEN: &str = "RefreshToken";
const ID_TOKEN: &str = "IdToken";
const ACCOUNT: &str = "Account";
const APP_METADATA: &str = "AppMetadata";
const KNOWN_SECTIONS: [&str; 5] = [ACCESS_TOKEN, REFRESH_TOKEN, ID_TOKEN, ACCOUNT, APP_METADATA];

/// Why a document is not an MSAL token cache. `Display` never quotes the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SchemaError {
    /// Not UTF-8 JSON (or nested too deeply).
    #[error("the token cache is not valid JSON")]
    NotJson,
    /// JSON, but not an object, or a known section (`AccessToken`, ...) is not an object.
    #[error("the token cache is not a JSON object of sections")]
    NotAnObject,
    /// Larger than [`MAX_BYTES`].
    #[error("the token cache is larger than 16 MiB")]
    TooLarge,
}

/// A whole MSAL token cache document.
#[derive(Clone, PartialEq, Default)]
pub(crate) struct MsalCache {
    /// The document; every known section present here is an object (checked by `parse`, kept
    /// by the `put_*` methods).
    root: Map<String, Value>,
}

impl std::fmt::Debug for MsalCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Entry counts only: the entries hold secrets.
        let mut d = f.debug_struct("MsalCache");
        for name in KNOWN_SECTIONS {
            if let Some(Value::Object(section)) = self.root.get(name) {
                d.field(name, &section.len());
            }
        }
        d.field(
            "other_sections",
            &self.root.len().saturating_sub(self.known_count()),
        )
        .finish()
    }
}

/// What an access token is looked up by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AccessTokenQuery<'a> {
    /// The authority's host (compared case-insensitively).
    pub(crate) environment: &'a str,
    pub(crate) client_id: &'a str,
    /// The tenant.
    pub(crate) realm: &'a str,
    /// `""` for an app's own token (client credentials).
    pub(crate) home_account_id: &'a str,
    pub(crate) scopes: &'a [String],
}

/// An access token to store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewAccessToken<'a> {
    pub(crate) environment: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) realm: &'a str,
    /// `""` for an app's own token: written as `null`, as MSAL writes it.
    pub(crate) home_account_id: &'a str,
    pub(crate) scopes: &'a [String],
    pub(crate) secret: &'a Secret,
    /// Unix seconds.
    pub(crate) cached_at: i64,
    pub(crate) expires_on: i64,
    pub(crate) extended_expires_on: i64,
    pub(crate) refresh_on: Option<i64>,
}

/// An access token found in the cache.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CachedToken {
    pub(crate) secret: Secret,
    /// Unix seconds.
    pub(crate) expires_on: i64,
    pub(crate) refresh_on: Option<i64>,
}

/// An `Account` entry (no secrets in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccountEntry {
    /// `{uid}.{utid}` from the token response's `client_info`.
    pub(crate) home_account_id: String,
    pub(crate) environment: String,
    /// The tenant the account was signed in to.
    pub(crate) realm: String,
    /// The object id (`oid`, else `sub`) of the id token.
    pub(crate) local_account_id: String,
    /// `preferred_username` (else `upn`) of the id token, or `""`.
    pub(crate) username: String,
    /// `MSSTS` (Entra ID) or `ADFS`.
    pub(crate) authority_type: String,
}

impl MsalCache {
    pub(crate) fn empty() -> Self {
        MsalCache::default()
    }

    /// Empty or whitespace-only bytes are an empty cache; a UTF-8 BOM is accepted.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, SchemaError> {
        if bytes.len() > MAX_BYTES {
            return Err(SchemaError::TooLarge);
        }
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(MsalCache::empty());
        }
        let root = match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(root)) => root,
            Ok(_) => return Err(SchemaError::NotAnObject),
            Err(_) => return Err(SchemaError::NotJson),
        };
        // Python msal iterates a known section's entries: one that is not an object breaks
        // every MSAL reading the file.
        if KNOWN_SECTIONS
            .iter()
            .any(|name| root.get(*name).is_some_and(|s| !s.is_object()))
        {
            return Err(SchemaError::NotAnObject);
        }
        Ok(MsalCache { root })
    }

    /// The document as JSON the way MSAL's `serialize()` (`json.dumps(indent=4)`) writes it:
    /// indented by 4, ASCII only (other characters as `\uXXXX` escapes), so that a Python
    /// reading the file in its locale's encoding (msal-extensions opens it without one) reads
    /// the same text.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        use serde::Serialize;
        let mut out = Vec::new();
        let formatter = AsciiPretty(serde_json::ser::PrettyFormatter::with_indent(b"    "));
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        // Serializing a `Map` of `Value`s into a `Vec` cannot fail (string keys, finite numbers).
        if self.root.serialize(&mut serializer).is_err() {
            return b"{}".to_vec();
        }
        out
    }

    /// Whether the document has no entries in any section.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn is_empty(&self) -> bool {
        self.root
            .values()
            .all(|s| s.as_object().is_some_and(Map::is_empty))
    }

    fn known_count(&self) -> usize {
        KNOWN_SECTIONS
            .iter()
            .filter(|n| self.root.contains_key(**n))
            .count()
    }

    /// The entries of a section that are objects.
    fn entries<'s>(&'s self, section: &str) -> impl Iterator<Item = &'s Map<String, Value>> {
        self.root
            .get(section)
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|s| s.values())
            .filter_map(Value::as_object)
    }

    /// A known section, created when missing.
    fn section_mut(&mut self, section: &str) -> &mut Map<String, Value> {
        let value = self
            .root
            .entry(section)
            .or_insert_with(|| Value::Object(Map::new()));
        if !value.is_object() {
            // `parse` refuses this; kept total anyway.
            *value = Value::Object(Map::new());
        }
        match value {
            Value::Object(map) => map,
            _ => unreachable!("made an object above"),
        }
    }

    /// The access token MSAL would return for `q`: same environment (host, case-insensitive),
    /// client id, realm, home account (`""`: an app token, `null` in the file), the same scope
    /// set (case-insensitive, order-free), a Bearer token (no `token_type` is Bearer) not bound
    /// to a key or a client session, with more than 5 minutes left at `now` (Unix seconds).
    /// None when there is none or more than one.
    pub(crate) fn find_access_token(
        &self,
        q: &AccessTokenQuery<'_>,
        now: i64,
    ) -> Option<CachedToken> {
        let wanted = scope_set(q.scopes.iter().map(String::as_str));
        let mut found = None;
        for entry in self.entries(ACCESS_TOKEN) {
            if !same_access_token_owner(
                entry,
                q.environment,
                q.client_id,
                q.realm,
                q.home_account_id,
            ) || scope_set(target(entry)) != wanted
            {
                continue;
            }
            let Some(expires_on) = int_field(entry, "expires_on") else {
                continue;
            };
            if expires_on.saturating_sub(now) <= MIN_REMAINING_SECS {
                continue;
            }
            let refresh_on = match entry.get("refresh_on") {
                None | Some(Value::Null) => None,
                Some(v) => match python_int(v) {
                    Some(r) => Some(r),
                    None => continue,
                },
            };
            let Some(secret) = string(entry, "secret") else {
                continue;
            };
            if found.is_some() {
                return None;
            }
            found = Some(CachedToken {
                secret: Secret::new(secret),
                expires_on,
                refresh_on,
            });
        }
        found
    }

    /// Adds an access token the way MSAL files it (replacing the entry of the same key), after
    /// removing the tokens of the same owner whose scopes overlap the new token's (as MSAL .NET
    /// and MSAL.js do on every save; Python msal leaves them, and its search then takes any).
    pub(crate) fn put_access_token(&mut self, new: NewAccessToken<'_>) {
        let new_scopes = scope_set(new.scopes.iter().map(String::as_str));
        let environment = msal_environment(new.environment);
        let section = self.section_mut(ACCESS_TOKEN);
        section.retain(|_, entry| {
            let Some(entry) = entry.as_object() else {
                return true;
            };
            !(same_access_token_owner(
                entry,
                &environment,
                new.client_id,
                new.realm,
                new.home_account_id,
            ) && scope_set(target(entry))
                .iter()
                .any(|s| new_scopes.contains(s)))
        });
        let mut scopes: Vec<&str> = new.scopes.iter().map(String::as_str).collect();
        scopes.sort_unstable();
        let target = scopes.join(" ");
        let key = key(&[
            new.home_account_id,
            &environment,
            ACCESS_TOKEN,
            new.client_id,
            new.realm,
            &target,
        ]);
        let mut entry = Map::new();
        entry.insert("credential_type".into(), ACCESS_TOKEN.into());
        entry.insert("secret".into(), new.secret.expose().into());
        entry.insert("home_account_id".into(), home_value(new.home_account_id));
        entry.insert("environment".into(), environment.into());
        entry.insert("client_id".into(), new.client_id.into());
        entry.insert("target".into(), target.into());
        entry.insert("realm".into(), new.realm.into());
        entry.insert("token_type".into(), "Bearer".into());
        entry.insert("cached_at".into(), new.cached_at.to_string().into());
        entry.insert("expires_on".into(), new.expires_on.to_string().into());
        entry.insert(
            "extended_expires_on".into(),
            new.extended_expires_on.to_string().into(),
        );
        if let Some(refresh_on) = new.refresh_on {
            entry.insert("refresh_on".into(), refresh_on.to_string().into());
        }
        section.insert(key, Value::Object(entry));
    }
}

/// The signed-in users' entries: read and written by the user sign-in credentials (feature
/// `user-sign-in`); without it a file's user entries are kept as they are, unread.
#[cfg_attr(not(feature = "user-sign-in"), allow(dead_code))]
impl MsalCache {
    /// The refresh token of this account and client; of several (Python msal files one per
    /// scope set), the most recently modified, as MSAL tries them.
    pub(crate) fn find_refresh_token(
        &self,
        environment: &str,
        client_id: &str,
        home_account_id: &str,
    ) -> Option<Secret> {
        let mut best: Option<(i64, &str)> = None;
        for entry in self.entries(REFRESH_TOKEN) {
            if !same_refresh_token_owner(entry, environment, client_id, home_account_id) {
                continue;
            }
            let Some(secret) = string(entry, "secret") else {
                continue;
            };
            let modified = match entry.get("last_modification_time") {
                None => 0,
                Some(v) => match python_int(v) {
                    Some(t) => t,
                    None => continue,
                },
            };
            if best.is_none_or(|(t, _)| modified > t) {
                best = Some((modified, secret));
            }
        }
        best.map(|(_, secret)| Secret::new(secret))
    }

    /// Stores the refresh token of this account and client, replacing every other one of
    /// theirs (whatever scopes Python filed them under).
    pub(crate) fn put_refresh_token(
        &mut self,
        environment: &str,
        client_id: &str,
        home_account_id: &str,
        secret: &Secret,
    ) {
        let environment = msal_environment(environment);
        let section = self.section_mut(REFRESH_TOKEN);
        section.retain(|_, entry| {
            entry.as_object().is_none_or(|entry| {
                !same_refresh_token_owner(entry, &environment, client_id, home_account_id)
            })
        });
        let key = key(&[
            home_account_id,
            &environment,
            REFRESH_TOKEN,
            client_id,
            "",
            "",
        ]);
        let mut entry = Map::new();
        entry.insert("credential_type".into(), REFRESH_TOKEN.into());
        entry.insert("secret".into(), secret.expose().into());
        entry.insert("home_account_id".into(), home_value(home_account_id));
        entry.insert("environment".into(), environment.into());
        entry.insert("client_id".into(), client_id.into());
        section.insert(key, Value::Object(entry));
    }

    /// Removes this account and client's refresh token, only if it still holds `secret`
    /// (another process may have renewed it since it was read).
    pub(crate) fn remove_refresh_token(
        &mut self,
        environment: &str,
        client_id: &str,
        home_account_id: &str,
        secret: &Secret,
    ) {
        let Some(Value::Object(section)) = self.root.get_mut(REFRESH_TOKEN) else {
            return;
        };
        section.retain(|_, entry| {
            entry.as_object().is_none_or(|entry| {
                !(same_refresh_token_owner(entry, environment, client_id, home_account_id)
                    && string(entry, "secret").is_some_and(|s| Secret::new(s) == *secret))
            })
        });
    }

    /// Stores an account as MSAL does after a user's sign-in (replacing the same key).
    pub(crate) fn put_account(&mut self, account: &AccountEntry) {
        let environment = msal_environment(&account.environment);
        let key = key(&[&account.home_account_id, &environment, &account.realm]);
        let mut entry = Map::new();
        entry.insert(
            "home_account_id".into(),
            account.home_account_id.as_str().into(),
        );
        entry.insert("environment".into(), environment.into());
        entry.insert("realm".into(), account.realm.as_str().into());
        entry.insert(
            "local_account_id".into(),
            account.local_account_id.as_str().into(),
        );
        entry.insert("username".into(), account.username.as_str().into());
        entry.insert(
            "authority_type".into(),
            account.authority_type.as_str().into(),
        );
        self.section_mut(ACCOUNT).insert(key, Value::Object(entry));
    }

    /// Stores an id token as MSAL does (replacing the same key).
    pub(crate) fn put_id_token(
        &mut self,
        environment: &str,
        client_id: &str,
        realm: &str,
        home_account_id: &str,
        id_token: &Secret,
    ) {
        let environment = msal_environment(environment);
        let key = key(&[
            home_account_id,
            &environment,
            ID_TOKEN,
            client_id,
            realm,
            "",
        ]);
        let mut entry = Map::new();
        entry.insert("credential_type".into(), ID_TOKEN.into());
        entry.insert("secret".into(), id_token.expose().into());
        entry.insert("home_account_id".into(), home_value(home_account_id));
        entry.insert("environment".into(), environment.into());
        entry.insert("realm".into(), realm.into());
        entry.insert("client_id".into(), client_id.into());
        self.section_mut(ID_TOKEN).insert(key, Value::Object(entry));
    }

    /// Stores the app's metadata entry as MSAL does after every token (kept if present: it may
    /// carry a `family_id`).
    pub(crate) fn put_app_metadata(&mut self, environment: &str, client_id: &str) {
        let environment = msal_environment(environment);
        // Not lower-cased: MSAL's own key maker does not.
        let key = format!("appmetadata-{environment}-{client_id}");
        let section = self.section_mut(APP_METADATA);
        if section.get(&key).is_some_and(Value::is_object) {
            return;
        }
        let mut entry = Map::new();
        entry.insert("client_id".into(), client_id.into());
        entry.insert("environment".into(), environment.into());
        section.insert(key, Value::Object(entry));
    }
}

impl MsalCache {
    /// The account of this home account id at this host: the entry of its home tenant (the
    /// `utid` half of the id) if there is one, else the first by key.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn find_account(
        &self,
        environment: &str,
        home_account_id: &str,
    ) -> Option<AccountEntry> {
        let home_tenant = home_account_id.rsplit_once('.').map(|(_, t)| t);
        let mut first = None;
        for entry in self.entries(ACCOUNT) {
            if string(entry, "home_account_id") != Some(home_account_id)
                || !same_environment(entry, environment)
            {
                continue;
            }
            let Some(account) = account_entry(entry) else {
                continue;
            };
            if home_tenant == Some(account.realm.as_str()) {
                return Some(account);
            }
            first.get_or_insert(account);
        }
        first
    }
}

/// serde_json's pretty printer, with Python's `ensure_ascii`: every character outside ASCII
/// is written as `\uXXXX` (two for those beyond the Basic Multilingual Plane).
struct AsciiPretty<'a>(serde_json::ser::PrettyFormatter<'a>);

impl serde_json::ser::Formatter for AsciiPretty<'_> {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some(at) = rest.find(|c: char| !c.is_ascii()) {
            let (ascii, tail) = rest.split_at(at);
            writer.write_all(ascii.as_bytes())?;
            let mut chars = tail.chars();
            if let Some(c) = chars.next() {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
            rest = chars.as_str();
        }
        writer.write_all(rest.as_bytes())
    }

    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }

    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }

    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg_attr(not(test), allow(dead_code))]
fn account_entry(entry: &Map<String, Value>) -> Option<AccountEntry> {
    Some(AccountEntry {
        home_account_id: string(entry, "home_account_id")?.to_owned(),
        environment: string(entry, "environment")?.to_owned(),
        realm: string(entry, "realm")?.to_owned(),
        local_account_id: string(entry, "local_account_id")
            .unwrap_or_default()
            .to_owned(),
        username: string(entry, "username").unwrap_or_default().to_owned(),
        authority_type: string(entry, "authority_type")?.to_owned(),
    })
}

/// An entry's key: the parts joined with `-`, lower-cased (MSAL's `str.lower()`; Unicode
/// lower-casing, like Python's, for the non-ASCII that never occurs in these fields).
fn key(parts: &[&str]) -> String {
    parts.join("-").to_lowercase()
}

/// `home_account_id` as MSAL writes it: `null` for an app's token.
fn home_value(home_account_id: &str) -> Value {
    if home_account_id.is_empty() {
        Value::Null
    } else {
        home_account_id.into()
    }
}

/// Whether an entry's `home_account_id` is `home` (`""`: no account, which MSAL writes as
/// `null`; `""` or a missing field from other MSALs read the same).
fn same_home(entry: &Map<String, Value>, home: &str) -> bool {
    match entry.get("home_account_id") {
        None | Some(Value::Null) => home.is_empty(),
        Some(Value::String(h)) => h == home,
        Some(_) => false,
    }
}

/// Whether an entry's `environment` is `environment`'s host (case-insensitive, the port left
/// out as MSAL leaves it out).
fn same_environment(entry: &Map<String, Value>, environment: &str) -> bool {
    string(entry, "environment").is_some_and(|e| e.eq_ignore_ascii_case(host_only(environment)))
}

/// MSAL's `environment` for an authority host given as `host[:port]`: the host, lower-cased,
/// without the port.
fn msal_environment(authority_host: &str) -> String {
    host_only(authority_host).to_ascii_lowercase()
}

/// `host[:port]` without `:port` (an IPv6 literal keeps its brackets: `[::1]:8443` is `[::1]`).
fn host_only(authority_host: &str) -> &str {
    if authority_host.starts_with('[') {
        return authority_host
            .find(']')
            .map_or(authority_host, |end| &authority_host[..=end]);
    }
    match authority_host.rsplit_once(':') {
        Some((host, port))
            if !host.contains(':')
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            host
        }
        _ => authority_host,
    }
}

/// Same owner, and a plain bearer token: no other `token_type`, not bound to a key (`key_id`:
/// SSH certificates, PoP) or to a client session (`ext_cache_key`).
fn same_access_token_owner(
    entry: &Map<String, Value>,
    environment: &str,
    client_id: &str,
    realm: &str,
    home: &str,
) -> bool {
    same_home(entry, home)
        && same_environment(entry, environment)
        && string(entry, "client_id") == Some(client_id)
        && string(entry, "realm") == Some(realm)
        && match entry.get("token_type") {
            None => true,
            Some(Value::String(t)) => t.eq_ignore_ascii_case("bearer"),
            Some(_) => false,
        }
        && !entry.contains_key("key_id")
        && !entry.contains_key("ext_cache_key")
}

#[cfg_attr(not(feature = "user-sign-in"), allow(dead_code))]
fn same_refresh_token_owner(
    entry: &Map<String, Value>,
    environment: &str,
    client_id: &str,
    home: &str,
) -> bool {
    same_home(entry, home)
        && same_environment(entry, environment)
        && string(entry, "client_id") == Some(client_id)
}

fn string<'a>(entry: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    entry.get(field).and_then(Value::as_str)
}

/// An entry's scopes: its `target` split on whitespace (a missing or non-string target has
/// none).
fn target(entry: &Map<String, Value>) -> impl Iterator<Item = &str> {
    string(entry, "target").unwrap_or("").split_whitespace()
}

/// Scopes as a set compared case-insensitively.
fn scope_set<'s>(scopes: impl Iterator<Item = &'s str>) -> std::collections::BTreeSet<String> {
    scopes.map(str::to_lowercase).collect()
}

fn int_field(entry: &Map<String, Value>, field: &str) -> Option<i64> {
    python_int(entry.get(field)?)
}

/// Python's `int(value)` for the values MSALs write: a JSON integer, a finite JSON number
/// (truncated), or a string of an optional sign and ASCII digits with whitespace around.
/// Anything else (or beyond 64 bits) is `None`.
fn python_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            let f = n.as_f64()?;
            // `as` saturates; keep only values that fit.
            (f.is_finite() && f > -9.2e18 && f < 9.2e18).then_some(f.trunc() as i64)
        }),
        Value::String(s) => {
            let s = s.trim();
            let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        }
        _ => None,
    }
}

// A path relative to this file, so that tests/msal_cache_python.rs can compile this module
// from its source too.
#[cfg(test)]
#[path = "msal_schema/tests.rs"]
mod tests;
