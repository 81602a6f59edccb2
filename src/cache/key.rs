//! What cached tokens are keyed by: [`CacheIdentity`] (a partition per identity) and, inside a
//! partition, the request key (sorted scopes, tenant, CAE flag) — owned in the maps, borrowed
//! with the scopes sorted on the stack for lookups.

use std::borrow::{Borrow, Cow};
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};

use super::TokenRequest;
use ring::digest;

/// Who a cached token is for: the source kind and everything that decides the identity and the
/// right to its tokens (endpoint, tenant, client / object / resource id, and for credentials
/// with a secret a digest of the secret). Credentials with equal identities share cached tokens,
/// so equality must mean "either could have fetched the other's token".
///
/// ```
/// use azure_credentials::CacheIdentity;
///
/// let a = CacheIdentity::new("ClientSecretCredential")
///     .with("tenant", "contoso.onmicrosoft.com")
///     .with("client_id", "00000000-0000-0000-0000-000000000001")
///     .with_secret(b"secret one");
/// let b = a.clone();
/// assert_eq!(a, b);
/// let c = CacheIdentity::new("ClientSecretCredential")
///     .with("tenant", "contoso.onmicrosoft.com")
///     .with("client_id", "00000000-0000-0000-0000-000000000001")
///     .with_secret(b"secret two");
/// assert_ne!(a, c);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheIdentity {
    pub(super) source: Cow<'static, str>,
    pub(super) parts: BTreeMap<Cow<'static, str>, String>,
    pub(super) secret_digest: Option<[u8; 32]>,
}

impl CacheIdentity {
    /// An identity of the source kind `source`, e.g. `"ManagedIdentityCredential"`; add what tells
    /// its identities apart with [`with`](CacheIdentity::with) and
    /// [`with_secret`](CacheIdentity::with_secret) (see the example above).
    pub fn new(source: impl Into<Cow<'static, str>>) -> Self {
        CacheIdentity {
            source: source.into(),
            parts: BTreeMap::new(),
            secret_digest: None,
        }
    }

    /// Adds a named part of the identity (not secret: it appears in `Debug`).
    pub fn with(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Self {
        self.parts.insert(name.into(), value.into());
        self
    }

    /// Adds a secret: only its SHA-256 digest is kept, and it is never printed.
    pub fn with_secret(mut self, secret: &[u8]) -> Self {
        let mut hasher = digest::Context::new(&digest::SHA256);
        hasher.update(b"azure-credentials cache identity\0");
        if let Some(previous) = self.secret_digest {
            hasher.update(&previous);
        }
        hasher.update(secret);
        let mut digest = [0u8; 32];
        digest.copy_from_slice(hasher.finish().as_ref());
        self.secret_digest = Some(digest);
        self
    }

    /// The source kind.
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl fmt::Debug for CacheIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("CacheIdentity");
        d.field("source", &self.source);
        for (name, value) in &self.parts {
            d.field(name, value);
        }
        if self.secret_digest.is_some() {
            d.field("secret", &"<redacted>");
        }
        d.finish()
    }
}

/// The owned key of a cache entry: sorted, de-duplicated scopes, resolved tenant, CAE flag.
#[derive(Clone)]
pub(super) struct RequestKey {
    pub(super) scopes: Box<[Box<str>]>,
    pub(super) tenant: Option<Box<str>>,
    pub(super) cae: bool,
}

impl RequestKey {
    pub(super) fn to_request(&self, claims: Option<&str>) -> TokenRequest {
        TokenRequest {
            scopes: self.scopes.iter().map(|s| s.to_string()).collect(),
            tenant_id: self.tenant.as_deref().map(str::to_owned),
            claims: claims.map(str::to_owned),
            enable_cae: self.cae,
        }
    }

    pub(super) fn view(&self) -> KeyView<'_> {
        let scopes: Vec<&str> = self.scopes.iter().map(|s| &**s).collect();
        KeyView {
            scopes: ScopeList::Heap(scopes),
            tenant: self.tenant.as_deref(),
            cae: self.cae,
        }
    }
}

pub(super) const INLINE_SCOPES: usize = 4;

