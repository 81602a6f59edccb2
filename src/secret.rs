//! [`Secret`]: a string that never prints itself.

use std::fmt;
use std::sync::Arc;

/// A secret string: an access token, a client secret, an assertion.
///
/// `Debug` prints a redaction marker and there is no `Display`, so a secret cannot reach a log
/// line or an error message by accident. Cloning is a reference-count increment, never a copy of
/// the underlying string. Equality is computed in time independent of where the strings differ.
///
/// ```
/// use azure_credentials::Secret;
///
/// let secret = Secret::new("hunter2");
/// assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
/// assert_eq!(secret.expose(), "hunter2");
/// ```
#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Secret(value.into())
    }

    /// The secret value. Call this only where the value is sent on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The length of the secret in bytes (safe to log).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A copy of the secret in a new allocation, so that the copy's reference count is not
    /// shared with the original (used by the cache's per-thread copies).
    pub(crate) fn deep_copy(&self) -> Self {
        Secret(Arc::from(&*self.0))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for Secret {}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

/// Compares two byte strings without an early exit on the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("super-secret-value");
        let printed = format!("{s:?} {s:#?}");
        assert!(!printed.contains("super-secret-value"), "{printed}");
    }

    #[test]
    fn clone_shares_the_allocation_and_deep_copy_does_not() {
        let s = Secret::new("abc");
        let c = s.clone();
        assert!(Arc::ptr_eq(&s.0, &c.0));
        let d = s.deep_copy();
        assert!(!Arc::ptr_eq(&s.0, &d.0));
        assert_eq!(s, d);
    }

    #[test]
    fn equality() {
        assert_eq!(Secret::new("a"), Secret::new("a"));
        assert_ne!(Secret::new("a"), Secret::new("b"));
        assert_ne!(Secret::new("a"), Secret::new("ab"));
        assert!(Secret::new("").is_empty());
        assert_eq!(Secret::new("four").len(), 4);
    }
}
