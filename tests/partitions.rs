//! Partition keys: a credential never gets a token cached for another identity.
//!
//! Every credential puts its token source behind a [`TokenCache`] under a [`CacheIdentity`]: the
//! source kind, the named parts that decide who a token is for (authority, endpoint, tenant,
//! client id, user-assigned id, config directory, …) and a digest of the secret that gives the
//! right to it (client secret, certificate key, token file, identity header). Credentials with
//! equal identities share tokens on purpose: N instances of one identity make one request, and
//! the process-wide cache is shared by default. So an identity that leaves out something that
//! matters hands one identity's token to another — a service principal acting with another's
//! secret, a pod with another user-assigned identity, a caller with another tenant — silently,
//! and only in processes that build more than one credential. That is a security bug, and this
//! file is the property that rules it out.
//!
//! **The property.** For every credential kind that caches, configurations are generated from
//! small value sets (every combination) and built on one isolated cache, as they would share the
//! process-wide one. For every ordered pair (A, B), once A has a token, B asks for the same scope:
//!
//! - When A and B differ in anything that decides the identity or the right to it, B makes its
//!   own upstream request (the mock Entra / IMDS / stand-in CLI sees one more), B's token is not
//!   A's, and A still gets its own afterwards.
//! - When they are equal up to what must not matter, B gets A's token with no request. What must
//!   not matter: the case of an Entra tenant (tenant ids are GUIDs or domain names, both
//!   case-insensitive to Entra, and the Entra credentials compare them so), a trailing slash on
//!   the authority host, the file format of one certificate and key (PEM, PKCS#1, PKCS#12, with
//!   or without the chain), whether an id or directory came from the builder, `AZURE_CLIENT_ID`
//!   or `HOME`.
//!
//! All pairs are checked at once in rounds (see `check_every_pair`): every configuration asks
//! in turn, forwards, backwards and in two seeded shuffles, then each asks again. That is a few
//! requests per configuration instead of a few per pair, and each B meets every earlier A in the
//! cache, as in a process that holds many credentials.
//!
//! Choices this pins on purpose (conservative: never a wrong token, at worst one more request):
//! user-assigned ids and the developer tools' tenants are compared exactly, so an upper-case
//! spelling is another partition; a workload identity is keyed by its token file's path, so two
//! paths never share; a `ClientAssertionCredential` is keyed by its callback, so two callbacks
//! never share (clones do); Azure Pipelines and GitHub Actions credentials are keyed by the
//! digest of their access / request token; a `UserTokenCredential` never shares at all (tests/user_token.rs). Entra client ids are compared
//! exactly too (not exercised here: the value sets spell them one way).
//!
//! And on [`CacheIdentity`] itself: two identities are equal exactly when source, parts and the
//! sequence of secrets are, and no bytes can move across a part or secret boundary to forge an
//! equal one.

mod support;
use support::cache;
use support::fixtures;
use support::tls::tls_front;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use azure_credentials::system::{
    Clock, Command, Env, Executor, Fs, ManualClock, Output, ProcessError, RetryPolicy,
};
use azure_credentials::testing::{
    MockAzureDevOpsOidc, MockEntra, MockEntraReply, MockGitHubOidc, MockManagedIdentity, MockReply,
};
use azure_credentials::{
    AccessToken, AzureCliCredential, AzureDeveloperCliCredential, AzurePipelinesCredential,
    CacheIdentity, ClientAssertionCredential, ClientCertificateCredential, ClientSecretCredential,
    EnvironmentCredential, GitHubActionsCredential, ManagedIdentityCredential, TokenCache,
    TokenCredential, TokenRequestOptions, WorkloadIdentityCredential,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;

const SCOPE: &[&str] = &["https://vault.azure.net/.default"];
const T0: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);
/// Longer than any token the mocks and stand-ins issue.
const TOKEN_LIFETIME: Duration = Duration::from_secs(2 * 3600);

/// Tenant `a`, the same tenant in upper case, and tenant `b`.
const TENANTS: [(&str, &str); 3] = [
    ("a", "aaaaaaaa-0000-4000-8000-00000000000a"),
    ("A", "AAAAAAAA-0000-4000-8000-00000000000A"),
    ("b", "bbbbbbbb-0000-4000-8000-00000000000b"),
];
const CLIENTS: [(&str, &str); 2] = [
    ("c1", "c1c1c1c1-0000-4000-8000-0000000000c1"),
    ("c2", "c2c2c2c2-0000-4000-8000-0000000000c2"),
];
const SECRETS: [(&str, &str); 2] = [("s1", "client-secret-one"), ("s2", "client-secret-two")];

