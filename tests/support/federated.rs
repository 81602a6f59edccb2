//! What the federated credentials' tests share: Entra's "assertion expired" refusal, and the
//! client assertions Entra received.

use azure_credentials::TokenCredential;
use azure_credentials::testing::{EntraRequest, MockEntra, MockEntraReply};

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

/// Checks that `exchange` is a client credentials grant for `client` in `tenant`, proved with a
/// JWT client assertion.
#[track_caller]
pub fn assert_assertion_exchange(exchange: &EntraRequest, tenant: &str, client: &str) {
    assert_eq!(exchange.tenant(), Some(tenant));
    assert_eq!(exchange.form("client_id"), Some(client));
    assert_eq!(exchange.form("grant_type"), Some("client_credentials"));
    assert_eq!(
        exchange.form("client_assertion_type"),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
}

/// Entra refuses the next client assertion as expired; `credential` still gets a token (for a
/// scope it has not cached): it fetches a new assertion and retries once.
pub async fn refused_once_as_expired(entra: &MockEntra, credential: &impl TokenCredential) {
    entra.push(assertion_expired());
    credential
        .get_token(&["https://storage.azure.com/.default"], None)
        .await
        .unwrap();
}
