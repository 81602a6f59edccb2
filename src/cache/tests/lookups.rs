//! Hits, refresh windows and refresh times, keys and partitions.

use super::*;

#[tokio::test]
async fn a_hit_returns_the_cached_token_without_fetching() {
    let f = Fixture::new(HOUR);
    assert_eq!(f.token().await, "token-1");
    assert_eq!(f.token().await, "token-1");
    f.manual.advance(30 * MIN);
    assert_eq!(f.token().await, "token-1");
    assert_eq!(f.fetches(), 1);
}

#[tokio::test]
async fn a_hit_is_ready_at_once() {
    let f = Fixture::new(HOUR);
    f.token().await;
    let Poll::Ready(Ok(token)) = poll_once(f.credential.get_token(&["scope"], None)) else {
        panic!("a cache hit must not wait");
    };
    assert_eq!(token.token().expose(), "token-1");
}

#[tokio::test]
async fn an_expired_token_is_fetched_again() {
    let f = Fixture::new(HOUR);
    assert_eq!(f.token().await, "token-1");
    f.manual.advance(HOUR);
    assert_eq!(f.token().await, "token-2");
    assert_eq!(f.fetches(), 2);
}

#[tokio::test]
async fn past_the_hard_limit_callers_wait_for_a_new_token() {
    let f = Fixture::new(HOUR);
    f.token().await;
    // The hard limit is 30 s before expiry: the old token is no longer served.
    f.manual.advance(HOUR - Duration::from_secs(29));
    assert_eq!(f.token().await, "token-2");
}

#[tokio::test]
async fn in_the_refresh_window_the_old_token_comes_at_once_and_one_refresh_runs_in_the_background()
{
    let f = Fixture::new(HOUR);
    f.token().await;
    // Refresh is due 5 minutes before expiry.
    f.manual.advance(56 * MIN);
    for _ in 0..10 {
        let Poll::Ready(Ok(token)) = poll_once(f.credential.get_token(&["scope"], None)) else {
            panic!("a caller in the refresh window must not wait");
        };
        assert_eq!(token.token().expose(), "token-1");
    }
    settle().await;
    assert_eq!(f.fetches(), 2, "exactly one background refresh");
    assert_eq!(f.token().await, "token-2");
    settle().await;
    assert_eq!(f.fetches(), 2);
}

#[tokio::test]
async fn scopes_are_keyed_as_a_set() {
    let f = Fixture::new(HOUR);
    let a = f.get(&["b", "a"]).await.unwrap();
    let b = f.get(&["a", "b"]).await.unwrap();
    let c = f.get(&["a", "b", "a"]).await.unwrap();
    assert_eq!(a.token(), b.token());
    assert_eq!(a.token(), c.token());
    assert_eq!(f.fetches(), 1);
    // The fetcher sees them sorted and de-duplicated.
    assert_eq!(f.script.requests.lock()[0].scopes(), ["a", "b"]);
    // A different set is a different token.
    f.get(&["a"]).await.unwrap();
    assert_eq!(f.fetches(), 2);
    // Many scopes (beyond the inline buffer) work the same way.
    let many = ["f", "e", "d", "c", "b", "a", "a"];
    f.get(&many).await.unwrap();
    f.get(&["a", "b", "c", "d", "e", "f"]).await.unwrap();
    assert_eq!(f.fetches(), 3);
}

