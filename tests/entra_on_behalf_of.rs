//! OnBehalfOfCredential against the loopback Entra mock: the exact on-behalf-of request with a
//! secret and with a certificate, per-user cache isolation (also under concurrency), cheap
//! per-request credentials, the tenant rules and the errors about the user's token.

mod support;
use support::entra::{self, Setup};
use support::fixtures;
use support::jwt::jwt;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use azure_credentials::system::{Env, Fs, RetryPolicy};
use azure_credentials::testing::{MockEntra, MockEntraReply};
use azure_credentials::{
    ErrorKind, OnBehalfOfCredential, OnBehalfOfCredentialBuilder, TokenCredential,
    TokenRequestOptions,
};
use time::macros::datetime;

const TENANT: &str = "11111111-2222-3333-4444-555555555555";
const API: &str = "00000000-0000-0000-0000-0000000000a1";
const SECRET: &str = "api-client-secret-value";
const GRAPH: &[&str] = &["https://graph.microsoft.com/.default"];
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The access token user `n` called the API with (JWT-shaped, as Entra requires).
fn user_token(n: usize) -> String {
    jwt(
        &format!(r#"{{"aud":"api://{API}","oid":"user-{n}","scp":"access_as_user"}}"#),
        &format!("signature-of-user-{n}"),
    )
}

/// The token the mock issues for `assertion`, whatever its number, names it.
fn names_assertion(token: &str, assertion: &str) -> bool {
    token.starts_with("mock-entra-token-") && token.ends_with(&format!("-for-{assertion}"))
}

async fn setup() -> Setup {
    let s = entra::setup().await;
    s.entra.expect_client_secret(SECRET);
    s
}

impl Setup {
    /// The API's builder, configured once; each request adds its user assertion.
    fn api(&self) -> OnBehalfOfCredentialBuilder {
        OnBehalfOfCredential::builder()
            .tenant_id(TENANT)
            .client_id(API)
            .client_secret(SECRET)
            .authority_host(self.entra.authority_host())
            .env(Env::empty())
            .cache(self.cache.clone())
            .retry_policy(RetryPolicy::none())
    }

    fn for_user(&self, n: usize) -> OnBehalfOfCredential {
        self.api().user_assertion(user_token(n)).build().unwrap()
    }
}

/// The error a credential built from `builder` gets for a Graph token.
async fn graph_refuses(builder: OnBehalfOfCredentialBuilder) -> azure_credentials::Error {
    let credential = builder.build().unwrap();
    credential.get_token(GRAPH, None).await.unwrap_err()
}

#[tokio::test]
async fn sends_the_on_behalf_of_form_with_the_client_secret_and_returns_the_users_token() {
    let s = setup().await;
    let credential = s.for_user(1);
    let token = credential.get_token(GRAPH, None).await.unwrap();

    assert!(
        names_assertion(token.token().expose(), &user_token(1)),
        "a token for user 1"
    );
    assert_eq!(token.expires_on(), datetime!(2030-01-01 0:59:59 UTC));
    assert_eq!(token.source(), "OnBehalfOfCredential");
    assert_eq!(token.tenant_id(), Some(TENANT));
    assert_eq!(token.client_id(), Some(API));

    let requests = s.entra.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method(), "POST");
    assert_eq!(request.path(), format!("/{TENANT}/oauth2/v2.0/token"));
    let form: Vec<(&str, &str)> = request
        .form_pairs()
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let assertion = user_token(1);
    assert_eq!(
        form,
        [
            ("client_id", API),
            ("client_secret", SECRET),
            ("grant_type", JWT_BEARER),
            ("assertion", assertion.as_str()),
            ("requested_token_use", "on_behalf_of"),
            ("scope", "https://graph.microsoft.com/.default"),
        ]
    );
}