// ---------------------------------------------------------------------------------------------
// The pair check, shared by every credential kind.

/// One configuration of a credential: a label for messages, the model of its identity (equal
/// models must share tokens, different ones never), and how to build it on a given cache.
struct Config {
    label: String,
    model: String,
    build: Build,
}

type Build = Box<dyn Fn(&TokenCache) -> Arc<dyn TokenCredential>>;

impl Config {
    fn new(
        label: impl Into<String>,
        model: impl Into<String>,
        build: impl Fn(&TokenCache) -> Arc<dyn TokenCredential> + 'static,
    ) -> Config {
        Config {
            label: label.into(),
            model: model.into(),
            build: Box::new(build),
        }
    }
}

/// The configurations for every tenant × client × proof: labelled "{tenant} {client} {proof}",
/// modelled "{tenant model} {client} {proof model}" (tenant labels differ only in case where they
/// name one tenant); `build` makes the credential from the tenant id, the client id, the proof's
/// value and the cache.
fn tenant_client_configs<T: 'static>(
    proofs: Vec<(impl Display, impl Display, T)>,
    build: impl Fn(&'static str, &'static str, &T, &TokenCache) -> Arc<dyn TokenCredential> + 'static,
) -> Vec<Config> {
    let build = Rc::new(build);
    let proofs: Vec<_> = proofs
        .into_iter()
        .map(|(l, m, v)| (l, m, Rc::new(v)))
        .collect();
    let mut configs = Vec::new();
    for (tenant_label, tenant) in TENANTS {
        for (client_label, client) in CLIENTS {
            for (proof_label, proof_model, value) in &proofs {
                let (build, value) = (build.clone(), value.clone());
                configs.push(Config::new(
                    format!("{tenant_label} {client_label} {proof_label}"),
                    format!(
                        "{} {client_label} {proof_model}",
                        tenant_label.to_lowercase()
                    ),
                    move |cache| build(tenant, client, &value, cache),
                ));
            }
        }
    }
    configs
}

/// What the credentials under test talk to: `requests` counts what reached it; `prime` is
/// called before every `get_token` (mocks queue a fresh, globally unique token there, so that
/// tokens from two mock servers can never look alike).
struct Upstream<'a> {
    requests: Box<dyn Fn() -> usize + 'a>,
    prime: Box<dyn Fn() + 'a>,
}