/// Scopes sorted and de-duplicated without allocating (up to [`INLINE_SCOPES`]).
pub(super) enum ScopeList<'a> {
    Inline([&'a str; INLINE_SCOPES], usize),
    Heap(Vec<&'a str>),
}

impl<'a> ScopeList<'a> {
    pub(super) fn new(scopes: &[&'a str]) -> Self {
        if scopes.len() <= INLINE_SCOPES {
            let mut buf = [""; INLINE_SCOPES];
            buf[..scopes.len()].copy_from_slice(scopes);
            let len = sort_dedup(&mut buf[..scopes.len()]);
            ScopeList::Inline(buf, len)
        } else {
            let mut v = scopes.to_vec();
            let len = sort_dedup(&mut v);
            v.truncate(len);
            ScopeList::Heap(v)
        }
    }

    pub(super) fn as_slice(&self) -> &[&'a str] {
        match self {
            ScopeList::Inline(buf, len) => &buf[..*len],
            ScopeList::Heap(v) => v,
        }
    }
}

/// Sorts `s` and moves the distinct values to the front; returns how many there are.
pub(super) fn sort_dedup(s: &mut [&str]) -> usize {
    if s.len() <= 1 {
        return s.len();
    }
    s.sort_unstable();
    let mut len = 1;
    for i in 1..s.len() {
        if s[i] != s[len - 1] {
            s[len] = s[i];
            len += 1;
        }
    }
    len
}

/// A borrowed key, for lookups.
pub(super) struct KeyView<'a> {
    pub(super) scopes: ScopeList<'a>,
    pub(super) tenant: Option<&'a str>,
    pub(super) cae: bool,
}

impl<'a> KeyView<'a> {
    pub(super) fn new(scopes: &[&'a str], tenant: Option<&'a str>, cae: bool) -> Self {
        KeyView {
            scopes: ScopeList::new(scopes),
            tenant,
            cae,
        }
    }

    pub(super) fn to_key(&self) -> RequestKey {
        RequestKey {
            scopes: self
                .scopes
                .as_slice()
                .iter()
                .map(|s| Box::from(*s))
                .collect(),
            tenant: self.tenant.map(Box::from),
            cae: self.cae,
        }
    }
}

/// What the owned and borrowed keys have in common, so maps keyed by `RequestKey` can be
/// searched with a `KeyView` (through `Borrow<dyn KeyLike>`).
pub(super) trait KeyLike {
    fn scope_count(&self) -> usize;
    fn scope(&self, i: usize) -> &str;
    fn tenant(&self) -> Option<&str>;
    fn cae(&self) -> bool;
}

impl KeyLike for RequestKey {
    fn scope_count(&self) -> usize {
        self.scopes.len()
    }
    fn scope(&self, i: usize) -> &str {
        &self.scopes[i]
    }
    fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }
    fn cae(&self) -> bool {
        self.cae
    }
}

impl KeyLike for KeyView<'_> {
    fn scope_count(&self) -> usize {
        self.scopes.as_slice().len()
    }
    fn scope(&self, i: usize) -> &str {
        self.scopes.as_slice()[i]
    }
    fn tenant(&self) -> Option<&str> {
        self.tenant
    }
    fn cae(&self) -> bool {
        self.cae
    }
}

#[inline]
pub(super) fn key_eq(a: &(impl KeyLike + ?Sized), b: &(impl KeyLike + ?Sized)) -> bool {
    a.cae() == b.cae()
        && a.tenant() == b.tenant()
        && a.scope_count() == b.scope_count()
        && (0..a.scope_count()).all(|i| a.scope(i) == b.scope(i))
}

pub(super) fn key_hash(k: &(impl KeyLike + ?Sized), state: &mut impl Hasher) {
    k.scope_count().hash(state);
    for i in 0..k.scope_count() {
        k.scope(i).hash(state);
    }
    k.tenant().hash(state);
    k.cae().hash(state);
}

impl Hash for dyn KeyLike + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        key_hash(self, state);
    }
}

impl PartialEq for dyn KeyLike + '_ {
    fn eq(&self, other: &Self) -> bool {
        key_eq(self, other)
    }
}

impl Eq for dyn KeyLike + '_ {}

impl Hash for RequestKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        key_hash(self, state);
    }
}

impl PartialEq for RequestKey {
    fn eq(&self, other: &Self) -> bool {
        key_eq(self, other)
    }
}

impl Eq for RequestKey {}

impl<'a> Borrow<dyn KeyLike + 'a> for RequestKey {
    fn borrow(&self) -> &(dyn KeyLike + 'a) {
        self
    }
}
