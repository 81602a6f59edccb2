//! End to end against Azurite, the Azure Storage emulator users run locally (`.ci/run` installs
//! it with npm; without it these tests say so and pass, unless
//! `AZURE_CREDENTIALS_REQUIRE_AZURITE` is set, as `.ci/run` sets it). Azurite runs in OAuth
//! mode over HTTPS and checks each bearer token's audience, issuer and lifetime; the tokens
//! come from `DefaultAzureCredential` finding the mock managed identity, whose tokens are JWTs
//! with Entra's claims (`MockReply::jwt`).
//!
//! - object_store's Azure store through `ObjectStoreCredential`: put, list, get, delete;
//! - the errors a user sees when the token is for another audience, or has expired;
//! - the official `azure_storage_blob` client through `AzureCoreCredential`
//!   (`azure_core` feature);
//! - the reqwest middleware `BearerAuth` over the Blob REST API (`reqwest-middleware` feature).

mod support;

use std::sync::Arc;
use std::time::Duration;

use azure_credentials::interop::ObjectStoreCredential;
use azure_credentials::system::{Clock, ManualClock};
use azure_credentials::{DefaultAzureCredential, TokenCache, TokenCredential};
use object_store::azure::{MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload};
use support::azurite::{self, ACCOUNT, Azurite, default_credential};

const CONTAINER: &str = "data";

/// object_store's built-in transport is reqwest; this crate builds reqwest's rustls without a
/// crypto provider, so the program picks one (ring here, as a program avoiding aws-lc-rs would).
fn install_ring() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The store a user builds for Azurite's account: the account's endpoint, the emulator's
/// certificate trusted, our credential.
fn store(azurite: &Azurite, credential: ObjectStoreCredential) -> MicrosoftAzure {
    let certificate =
        object_store::Certificate::from_pem(azurite.certificate_pem().as_bytes()).unwrap();
    MicrosoftAzureBuilder::new()
        .with_account(ACCOUNT)
        .with_container_name(CONTAINER)
        .with_endpoint(azurite.account_url().to_string())
        .with_client_options(ClientOptions::new().with_root_certificate(certificate))
        .with_credentials(Arc::new(credential))
        .build()
        .unwrap()
}

/// The storage token `credential` gives (to create the container with).
async fn storage_token(credential: &DefaultAzureCredential) -> String {
    let token = credential
        .get_token(&[ObjectStoreCredential::STORAGE_SCOPE], None)
        .await
        .unwrap();
    token.token().expose().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_puts_lists_gets_and_deletes_blobs_in_azurite_with_the_default_chains_token() {
    let Some(azurite) = Azurite::start("object-store").await else {
        return;
    };
    install_ring();
    let imds = azurite::managed_identity().await;
    let credential = default_credential(&imds);
    let token = storage_token(&credential).await;
    azurite.create_container(&token, CONTAINER).await;
    let store = store(&azurite, ObjectStoreCredential::new(credential));

    let hello = Path::from("reports/2026/hello.txt");
    let other = Path::from("reports/2026/other.bin");
    store
        .put(&hello, PutPayload::from_static(b"hello, Azurite"))
        .await
        .unwrap();
    store
        .put(&other, PutPayload::from(vec![7u8; 4096]))
        .await
        .unwrap();

    let listed = store
        .list_with_delimiter(Some(&Path::from("reports/2026")))
        .await
        .unwrap();
    let mut names: Vec<(String, u64)> = listed
        .objects
        .iter()
        .map(|o| (o.location.to_string(), o.size))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("reports/2026/hello.txt".to_owned(), 14),
            ("reports/2026/other.bin".to_owned(), 4096)
        ]
    );

    let got = store.get(&hello).await.unwrap().bytes().await.unwrap();
    assert_eq!(&got[..], b"hello, Azurite");

    store.delete(&hello).await.unwrap();
    let missing = store.get(&hello).await.unwrap_err();
    assert!(
        matches!(missing, object_store::Error::NotFound { .. }),
        "{missing}"
    );
    let listed = store
        .list_with_delimiter(Some(&Path::from("reports/2026")))
        .await
        .unwrap();
    assert_eq!(listed.objects.len(), 1, "{listed:?}");
    assert_eq!(listed.objects[0].location, other);

    // The same blob over the plain REST API, as a reqwest program asks for it.
    let response = azurite
        .client()
        .get(azurite.blob_url(CONTAINER, "reports/2026/other.bin"))
        .bearer_auth(&token)
        .header("x-ms-version", azurite::API_VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap(), vec![7u8; 4096]);

    // The container, seven store requests: one token.
    assert_eq!(imds.token_request_count(), 1, "{:?}", imds.requests());
    let request = &imds.requests()[0];
    assert_eq!(request.query("resource"), Some("https://storage.azure.com"));
}

