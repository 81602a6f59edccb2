//! A token source of your own behind the cache: `cargo run --example custom_source`.
//!
//! A forty-line IMDS client implements `TokenFetcher`; `TokenCache::credential` turns it into a
//! `TokenCredential` with the cache's freshness rules, single-flight and sharing. It runs against
//! the bundled mock IMDS on loopback, on a manual clock so it can jump an hour ahead. (For real
//! managed identity use `ManagedIdentityCredential`; see `cargo run --example demo`.)

// A demo prints to the terminal and measures real time.
#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_credentials::system::{Clock, Http, HttpRequest, ManualClock, RetryPolicy};
use azure_credentials::testing::MockImds;
use azure_credentials::{
    AccessToken, CacheIdentity, Error, ErrorKind, TokenCache, TokenCredential, TokenFetcher,
    TokenRequest,
};
use serde::Deserialize;
use url::Url;

const SOURCE: &str = "DemoImdsSource";
const SCOPE: [&str; 1] = ["https://management.azure.com/.default"];

/// A minimal IMDS client: one GET with `Metadata: true`, the reply's `access_token` and
/// `expires_in`.
#[derive(Debug)]
struct ImdsSource {
    http: Http,
    endpoint: Url,
    clock: Clock,
}

#[derive(Deserialize)]
struct ImdsReply {
    access_token: String,
    expires_in: String,
}

#[async_trait::async_trait]
impl TokenFetcher for ImdsSource {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        let [scope] = request.scopes() else {
            return Err(Error::invalid_input(
                SOURCE,
                "exactly one scope is required",
            ));
        };
        let resource = scope.strip_suffix("/.default").unwrap_or(scope);
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("api-version", "2018-02-01")
            .append_pair("resource", resource);
        let request = HttpRequest::get(url).header("Metadata", "true");
        let response = self
            .http
            .send(&request, &RetryPolicy::default())
            .await
            .map_err(|e| Error::new(ErrorKind::Io, SOURCE, "IMDS did not answer").with_source(e))?;
        if response.status() != 200 {
            return Err(Error::authentication(
                SOURCE,
                format!("IMDS answered {}", response.status()),
            )
            .with_status(response.status()));
        }
        let reply: ImdsReply = serde_json::from_slice(response.body()).map_err(|_| {
            Error::new(
                ErrorKind::Other,
                SOURCE,
                "IMDS sent a reply that is not a token",
            )
        })?;
        let lifetime: i64 = reply
            .expires_in
            .parse()
            .map_err(|_| Error::new(ErrorKind::Other, SOURCE, "IMDS sent an invalid expires_in"))?;
        Ok(AccessToken::new(
            reply.access_token,
            self.clock.now() + time::Duration::seconds(lifetime),
        )
        .with_source(SOURCE))
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_target(false)
        .init();

    // The mock IMDS and the cache share a clock that we move by hand.
    let manual = ManualClock::new(time::OffsetDateTime::now_utc());
    let imds = MockImds::start().await;
    imds.set_clock(manual.clock());
    println!("\nmock IMDS listening at {}", imds.imds_endpoint());

    let cache = TokenCache::builder().clock(manual.clock()).build();
    let source = ImdsSource {
        http: Http::shared(),
        endpoint: imds.imds_endpoint(),
        clock: manual.clock(),
    };
    // What a consumer holds: `Arc<dyn TokenCredential>`.
    let identity = CacheIdentity::new(SOURCE).with("endpoint", imds.imds_endpoint());
    let credential: Arc<dyn TokenCredential> = Arc::new(cache.credential(identity, source));

    println!("\n1. first token: a cache miss, one request to IMDS");
    let started = Instant::now();
    let token = credential.get_token(&SCOPE, None).await?;
    println!("   got {token:?}");
    println!(
        "   in {:?}; IMDS requests so far: {}",
        started.elapsed(),
        imds.token_request_count()
    );

    println!("\n2. a million more calls: cache hits");
    let started = Instant::now();
    for _ in 0..1_000_000 {
        let hit = credential.get_token(&SCOPE, None).await?;
        assert!(hit.token() == token.token());
    }
    let per_call = started.elapsed() / 1_000_000;
    println!(
        "   {per_call:?} per call{}; IMDS requests so far: {}",
        if cfg!(debug_assertions) {
            " (debug build: try --release, or cargo bench --bench cache)"
        } else {
            ""
        },
        imds.token_request_count()
    );

    println!("\n3. 56 minutes later the token is due for refresh (5 minutes before expiry)");
    manual.advance(Duration::from_secs(56 * 60));
    let started = Instant::now();
    let same = credential.get_token(&SCOPE, None).await?;
    println!(
        "   the caller got the still-valid token at once ({:?}): same token = {}",
        started.elapsed(),
        same.token() == token.token()
    );
    // The refresh runs in the background; give it a moment.
    let mut fresh = same;
    while fresh.token() == token.token() {
        tokio::time::sleep(Duration::from_millis(1)).await;
        fresh = credential.get_token(&SCOPE, None).await?;
    }
    println!("   then the refreshed token: {fresh:?}");
    println!("   IMDS requests in all: {}", imds.token_request_count());

    println!("\nNo secret was printed: tokens show as Secret(<redacted>).");
    Ok(())
}