/// A token value no other call of this process has produced.
fn unique_token(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Checks the property for every ordered pair of `configs` and fails with every break at once.
///
/// Every configuration is built once, on one cache (as credentials share the process-wide
/// one). Then, in rounds, each asks for a token in turn — forwards, backwards and in two seeded
/// shuffles, so that for every ordered pair (A, B) some round serves A before B — and then each
/// asks again. A configuration's first call in a round makes a request exactly when no equal
/// one came before it, and gets exactly the token of an equal one that did; its second call
/// makes none and gets its own token back. Before each round the clock moves past the lifetime
/// of every token cached so far, so each round starts with nothing valid cached.
async fn check_every_pair(configs: &[Config], upstream: &Upstream<'_>, clock: &ManualClock) {
    let models: BTreeSet<&str> = configs.iter().map(|c| c.model.as_str()).collect();
    assert!(
        models.len() > 1 && models.len() < configs.len(),
        "the value sets must give both equal and different identities"
    );
    let cache = cache::deterministic(clock.clock());
    let credentials: Vec<_> = configs.iter().map(|c| (c.build)(&cache)).collect();
    let forwards: Vec<usize> = (0..configs.len()).collect();
    let mut rng = fastrand::Rng::with_seed(0x9a27_1710);
    let mut orders = vec![forwards.clone(), forwards.iter().rev().copied().collect()];
    for _ in 0..2 {
        let mut shuffled = forwards.clone();
        rng.shuffle(&mut shuffled);
        orders.push(shuffled);
    }
    let mut broken = Vec::new();
    for (round, order) in orders.iter().enumerate() {
        clock.advance(TOKEN_LIFETIME + TOKEN_LIFETIME);
        let mut tokens: Vec<Option<AccessToken>> = vec![None; configs.len()];
        for &b in order {
            let (token, requests) = match get(&credentials[b], upstream).await {
                Ok(got) => got,
                Err(e) => {
                    broken.push(format!("round {round}: {} failed: {e}", configs[b].label));
                    continue;
                }
            };
            let equal_before = order
                .iter()
                .take_while(|&&a| a != b)
                .find(|&&a| configs[a].model == configs[b].model);
            let got_from = (0..configs.len()).find(|&a| {
                tokens[a]
                    .as_ref()
                    .is_some_and(|t| t.token() == token.token())
            });
            let why = match (got_from, equal_before) {
                (Some(a), _) if configs[a].model != configs[b].model => {
                    Some((a, "B got A's token".to_owned()))
                }
                (Some(_), Some(_)) if requests == 0 => None,
                (_, Some(&a)) => Some((
                    a,
                    format!("equal identities, yet B made {requests} requests"),
                )),
                (None, None) if requests == 1 => None,
                (_, None) => Some((b, format!("B made {requests} requests, not 1"))),
            };
            if let Some((a, why)) = why {
                broken.push(format!(
                    "round {round}: A = {}, B = {}: {why}",
                    configs[a].label, configs[b].label
                ));
            }
            tokens[b] = Some(token);
        }
        for &a in order {
            let again = get(&credentials[a], upstream).await;
            let kept = match (&again, &tokens[a]) {
                (Ok((token, 0)), Some(first)) => token.token() == first.token(),
                _ => false,
            };
            if !kept {
                broken.push(format!(
                    "round {round}: {} did not get its own cached token back",
                    configs[a].label
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "{} breaks of the partition property over {} configurations:\n{}",
        broken.len(),
        configs.len(),
        broken
            .iter()
            .take(25)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// One `get_token` for the scope, and how many upstream requests it made.
async fn get(
    credential: &Arc<dyn TokenCredential>,
    upstream: &Upstream<'_>,
) -> Result<(AccessToken, usize), azure_credentials::Error> {
    (upstream.prime)();
    let before = (upstream.requests)();
    let token = credential.get_token(SCOPE, None).await?;
    Ok((token, (upstream.requests)() - before))
}

/// `mocks` as one upstream: the requests `count` counts on each; `prime` queues a token on each.
fn mocks_upstream<'a, M>(mocks: &[&'a M], count: fn(&M) -> usize, prime: fn(&M)) -> Upstream<'a> {
    let (counted, primed) = (mocks.to_vec(), mocks.to_vec());
    Upstream {
        requests: Box::new(move || counted.iter().map(|m| count(m)).sum()),
        prime: Box::new(move || primed.iter().for_each(|m| prime(m))),
    }
}

fn mock_entra_upstream<'a>(mocks: &[&'a MockEntra]) -> Upstream<'a> {
    mocks_upstream(mocks, MockEntra::request_count, |mock| {
        mock.push(MockEntraReply::token(&unique_token("entra-token")))
    })
}

async fn mock_entra(clock: &ManualClock) -> MockEntra {
    let entra = MockEntra::start().await;
    entra.set_clock(clock.clock());
    entra
}

// ---------------------------------------------------------------------------------------------
// CacheIdentity itself.

/// Source, parts by name, and the secrets in the order given.
type IdentityModel = (String, BTreeMap<String, String>, Vec<Vec<u8>>);

/// A random identity and its model: source, parts (later values of a name replace earlier
/// ones) and the sequence of secrets, from value sets small enough that equal ones turn up.
fn random_identity(rng: &mut fastrand::Rng) -> (CacheIdentity, IdentityModel) {
    const SOURCES: [&str; 2] = ["ClientSecretCredential", "ManagedIdentityCredential"];
    const NAMES: [&str; 3] = ["tenant", "client_id", "tenantclient_id"];
    const VALUES: [&str; 5] = ["", "a", "ab", "b", "bc"];
    const SECRET_BYTES: [&[u8]; 5] = [b"", b"a", b"ab", b"b", b"\0"];
    let source = SOURCES[rng.usize(..SOURCES.len())];
    let mut identity = CacheIdentity::new(source);
    let mut parts = BTreeMap::new();
    let mut secrets = Vec::new();
    for _ in 0..rng.usize(0..=4) {
        if rng.bool() {
            let (name, value) = (NAMES[rng.usize(..3)], VALUES[rng.usize(..5)]);
            identity = identity.with(name, value);
            parts.insert(name.to_owned(), value.to_owned());
        } else if secrets.len() < 2 {
            let secret = SECRET_BYTES[rng.usize(..5)];
            identity = identity.with_secret(secret);
            secrets.push(secret.to_vec());
        }
    }
    (identity, (source.to_owned(), parts, secrets))
}

#[test]
fn identities_are_equal_exactly_when_source_parts_and_secrets_are() {
    let mut rng = fastrand::Rng::with_seed(0x5eed_1d3a);
    let generated: Vec<_> = (0..600).map(|_| random_identity(&mut rng)).collect();
    let hasher = RandomState::new();
    let (mut equal_pairs, mut different_pairs) = (0, 0);
    for (x, model_x) in &generated {
        for (y, model_y) in &generated {
            let same = model_x == model_y;
            assert_eq!(
                x == y,
                same,
                "{x:?} vs {y:?}: models {model_x:?} vs {model_y:?}"
            );
            if same {
                // The cache is a HashMap keyed by identity: equal must hash equal.
                assert_eq!(hasher.hash_one(x), hasher.hash_one(y));
                equal_pairs += 1;
            } else {
                different_pairs += 1;
            }
        }
    }
    assert!(equal_pairs > 2 * generated.len() && different_pairs > 0);
}

#[test]
fn bytes_cannot_move_across_a_part_or_secret_boundary_to_forge_an_identity() {
    let base = || CacheIdentity::new("ClientSecretCredential");
    let forgeries = [
        // Values shifted between two parts.
        (
            base().with("x", "ab").with("y", "c"),
            base().with("x", "a").with("y", "bc"),
        ),
        // A name's end shifted into its value.
        (base().with("xa", "b"), base().with("x", "ab")),
        // One part or two.
        (base().with("x", "a").with("y", ""), base().with("x", "a")),
        // The source's end shifted into a part.
        (
            CacheIdentity::new("Ax").with("", ""),
            CacheIdentity::new("A").with("x", ""),
        ),
        // A secret in two pieces, or whole.
        (
            base().with_secret(b"a").with_secret(b"b"),
            base().with_secret(b"ab"),
        ),
        // The same pieces in another order.
        (
            base().with_secret(b"a").with_secret(b"b"),
            base().with_secret(b"b").with_secret(b"a"),
        ),
        // An empty secret, or none; an empty secret twice, or once.
        (base().with_secret(b""), base()),
        (
            base().with_secret(b"").with_secret(b""),
            base().with_secret(b""),
        ),
        // A secret, or a part with the same bytes.
        (base().with_secret(b"s1"), base().with("secret", "s1")),
    ];
    for (x, y) in &forgeries {
        assert_ne!(x, y, "{x:?} must not equal {y:?}");
    }
    // What must not matter: the order parts are added in.
    assert_eq!(
        base().with("x", "a").with("y", "b").with_secret(b"s"),
        base().with_secret(b"s").with("y", "b").with("x", "a")
    );
}

#[test]
fn an_identity_never_prints_its_secret() {
    let identity = CacheIdentity::new("ClientSecretCredential")
        .with("client_id", "c1")
        .with_secret(b"client-secret-one");
    let debug = format!("{identity:?}");
    assert!(!debug.contains("client-secret-one"), "{debug}");
    assert!(
        debug.contains("c1") && debug.contains("<redacted>"),
        "{debug}"
    );
}

// ---------------------------------------------------------------------------------------------
// Entra credentials.

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

// ---------------------------------------------------------------------------------------------
// Managed identity.

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

// ---------------------------------------------------------------------------------------------
// Developer tools.

/// A stand-in for `az` / `azd`: each run prints a new token, valid for an hour by `clock`, for
/// the tenant on its command line (or a default one), and runs are counted.
#[derive(Debug)]
struct StandInCli {
    runs: AtomicUsize,
    azd: bool,
    clock: Clock,
}

impl StandInCli {
    fn new(azd: bool, clock: &ManualClock) -> Arc<StandInCli> {
        Arc::new(StandInCli {
            runs: AtomicUsize::new(0),
            azd,
            clock: clock.clock(),
        })
    }
}

#[async_trait]
impl Executor for StandInCli {
    async fn run(&self, command: &Command) -> Result<Output, ProcessError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let args: Vec<String> = command
            .get_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let tenant = args
            .windows(2)
            .find(|w| w[0] == "--tenant" || w[0] == "--tenant-id")
            .map_or("dddddddd-0000-4000-8000-00000000000d", |w| w[1].as_str());
        let token = unique_token("cli-token");
        let expires_on = self.clock.now() + time::Duration::HOUR;
        let stdout = if self.azd {
            let expires_on = expires_on.format(&Rfc3339).unwrap();
            format!(r#"{{"token": "{token}", "expiresOn": "{expires_on}"}}"#)
        } else {
            format!(
                r#"{{"accessToken": "{token}", "expires_on": {}, "tenant": "{tenant}", "tokenType": "Bearer"}}"#,
                expires_on.unix_timestamp()
            )
        };
        Ok(Output::new(Some(0), stdout.into_bytes(), Vec::new()))
    }
}

fn cli_upstream(cli: &StandInCli) -> Upstream<'_> {
    Upstream {
        requests: Box::new(|| cli.runs.load(Ordering::SeqCst)),
        prime: Box::new(|| {}),
    }
}

