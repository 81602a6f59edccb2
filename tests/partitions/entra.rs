//! The Entra ID credentials: service principals (secret, certificate, assertion), workload
//! identity, the environment, Azure Pipelines and GitHub Actions.

use super::*;

/// A `ClientSecretCredential` for `tenant` and `client` with `secret` at `authority`, on `cache`.
fn secret_credential(
    (tenant, client, secret): (&str, &str, &str),
    authority: &str,
    cache: &TokenCache,
) -> Arc<dyn TokenCredential> {
    Arc::new(
        ClientSecretCredential::builder()
            .tenant_id(tenant)
            .client_id(client)
            .secret(secret)
            .authority_host(authority)
            .env(Env::empty())
            .retry_policy(RetryPolicy::none())
            .cache(cache.clone())
            .build()
            .unwrap(),
    )
}

/// A `WorkloadIdentityCredential` for `tenant` and `client` reading `token_file`, at `authority`,
/// on `cache`.
fn workload_credential(
    (tenant, client, token_file): (&str, &str, &Path),
    authority: &str,
    cache: &TokenCache,
) -> Arc<dyn TokenCredential> {
    Arc::new(
        WorkloadIdentityCredential::builder()
            .tenant_id(tenant)
            .client_id(client)
            .token_file_path(token_file)
            .authority_host(authority)
            .env(Env::empty())
            .retry_policy(RetryPolicy::none())
            .cache(cache.clone())
            .build()
            .unwrap(),
    )
}

/// An `EnvironmentCredential` seeing `env`, on `cache`.
fn environment_credential(env: &Env, cache: &TokenCache) -> Arc<dyn TokenCredential> {
    Arc::new(
        EnvironmentCredential::builder()
            .env(env.clone())
            .retry_policy(RetryPolicy::none())
            .cache(cache.clone())
            .build()
            .unwrap(),
    )
}

#[tokio::test]
async fn a_client_secret_credential_never_gets_the_token_of_another_tenant_client_secret_or_authority()
 {
    let clock = ManualClock::new(T0);
    let (m1, m2) = (mock_entra(&clock).await, mock_entra(&clock).await);
    let authorities = [
        ("m1", "m1", m1.authority_host()),
        ("m1/", "m1", format!("{}/", m1.authority_host())),
        ("m2", "m2", m2.authority_host()),
    ];
    let mut proofs = Vec::new();
    for (secret_label, secret) in SECRETS {
        for (authority_label, authority_model, authority) in &authorities {
            proofs.push((
                format!("{secret_label} {authority_label}"),
                format!("{secret_label} {authority_model}"),
                (secret, authority.clone()),
            ));
        }
    }
    let configs = tenant_client_configs(proofs, |tenant, client, (secret, authority), cache| {
        secret_credential((tenant, client, secret), authority, cache)
    });
    check_every_pair(&configs, &mock_entra_upstream(&[&m1, &m2]), &clock).await;
}

/// A certificate file for the property.
struct CertificateFile {
    name: &'static str,
    /// Files with equal models hold the same certificate and key.
    model: &'static str,
    bytes: Vec<u8>,
    password: Option<&'static str>,
    send_chain: bool,
}

