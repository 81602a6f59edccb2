//! A token source of your own behind the cache: `cargo run --example custom_source`.
//!
//! A forty-line IMDS client implements `TokenFetcher`; `TokenCache::credential` turns it into a
//! `TokenCredential` with the cache's freshness rules, single-flight and sharing. It runs against
//! the bundled mock IMDS on loopback. (For real
//! managed identity use `ManagedIdentityCredential`; see `cargo run --example demo`.)

// A demo prints to the terminal and measures real time.
#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::sync::Arc;

use azure_credentials::system::{Clock, Http, HttpRequest, RetryPolicy};
use azure_credentials::testing::MockManagedIdentity;
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

    let imds = MockManagedIdentity::start().await;
    println!("\nmock IMDS listening at {}", imds.imds_endpoint());

    let cache = TokenCache::shared();
    let source = ImdsSource {
        http: Http::shared(),
        endpoint: imds.imds_endpoint(),
        clock: cache.clock().clone(),
    };
    // What a consumer holds: `Arc<dyn TokenCredential>`.
    let identity = CacheIdentity::new(SOURCE).with("endpoint", imds.imds_endpoint());
    let credential: Arc<dyn TokenCredential> = Arc::new(cache.credential(identity, source));

    // The cache does the rest: the first call fetches, the next ones are hits, and the
    // refresh comes ahead of expiry (`cargo run --example demo` shows it step by step).
    let first = credential.get_token(&SCOPE, None).await?;
    let again = credential.get_token(&SCOPE, None).await?;
    println!(
        "got {first:?}; the second call was a hit: {}",
        again.token() == first.token()
    );
    println!("IMDS requests: {}", imds.token_request_count());
    Ok(())
}