#[tokio::test]
async fn tenants_and_cae_are_part_of_the_key() {
    let f = Fixture::new(HOUR);
    let t1 = TokenRequestOptions::default().with_tenant_id("tenant-1");
    let t2 = TokenRequestOptions::default().with_tenant_id("tenant-2");
    let cae = TokenRequestOptions::default().with_enable_cae(true);
    let scopes = ["scope"];
    let get = |o| f.credential.get_token(&scopes, o);
    let a = get(Some(&t1)).await.unwrap();
    let b = get(Some(&t2)).await.unwrap();
    let c = get(Some(&cae)).await.unwrap();
    let d = get(None).await.unwrap();
    assert_eq!(f.fetches(), 4);
    let values: std::collections::HashSet<_> = [&a, &b, &c, &d]
        .iter()
        .map(|t| t.token().expose().to_owned())
        .collect();
    assert_eq!(values.len(), 4);
    assert_eq!(get(Some(&t1)).await.unwrap().token(), a.token());
    assert_eq!(get(Some(&cae)).await.unwrap().token(), c.token());
    assert_eq!(f.fetches(), 4);
    let requests = f.script.requests.lock();
    assert_eq!(requests[0].tenant_id(), Some("tenant-1"));
    assert!(requests[2].enable_cae());
}

#[derive(Debug)]
struct FixedTenant(Arc<Script>);

#[async_trait]
impl TokenFetcher for FixedTenant {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        self.0.fetch(request).await
    }
    fn resolve_tenant<'a>(&'a self, _requested: &'a str) -> Result<Option<&'a str>, Error> {
        Ok(None)
    }
}

#[tokio::test]
async fn a_source_with_a_fixed_tenant_shares_one_token_across_requested_tenants() {
    let f = Fixture::new(HOUR);
    let credential = f
        .cache
        .credential(CacheIdentity::new("Fixed"), FixedTenant(f.script.clone()));
    let t1 = TokenRequestOptions::default().with_tenant_id("tenant-1");
    let a = credential.get_token(&["s"], Some(&t1)).await.unwrap();
    let b = credential.get_token(&["s"], None).await.unwrap();
    assert_eq!(a.token(), b.token());
    assert_eq!(f.fetches(), 1);
}

#[tokio::test]
async fn a_ten_minute_token_is_not_refetched_on_every_call() {
    let f = Fixture::new(10 * MIN);
    for _ in 0..9 {
        assert_eq!(f.token().await, "token-1");
        f.manual.advance(Duration::from_secs(30));
    }
    settle().await;
    assert_eq!(f.fetches(), 1, "nothing before half of its life");
    // At 5 minutes (half its life) a refresh starts.
    f.manual.advance(Duration::from_secs(30));
    f.assert_refreshed_in_background("token-1", 2).await;
}

#[tokio::test]
async fn returned_tokens_carry_the_caches_refresh_time() {
    let f = Fixture::new(HOUR);
    let token = f.get(&["s"]).await.unwrap();
    assert_eq!(token.refresh_on(), Some(START + 55 * MIN));
}

#[tokio::test]
async fn the_front_copy_is_replaced_when_the_token_changes() {
    let f = Fixture::new(HOUR);
    assert_eq!(f.token().await, "token-1");
    assert_eq!(f.token().await, "token-1"); // now in this thread's front cache
    let options = TokenRequestOptions::default().with_claims("{}");
    f.credential
        .get_token(&["scope"], Some(&options))
        .await
        .unwrap();
    assert_eq!(f.token().await, "token-2");
}

#[test]
fn stored_tokens_get_jittered_refresh_times_within_bounds() {
    let f = Fixture::with_cache(HOUR, |b| {
        b.max_jitter(Duration::from_secs(60)).jitter_seed(7)
    });
    let ideal = START + 55 * MIN;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let entry = f
            .credential
            .partition
            .entry(&KeyView::new(&["s"], None, false));
        let token = f
            .credential
            .partition
            .store(&entry, AccessToken::new("t", START + HOUR));
        let refresh_on = token.refresh_on().unwrap();
        assert!(
            refresh_on <= ideal && refresh_on >= ideal - MIN,
            "{refresh_on}"
        );
        seen.insert(refresh_on);
    }
    assert!(seen.len() > 100, "jitter varies per token");
}