/// A developer tool's configuration directory, named directly or through `HOME`:
/// (label, model, variable, value).
fn config_dirs(variable: &'static str, dir: &str) -> [(String, String, &'static str, String); 3] {
    [
        (
            format!("{variable}=/home/one/{dir}"),
            format!("/home/one/{dir}"),
            variable,
            format!("/home/one/{dir}"),
        ),
        (
            "HOME=/home/one".to_owned(),
            format!("/home/one/{dir}"),
            "HOME",
            "/home/one".to_owned(),
        ),
        (
            format!("{variable}=/home/two/{dir}"),
            format!("/home/two/{dir}"),
            variable,
            format!("/home/two/{dir}"),
        ),
    ]
}

fn tool_env(tool: &str, (variable, value): (&str, &str)) -> Env {
    let bin = fixtures::path(tool).join("bin");
    Env::from_pairs([
        ("PATH", bin.display().to_string()),
        (variable, value.to_owned()),
    ])
}

/// The configurations of a developer tool for every configuration directory × choice: labelled
/// "{dir} {choice}", modelled "{dir model} {choice}"; `build` makes the credential from the
/// environment naming the directory (and the stand-in `tool`'s bin on PATH), the choice's value
/// and the cache.
fn config_dir_configs<T: Copy + 'static>(
    tool: &str,
    (variable, dir): (&'static str, &str),
    choices: &[(&'static str, T)],
    build: impl Fn(&Env, T, &TokenCache) -> Arc<dyn TokenCredential> + 'static,
) -> Vec<Config> {
    let build = Rc::new(build);
    let mut configs = Vec::new();
    for (dir_label, dir_model, variable, value) in config_dirs(variable, dir) {
        for &(label, choice) in choices {
            let (build, env) = (build.clone(), tool_env(tool, (variable, &value)));
            configs.push(Config::new(
                format!("{dir_label} {label}"),
                format!("{dir_model} {label}"),
                move |cache| build(&env, choice, cache),
            ));
        }
    }
    configs
}

#[tokio::test]
async fn an_azure_cli_credential_never_gets_the_token_of_another_tenant_subscription_or_config_dir()
{
    let clock = ManualClock::new(T0);
    let cli = StandInCli::new(false, &clock);
    // Tenants and subscriptions are compared exactly (see the file's header).
    // (label, (tenant, subscription))
    let choices = [
        ("no tenant", (None, None)),
        ("tenant a", (Some(TENANTS[0].1), None)),
        ("tenant A", (Some(TENANTS[1].1), None)),
        ("tenant b", (Some(TENANTS[2].1), None)),
        ("subscription s1", (None, Some("Subscription One"))),
        ("subscription s2", (None, Some("Subscription Two"))),
    ];
    let dir = ("AZURE_CONFIG_DIR", ".azure");
    let stand_in = cli.clone();
    let configs = config_dir_configs("azure_cli", dir, &choices, move |env, choice, cache| {
        let (tenant, subscription) = choice;
        let mut builder = AzureCliCredential::builder()
            .env(env.clone())
            .fs(Fs::memory())
            .executor(stand_in.clone())
            .cache(cache.clone());
        if let Some(tenant) = tenant {
            builder = builder.tenant_id(tenant);
        }
        if let Some(subscription) = subscription {
            builder = builder.subscription(subscription);
        }
        Arc::new(builder.build().unwrap())
    });
    check_every_pair(&configs, &cli_upstream(&cli), &clock).await;
}

#[tokio::test]
async fn an_azure_developer_cli_credential_never_gets_the_token_of_another_tenant_or_config_dir() {
    let clock = ManualClock::new(T0);
    let azd = StandInCli::new(true, &clock);
    let tenants = [
        ("no tenant", None),
        ("tenant a", Some(TENANTS[0].1)),
        ("tenant A", Some(TENANTS[1].1)),
        ("tenant b", Some(TENANTS[2].1)),
    ];
    let dir = ("AZD_CONFIG_DIR", ".azd");
    let stand_in = azd.clone();
    let configs = config_dir_configs(
        "azure_developer_cli",
        dir,
        &tenants,
        move |env, tenant, cache| {
            let mut builder = AzureDeveloperCliCredential::builder()
                .env(env.clone())
                .fs(Fs::memory())
                .executor(stand_in.clone())
                .cache(cache.clone());
            if let Some(tenant) = tenant {
                builder = builder.tenant_id(tenant);
            }
            Arc::new(builder.build().unwrap())
        },
    );
    check_every_pair(&configs, &cli_upstream(&azd), &clock).await;
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
