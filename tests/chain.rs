//! ChainedTokenCredential: every cell of the stop/continue table, stickiness, the identity lock.

mod support;
use support::cache;
use support::callers::spawn_callers;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use azure_credentials::system::ManualClock;
use azure_credentials::testing::MockCredential;
use azure_credentials::{
    AccessToken, ChainedTokenCredential, Error, ErrorKind, RequiredIdentity, TokenCache,
    TokenCredential, TokenFuture, TokenRequestOptions,
};
use time::macros::datetime;

const SCOPE: [&str; 1] = ["https://vault.azure.net/.default"];

/// Counts calls to the credential it wraps (a member's own cache could hide them otherwise).
#[derive(Debug)]
struct Counted {
    inner: MockCredential,
    calls: AtomicUsize,
}

impl TokenCredential for Counted {
    fn get_token<'a>(
        &'a self,
        scopes: &'a [&'a str],
        options: Option<&'a TokenRequestOptions>,
    ) -> TokenFuture<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.get_token(scopes, options)
    }
}

struct Fixture {
    manual: ManualClock,
    cache: TokenCache,
}

impl Fixture {
    fn new() -> Self {
        let manual = cache::manual_clock();
        let cache = cache::deterministic(manual.clock());
        Fixture { manual, cache }
    }

    /// A member named `name` that is unavailable at first (then issues tokens).
    fn unavailable(&self, name: &'static str) -> Arc<Counted> {
        self.member(name, Some(outcome(ErrorKind::Unavailable, name)))
    }

    /// A member named `name` whose first fetch fails with `error` (then issues tokens).
    fn member(&self, name: &'static str, error: Option<Error>) -> Arc<Counted> {
        let mock = MockCredential::builder()
            .name(name)
            .cache(self.cache.clone())
            .build();
        if let Some(error) = error {
            mock.push_error(error);
        }
        Arc::new(Counted {
            inner: mock,
            calls: AtomicUsize::new(0),
        })
    }
}

/// Checks that asking `chain` fails as unavailable (what lets a chain of chains move on).
async fn assert_unavailable(chain: &ChainedTokenCredential) {
    let err = chain.get_token(&SCOPE, None).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
}

fn outcome(kind: ErrorKind, member: &'static str) -> Error {
    Error::new(kind, member, format!("scripted {kind}"))
}

#[derive(Clone, Copy, Debug)]
enum Role {
    Deployed,
    Developer,
}

/// One cell: the first member fails like this; does the second member get its turn?
#[tokio::test]
async fn every_cell_of_the_stop_continue_table() {
    use ErrorKind::*;
    let cells = [
        (Role::Deployed, Unavailable, true),
        (Role::Deployed, Authentication, false),
        (Role::Deployed, ServiceFailure, false),
        (Role::Deployed, Timeout, false),
        (Role::Deployed, Throttled, false),
        (Role::Deployed, Io, false),
        (Role::Deployed, Other, false),
        (Role::Deployed, InvalidInput, false),
        (Role::Developer, Unavailable, true),
        (Role::Developer, Authentication, true),
        (Role::Developer, ServiceFailure, true),
        (Role::Developer, Timeout, true),
        (Role::Developer, Throttled, true),
        (Role::Developer, Io, true),
        (Role::Developer, Other, true),
        (Role::Developer, InvalidInput, false),
    ];
    for (role, kind, continues) in cells {
        let f = Fixture::new();
        let first = f.member("First", Some(outcome(kind, "First")));
        let second = f.member("Second", None);
        let builder = ChainedTokenCredential::builder();
        let builder = match role {
            Role::Deployed => builder.member("First", first.clone()),
            Role::Developer => builder.developer_tool("First", first.clone()),
        };
        let chain = builder.member("Second", second.clone()).build().unwrap();
        let result = chain.get_token(&SCOPE, None).await;
        if continues {
            let token = result.unwrap_or_else(|e| panic!("{role:?} {kind}: {e}"));
            assert_eq!(token.source(), "Second", "{role:?} {kind}");
            assert_eq!(chain.selected(), Some("Second"));
        } else {
            let err = result.expect_err("the chain must stop");
            assert_eq!(err.kind(), kind, "{role:?} {kind}: {err}");
            assert_eq!(
                err.credential(),
                "First",
                "the member's own error comes back"
            );
            assert_eq!(second.calls.load(Ordering::SeqCst), 0, "{role:?} {kind}");
            assert_eq!(chain.selected(), None);
        }
    }
}

