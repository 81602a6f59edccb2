//! The environment seam: process variables in production, an in-memory map in tests.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Where credentials read environment variables from.
///
/// Tests build an in-memory `Env` instead of calling `std::env::set_var` (which is racy and,
/// since edition 2024, `unsafe`). `Debug` shows variable names, never values: a value may be a
/// client secret.
///
/// ```
/// use azure_credentials::system::Env;
///
/// let env = Env::from_pairs([("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001")]);
/// assert_eq!(env.var("AZURE_CLIENT_ID").as_deref(), Some("00000000-0000-0000-0000-000000000001"));
/// assert_eq!(env.var("AZURE_TENANT_ID"), None);
/// ```
#[derive(Clone, Default)]
pub struct Env {
    kind: EnvKind,
}

#[derive(Clone, Default)]
enum EnvKind {
    #[default]
    Process,
    Map(Arc<BTreeMap<String, String>>),
}

impl Env {
    /// The process environment (what credentials read unless told otherwise). Only read, never
    /// changed.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::system::Env;
    ///
    /// let home = Env::process().var("HOME");
    /// ```
    pub fn process() -> Self {
        Env {
            kind: EnvKind::Process,
        }
    }

    /// An empty in-memory environment: a machine where nothing is configured.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{EnvironmentCredential, ErrorKind};
    /// use azure_credentials::system::Env;
    ///
    /// let error = EnvironmentCredential::builder().env(Env::empty()).build().unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::Unavailable);
    /// ```
    pub fn empty() -> Self {
        Env::from_pairs(std::iter::empty::<(String, String)>())
    }

    /// An in-memory environment holding exactly `pairs` (see the example above).
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Env {
            kind: EnvKind::Map(Arc::new(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            )),
        }
    }

    /// This environment plus `name=value` (an in-memory copy; the process is never changed).
    pub fn with(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let mut map = match self.kind {
            EnvKind::Process => BTreeMap::new(),
            EnvKind::Map(map) => Arc::unwrap_or_clone(map),
        };
        map.insert(name.into(), value.into());
        Env {
            kind: EnvKind::Map(Arc::new(map)),
        }
    }

    /// The value of `name`, or `None` when it is unset or not valid Unicode.
    pub fn var(&self, name: &str) -> Option<String> {
        match &self.kind {
            #[allow(clippy::disallowed_methods)] // the one place that reads the process environment
            EnvKind::Process => std::env::var(name).ok(),
            EnvKind::Map(map) => map.get(name).cloned(),
        }
    }

    /// The value of `name` with surrounding whitespace removed, or `None` when it is unset,
    /// empty or only whitespace. Most Azure variables are read this way: set-but-empty counts
    /// as unset.
    pub fn var_non_empty(&self, name: &str) -> Option<String> {
        self.var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// Whether `name` is set to a non-empty value.
    pub fn is_set(&self, name: &str) -> bool {
        self.var_non_empty(name).is_some()
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            EnvKind::Process => f.write_str("Env::Process"),
            EnvKind::Map(map) => f.debug_tuple("Env::Map").field(&map.keys()).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_env() {
        let env = Env::empty()
            .with("A", "1")
            .with("EMPTY", "")
            .with("SPACES", "  x  ");
        assert_eq!(env.var("A").as_deref(), Some("1"));
        assert_eq!(env.var("EMPTY").as_deref(), Some(""));
        assert_eq!(env.var_non_empty("EMPTY"), None);
        assert_eq!(env.var_non_empty("SPACES").as_deref(), Some("x"));
        assert!(env.is_set("A"));
        assert!(!env.is_set("MISSING"));
    }

    #[test]
    fn debug_shows_names_not_values() {
        let env = Env::from_pairs([("AZURE_CLIENT_SECRET", "s3cr3t-value")]);
        let printed = format!("{env:?}");
        assert!(printed.contains("AZURE_CLIENT_SECRET"));
        assert!(!printed.contains("s3cr3t-value"));
    }

    #[test]
    fn process_env_reads_something_that_exists() {
        // PATH is set in any environment that runs cargo; this only reads.
        assert!(Env::process().var("PATH").is_some());
    }
}
