//! What the documentation says about errors is what the code does: README.md's table of error
//! kinds is `ErrorKind`'s, and the example message the docs show is the one a program gets.

mod support;

use azure_credentials::{ErrorKind, TokenCredential};

const SCOPE: &str = "https://vault.azure.net/.default";

#[test]
fn the_readme_lists_every_error_kind_with_what_it_prints() {
    let rows = support::readme::table("error-kinds");
    let listed: Vec<&str> = rows.iter().map(|row| row[0].as_str()).collect();
    let kinds: Vec<String> = ErrorKind::ALL.iter().map(|k| format!("`{k:?}`")).collect();
    assert_eq!(
        listed, kinds,
        "README.md lists the kinds of ErrorKind::ALL, in its order"
    );
    for (kind, row) in ErrorKind::ALL.iter().zip(&rows) {
        assert_eq!(row[1], kind.to_string(), "what {kind:?} prints");
    }
}

/// The message README.md and `Error`'s documentation show as an example.
const DOCUMENTED: &str = "ManagedIdentityCredential: IMDS refused the connection; not running on Azure? Use a developer credential (az login)";

#[tokio::test]
async fn the_documented_example_message_is_what_a_refused_imds_probe_prints() {
    assert!(include_str!("../README.md").contains(&format!("```text\n{DOCUMENTED}\n```")));
    assert!(include_str!("../src/error.rs").contains(&format!("/// {DOCUMENTED}\n")));
    let credential = support::imds::probing_credential_off_azure();
    let err = credential.get_token(&[SCOPE], None).await.unwrap_err();
    assert_eq!(err.to_string(), DOCUMENTED);
}
