//! Managed identity on every host kind.

use super::*;

/// A user-assigned id used as client id, object id and resource id alike, and another one.
const ID_V: &str = "aaaaaaaa-1111-4222-8333-444444444444";
const ID_V_UPPER: &str = "AAAAAAAA-1111-4222-8333-444444444444";
const ID_W: &str = "bbbbbbbb-5555-4666-8777-888888888888";
const ARC_DIR: &str = "/var/opt/azcmagent/tokens";
const ARC_KEY_PATH: &str = "/var/opt/azcmagent/tokens/partitions.key";

#[derive(Clone, Copy)]
enum Asked {
    /// Nothing chosen, nothing in `AZURE_CLIENT_ID`.
    Default,
    SystemAssigned,
    ClientId(&'static str),
    /// `AZURE_CLIENT_ID` set, no builder choice.
    ClientIdFromEnv(&'static str),
    /// `AZURE_CLIENT_ID` set, but `system_assigned()` chosen.
    SystemDespiteEnv(&'static str),
    ObjectId(&'static str),
    ResourceId(&'static str),
}

impl Asked {
    /// The identity asked for, which the model compares.
    fn model(self) -> String {
        match self {
            Asked::Default | Asked::SystemAssigned | Asked::SystemDespiteEnv(_) => {
                "system".to_owned()
            }
            Asked::ClientId(v) | Asked::ClientIdFromEnv(v) => format!("client_id={v}"),
            Asked::ObjectId(v) => format!("object_id={v}"),
            Asked::ResourceId(v) => format!("resource_id={v}"),
        }
    }

    fn label(self) -> String {
        match self {
            Asked::Default => "default".to_owned(),
            Asked::SystemAssigned => "system_assigned()".to_owned(),
            Asked::ClientId(v) => format!("client_id({v})"),
            Asked::ClientIdFromEnv(v) => format!("AZURE_CLIENT_ID={v}"),
            Asked::SystemDespiteEnv(v) => format!("system_assigned() with AZURE_CLIENT_ID={v}"),
            Asked::ObjectId(v) => format!("object_id({v})"),
            Asked::ResourceId(v) => format!("resource_id({v})"),
        }
    }
}

/// A managed identity configuration: the hosting environment's variables and the id asked for.
fn managed_identity(
    label: String,
    model: String,
    env: Env,
    id: Asked,
    imds: url::Url,
    fs: &Fs,
) -> Config {
    let env = match id {
        Asked::ClientIdFromEnv(v) | Asked::SystemDespiteEnv(v) => env.with("AZURE_CLIENT_ID", v),
        _ => env,
    };
    let fs = fs.clone();
    Config::new(
        format!("{label} {}", id.label()),
        format!("{model} {}", id.model()),
        move |cache| {
            let builder = ManagedIdentityCredential::builder()
                .env(env.clone())
                .fs(fs.clone())
                .imds_endpoint(imds.clone())
                .arc_key_directory(ARC_DIR)
                .retry_policy(RetryPolicy::none())
                .cache(cache.clone());
            let builder = match id {
                Asked::Default | Asked::ClientIdFromEnv(_) => builder,
                Asked::SystemAssigned | Asked::SystemDespiteEnv(_) => builder.system_assigned(),
                Asked::ClientId(v) => builder.client_id(v),
                Asked::ObjectId(v) => builder.object_id(v),
                Asked::ResourceId(v) => builder.resource_id(v),
            };
            Arc::new(builder.build().unwrap())
        },
    )
}

fn mock_imds_upstream<'a>(mocks: &[&'a MockManagedIdentity]) -> Upstream<'a> {
    mocks_upstream(mocks, MockManagedIdentity::token_request_count, |mock| {
        mock.push(MockReply::token(&unique_token("imds-token")))
    })
}

async fn mock_imds(clock: &ManualClock) -> MockManagedIdentity {
    let mock = MockManagedIdentity::start().await;
    mock.set_clock(clock.clock());
    mock
}

#[tokio::test]
async fn a_managed_identity_never_gets_the_token_of_another_user_assigned_id_endpoint_or_secret() {
    let clock = ManualClock::new(T0);
    let (m1, m2) = (mock_imds(&clock).await, mock_imds(&clock).await);
    let fs = Fs::memory();
    m1.set_arc_key(ARC_KEY_PATH, "arc-key-secret");
    fs.write(ARC_KEY_PATH, "arc-key-secret");
    let (mut fabric_url, thumbprint) = tls_front(&m1).await;
    fabric_url.set_path("/servicefabric/token");
    let all_ids = [
        Asked::Default,
        Asked::SystemAssigned,
        Asked::SystemDespiteEnv(ID_V),
        Asked::ClientId(ID_V),
        Asked::ClientIdFromEnv(ID_V),
        Asked::ObjectId(ID_V),
        Asked::ResourceId(ID_V),
        Asked::ClientId(ID_V_UPPER),
        Asked::ClientId(ID_W),
    ];
    let few_ids = [
        Asked::SystemAssigned,
        Asked::ClientId(ID_V),
        Asked::ObjectId(ID_V),
    ];
    let mut configs = Vec::new();
    let mut add = |label: &str, model: &str, env: Env, ids: &[Asked]| {
        for id in ids {
            configs.push(managed_identity(
                label.to_owned(),
                model.to_owned(),
                env.clone(),
                *id,
                m1.imds_endpoint(),
                &fs,
            ));
        }
    };
    add("IMDS m1", "imds m1", Env::empty(), &all_ids);
    let imds_m2 = |id| {
        managed_identity(
            "IMDS m2".into(),
            "imds m2".into(),
            Env::empty(),
            id,
            m2.imds_endpoint(),
            &fs,
        )
    };
    let app_service = |mock: &MockManagedIdentity, header: &str| {
        Env::empty()
            .with("IDENTITY_ENDPOINT", mock.app_service_endpoint().as_str())
            .with("IDENTITY_HEADER", header)
    };
    add(
        "App Service m1 h1",
        "app m1 h1",
        app_service(&m1, "header-one"),
        &few_ids,
    );
    add(
        "App Service m1 h2",
        "app m1 h2",
        app_service(&m1, "header-two"),
        &few_ids,
    );
    add(
        "App Service m2 h1",
        "app m2 h1",
        app_service(&m2, "header-one"),
        &few_ids[..1],
    );
    let azure_ml = |mock: &MockManagedIdentity, secret: &str| {
        Env::empty()
            .with("MSI_ENDPOINT", mock.azure_ml_endpoint().as_str())
            .with("MSI_SECRET", secret)
    };
    add(
        "Azure ML m1 s1",
        "ml m1 s1",
        azure_ml(&m1, "msi-one"),
        &[Asked::SystemAssigned, Asked::ClientId(ID_V)],
    );
    add(
        "Azure ML m1 s2",
        "ml m1 s2",
        azure_ml(&m1, "msi-two"),
        &[Asked::SystemAssigned],
    );
    add(
        "Azure ML m2 s1",
        "ml m2 s1",
        azure_ml(&m2, "msi-one"),
        &[Asked::SystemAssigned],
    );
    add(
        "Azure ML m1 s1 default V",
        "ml m1 s1 default=V",
        azure_ml(&m1, "msi-one").with("DEFAULT_IDENTITY_CLIENT_ID", ID_V),
        &[Asked::SystemAssigned],
    );
    add(
        "Azure ML m1 s1 default W",
        "ml m1 s1 default=W",
        azure_ml(&m1, "msi-one").with("DEFAULT_IDENTITY_CLIENT_ID", ID_W),
        &[Asked::SystemAssigned],
    );
    let cloud_shell = |mock: &MockManagedIdentity| {
        Env::empty().with("MSI_ENDPOINT", mock.cloud_shell_endpoint().as_str())
    };
    add(
        "Cloud Shell m1",
        "shell m1",
        cloud_shell(&m1),
        &[Asked::SystemAssigned],
    );
    add(
        "Cloud Shell m2",
        "shell m2",
        cloud_shell(&m2),
        &[Asked::SystemAssigned],
    );
    let arc = Env::empty()
        .with("IDENTITY_ENDPOINT", m1.arc_endpoint().as_str())
        .with("IMDS_ENDPOINT", "http://127.0.0.1:40342");
    add("Arc m1", "arc m1", arc, &few_ids);
    let fabric = |header: &str| {
        Env::empty()
            .with("IDENTITY_ENDPOINT", fabric_url.as_str())
            .with("IDENTITY_HEADER", header)
            .with("IDENTITY_SERVER_THUMBPRINT", thumbprint.as_str())
    };
    add(
        "Service Fabric h1",
        "fabric h1",
        fabric("header-one"),
        &[Asked::SystemAssigned],
    );
    add(
        "Service Fabric h2",
        "fabric h2",
        fabric("header-two"),
        &[Asked::SystemAssigned],
    );
    configs.push(imds_m2(Asked::SystemAssigned));
    configs.push(imds_m2(Asked::ClientId(ID_V)));
    check_every_pair(&configs, &mock_imds_upstream(&[&m1, &m2]), &clock).await;
}

#[tokio::test]
async fn azure_ml_identities_with_different_default_client_ids_never_share_a_token() {
    let clock = ManualClock::new(T0);
    let mock = mock_imds(&clock).await;
    let env = |default: Option<&str>| {
        let env = Env::empty()
            .with("MSI_ENDPOINT", mock.azure_ml_endpoint().as_str())
            .with("MSI_SECRET", "msi-one");
        match default {
            Some(id) => env.with("DEFAULT_IDENTITY_CLIENT_ID", id),
            None => env,
        }
    };
    let cache = cache::deterministic(clock.clock());
    let build = |default| {
        ManagedIdentityCredential::builder()
            .env(env(default))
            .retry_policy(RetryPolicy::none())
            .cache(cache.clone())
            .build()
            .unwrap()
    };
    let (v, w, none) = (build(Some(ID_V)), build(Some(ID_W)), build(None));
    let token_v = v.get_token(SCOPE, None).await.unwrap();
    let token_w = w.get_token(SCOPE, None).await.unwrap();
    let token_none = none.get_token(SCOPE, None).await.unwrap();
    assert_eq!(
        mock.token_request_count(),
        3,
        "each default identity asks for its own token"
    );
    assert_eq!(token_v.client_id(), Some(ID_V));
    assert_eq!(token_w.client_id(), Some(ID_W), "W got V's token");
    assert_eq!(
        token_none.client_id(),
        Some(MockManagedIdentity::DEFAULT_CLIENT_ID)
    );
    // And each one's cached token stays its own.
    assert_eq!(
        v.get_token(SCOPE, None).await.unwrap().client_id(),
        Some(ID_V)
    );
    assert_eq!(mock.token_request_count(), 3);
}

/// A Service Fabric credential pinned to another certificate could not have fetched the token
/// of one pinned to the cluster's: it must not be served it from the cache (before, the pin was
/// not part of the identity, so it was).
#[tokio::test]
async fn a_service_fabric_credential_pinned_to_another_certificate_never_gets_the_token() {
    let clock = ManualClock::new(T0);
    let mock = mock_imds(&clock).await;
    let (mut url, thumbprint) = tls_front(&mock).await;
    url.set_path("/servicefabric/token");
    let shared = cache::deterministic(clock.clock());
    let pinned_to = |thumbprint: &str| {
        ManagedIdentityCredential::builder()
            .env(
                Env::empty()
                    .with("IDENTITY_ENDPOINT", url.as_str())
                    .with("IDENTITY_HEADER", "fabric-header")
                    .with("IDENTITY_SERVER_THUMBPRINT", thumbprint),
            )
            .fs(Fs::memory())
            .cache(shared.clone())
            .build()
            .unwrap()
    };
    let right = pinned_to(&thumbprint);
    right.get_token(SCOPE, None).await.unwrap();
    let wrong = pinned_to("0123456789ABCDEF0123456789ABCDEF01234567");
    let error = wrong.get_token(SCOPE, None).await.unwrap_err();
    assert!(error.to_string().contains("certificate"), "{error}");
    assert_eq!(mock.token_request_count(), 1);
}