#[tokio::test]
async fn a_certificate_proves_the_api_with_a_signed_client_assertion() {
    let s = setup().await;
    s.entra
        .verify_assertions_with(&std::fs::read(fixtures::cert("client-cert.pem")).unwrap());
    let (file, password) = fixtures::chain_cert();
    let credential = OnBehalfOfCredential::builder()
        .tenant_id(TENANT)
        .client_id(API)
        .certificate_path(file)
        .password(password.unwrap_or_default())
        .send_certificate_chain(true)
        .user_assertion(user_token(1))
        .authority_host(s.entra.authority_host())
        .env(Env::empty())
        .cache(s.cache.clone())
        .build()
        .unwrap();
    let token = credential.get_token(GRAPH, None).await.unwrap();
    assert!(names_assertion(token.token().expose(), &user_token(1)));

    let request = &s.entra.requests()[0];
    assert_eq!(
        request.form_names(),
        [
            "client_id",
            "client_assertion_type",
            "client_assertion",
            "grant_type",
            "assertion",
            "requested_token_use",
            "scope"
        ]
    );
    assert_eq!(request.form("grant_type"), Some(JWT_BEARER));
    let client_assertion = request.assertion().expect("a JWT client assertion");
    assert_eq!(client_assertion.verified(), Some(&Ok(())));
    assert_eq!(client_assertion.claims()["sub"], API);
    assert!(client_assertion.header()["x5c"].is_array());
}

