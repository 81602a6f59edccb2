//! What the federated credentials' tests share: Entra's "assertion expired" refusal, and the
//! client assertions Entra received.

use azure_credentials::testing::{MockEntra, MockEntraReply};

/// Entra refusing a client assertion as expired (`AADSTS700024`).
pub fn assertion_expired() -> MockEntraReply {
    MockEntraReply::error(
        400,
        "invalid_client",
        700024,
        "Client assertion is not within its valid time range.",
    )
}

/// The `client_assertion` of every request `entra` received that had one, in order.
pub fn assertions_sent(entra: &MockEntra) -> Vec<String> {
    entra
        .requests()
        .iter()
        .filter_map(|r| r.form("client_assertion").map(str::to_owned))
        .collect()
}
