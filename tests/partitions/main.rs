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

#[path = "../support/mod.rs"]
mod support;

// One file per credential family; the pair check and its helpers are here.
mod developer_tools;
mod entra;
mod managed_identity;
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