#[tokio::test]
async fn two_user_assertions_for_the_same_client_never_share_a_token() {
    let s = setup().await;
    let alice = s.for_user(1).get_token(GRAPH, None).await.unwrap();
    let bob = s.for_user(2).get_token(GRAPH, None).await.unwrap();
    assert!(names_assertion(alice.token().expose(), &user_token(1)));
    assert!(names_assertion(bob.token().expose(), &user_token(2)));
    assert_eq!(s.entra.request_count(), 2, "one exchange per user");

    // A new credential for a user already served (the same token, a later request) is
    // answered from the cache with that user's token, and no one else's.
    let alice_again = s.for_user(1).get_token(GRAPH, None).await.unwrap();
    assert_eq!(alice_again.token(), alice.token());
    let bob_again = s.for_user(2).get_token(GRAPH, None).await.unwrap();
    assert_eq!(bob_again.token(), bob.token());
    assert_eq!(s.entra.request_count(), 2);

    // Another API (client id) with the same user's token gets its own exchange.
    let other_api = s
        .api()
        .client_id("00000000-0000-0000-0000-0000000000a2")
        .user_assertion(user_token(1))
        .build()
        .unwrap();
    let token = other_api.get_token(GRAPH, None).await.unwrap();
    assert_ne!(token.token(), alice.token());
    assert_eq!(s.entra.request_count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_callers_of_ten_users_each_get_only_their_own_token() {
    // The realistic case: one credential per incoming request, all on the process-wide cache.
    let entra = MockEntra::start().await;
    entra.expect_client_secret(SECRET);
    let api = OnBehalfOfCredential::builder()
        .tenant_id(TENANT)
        .client_id(API)
        .client_secret(SECRET)
        .authority_host(entra.authority_host())
        .env(Env::empty())
        .retry_policy(RetryPolicy::none());

    for round in 0..2 {
        // Every exchange is held until all ten users' exchanges are in flight, so callers of
        // different users overlap for certain.
        let gate = (round == 0).then(|| entra.hold_replies());
        let callers: Vec<_> = (0..100)
            .map(|caller| {
                let user = caller % 10;
                let api = api.clone();
                tokio::spawn(async move {
                    let credential = api.user_assertion(user_token(user)).build().unwrap();
                    let token = credential.get_token(GRAPH, None).await.unwrap();
                    (user, token)
                })
            })
            .collect();
        if let Some(gate) = gate {
            // Bounded, so that callers wrongly sharing one exchange fail below instead of
            // hanging here.
            let all_in_flight =
                tokio::time::timeout(Duration::from_secs(30), entra.wait_for_requests(10)).await;
            gate.release();
            assert!(
                all_in_flight.is_ok(),
                "round {round}: {} exchanges for ten users",
                entra.request_count()
            );
        }
        let mut tokens_of = vec![HashSet::new(); 10];
        for caller in callers {
            let (user, token) = caller.await.unwrap();
            assert!(
                names_assertion(token.token().expose(), &user_token(user)),
                "round {round}: user {user} got a token issued for someone else"
            );
            tokens_of[user].insert(token.token().expose().to_owned());
        }
        for (user, tokens) in tokens_of.iter().enumerate() {
            assert_eq!(tokens.len(), 1, "round {round}: user {user}: one token");
        }
        // One exchange per user, all in the first round; the second is served from the cache.
        assert_eq!(entra.request_count(), 10, "round {round}");
    }
    let assertions: HashSet<String> = entra
        .requests()
        .iter()
        .map(|r| r.form("assertion").unwrap().to_owned())
        .collect();
    assert_eq!(assertions, (0..10).map(user_token).collect());
}

#[tokio::test]
async fn building_a_thousand_credentials_sends_nothing_and_reads_the_certificate_once() {
    let s = setup().await;
    let path = Path::new("/etc/api/cert.pem");
    let fs = Fs::memory();
    fs.write(path, std::fs::read(fixtures::cert("client.pem")).unwrap());
    let api = OnBehalfOfCredential::builder()
        .tenant_id(TENANT)
        .client_id(API)
        .certificate_path(path)
        .authority_host(s.entra.authority_host())
        .env(Env::empty())
        .fs(fs.clone())
        .cache(s.cache.clone());

    let first = api.clone().user_assertion(user_token(0)).build().unwrap();
    // Gone from disk: later credentials of the same builder use what was read.
    fs.remove(path);
    let credentials: Vec<OnBehalfOfCredential> = (1..1000)
        .map(|n| api.clone().user_assertion(user_token(n)).build().unwrap())
        .collect();
    assert_eq!(s.entra.request_count(), 0, "building sends nothing");

    // They work, each for its own user.
    let token = credentials[41].get_token(GRAPH, None).await.unwrap();
    assert!(names_assertion(token.token().expose(), &user_token(42)));
    assert_eq!(s.entra.request_count(), 1);
    drop(first);

    // A builder given a certificate of its own reads it (and finds it gone).
    let error = api
        .certificate_path(path)
        .user_assertion(user_token(0))
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(error.to_string().contains("does not exist"), "{error}");
}

#[tokio::test]
async fn a_refused_user_assertion_says_so_with_the_code_and_what_to_do() {
    let s = setup().await;
    for (code, says) in [
        (50013, "issued for this API"),
        (500133, "has expired: the caller must get a new token"),
        (65001, "grant consent"),
    ] {
        s.entra.push(MockEntraReply::error(
            400,
            "invalid_grant",
            code,
            "The user assertion was refused.",
        ));
        let error = s
            .for_user(code as usize)
            .get_token(GRAPH, None)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Authentication, "{code}");
        assert_eq!(error.aadsts_codes(), &[code]);
        assert_eq!(error.status(), Some(400));
        let text = error.to_string();
        assert!(text.starts_with("OnBehalfOfCredential: "), "{text}");
        assert!(text.contains(says), "{code}: {text}");
        assert!(text.contains("invalid_grant"), "{text}");
        assert!(!text.contains("signature-of-user"), "{text}");
    }

    // A value that passes the build's checks but is no JWT: Entra (the mock) says malformed.
    let error = graph_refuses(s.api().user_assertion("not-a-jwt")).await;
    assert_eq!(error.aadsts_codes(), &[50027]);
    assert!(
        error.to_string().contains("without the \"Bearer \" prefix"),
        "{error}"
    );
    assert!(!error.to_string().contains("not-a-jwt"), "{error}");
}

#[tokio::test]
async fn a_wrong_client_secret_is_blamed_on_the_secret_not_on_the_user() {
    let s = setup().await;
    let error = graph_refuses(
        s.api()
            .client_secret("not-the-api-secret")
            .user_assertion(user_token(1)),
    )
    .await;
    assert_eq!(error.aadsts_codes(), &[7000215]);
    let text = error.to_string();
    assert!(text.contains("check the client secret"), "{text}");
    assert!(!text.contains("user assertion"), "{text}");
    assert!(!text.contains("not-the-api-secret"), "{text}");
}

#[tokio::test]
async fn another_tenant_is_used_only_when_allowed_and_cached_apart() {
    let s = setup().await;
    let other = "contoso.onmicrosoft.com";
    let options = TokenRequestOptions::default().with_tenant_id(other);

    let error = s
        .for_user(1)
        .get_token(GRAPH, Some(&options))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(
        error.to_string().contains("additionally_allowed_tenants"),
        "{error}"
    );
    assert_eq!(s.entra.request_count(), 0);

    let allowed = s
        .api()
        .additionally_allowed_tenants([other])
        .user_assertion(user_token(1))
        .build()
        .unwrap();
    let there = allowed.get_token(GRAPH, Some(&options)).await.unwrap();
    assert_eq!(there.tenant_id(), Some(other));
    assert_eq!(s.entra.requests()[0].tenant(), Some(other));
    let home = allowed.get_token(GRAPH, None).await.unwrap();
    assert_ne!(home.token(), there.token());
    assert_eq!(s.entra.requests()[1].tenant(), Some(TENANT));
}

#[tokio::test]
async fn claims_challenges_and_cae_go_with_the_exchange() {
    let s = setup().await;
    let credential = s.for_user(1);
    let options = TokenRequestOptions::default().with_enable_cae(true);
    credential.get_token(GRAPH, Some(&options)).await.unwrap();
    assert_eq!(
        s.entra.requests()[0].form("claims"),
        Some(r#"{"access_token":{"xms_cc":{"values":["CP1"]}}}"#)
    );
    assert_eq!(
        s.entra.requests()[0].form("requested_token_use"),
        Some("on_behalf_of")
    );
    // The clock moves on; the token is still the user's own when refreshed.
    s.clock.advance(Duration::from_secs(3600));
    let token = credential.get_token(GRAPH, None).await.unwrap();
    assert!(names_assertion(token.token().expose(), &user_token(1)));
}

/// The API's own proof may be a client assertion from a callback, as for
/// `ClientAssertionCredential`: sent as `client_assertion` with the on-behalf-of grant, asked
/// for only when a token must be fetched, and tokens kept apart per callback and per user.
#[tokio::test]
async fn a_client_assertion_callback_proves_the_api() {
    const API_ASSERTION: &str = "eyJhbGciOiJub25lIn0.api-federated-assertion.sig";
    let s = entra::setup().await;
    s.entra.expect_client_assertion(API_ASSERTION);
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let api = OnBehalfOfCredential::builder()
        .tenant_id(TENANT)
        .client_id(API)
        .client_assertion(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Ok::<_, std::io::Error>(API_ASSERTION) }
        })
        .authority_host(s.entra.authority_host())
        .env(Env::empty())
        .cache(s.cache.clone())
        .retry_policy(RetryPolicy::none());

    let first = api.clone().user_assertion(user_token(1)).build().unwrap();
    let token = first.get_token(GRAPH, None).await.unwrap();
    assert!(names_assertion(token.token().expose(), &user_token(1)));
    let request = &s.entra.requests()[0];
    assert_eq!(request.form("grant_type"), Some(JWT_BEARER));
    assert_eq!(request.form("requested_token_use"), Some("on_behalf_of"));
    assert_eq!(request.form("assertion"), Some(user_token(1).as_str()));
    assert_eq!(request.form("client_assertion"), Some(API_ASSERTION));
    assert_eq!(
        request.form("client_assertion_type"),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    assert_eq!(request.form("client_secret"), None);

    // A cache hit (a new credential for the same user, from a clone) asks the callback nothing.
    let again = api.clone().user_assertion(user_token(1)).build().unwrap();
    again.get_token(GRAPH, None).await.unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    // Another user: another exchange, another token.
    let second = api.user_assertion(user_token(2)).build().unwrap();
    let token = second.get_token(GRAPH, None).await.unwrap();
    assert!(names_assertion(token.token().expose(), &user_token(2)));
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(s.entra.request_count(), 2);
}

/// A callback's failure names this credential and keeps the callback's error as the cause.
#[tokio::test]
async fn a_failing_client_assertion_callback_is_an_error_of_the_credential() {
    let s = entra::setup().await;
    let credential = OnBehalfOfCredential::builder()
        .tenant_id(TENANT)
        .client_id(API)
        .client_assertion(|| async {
            Err::<String, _>(std::io::Error::other("the identity provider is down"))
        })
        .user_assertion(user_token(1))
        .authority_host(s.entra.authority_host())
        .env(Env::empty())
        .cache(s.cache.clone())
        .build()
        .unwrap();
    let error = credential.get_token(GRAPH, None).await.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("OnBehalfOfCredential: the client assertion callback failed"),
        "{error}"
    );
    let cause = std::error::Error::source(&error).expect("the callback's error");
    assert!(cause.to_string().contains("identity provider is down"));
    assert_eq!(s.entra.request_count(), 0);
}