/// The error of a store request Azurite refused: object_store's `PermissionDenied` carrying the
/// status and Azurite's XML error. (Azure Storage itself answers these tokens `401`
/// `InvalidAuthenticationInfo` with a challenge, which object_store reports as `Unauthenticated`;
/// Azurite answers as the service did before API version 2019-12-12.)
fn assert_refused(error: &object_store::Error, detail: &str, token: &str) -> String {
    let shown = error.to_string();
    assert!(
        matches!(error, object_store::Error::PermissionDenied { .. }),
        "{error:?}"
    );
    for expected in ["403 Forbidden", "<Code>AuthenticationFailed</Code>", detail] {
        assert!(shown.contains(expected), "{expected:?} not in: {shown}");
    }
    // Neither the message nor the debug form shows the token.
    assert!(!shown.contains(token), "{shown}");
    assert!(!format!("{error:?}").contains(token));
    shown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_another_audience_gets_azurites_403_invalid_token_audience() {
    let Some(azurite) = Azurite::start("wrong-audience").await else {
        return;
    };
    install_ring();
    let imds = azurite::managed_identity().await;
    let credential = default_credential(&imds);
    azurite
        .create_container(&storage_token(&credential).await, CONTAINER)
        .await;
    // The mistake: the store's tokens are for Key Vault.
    let vault = "https://vault.azure.net/.default";
    let vault_token = credential.get_token(&[vault], None).await.unwrap();
    let store = store(
        &azurite,
        ObjectStoreCredential::new(credential).with_scope(vault),
    );

    let error = store
        .put(&Path::from("x.txt"), PutPayload::from_static(b"x"))
        .await
        .unwrap_err();
    let shown = assert_refused(
        &error,
        "<AuthenticationErrorDetail>Invalid token audience.</AuthenticationErrorDetail>",
        vault_token.token().expose(),
    );
    // The request's URL names what was refused.
    assert!(shown.contains("PUT https://127.0.0.1:"), "{shown}");
    writeln_shown("another audience", &shown);
    // No retry of a 403: one token request per scope, one refused request.
    assert_eq!(imds.token_request_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_gets_azurites_403_the_token_is_expired() {
    let Some(azurite) = Azurite::start("expired").await else {
        return;
    };
    install_ring();
    azurite
        .create_container(&azurite.setup_token(), CONTAINER)
        .await;
    // A machine whose clock is two hours behind: its managed identity issues tokens that expired
    // an hour ago by Azurite's clock, and its cache, going by the same wrong clock, trusts them.
    let behind = ManualClock::new(Clock::system().now() - Duration::from_secs(2 * 3600));
    let imds = azurite::managed_identity().await;
    imds.set_clock(behind.clock());
    let credential = support::default_chain::only_managed_identity(imds.imds_endpoint())
        .cache(TokenCache::builder().clock(behind.clock()).build())
        .build()
        .unwrap();
    let token = storage_token(&credential).await;
    let store = store(&azurite, ObjectStoreCredential::new(credential));

    let error = store.get(&Path::from("x.txt")).await.unwrap_err();
    let shown = assert_refused(
        &error,
        "<AuthenticationErrorDetail>Lifetime validation failed. The token is expired.</AuthenticationErrorDetail>",
        &token,
    );
    writeln_shown("an expired token", &shown);
    assert_eq!(imds.token_request_count(), 1);
}

/// Shows what a user sees (with `--nocapture`), for the record.
fn writeln_shown(case: &str, shown: &str) {
    eprintln!("what the user sees ({case}): {shown}");
}

/// The official Blob client (`azure_storage_blob`) with our credential through
/// `AzureCoreCredential`, over an azure_core transport that trusts Azurite's certificate.
#[cfg(feature = "azure_core")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_blob_client_creates_uploads_downloads_and_deletes_with_azure_core_credential()
{
    use azure_core::http::{RequestContent, Transport};
    use azure_credentials::interop::AzureCoreCredential;
    use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};

    let Some(azurite) = Azurite::start("azure-storage-blob").await else {
        return;
    };
    let imds = azurite::managed_identity().await;
    let credential = Arc::new(AzureCoreCredential::new(default_credential(&imds)));
    let mut options = BlobContainerClientOptions::default();
    options.client_options.transport = Some(Transport::new(Arc::new(azurite.client())));
    let container = BlobContainerClient::new(
        azurite.container_url("sdk"),
        Some(credential),
        Some(options),
    )
    .unwrap();

    container.create(None).await.unwrap();
    let blob = container.blob_client("greeting.txt");
    blob.upload(RequestContent::from(b"hello from the SDK".to_vec()), None)
        .await
        .unwrap();
    let body = blob
        .download(None)
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap();
    assert_eq!(&body[..], b"hello from the SDK");
    assert!(blob.exists().await.unwrap());
    blob.delete(None).await.unwrap();
    assert!(!blob.exists().await.unwrap());
    container.delete(None).await.unwrap();
    assert!(!container.exists().await.unwrap());

    assert_eq!(imds.token_request_count(), 1, "{:?}", imds.requests());
}

/// The reqwest middleware over the Blob REST API, as a program without an SDK client calls
/// Storage: every request (create the container, put, list, get, delete) carries the chain's
/// token without the program touching a token, for one token request in all.
#[cfg(feature = "reqwest-middleware")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_middleware_creates_puts_lists_gets_and_deletes_blobs_over_the_rest_api() {
    use azure_credentials::interop::BearerAuth;

    let Some(azurite) = Azurite::start("middleware").await else {
        return;
    };
    let imds = azurite::managed_identity().await;
    let auth = BearerAuth::new(
        Arc::new(default_credential(&imds)),
        [ObjectStoreCredential::STORAGE_SCOPE],
    )
    .unwrap();
    let client = reqwest_middleware::ClientBuilder::new(azurite.client())
        .with(auth)
        .build();
    let send = |request: reqwest_middleware::RequestBuilder| async move {
        let response = request
            .header("x-ms-version", azurite::API_VERSION)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    };

    let mut container = azurite.container_url("rest");
    container.set_query(Some("restype=container"));
    let (status, body) = send(client.put(container).header("content-length", "0")).await;
    assert_eq!(status, 201, "create container: {body}");

    let blob = azurite.blob_url("rest", "notes/today.txt");
    let (status, body) = send(
        client
            .put(blob.clone())
            .header("x-ms-blob-type", "BlockBlob")
            .body("written through BearerAuth"),
    )
    .await;
    assert_eq!(status, 201, "put blob: {body}");

    let mut list = azurite.container_url("rest");
    list.set_query(Some("restype=container&comp=list"));
    let (status, body) = send(client.get(list.clone())).await;
    assert_eq!(status, 200, "list: {body}");
    assert!(body.contains("<Name>notes/today.txt</Name>"), "{body}");

    let (status, body) = send(client.get(blob.clone())).await;
    assert_eq!((status, body.as_str()), (200, "written through BearerAuth"));

    let (status, body) = send(client.delete(blob.clone())).await;
    assert_eq!(status, 202, "delete: {body}");
    let (status, _) = send(client.get(blob)).await;
    assert_eq!(status, 404);
    let (_, body) = send(client.get(list)).await;
    assert!(!body.contains("notes/today.txt"), "{body}");

    assert_eq!(
        imds.token_request_count(),
        1,
        "one token for every request: {:?}",
        imds.requests()
    );
}