/// Certificates for the property: the fixture's certificate and key in several file formats
/// (one identity), another certificate for the same key, and a certificate with another key;
/// also written to a fresh directory.
fn certificates(dir_name: &str) -> (Vec<CertificateFile>, PathBuf) {
    let read = |name: &str| std::fs::read(fixtures::cert(name)).unwrap();
    let self_signed = |key: &rcgen::KeyPair, name: &str| {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.self_signed(key).unwrap().pem()
    };
    let key_pem = String::from_utf8(read("client-key-pkcs8.pem")).unwrap();
    let same_key = rcgen::KeyPair::from_pem(&key_pem).unwrap();
    // wrong-key.pem pairs the client certificate with an unrelated key: take that key.
    let wrong = String::from_utf8(read("wrong-key.pem")).unwrap();
    let other_key_pem = &wrong[wrong.find("-----BEGIN PRIVATE KEY-----").unwrap()..];
    let other_key = rcgen::KeyPair::from_pem(other_key_pem).unwrap();
    let file = |name, model, bytes| CertificateFile {
        name,
        model,
        bytes,
        password: None,
        send_chain: false,
    };
    #[allow(unused_mut)] // PKCS#12 only with the feature.
    let mut files = vec![
        file("client.pem", "cert1", read("client.pem")),
        file("client-pkcs1.pem", "cert1", read("client-pkcs1.pem")),
        CertificateFile {
            send_chain: true,
            ..file("client-chain.pem", "cert1", read("client-chain.pem"))
        },
        file(
            "same-key.pem",
            "cert2",
            (self_signed(&same_key, "another certificate, same key") + &key_pem).into_bytes(),
        ),
        file(
            "other-key.pem",
            "cert3",
            (self_signed(&other_key, "another certificate, another key") + other_key_pem)
                .into_bytes(),
        ),
    ];
    // The same certificate and key as PKCS#12, fourth as it always was.
    #[cfg(feature = "pkcs12")]
    files.insert(
        3,
        CertificateFile {
            password: Some("fixture-password"),
            ..file("client.pfx", "cert1", read("client.pfx"))
        },
    );
    let dir = fixtures::scratch_dir("partitions", dir_name);
    for file in &files {
        std::fs::write(dir.join(file.name), &file.bytes).unwrap();
    }
    (files, dir)
}

#[tokio::test]
async fn a_certificate_credential_never_gets_the_token_of_another_certificate_key_tenant_or_client()
{
    let clock = ManualClock::new(T0);
    let entra = mock_entra(&clock).await;
    let (files, _) = certificates("certificate");
    let authority = entra.authority_host();
    let proofs = files
        .into_iter()
        .map(|file| (file.name, file.model, file))
        .collect();
    let configs = tenant_client_configs(proofs, move |tenant, client, file, cache| {
        let mut builder = ClientCertificateCredential::builder()
            .tenant_id(tenant)
            .client_id(client)
            .certificate(file.bytes.clone())
            .send_certificate_chain(file.send_chain)
            .authority_host(authority.clone())
            .env(Env::empty())
            .retry_policy(RetryPolicy::none())
            .cache(cache.clone());
        if let Some(password) = file.password {
            builder = builder.password(password);
        }
        Arc::new(builder.build().unwrap())
    });
    check_every_pair(&configs, &mock_entra_upstream(&[&entra]), &clock).await;
}

#[tokio::test]
async fn a_workload_identity_never_gets_the_token_of_another_token_file_tenant_or_client() {
    let clock = ManualClock::new(T0);
    let entra = mock_entra(&clock).await;
    let dir = fixtures::scratch_dir("partitions", "workload");
    let files = [("f1", dir.join("token-one")), ("f2", dir.join("token-two"))];
    for (label, path) in &files {
        std::fs::write(path, format!("federated-token-{label}\n")).unwrap();
    }
    let authorities = [
        ("m1", entra.authority_host()),
        ("m1/", format!("{}/", entra.authority_host())),
    ];
    let mut proofs = Vec::new();
    for (file_label, path) in &files {
        for (authority_label, authority) in &authorities {
            proofs.push((
                format!("{file_label} {authority_label}"),
                *file_label,
                (path.clone(), authority.clone()),
            ));
        }
    }
    let configs = tenant_client_configs(proofs, |tenant, client, (path, authority), cache| {
        workload_credential((tenant, client, path), authority, cache)
    });
    check_every_pair(&configs, &mock_entra_upstream(&[&entra]), &clock).await;
}

