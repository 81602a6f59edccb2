//! Many concurrent callers on a multi-thread runtime: upstream sees one request.
//!
//! Time comes from a manual clock that only moves when a test says so; nothing sleeps.

mod support;
use support::cache;

use std::sync::Arc;
use std::time::Duration;

use azure_credentials::testing::MockCredential;
use azure_credentials::{Error, TokenCredential};

const SCOPE: [&str; 1] = ["https://vault.azure.net/.default"];

/// Spawns `n` callers at once and collects their results.
async fn call_concurrently(
    credential: Arc<dyn TokenCredential>,
    n: usize,
) -> Vec<Result<azure_credentials::AccessToken, Error>> {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let credential = credential.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                credential.get_token(&SCOPE, None).await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_callers_on_a_cold_cache_cause_one_request_and_share_one_token() {
    let (_manual, mock) = cache::mock_on_manual_clock();
    // Hold the upstream request until every caller is waiting on it.
    let gate = mock.hold_fetches();
    let credential: Arc<dyn TokenCredential> = Arc::new(mock.clone());
    let callers = tokio::spawn(call_concurrently(credential, 100));
    while mock.held_fetches() == 0 {
        tokio::task::yield_now().await;
    }
    gate.release();
    let results = callers.await.unwrap();
    assert_eq!(mock.fetch_count(), 1);
    let first = results[0].as_ref().unwrap();
    for result in &results {
        assert_eq!(result.as_ref().unwrap().token(), first.token());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_callers_on_a_failing_endpoint_cause_one_request() {
    let (_manual, mock) = cache::mock_on_manual_clock();
    mock.push_error(
        Error::authentication("MockCredential", "the endpoint answered 400 Bad Request")
            .with_status(400),
    );
    let results = call_concurrently(Arc::new(mock.clone()), 64).await;
    assert_eq!(mock.fetch_count(), 1);
    for result in results {
        let err = result.unwrap_err();
        assert!(err.is_authentication());
        assert_eq!(err.status(), Some(400));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callers_in_the_refresh_window_never_wait_for_the_refresh() {
    let (manual, mock) = cache::mock_on_manual_clock();
    let first = mock.get_token(&SCOPE, None).await.unwrap();
    // Into the refresh window (the 1-hour token is due 5 minutes before expiry), with the
    // upstream request held for as long as the test likes.
    manual.advance(Duration::from_secs(56 * 60));
    let gate = mock.hold_fetches();
    let results = call_concurrently(Arc::new(mock.clone()), 64).await;
    // Every caller has its answer, and the refresh cannot have finished: it is held until the
    // gate opens below. So nobody waited for it.
    while mock.held_fetches() == 0 {
        tokio::task::yield_now().await;
    }
    for result in results {
        assert_eq!(result.unwrap().token(), first.token());
    }
    gate.release();
    while mock.held_fetches() > 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        mock.fetch_count(),
        2,
        "one background refresh for 64 callers"
    );
    // The refreshed token replaces the old one.
    let mut fresh = mock.get_token(&SCOPE, None).await.unwrap();
    while fresh.token() == first.token() {
        tokio::task::yield_now().await;
        fresh = mock.get_token(&SCOPE, None).await.unwrap();
    }
    assert_eq!(mock.fetch_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifteen_instances_of_one_identity_cause_one_request() {
    let manual = cache::manual_clock();
    let cache = cache::deterministic(manual.clock());
    let mocks: Vec<MockCredential> = (0..15)
        .map(|_| {
            MockCredential::builder()
                .cache(cache.clone())
                .identity("user-assigned client id 1")
                .build()
        })
        .collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(mocks.len()));
    let tasks: Vec<_> = mocks
        .iter()
        .cloned()
        .map(|mock| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                mock.get_token(&SCOPE, None).await.unwrap()
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let total: usize = mocks.iter().map(MockCredential::fetch_count).sum();
    assert_eq!(total, 1);

    // A different identity on the same cache is fetched separately.
    let other = MockCredential::builder()
        .cache(cache.clone())
        .identity("user-assigned client id 2")
        .build();
    other.get_token(&SCOPE, None).await.unwrap();
    assert_eq!(other.fetch_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_share_the_process_wide_cache_by_default() {
    // Unique identity: the shared cache lives for the whole test binary.
    let identity = "shared-cache-test-identity";
    let a = MockCredential::builder().identity(identity).build();
    let b = MockCredential::builder().identity(identity).build();
    let ta = a.get_token(&SCOPE, None).await.unwrap();
    let tb = b.get_token(&SCOPE, None).await.unwrap();
    assert_eq!(ta.token(), tb.token());
    assert_eq!(a.fetch_count() + b.fetch_count(), 1);
}
