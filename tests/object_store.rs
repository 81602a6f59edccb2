//! object_store's Azure store (object_store 0.14) with our `DefaultAzureCredential` as its
//! credential provider, against the mock IMDS and a loopback HTTP server standing in for Blob
//! storage: puts and gets carry our bearer token for the storage scope, and any number of
//! requests, concurrent ones included, cost one token request.

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use azure_credentials::interop::ObjectStoreCredential;
use azure_credentials::testing::MockManagedIdentity;
use azure_credentials::{DefaultAzureCredential, ErrorKind};
use object_store::azure::{MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use parking_lot::Mutex;
use support::http::{Request, Response, StandIn, assert_each_bears};
use support::imds::assert_served_by_one_token;

const ACCOUNT: &str = "mystorageaccount";
const CONTAINER: &str = "data";

/// A loopback HTTP server standing in for Blob storage: `PUT` stores the body under the path,
/// `GET` returns it (404 when absent); every request's method, path and `Authorization` header
/// is recorded.
struct BlobStandIn {
    server: StandIn,
}

impl BlobStandIn {
    async fn start() -> BlobStandIn {
        let blobs = Mutex::new(HashMap::new());
        let server = StandIn::start(move |request| serve(request, &blobs)).await;
        BlobStandIn { server }
    }

    fn seen(&self) -> Vec<Request> {
        self.server.requests()
    }

    /// The store a user builds, pointed at this server (`with_endpoint` + `with_allow_http`).
    fn store(&self, credential: DefaultAzureCredential) -> MicrosoftAzure {
        MicrosoftAzureBuilder::new()
            .with_account(ACCOUNT)
            .with_container_name(CONTAINER)
            .with_endpoint(format!("http://{}", self.server.addr()))
            .with_allow_http(true)
            .with_credentials(Arc::new(ObjectStoreCredential::new(credential)))
            .build()
            .unwrap()
    }
}

/// Stores a `PUT`'s body, answers a `GET` with what was stored.
fn serve(request: Request, blobs: &Mutex<HashMap<String, Vec<u8>>>) -> Response {
    let path = request.path().to_owned();
    let mut blobs = blobs.lock();
    let (status, payload) = match request.method.as_str() {
        "PUT" => {
            blobs.insert(path, request.body);
            ("201 Created", Vec::new())
        }
        "GET" => match blobs.get(&path) {
            Some(blob) => ("200 OK", blob.clone()),
            None => ("404 The specified blob does not exist.", Vec::new()),
        },
        _ => ("405 Method Not Allowed", Vec::new()),
    };
    Response::new(status)
        .header("ETag", "\"0x8D9ABCDEF\"")
        .header("Last-Modified", "Fri, 27 Nov 2026 21:00:00 GMT")
        .header("x-ms-blob-type", "BlockBlob")
        .body(payload)
}

/// object_store's built-in transport is reqwest; this crate builds reqwest's rustls without a
/// crypto provider, so the program picks one (ring here, as a program avoiding aws-lc-rs would).
fn install_ring() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The default chain on a machine whose only identity is the managed identity behind
/// `imds_endpoint` (no service principal, no developer tools on `PATH`).
fn default_credential(imds_endpoint: url::Url) -> DefaultAzureCredential {
    support::default_chain::only_managed_identity(imds_endpoint)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_and_get_carry_our_storage_token_and_cost_one_token_request() {
    install_ring();
    let imds = MockManagedIdentity::start().await;
    let blob = BlobStandIn::start().await;
    let store = blob.store(default_credential(imds.imds_endpoint()));
    let path = Path::from("reports/2026/hello.txt");

    store
        .put(&path, PutPayload::from_static(b"hello, blob"))
        .await
        .unwrap();
    let got = store.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(&got[..], b"hello, blob");
    let again = store.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(got, again);

    let seen = blob.seen();
    let methods: Vec<&str> = seen.iter().map(|s| s.method.as_str()).collect();
    assert_eq!(methods, ["PUT", "GET", "GET"], "{seen:?}");
    for request in &seen {
        assert_eq!(request.path(), "/data/reports/2026/hello.txt");
    }
    // The storage scope.
    assert_served_by_one_token(
        &seen,
        &imds,
        "https://storage.azure.com",
        &format!("{store:?}"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_token() {
    install_ring();
    let imds = MockManagedIdentity::start().await;
    let blob = BlobStandIn::start().await;
    let store = Arc::new(blob.store(default_credential(imds.imds_endpoint())));
    let start = Arc::new(tokio::sync::Barrier::new(32));
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = store.clone();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            let path = Path::from(format!("parts/{i}.bin"));
            start.wait().await;
            store
                .put(&path, PutPayload::from(vec![i as u8; 100]))
                .await?;
            store.get(&path).await?.bytes().await
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap().unwrap(), vec![i as u8; 100]);
    }

    let seen = blob.seen();
    assert_eq!(seen.len(), 64);
    assert_each_bears(&seen, "mock-imds-token-1");
    assert_eq!(imds.token_request_count(), 1, "{:?}", imds.requests());
}

#[tokio::test]
async fn no_identity_fails_the_request_before_it_is_sent_and_keeps_our_error() {
    install_ring();
    let refused = support::imds::refused_endpoint();
    let blob = BlobStandIn::start().await;
    let store = blob.store(default_credential(refused));

    let err = store.get(&Path::from("hello.txt")).await.unwrap_err();

    let object_store::Error::Generic { store, source } = &err else {
        panic!("expected a Generic error, got {err:?}");
    };
    assert_eq!(*store, "MicrosoftAzure");
    let ours = source
        .downcast_ref::<azure_credentials::Error>()
        .expect("our error is the source");
    assert_eq!(ours.kind(), ErrorKind::Unavailable);
    assert_eq!(ours.credential(), "DefaultAzureCredential");
    assert!(
        err.to_string()
            .contains("none of the 6 credentials produced a token"),
        "{err}"
    );
    assert!(blob.seen().is_empty(), "nothing is sent without a token");
}