#[tokio::test]
async fn an_environment_credential_never_gets_the_token_of_other_variables() {
    let clock = ManualClock::new(T0);
    let entra = mock_entra(&clock).await;
    let (files, dir) = certificates("environment");
    // (label = model, the variables that prove the identity)
    let mut proofs = Vec::new();
    for (label, secret) in SECRETS {
        proofs.push((
            label,
            label,
            vec![("AZURE_CLIENT_SECRET", secret.to_owned())],
        ));
    }
    for file in &files {
        let path = dir.join(file.name).display().to_string();
        let mut vars = vec![("AZURE_CLIENT_CERTIFICATE_PATH", path)];
        if let Some(password) = file.password {
            vars.push(("AZURE_CLIENT_CERTIFICATE_PASSWORD", password.to_owned()));
        }
        if file.send_chain {
            vars.push(("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "1".to_owned()));
        }
        proofs.push((file.name, file.model, vars));
    }
    let authority = entra.authority_host();
    let configs = tenant_client_configs(proofs, move |tenant, client, vars, cache| {
        let env = Env::from_pairs(
            [
                ("AZURE_TENANT_ID", tenant.to_owned()),
                ("AZURE_CLIENT_ID", client.to_owned()),
                ("AZURE_AUTHORITY_HOST", authority.clone()),
            ]
            .into_iter()
            .chain(vars.iter().cloned()),
        );
        environment_credential(&env, cache)
    });
    check_every_pair(&configs, &mock_entra_upstream(&[&entra]), &clock).await;
}

#[tokio::test]
async fn credentials_of_different_kinds_never_share_a_token_for_the_same_tenant_and_client() {
    let clock = ManualClock::new(T0);
    let entra = mock_entra(&clock).await;
    let (_, dir) = certificates("kinds");
    let (tenant, client, secret) = (TENANTS[0].1, CLIENTS[0].1, SECRETS[0].1);
    let authority = entra.authority_host();
    // The workload identity's token file holds the very secret the others use.
    let token_file = dir.join("token");
    std::fs::write(&token_file, secret).unwrap();
    let pem = dir.join("client.pem").display().to_string();
    let env = |proof: (&'static str, String)| {
        Env::from_pairs([
            ("AZURE_TENANT_ID", tenant.to_owned()),
            ("AZURE_CLIENT_ID", client.to_owned()),
            ("AZURE_AUTHORITY_HOST", authority.clone()),
            proof,
        ])
    };
    let (secret_env, cert_env) = (
        env(("AZURE_CLIENT_SECRET", secret.to_owned())),
        env(("AZURE_CLIENT_CERTIFICATE_PATH", pem.clone())),
    );
    let (a1, a2, a3) = (authority.clone(), authority.clone(), authority.clone());
    let same_secret =
        move |cache: &TokenCache| secret_credential((tenant, client, secret), &a1, cache);
    let configs = vec![
        Config::new("ClientSecretCredential", "secret", same_secret.clone()),
        Config::new("another ClientSecretCredential", "secret", same_secret),
        Config::new("ClientCertificateCredential", "certificate", move |cache| {
            Arc::new(
                ClientCertificateCredential::builder()
                    .tenant_id(tenant)
                    .client_id(client)
                    .certificate_path(pem.clone())
                    .authority_host(a2.clone())
                    .env(Env::empty())
                    .cache(cache.clone())
                    .build()
                    .unwrap(),
            )
        }),
        Config::new("WorkloadIdentityCredential", "workload", move |cache| {
            workload_credential((tenant, client, &token_file), &a3, cache)
        }),
        Config::new(
            "EnvironmentCredential (secret)",
            "env secret",
            move |cache| environment_credential(&secret_env, cache),
        ),
        Config::new(
            "EnvironmentCredential (certificate)",
            "env certificate",
            move |cache| environment_credential(&cert_env, cache),
        ),
    ];
    check_every_pair(&configs, &mock_entra_upstream(&[&entra]), &clock).await;
}

#[tokio::test]
async fn federated_credentials_never_share_a_token_across_callbacks_connections_access_tokens_or_audiences()
 {
    let clock = ManualClock::new(T0);
    let entra = mock_entra(&clock).await;
    let devops = MockAzureDevOpsOidc::start().await;
    let github = MockGitHubOidc::start().await;
    let (tenant, client, secret) = (TENANTS[0].1, CLIENTS[0].1, SECRETS[0].1);
    let authority = entra.authority_host();
    let mut configs = Vec::new();
    {
        let authority = authority.clone();
        configs.push(Config::new(
            "ClientSecretCredential",
            "secret",
            move |cache| secret_credential((tenant, client, secret), &authority, cache),
        ));
    }
    // Each build sets a callback of its own (returning the same secret): never shared.
    for label in ["callback one", "callback two"] {
        let authority = authority.clone();
        configs.push(Config::new(label, label, move |cache| {
            Arc::new(
                ClientAssertionCredential::builder()
                    .tenant_id(tenant)
                    .client_id(client)
                    .assertion(move || async move { Ok::<_, std::io::Error>(secret) })
                    .authority_host(authority.clone())
                    .env(Env::empty())
                    .cache(cache.clone())
                    .build()
                    .unwrap(),
            )
        }));
    }
    // Pipelines: equal service connection and access token share, any difference does not.
    for (label, model, connection, access_token) in [
        (
            "pipelines x1 t1",
            "pipelines x1 t1",
            "x1",
            "access-token-one",
        ),
        (
            "pipelines x1 t1 again",
            "pipelines x1 t1",
            "x1",
            "access-token-one",
        ),
        (
            "pipelines x1 t2",
            "pipelines x1 t2",
            "x1",
            "access-token-two",
        ),
        (
            "pipelines x2 t1",
            "pipelines x2 t1",
            "x2",
            "access-token-one",
        ),
    ] {
        let (authority, url) = (authority.clone(), devops.request_url());
        configs.push(Config::new(label, model, move |cache| {
            Arc::new(
                AzurePipelinesCredential::builder()
                    .tenant_id(tenant)
                    .client_id(client)
                    .service_connection_id(connection)
                    .system_access_token(access_token)
                    .authority_host(authority.clone())
                    .env(Env::from_pairs([("SYSTEM_OIDCREQUESTURI", url.clone())]))
                    .cache(cache.clone())
                    .build()
                    .unwrap(),
            )
        }));
    }
    // GitHub: equal request token and audience share, any difference does not.
    for (label, model, request_token, audience) in [
        ("github r1", "github r1 public", "request-token-one", None),
        (
            "github r1 again",
            "github r1 public",
            "request-token-one",
            None,
        ),
        ("github r2", "github r2 public", "request-token-two", None),
        (
            "github r1 usgov",
            "github r1 usgov",
            "request-token-one",
            Some("api://AzureADTokenExchangeUSGov"),
        ),
    ] {
        let env = Env::from_pairs([
            ("ACTIONS_ID_TOKEN_REQUEST_URL", github.request_url()),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", request_token.to_owned()),
            ("AZURE_TENANT_ID", tenant.to_owned()),
            ("AZURE_CLIENT_ID", client.to_owned()),
            ("AZURE_AUTHORITY_HOST", authority.clone()),
        ]);
        configs.push(Config::new(label, model, move |cache| {
            let mut builder = GitHubActionsCredential::builder()
                .env(env.clone())
                .cache(cache.clone());
            if let Some(audience) = audience {
                builder = builder.audience(audience);
            }
            Arc::new(builder.build().unwrap())
        }));
    }
    check_every_pair(&configs, &mock_entra_upstream(&[&entra]), &clock).await;
}

#[tokio::test]
async fn a_token_for_one_requested_tenant_is_never_served_for_another() {
    let clock = ManualClock::new(T0);
    let entra = mock_entra(&clock).await;
    let upstream = mock_entra_upstream(&[&entra]);
    let credential = ClientSecretCredential::builder()
        .tenant_id(TENANTS[0].1)
        .client_id(CLIENTS[0].1)
        .secret(SECRETS[0].1)
        .authority_host(entra.authority_host())
        .additionally_allowed_tenants(["*"])
        .env(Env::empty())
        .cache(cache::deterministic(clock.clock()))
        .build()
        .unwrap();
    // (requested tenant, the tenant the token is for: own tenant, upper case included, is "a").
    let requests = [
        (None, "a"),
        (Some(TENANTS[1].1), "a"),
        (Some(TENANTS[0].1), "a"),
        (Some(TENANTS[2].1), "b"),
        (Some("cccccccc-0000-4000-8000-00000000000c"), "c"),
    ];
    let mut seen: BTreeMap<&str, AccessToken> = BTreeMap::new();
    for round in 0..2 {
        for (requested, tenant) in requests {
            let options = requested.map(|t| TokenRequestOptions::default().with_tenant_id(t));
            (upstream.prime)();
            let before = entra.request_count();
            let token = credential.get_token(SCOPE, options.as_ref()).await.unwrap();
            let fetched = entra.request_count() - before;
            match seen.get(tenant) {
                Some(earlier) => {
                    assert_eq!(fetched, 0, "round {round}: {requested:?} fetched again");
                    assert!(
                        earlier.token() == token.token(),
                        "round {round}: {requested:?}"
                    );
                }
                None => {
                    assert_eq!(
                        fetched, 1,
                        "{requested:?} was served another tenant's token"
                    );
                    assert!(
                        seen.values().all(|t| t.token() != token.token()),
                        "{requested:?} got another tenant's token"
                    );
                    let path = entra.requests().last().unwrap().path().to_ascii_lowercase();
                    assert!(
                        path.starts_with(&format!("/{}-", tenant.repeat(8))),
                        "{path}"
                    );
                    seen.insert(tenant, token);
                }
            }
        }
    }
}

#[tokio::test]
async fn a_credential_never_gets_a_cached_token_for_a_tenant_it_may_not_ask_for() {
    let clock = ManualClock::new(T0);
    let entra = mock_entra(&clock).await;
    let cache = cache::deterministic(clock.clock());
    // Three credentials of one identity (they share a partition) with other tenant rules.
    let build = |allowed: &[&str], env: Env| {
        ClientSecretCredential::builder()
            .tenant_id(TENANTS[0].1)
            .client_id(CLIENTS[0].1)
            .secret(SECRETS[0].1)
            .authority_host(entra.authority_host())
            .additionally_allowed_tenants(allowed.iter().copied())
            .env(env)
            .cache(cache.clone())
            .build()
            .unwrap()
    };
    let any_tenant = build(&["*"], Env::empty());
    let own_tenant_only = build(&[], Env::empty());
    let pinned = build(
        &["*"],
        Env::empty().with("AZURE_IDENTITY_DISABLE_MULTITENANTAUTH", "true"),
    );
    let tenant_b = TokenRequestOptions::default().with_tenant_id(TENANTS[2].1);
    let token_b = any_tenant.get_token(SCOPE, Some(&tenant_b)).await.unwrap();
    assert_eq!(entra.request_count(), 1);

    let refused = own_tenant_only
        .get_token(SCOPE, Some(&tenant_b))
        .await
        .unwrap_err();
    assert!(refused.is_invalid_input(), "{refused}");
    assert_eq!(entra.request_count(), 1);

    let own = pinned.get_token(SCOPE, Some(&tenant_b)).await.unwrap();
    assert!(
        own.token() != token_b.token(),
        "the pinned credential got tenant b's token"
    );
    assert_eq!(entra.request_count(), 2);
    assert!(
        entra.requests()[1]
            .path()
            .starts_with(&format!("/{}/", TENANTS[0].1)),
        "the pinned credential asked for {}",
        entra.requests()[1].path()
    );
}
