//! The persistent token cache in the Linux Secret Service (feature `secret-service`) against a
//! real GNOME Keyring: `.ci/with-keyring cargo test --features secret-service,testing --test
//! secret_service` starts one, unlocked, on a private session bus. Without such a bus the
//! keyring test prints `SKIPPED ...` and passes, unless AZURE_CREDENTIALS_REQUIRE_KEYRING is
//! set (CI sets it).

mod support;
use support::entra;
use support::fixtures;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use azure_credentials::system::{Env, RetryPolicy};
use azure_credentials::{
    ClientSecretCredential, ErrorKind, TokenCache, TokenCachePersistence, TokenCredential,
};

const CLIENT: &str = "00000000-0000-0000-0000-0000000000c6";
const SECRET: &str = "keyring-app-secret";
const VAULT: &[&str] = &["https://vault.azure.net/.default"];
const REQUIRE: &str = "AZURE_CREDENTIALS_REQUIRE_KEYRING";

/// The session bus of this test process, if it has one (read, never set).
fn session_bus() -> Option<String> {
    Env::process().var_non_empty("DBUS_SESSION_BUS_ADDRESS")
}

/// Prints why the test is skipped, or fails when CI requires the keyring.
fn skip(why: &str) {
    assert!(
        Env::process().var(REQUIRE).is_none(),
        "{REQUIRE} is set but {why}"
    );
    // Straight to stderr: libtest captures println! of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED the Secret Service test: {why} (run it under .ci/with-keyring)"
    );
}

fn credential(
    authority: &str,
    home: &Path,
    bus: &str,
    name: &str,
    cache: TokenCache,
) -> Result<ClientSecretCredential, azure_credentials::Error> {
    ClientSecretCredential::builder()
        .tenant_id(entra::TENANT)
        .client_id(CLIENT)
        .secret(SECRET)
        .authority_host(authority)
        .env(Env::from_pairs([
            ("HOME", home.to_str().unwrap()),
            ("DBUS_SESSION_BUS_ADDRESS", bus),
        ]))
        .cache(cache)
        .retry_policy(RetryPolicy::none())
        .persistence(TokenCachePersistence::new().name(name))
        .build()
}

