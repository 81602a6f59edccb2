//! Runs the persistent cache's scenarios (a token written, read back by another cache, a
//! corrupt file set aside, a user's refresh token persisted and redeemed) with a TRACE-level
//! capturing subscriber and fails if a token, a refresh token or the client secret appears in a
//! log line, a `Debug` rendering or an error message. The cache file itself holds them: it is
//! the store.

mod support;
use support::fixtures;
use support::log_capture::LeakTest;

use std::path::Path;

use azure_credentials::system::{Env, RetryPolicy};
use azure_credentials::testing::MockEntra;
use azure_credentials::{
    ClientSecretCredential, DeviceCodeCredential, TokenCache, TokenCachePersistence,
    TokenCredential,
};

const SECRET: &str = "persisted-leak-test-client-secret";
const SCOPE: &[&str] = &["https://vault.azure.net/.default"];
const OTHER: &[&str] = &["https://management.azure.com/.default"];

fn persistence() -> TokenCachePersistence {
    TokenCachePersistence::new().allow_unencrypted_storage(true)
}

#[test]
fn no_persisted_secret_reaches_logs_debug_or_errors() {
    let mut t = LeakTest::start_paused();
    let home = fixtures::scratch_dir("persistence-leaks", "home");
    t.runtime.block_on(async {
        let entra = MockEntra::start().await;
        let env = Env::from_pairs([("HOME", home.to_str().unwrap())]);
        let app = |cache: TokenCache| {
            ClientSecretCredential::builder()
                .tenant_id("72f988bf-86f1-41af-91ab-2d7cd011db47")
                .client_id("00000000-0000-0000-0000-0000000000d7")
                .secret(SECRET)
                .authority_host(entra.authority_host())
                .env(env.clone())
                .cache(cache)
                .retry_policy(RetryPolicy::none())
                .persistence(persistence())
                .build()
                .unwrap()
        };
        let first = app(TokenCache::builder().build());
        t.seen.debug(&first);
        t.seen.debug(&first.get_token(SCOPE, None).await.unwrap());
        let second = app(TokenCache::builder().build());
        t.seen.debug(&second.get_token(SCOPE, None).await.unwrap());

        // A corrupt file: set aside with a warning.
        let file = home.join(".IdentityService/msal.cache.nocae");
        std::fs::write(&file, b"{\"AccessToken\": {\"not closed").unwrap();
        let third = app(TokenCache::builder().build());
        t.seen.debug(&third.get_token(OTHER, None).await.unwrap());

        // A user, persisted, and the next process redeeming the persisted refresh token.
        let user = |cache: TokenCache| {
            DeviceCodeCredential::builder()
                .authority_host(entra.authority_host())
                .env(env.clone())
                .cache(cache)
                .retry_policy(RetryPolicy::none())
                .persistence(persistence())
                .prompt(|_| {})
        };
        let signed_in = user(TokenCache::builder().build()).build().unwrap();
        let record = signed_in.authenticate(SCOPE).await.unwrap();
        t.seen.debug(&record);
        let next = user(TokenCache::builder().build())
            .authentication_record(record)
            .disable_automatic_authentication(true)
            .build()
            .unwrap();
        t.seen.debug(&next);
        t.seen.debug(&next.get_token(OTHER, None).await.unwrap());
        let _ = Path::new(&file);
    });
    t.assert_no_secrets(
        &[
            SECRET,
            "mock-entra-token-",
            "mock-entra-refresh-",
            "mock-entra-device-code-",
            "eyJhbGciOiJSUzI1NiIsImtpZCI6Im1vY2si",
        ],
        &[
            "token read from the persistent token cache",
            "set aside, starting empty",
            "the user's refresh token was read from the persistent token cache",
        ],
    );
}
