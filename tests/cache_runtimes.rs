//! Cancelled callers and runtimes that go away: nothing stays stuck, nobody hangs.
//!
//! The cache outlives runtimes (the process-wide one is a static; one runtime per
//! `#[tokio::test]` is the everyday case), so a fetch or refresh running on a runtime that shuts
//! down must not leave its entry "fetching" forever.

mod support;
use support::cache;
use support::wait::until_on_other_threads;

use std::time::Duration;

use azure_credentials::testing::MockCredential;
use azure_credentials::{AccessToken, TokenCredential};

const SCOPE: [&str; 1] = ["https://storage.azure.com/.default"];

/// Spawns a caller of `mock` on the current runtime.
fn spawn_caller(
    mock: &MockCredential,
) -> tokio::task::JoinHandle<Result<AccessToken, azure_credentials::Error>> {
    let mock = mock.clone();
    tokio::spawn(async move { mock.get_token(&SCOPE, None).await })
}

/// Checks that a call of `mock` now gets the token `expected`.
async fn assert_serves(mock: &MockCredential, expected: &str) {
    let token = mock.get_token(&SCOPE, None).await.unwrap();
    assert_eq!(token.token().expose(), expected);
}

/// Runs `scenario` on a [`runtime`] of its own, then shuts that runtime down.
fn on_a_runtime_that_then_shuts_down(scenario: impl std::future::Future<Output = ()>) {
    let runtime = runtime();
    runtime.block_on(scenario);
    drop(runtime);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn when_the_first_caller_is_dropped_the_others_still_get_a_token() {
    let (_manual, mock) = cache::mock_on_manual_clock();
    runtime().block_on(async {
        let gate = mock.hold_fetches();
        let first = spawn_caller(&mock);
        until_on_other_threads(|| mock.held_fetches() == 1).await;
        let second = spawn_caller(&mock);
        // The caller that started the fetch goes away mid-flight.
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());
        gate.release();
        let token = second.await.unwrap().unwrap();
        assert_eq!(token.token().expose(), "mock-token-1");
        // The fetch was not thrown away with its first caller: still one request.
        assert_eq!(mock.fetch_count(), 1);
    });
}

#[test]
fn a_fetch_on_a_runtime_that_shuts_down_is_restarted_by_the_next_caller() {
    let (_manual, mock) = cache::mock_on_manual_clock();
    on_a_runtime_that_then_shuts_down(async {
        std::mem::forget(mock.hold_fetches());
        spawn_caller(&mock);
        until_on_other_threads(|| mock.held_fetches() == 1).await;
    });
    // The fetch was parked on that runtime.
    assert_eq!(
        mock.held_fetches(),
        0,
        "the held fetch was dropped with its runtime"
    );

    runtime().block_on(async {
        // Let fetches through again.
        mock.hold_fetches().release();
        assert_serves(&mock, "mock-token-2").await;
        assert_eq!(mock.fetch_count(), 2);
    });
}

#[test]
fn a_background_refresh_on_a_runtime_that_shuts_down_does_not_block_later_refreshes() {
    let (manual, mock) = cache::mock_on_manual_clock();
    on_a_runtime_that_then_shuts_down(async {
        mock.get_token(&SCOPE, None).await.unwrap();
        manual.advance(Duration::from_secs(56 * 60));
        std::mem::forget(mock.hold_fetches());
        // In the refresh window: the old token at once, a background refresh that hangs.
        assert_serves(&mock, "mock-token-1").await;
        until_on_other_threads(|| mock.held_fetches() == 1).await;
    });

    runtime().block_on(async {
        mock.hold_fetches().release();
        // The entry is not stuck "refreshing": this caller starts a new refresh.
        assert_serves(&mock, "mock-token-1").await;
        until_on_other_threads(|| mock.fetch_count() == 3).await;
        let mut token = mock.get_token(&SCOPE, None).await.unwrap();
        while token.token().expose() == "mock-token-1" {
            tokio::task::yield_now().await;
            token = mock.get_token(&SCOPE, None).await.unwrap();
        }
        assert_eq!(token.token().expose(), "mock-token-3");
    });
}

#[test]
fn the_shared_cache_serves_callers_on_successive_runtimes() {
    let mock = MockCredential::builder()
        .identity("successive-runtimes")
        .build();
    for _ in 0..3 {
        runtime().block_on(async {
            mock.get_token(&SCOPE, None).await.unwrap();
        });
    }
    assert_eq!(mock.fetch_count(), 1);
}

fn paused_current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

/// A sync wrapper that gives up on `block_on(timeout(..))` keeps its runtime but stops driving
/// it. The fetch it started is parked there forever; callers on other runtimes must not wait for
/// it forever (they waited forever before the take-over).
#[test]
fn a_fetch_stuck_on_a_runtime_nobody_drives_any_more_is_taken_over_by_a_caller_elsewhere() {
    let (_manual, mock) = cache::mock_on_manual_clock();
    let abandoned = paused_current_thread();
    let gate = mock.hold_fetches();
    let gave_up = abandoned.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), mock.get_token(&SCOPE, None)).await
    });
    assert!(gave_up.is_err(), "the wrapper timed out");
    assert_eq!(
        mock.held_fetches(),
        1,
        "its fetch is parked on the idle runtime"
    );
    // Released, but nothing will ever poll it again: `abandoned` is kept and never driven.
    gate.release();

    let token = paused_current_thread().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), mock.get_token(&SCOPE, None))
            .await
            .expect("a caller on another runtime waited forever for the stuck fetch")
    });
    assert_eq!(token.unwrap().token().expose(), "mock-token-2");
    assert_eq!(mock.fetch_count(), 2);
    drop(abandoned);
}

/// The same stuck runtime, holding a background refresh: callers elsewhere get the valid token
/// meanwhile, and once it expires they take the refresh over instead of waiting for it forever.
#[test]
fn a_background_refresh_stuck_on_a_runtime_nobody_drives_is_taken_over_at_expiry() {
    let (manual, mock) = cache::mock_on_manual_clock();
    let abandoned = paused_current_thread();
    abandoned.block_on(async {
        mock.get_token(&SCOPE, None).await.unwrap();
    });
    let gate = mock.hold_fetches();
    manual.advance(Duration::from_secs(56 * 60));
    abandoned.block_on(async {
        // In the refresh window: the old token, and a refresh spawned on this runtime.
        assert_serves(&mock, "mock-token-1").await;
        until_on_other_threads(|| mock.held_fetches() == 1).await;
    });
    gate.release();

    let elsewhere = paused_current_thread();
    elsewhere.block_on(async {
        let token = mock.get_token(&SCOPE, None).await.unwrap();
        assert_eq!(
            token.token().expose(),
            "mock-token-1",
            "still valid: served at once"
        );
    });
    manual.advance(Duration::from_secs(4 * 60));
    let token = elsewhere.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), mock.get_token(&SCOPE, None))
            .await
            .expect("a caller waited forever for the stuck refresh")
    });
    assert_eq!(token.unwrap().token().expose(), "mock-token-3");
    drop(abandoned);
}
