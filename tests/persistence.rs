//! The persistent token cache (`TokenCachePersistence`) with unencrypted storage: tokens kept
//! across processes (ten real processes, one token request), where and how the file is
//! written, a corrupt file set aside, CAE tokens apart, and a signed-in user staying signed in
//! for a credential of another process (played by a second, separate token cache).

mod support;
use support::entra::{self, Setup};
use support::fixtures;

use std::path::{Path, PathBuf};
use std::process::Command;

use azure_credentials::system::{Env, RetryPolicy};
use azure_credentials::testing::MockEntra;
use azure_credentials::{
    AuthenticationRecord, ClientSecretCredential, DeviceCodeCredential, ErrorKind, TokenCache,
    TokenCachePersistence, TokenCredential, TokenRequestOptions,
};

const CLIENT: &str = "00000000-0000-0000-0000-0000000000c5";
const SECRET: &str = "persisted-app-secret";
const VAULT: &[&str] = &["https://vault.azure.net/.default"];
const ARM: &[&str] = &["https://management.azure.com/.default"];
/// Set on a child process only: the authority it signs in at, and its home directory.
const CHILD_AUTHORITY: &str = "PERSISTENCE_TEST_CHILD_AUTHORITY";
const CHILD_HOME: &str = "PERSISTENCE_TEST_CHILD_HOME";
/// Set on the children of the concurrent test: which scopes the child asks for.
const CHILD_INDEX: &str = "PERSISTENCE_TEST_CHILD_INDEX";
/// Scopes per child of the concurrent test.
const SCOPES_PER_CHILD: usize = 4;

/// The scopes child `index` of the concurrent test asks for.
fn child_scopes(index: usize) -> Vec<String> {
    (0..SCOPES_PER_CHILD)
        .map(|n| format!("https://app-{index}-{n}.contoso.example/.default"))
        .collect()
}

fn unencrypted() -> TokenCachePersistence {
    TokenCachePersistence::new().allow_unencrypted_storage(true)
}

fn app_credential(authority: &str, home: &Path, cache: TokenCache) -> ClientSecretCredential {
    ClientSecretCredential::builder()
        .tenant_id(entra::TENANT)
        .client_id(CLIENT)
        .secret(SECRET)
        .authority_host(authority)
        .env(Env::from_pairs([("HOME", home.to_str().unwrap())]))
        .cache(cache)
        .retry_policy(RetryPolicy::none())
        .persistence(unencrypted())
        .build()
        .unwrap()
}

fn cache_file(home: &Path, suffix: &str) -> PathBuf {
    home.join(".IdentityService")
        .join(format!("msal.cache.{suffix}"))
}

