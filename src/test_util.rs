//! What the unit tests of several modules share.

/// Fails, naming it, if `printed` (a `Debug` or `Display` output) contains any of `secrets`.
pub(crate) fn assert_hides(printed: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }
}