/// `secret-tool` (libsecret-tools) with `args` on `bus`; `None` when it is not installed.
fn secret_tool(bus: &str, args: &[&str]) -> Option<std::process::Output> {
    Command::new("secret-tool")
        .args(args)
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .output()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_a_keyring_secret_found_by_msal_extensions_attributes_and_the_file_is_only_a_signal()
 {
    let Some(bus) = session_bus() else {
        return skip("DBUS_SESSION_BUS_ADDRESS is not set");
    };
    let s = entra::setup().await;
    let home = fixtures::scratch_dir("secret-service", "keyring");
    // A name of this run's own: the item never clobbers a developer's real msal.cache.
    let name = format!("azure-credentials-test-{}", std::process::id());
    let schema = format!("{name}.nocae");
    let first = match credential(
        &s.entra.authority_host(),
        &home,
        &bus,
        &name,
        s.cache.clone(),
    ) {
        Ok(credential) => credential,
        Err(error) if error.kind() == ErrorKind::Unavailable => {
            return skip(&format!("no unlocked keyring answers on the bus: {error}"));
        }
        Err(error) => panic!("{error}"),
    };
    let token = first.get_token(VAULT, None).await.unwrap();

    // Another process, as far as the in-memory cache knows: the token comes from the keyring.
    let second = credential(
        &s.entra.authority_host(),
        &home,
        &bus,
        &name,
        TokenCache::builder().build(),
    )
    .unwrap();
    let again = second.get_token(VAULT, None).await.unwrap();
    assert_eq!(again.token(), token.token());
    assert_eq!(s.entra.request_count(), 1, "one token request in total");

    // The plain file is the change signal only: private, and no token in it.
    let file = home.join(".IdentityService").join(&schema);
    let contents = std::fs::read(&file).unwrap();
    assert!(
        contents.is_empty(),
        "the signal file holds {} bytes",
        contents.len()
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // The next save touches the signal again (other processes re-read on it); still no token.
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    second
        .get_token(&["https://storage.azure.com/.default"], None)
        .await
        .unwrap();
    assert_eq!(s.entra.request_count(), 2);
    assert!(std::fs::metadata(&file).unwrap().modified().unwrap() > before);
    assert!(std::fs::read(&file).unwrap().is_empty());

    // libsecret (what msal-extensions uses) finds it by the same attributes.
    let attributes = [
        "MsalClientID",
        "Microsoft.Developer.IdentityService",
        "xdg:schema",
        schema.as_str(),
    ];
    let lookup = [&["lookup"][..], &attributes[..]].concat();
    let Some(found) = secret_tool(&bus, &lookup) else {
        return skip(
            "secret-tool (Debian's libsecret-tools) is not installed to check the attributes",
        );
    };
    assert!(found.status.success(), "{found:?}");
    let document: serde_json::Value = serde_json::from_slice(&found.stdout).unwrap();
    let secrets: Vec<&str> = document["AccessToken"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|entry| entry["secret"].as_str())
        .collect();
    assert_eq!(secrets.len(), 2);
    assert!(secrets.contains(&token.token().expose()));
    let search = secret_tool(&bus, &[&["search", "--all"][..], &attributes[..]].concat()).unwrap();
    let listing = String::from_utf8_lossy(&search.stderr).into_owned()
        + &String::from_utf8_lossy(&search.stdout);
    assert!(listing.contains("label = MSALCache"), "{listing}");

    let cleared = secret_tool(&bus, &[&["clear"][..], &attributes[..]].concat()).unwrap();
    assert!(cleared.status.success());
}

#[test]
fn an_unreachable_secret_service_without_unencrypted_storage_is_a_clear_error() {
    let home = fixtures::scratch_dir("secret-service", "unreachable");
    let error = ClientSecretCredential::builder()
        .tenant_id(entra::TENANT)
        .client_id(CLIENT)
        .secret(SECRET)
        .env(Env::from_pairs([
            ("HOME", home.to_str().unwrap()),
            (
                "DBUS_SESSION_BUS_ADDRESS",
                &format!("unix:path={}/no-bus", home.display()),
            ),
        ]))
        .persistence(TokenCachePersistence::new())
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    let message = error.to_string();
    assert!(
        message.contains("the Secret Service was not reachable"),
        "{message}"
    );
    assert!(
        message.contains("allow_unencrypted_storage(true)"),
        "{message}"
    );

    // Allowed: the plain file instead.
    ClientSecretCredential::builder()
        .tenant_id(entra::TENANT)
        .client_id(CLIENT)
        .secret(SECRET)
        .env(Env::from_pairs([
            ("HOME", home.to_str().unwrap()),
            (
                "DBUS_SESSION_BUS_ADDRESS",
                &format!("unix:path={}/no-bus", home.display()),
            ),
        ]))
        .persistence(TokenCachePersistence::new().allow_unencrypted_storage(true))
        .build()
        .unwrap();
}

/// A session bus that accepts a connection and never says a word (a hung bus, or a keyring
/// waiting on a prompt nobody sees): building fails as if there were no Secret Service, after
/// the bound, instead of hanging. Real time (build() is synchronous: no paused clock reaches
/// it); the bound is about 5 s, nothing asserts on it.
#[test]
fn a_session_bus_that_never_answers_fails_the_build_as_unavailable_instead_of_hanging() {
    let home = fixtures::scratch_dir("secret-service", "silent-bus");
    let socket = home.join("bus");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let (connected, was_connected) = std::sync::mpsc::channel::<()>();
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let silent = std::thread::spawn(move || {
        // Keeps the connection open, silent, until the test has its answer.
        let (connection, _) = listener.accept().unwrap();
        connected.send(()).unwrap();
        let _ = wait.recv();
        drop(connection);
    });
    let bus = format!("unix:path={}", socket.display());
    let error = ClientSecretCredential::builder()
        .tenant_id(entra::TENANT)
        .client_id(CLIENT)
        .secret(SECRET)
        .env(Env::from_pairs([
            ("HOME", home.to_str().unwrap()),
            ("DBUS_SESSION_BUS_ADDRESS", bus.as_str()),
        ]))
        .persistence(TokenCachePersistence::new())
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    let message = error.to_string();
    assert!(
        message.contains("the Secret Service was not reachable"),
        "{message}"
    );
    assert!(message.contains("did not answer within"), "{message}");
    assert!(
        message.contains("allow_unencrypted_storage(true)"),
        "{message}"
    );
    assert!(
        was_connected.try_recv().is_ok(),
        "the credential never connected to the silent bus"
    );
    done.send(()).unwrap();
    silent.join().unwrap();
}