#[tokio::test]
async fn when_every_member_fails_one_error_lists_them_most_actionable_first() {
    let f = Fixture::new();
    let env = f.unavailable("EnvironmentCredential");
    let mi = f.unavailable("ManagedIdentityCredential");
    let cli = f.member(
        "AzureCliCredential",
        Some(outcome(ErrorKind::Timeout, "AzureCliCredential")),
    );
    let chain = ChainedTokenCredential::builder()
        .name("DefaultAzureCredential")
        .member("EnvironmentCredential", env)
        .member("ManagedIdentityCredential", mi)
        .developer_tool("AzureCliCredential", cli)
        .build()
        .unwrap();
    let err = chain.get_token(&SCOPE, None).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Timeout,
        "the actionable failure sets the kind"
    );
    let names: Vec<_> = err.attempts().iter().map(|a| &*a.credential).collect();
    assert_eq!(
        names,
        [
            "AzureCliCredential",
            "EnvironmentCredential",
            "ManagedIdentityCredential"
        ]
    );
    let text = err.to_string();
    assert!(
        text.starts_with("DefaultAzureCredential: none of the 3 credentials produced a token:"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .contains("AzureCliCredential: scripted timed out"),
        "{text}"
    );
    assert!(text.lines().all(|l| !l.is_empty()));

    // All unavailable: the aggregate is unavailable (a chain of chains moves on).
    let f = Fixture::new();
    let chain = ChainedTokenCredential::builder()
        .member("A", f.unavailable("A"))
        .member("B", f.unavailable("B"))
        .build()
        .unwrap();
    assert_unavailable(&chain).await;
}