/// Not a test of its own: what each child process of
/// [`ten_short_lived_processes_make_one_token_request`] runs (it returns at once otherwise).
#[tokio::test]
async fn child_process_gets_a_token() {
    let env = Env::process();
    let (Some(authority), Some(home)) = (env.var(CHILD_AUTHORITY), env.var(CHILD_HOME)) else {
        return;
    };
    let credential = app_credential(&authority, Path::new(&home), TokenCache::builder().build());
    match env.var(CHILD_INDEX).and_then(|i| i.parse::<usize>().ok()) {
        None => {
            credential.get_token(VAULT, None).await.unwrap();
        }
        Some(index) => {
            for scope in child_scopes(index) {
                credential.get_token(&[scope.as_str()], None).await.unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_writing_at_once_lose_no_entry() {
    let entra = MockEntra::start().await;
    let home = fixtures::scratch_dir("persistence", "concurrent");
    let children: Vec<_> = (0..6)
        .map(|index| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "child_process_gets_a_token",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_AUTHORITY, entra.authority_host())
                .env(CHILD_HOME, &home)
                .env(CHILD_INDEX, index.to_string())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let file = cache_file(&home, "nocae");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let targets: Vec<&str> = json["AccessToken"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|entry| entry["target"].as_str())
        .collect();
    for index in 0..6 {
        for scope in child_scopes(index) {
            assert!(targets.contains(&scope.as_str()), "{scope} was lost");
        }
    }
    assert_eq!(targets.len(), 6 * SCOPES_PER_CHILD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_short_lived_processes_make_one_token_request() {
    let entra = MockEntra::start().await;
    let home = fixtures::scratch_dir("persistence", "ten-runs");
    for run in 0..10 {
        let status = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_process_gets_a_token",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_AUTHORITY, entra.authority_host())
            .env(CHILD_HOME, &home)
            .status()
            .unwrap();
        assert!(status.success(), "run {run}");
    }
    assert_eq!(
        entra.request_count(),
        1,
        "one token request across 10 processes"
    );
}

#[tokio::test]
async fn the_cache_file_is_the_users_alone_and_a_second_cache_reads_it() {
    let s = entra::setup().await;
    let home = fixtures::scratch_dir("persistence", "file");
    let first = app_credential(&s.entra.authority_host(), &home, s.cache.clone());
    let token = first.get_token(VAULT, None).await.unwrap();

    let file = cache_file(&home, "nocae");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(file.parent().unwrap()), 0o700);
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(
        json["AccessToken"]
            .as_object()
            .is_some_and(|m| m.len() == 1),
        "{json}"
    );

    // Another cache (another process, as far as the in-memory cache knows): no request.
    let other = app_credential(
        &s.entra.authority_host(),
        &home,
        support::cache::deterministic(s.clock.clock()),
    );
    let again = other.get_token(VAULT, None).await.unwrap();
    assert_eq!(again.token(), token.token());
    assert_eq!(again.source(), "ClientSecretCredential");
    assert_eq!(s.entra.request_count(), 1);

    // CAE tokens live in a cache of their own.
    let cae = TokenRequestOptions::default().with_enable_cae(true);
    other.get_token(VAULT, Some(&cae)).await.unwrap();
    assert_eq!(s.entra.request_count(), 2);
    assert!(cache_file(&home, "cae").exists());
}

#[tokio::test]
async fn a_corrupt_cache_file_is_set_aside_and_tokens_still_come() {
    let s = entra::setup().await;
    let home = fixtures::scratch_dir("persistence", "corrupt");
    let file = cache_file(&home, "nocae");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            file.parent().unwrap(),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
    }
    std::fs::write(&file, b"{\"AccessToken\": {\"cut short").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let credential = app_credential(&s.entra.authority_host(), &home, s.cache.clone());
    credential.get_token(VAULT, None).await.unwrap();
    let set_aside = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .count();
    assert_eq!(set_aside, 1);
    // The new file is a whole cache again.
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(json["AccessToken"].is_object());
}

#[test]
fn without_an_encrypted_store_persistence_must_be_allowed_unencrypted() {
    let error = ClientSecretCredential::builder()
        .tenant_id(entra::TENANT)
        .client_id(CLIENT)
        .secret(SECRET)
        .env(Env::from_pairs([("HOME", "/home/dev")]))
        .persistence(TokenCachePersistence::new())
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(
        error
            .to_string()
            .contains("allow_unencrypted_storage(true)"),
        "{error}"
    );
    let error = ClientSecretCredential::builder()
        .tenant_id(entra::TENANT)
        .client_id(CLIENT)
        .secret(SECRET)
        .env(Env::from_pairs([("HOME", "/home/dev")]))
        .persistence(unencrypted().name("../elsewhere"))
        .build()
        .unwrap_err();
    assert!(error.is_invalid_input(), "{error}");
}

impl Setup {
    fn signing_in(
        &self,
        home: &Path,
        cache: TokenCache,
    ) -> azure_credentials::DeviceCodeCredentialBuilder {
        DeviceCodeCredential::builder()
            .authority_host(self.entra.authority_host())
            .env(Env::from_pairs([("HOME", home.to_str().unwrap())]))
            .cache(cache)
            .retry_policy(RetryPolicy::none())
            .persistence(unencrypted())
            .prompt(|_| {})
    }
}

#[tokio::test(start_paused = true)]
async fn a_signed_in_user_stays_signed_in_for_the_next_process() {
    let s = entra::setup().await;
    let home = fixtures::scratch_dir("persistence", "user");
    let first = s.signing_in(&home, s.cache.clone()).build().unwrap();
    let record = first.authenticate(ARM).await.unwrap();
    first.get_token(ARM, None).await.unwrap();
    let saved = record.serialize();
    let requests = s.entra.request_count();

    // The next process: its own token cache (so nothing in memory), the saved record. Its
    // tenant is the record's (the user's own), not `organizations`: as MSAL, it finds no access
    // token for that tenant and redeems the persisted refresh token, silently.
    let next_process = |cache: TokenCache| {
        s.signing_in(&home, cache)
            .authentication_record(AuthenticationRecord::deserialize(&saved).unwrap())
            .disable_automatic_authentication(true)
            .build()
            .unwrap()
    };
    let next = next_process(support::cache::deterministic(s.clock.clock()));
    let token = next.get_token(ARM, None).await.unwrap();
    assert_eq!(token.username(), Some(record.username()));
    assert_eq!(s.grants().last().map(String::as_str), Some("refresh_token"));
    assert_eq!(s.entra.request_count(), requests + 1);

    // The process after that finds the access token itself: no request at all.
    let third = next_process(support::cache::deterministic(s.clock.clock()));
    let token = third.get_token(ARM, None).await.unwrap();
    assert_eq!(token.username(), Some(record.username()));
    assert_eq!(s.entra.request_count(), requests + 1);
    // Another scope: the persisted refresh token again.
    third.get_token(VAULT, None).await.unwrap();
    assert_eq!(s.entra.request_count(), requests + 2);
}

#[tokio::test]
async fn a_client_assertion_credential_keeps_its_tokens_too() {
    let s = entra::setup().await;
    let home = fixtures::scratch_dir("persistence", "assertion");
    let build = |cache: TokenCache| {
        azure_credentials::ClientAssertionCredential::builder()
            .tenant_id(entra::TENANT)
            .client_id(CLIENT)
            .assertion(|| async { Ok::<_, std::io::Error>("federated-assertion".to_owned()) })
            .authority_host(s.entra.authority_host())
            .env(Env::from_pairs([("HOME", home.to_str().unwrap())]))
            .cache(cache)
            .persistence(unencrypted())
            .build()
            .unwrap()
    };
    build(s.cache.clone()).get_token(VAULT, None).await.unwrap();
    build(support::cache::deterministic(s.clock.clock()))
        .get_token(VAULT, None)
        .await
        .unwrap();
    assert_eq!(s.entra.request_count(), 1);
}