#[tokio::test]
async fn credentials_with_equal_identities_share_tokens_and_different_ones_do_not() {
    let f = Fixture::new(HOUR);
    let same = f
        .cache
        .credential_arc(CacheIdentity::new("Test"), f.script.clone());
    let other = f.cache.credential_arc(
        CacheIdentity::new("Test").with("client_id", "x"),
        f.script.clone(),
    );
    let secret_a = f.cache.credential_arc(
        CacheIdentity::new("Test").with_secret(b"a"),
        f.script.clone(),
    );
    let secret_b = f.cache.credential_arc(
        CacheIdentity::new("Test").with_secret(b"b"),
        f.script.clone(),
    );
    let t = f.get(&["s"]).await.unwrap();
    assert_eq!(
        same.get_token(&["s"], None).await.unwrap().token(),
        t.token()
    );
    assert_eq!(f.fetches(), 1);
    other.get_token(&["s"], None).await.unwrap();
    secret_a.get_token(&["s"], None).await.unwrap();
    secret_b.get_token(&["s"], None).await.unwrap();
    assert_eq!(f.fetches(), 4);
}

#[tokio::test]
async fn a_credential_created_again_finds_the_token_of_the_one_before() {
    // The anti-pattern of a new credential per request still costs one request in all.
    let f = Fixture::new(HOUR);
    for _ in 0..5 {
        let credential = f
            .cache
            .credential_arc(CacheIdentity::new("PerRequest"), f.script.clone());
        assert_eq!(token_of(&credential, "s").await, "token-1");
    }
    assert_eq!(f.fetches(), 1);
}

#[tokio::test]
async fn partitions_with_no_valid_token_and_no_credential_are_swept() {
    let f = Fixture::new(HOUR);
    // With the fixture's own partition, one short of a sweep.
    for i in 1..SWEEP_THRESHOLD {
        let identity = CacheIdentity::new("Ephemeral").with("n", i.to_string());
        let credential = f.cache.credential_arc(identity, f.script.clone());
        credential.get_token(&["s"], None).await.unwrap();
    }
    assert_eq!(f.cache.inner.partitions.lock().map.len(), SWEEP_THRESHOLD);
    // Their tokens expire; the next new partition sweeps them (the fixture's own credential
    // is still in use, so its partition stays).
    f.manual.advance(2 * HOUR);
    let _new = f
        .cache
        .credential_arc(CacheIdentity::new("New"), f.script.clone());
    assert_eq!(f.cache.inner.partitions.lock().map.len(), 2);
}

/// A credential per user (on behalf of each) keeps thousands of partitions in use: a sweep that
/// frees nothing must not run again for every new one (it did: one scan of every partition, under
/// the cache's lock, per new partition past 64).
#[tokio::test]
async fn partitions_in_use_are_scanned_once_per_doubling_not_once_per_new_partition() {
    let f = Fixture::new(HOUR);
    let in_use: Vec<_> = (0..4096)
        .map(|i| {
            let identity = CacheIdentity::new("PerUser").with("n", i.to_string());
            f.cache.credential_arc(identity, f.script.clone())
        })
        .collect();
    let partitions = f.cache.inner.partitions.lock();
    assert_eq!(partitions.map.len(), in_use.len() + 1);
    // 64, 130, 260, ... 4160: seven sweeps for 4097 partitions.
    assert!(partitions.sweeps <= 7, "{} sweeps", partitions.sweeps);
}

#[test]
fn sort_dedup_keeps_distinct_sorted_values() {
    let mut v = ["c", "a", "b", "a", "c"];
    let n = sort_dedup(&mut v);
    assert_eq!(&v[..n], ["a", "b", "c"]);
    let mut one = ["x"];
    assert_eq!(sort_dedup(&mut one), 1);
    let mut none: [&str; 0] = [];
    assert_eq!(sort_dedup(&mut none), 0);
}

#[test]
fn identity_debug_hides_the_secret_digest() {
    let identity = CacheIdentity::new("ClientSecretCredential")
        .with("client_id", "c")
        .with_secret(b"pw");
    let printed = format!("{identity:?}");
    assert!(
        printed.contains("<redacted>") && printed.contains("client_id"),
        "{printed}"
    );
}