#[tokio::test]
async fn the_selected_member_is_kept_and_its_later_failures_are_returned_as_they_are() {
    let f = Fixture::new();
    let first = f.unavailable("First");
    let second = f.member("Second", None);
    let chain = ChainedTokenCredential::builder()
        .member("First", first.clone())
        .member("Second", second.clone())
        .build()
        .unwrap();
    chain.get_token(&SCOPE, None).await.unwrap();
    assert_eq!(chain.selected(), Some("Second"));
    // First would work now; the chain does not go back to it.
    f.manual.advance(Duration::from_secs(5));
    second
        .inner
        .push_error(outcome(ErrorKind::Authentication, "Second"));
    let err = chain
        .get_token(&["https://storage.azure.com/.default"], None)
        .await
        .unwrap_err();
    assert_eq!(err.credential(), "Second");
    assert_eq!(first.calls.load(Ordering::SeqCst), 1, "never asked again");
    assert_eq!(chain.selected(), Some("Second"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_first_callers_walk_the_chain_once() {
    let f = Fixture::new();
    let first = f.unavailable("First");
    let second = f.member("Second", None);
    let gate = second.inner.hold_fetches();
    let chain = Arc::new(
        ChainedTokenCredential::builder()
            .member("First", first.clone())
            .member("Second", second.clone())
            .build()
            .unwrap(),
    );
    let callers = spawn_callers(&chain, &SCOPE, 100);
    while second.inner.held_fetches() == 0 {
        tokio::task::yield_now().await;
    }
    gate.release();
    for caller in callers {
        caller.await.unwrap().unwrap();
    }
    assert_eq!(
        first.calls.load(Ordering::SeqCst),
        1,
        "each member tried at most once"
    );
    assert_eq!(second.inner.fetch_count(), 1);
}

/// Callers that queue behind a walk in which every member fails get that walk's error; they do
/// not each walk again (4 callers made 4 walks, 4 `az` spawns, before). One thread, so that every
/// caller has queued by the time the last member's fetch is held: on several threads a caller
/// could start after the walk ended, and that one rightly walks again.
#[tokio::test]
async fn concurrent_first_callers_share_a_walk_in_which_every_member_failed() {
    let f = Fixture::new();
    let first = f.member("First", Some(outcome(ErrorKind::Unavailable, "First")));
    let tool = f.member("Tool", Some(outcome(ErrorKind::Other, "Tool")));
    let gate = tool.inner.hold_fetches();
    let chain = Arc::new(
        ChainedTokenCredential::builder()
            .member("First", first.clone())
            .developer_tool("Tool", tool.clone())
            .build()
            .unwrap(),
    );
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let chain = chain.clone();
            tokio::spawn(async move { chain.get_token(&SCOPE, None).await })
        })
        .collect();
    while tool.inner.held_fetches() == 0 {
        tokio::task::yield_now().await;
    }
    gate.release();
    for caller in callers {
        let error = caller.await.unwrap().unwrap_err();
        assert_eq!(error.attempts().len(), 2, "{error}");
    }
    assert_eq!(
        first.calls.load(Ordering::SeqCst),
        1,
        "one walk for all four"
    );
    assert_eq!(
        tool.calls.load(Ordering::SeqCst),
        1,
        "one walk for all four"
    );
    // A caller that comes after the walk walks again (members remember failures briefly).
    f.manual.advance(Duration::from_secs(2));
    chain.get_token(&SCOPE, None).await.unwrap();
    assert_eq!(first.calls.load(Ordering::SeqCst), 2);
}

/// Only callers asking for the same thing share a failed walk.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_walk_is_not_shared_with_callers_asking_for_other_scopes() {
    let f = Fixture::new();
    let only = f.unavailable("Only");
    let gate = only.inner.hold_fetches();
    let chain = Arc::new(
        ChainedTokenCredential::builder()
            .member("Only", only.clone())
            .build()
            .unwrap(),
    );
    let failing = {
        let chain = chain.clone();
        tokio::spawn(async move { chain.get_token(&SCOPE, None).await })
    };
    while only.inner.held_fetches() == 0 {
        tokio::task::yield_now().await;
    }
    let other = {
        let chain = chain.clone();
        tokio::spawn(async move {
            chain
                .get_token(&["https://storage.azure.com/.default"], None)
                .await
        })
    };
    tokio::task::yield_now().await;
    gate.release();
    assert!(failing.await.unwrap().is_err());
    other.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_member_that_comes_up_later_is_found_without_a_restart() {
    let f = Fixture::new();
    let only = f.unavailable("ManagedIdentityCredential");
    let chain = ChainedTokenCredential::builder()
        .member("ManagedIdentityCredential", only.clone())
        .build()
        .unwrap();
    assert_unavailable(&chain).await;
    assert_eq!(chain.selected(), None, "a failure selects nothing");
    // The member remembers its failure only briefly.
    f.manual.advance(Duration::from_secs(2));
    chain.get_token(&SCOPE, None).await.unwrap();
    assert_eq!(chain.selected(), Some("ManagedIdentityCredential"));
}

#[tokio::test]
async fn the_identity_lock_refuses_tokens_for_another_identity() {
    let f = Fixture::new();
    let member = f.member("Member", None);
    let expires = datetime!(2030-01-01 1:00 UTC);
    member.inner.push_access_token(
        AccessToken::new("right", expires)
            .with_source("Member")
            .with_tenant_id("tenant-a")
            .with_client_id("client-a"),
    );
    let chain = ChainedTokenCredential::builder()
        .member("Member", member.clone())
        .require_identity(
            RequiredIdentity::default()
                .with_tenant_id("TENANT-A")
                .with_client_id("client-a"),
        )
        .build()
        .unwrap();
    assert_eq!(
        chain
            .get_token(&SCOPE, None)
            .await
            .unwrap()
            .token()
            .expose(),
        "right"
    );
    // Later the same (selected) member produces a token for someone else: refused.
    member.inner.push_access_token(
        AccessToken::new("wrong", expires)
            .with_source("Member")
            .with_tenant_id("tenant-a")
            .with_client_id("client-b"),
    );
    let err = chain
        .get_token(&["https://storage.azure.com/.default"], None)
        .await
        .unwrap_err();
    assert!(err.is_authentication(), "{err}");
    assert!(err.to_string().contains("client id \"client-b\""), "{err}");
    // A token that does not say who it is for is refused too.
    member
        .inner
        .push_access_token(AccessToken::new("anonymous", expires));
    let err = chain
        .get_token(&["https://management.azure.com/.default"], None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("an unknown one"), "{err}");
    assert!(!format!("{err:?}").contains("anonymous"));
}

#[test]
fn a_chain_needs_members() {
    let err = ChainedTokenCredential::builder().build().unwrap_err();
    assert!(err.is_invalid_input());
}
