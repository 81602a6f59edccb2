//! Crafted caches and configs in memory, and the property over random caches: the fast path
//! returns exactly the token MSAL would, or runs az.

use super::*;

// ---------------------------------------------------------------------------------------------
// Crafted caches and configs in memory.

const HOME_ID: &str = "4f5e6d7c-8b9a-4a1b-8c2d-3e4f5a6b7c8d.72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLI_CLIENT: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
const AUTHORITY_HOST: &str = "login.microsoftonline.com";
/// The tests' clock, 2030-01-01 00:00 UTC, in Unix seconds.
const NOW: i64 = 1_893_456_000;
const DIR: &str = "/home/dev/.azure";

/// An access token entry of az's `msal_token_cache.json`, as MSAL writes it (or not quite).
#[derive(Clone, Debug)]
struct At {
    secret: String,
    target: Option<String>,
    /// The JSON of `expires_on`: MSAL writes a string; crafted files may hold anything.
    expires_on: String,
    refresh_on: Option<String>,
    home_account_id: String,
    environment: String,
    client_id: String,
    realm: String,
    ext_cache_key: Option<String>,
    token_type: Option<String>,
    key_id: Option<String>,
    /// A key other than the one MSAL derives from the fields.
    key: Option<String>,
}

impl At {
    fn new(secret: &str, target: &str, expires_in: i64) -> At {
        At {
            secret: secret.to_owned(),
            target: Some(target.to_owned()),
            expires_on: format!("\"{}\"", NOW + expires_in),
            refresh_on: None,
            home_account_id: HOME_ID.to_owned(),
            environment: AUTHORITY_HOST.to_owned(),
            client_id: CLI_CLIENT.to_owned(),
            realm: TENANT_A.to_owned(),
            ext_cache_key: None,
            token_type: Some("Bearer".to_owned()),
            key_id: None,
            key: None,
        }
    }

    fn expires_on_json(mut self, json: &str) -> At {
        self.expires_on = json.to_owned();
        self
    }

    fn refresh_on(mut self, json: &str) -> At {
        self.refresh_on = Some(json.to_owned());
        self
    }

    fn ext_cache_key(mut self, key: &str) -> At {
        self.ext_cache_key = Some(key.to_owned());
        self
    }

    /// The key MSAL 1.39 files it under (`TokenCache.key_makers`): "atext" and the extended
    /// key for entries bound to a client session.
    fn key(&self) -> String {
        if let Some(key) = &self.key {
            return key.clone();
        }
        let mut parts = vec![
            self.home_account_id.as_str(),
            self.environment.as_str(),
            if self.ext_cache_key.is_some() {
                "atext"
            } else {
                "AccessToken"
            },
            self.client_id.as_str(),
            self.realm.as_str(),
            self.target.as_deref().unwrap_or(""),
        ];
        if let Some(ext) = &self.ext_cache_key {
            parts.push(ext);
        }
        parts.join("-").to_lowercase()
    }

    fn json(&self) -> String {
        let s = |v: &str| serde_json::to_string(v).unwrap();
        let mut fields = vec![
            format!("\"client_id\": {}", s(&self.client_id)),
            "\"credential_type\": \"AccessToken\"".to_owned(),
            format!("\"environment\": {}", s(&self.environment)),
            format!("\"expires_on\": {}", self.expires_on),
            format!("\"home_account_id\": {}", s(&self.home_account_id)),
            format!("\"realm\": {}", s(&self.realm)),
            format!("\"secret\": {}", s(&self.secret)),
        ];
        if let Some(target) = &self.target {
            fields.push(format!("\"target\": {}", s(target)));
        }
        if let Some(token_type) = &self.token_type {
            fields.push(format!("\"token_type\": {}", s(token_type)));
        }
        if let Some(refresh_on) = &self.refresh_on {
            fields.push(format!("\"refresh_on\": {refresh_on}"));
        }
        if let Some(ext) = &self.ext_cache_key {
            fields.push(format!("\"ext_cache_key\": {}", s(ext)));
        }
        if let Some(key_id) = &self.key_id {
            fields.push(format!("\"key_id\": {}", s(key_id)));
        }
        format!("{{{}}}", fields.join(", "))
    }
}

/// An `Account` entry.
#[derive(Clone, Debug)]
struct Account {
    home_account_id: String,
    environment: String,
    realm: String,
    username: String,
    authority_type: Option<String>,
}

impl Account {
    fn alice(realm: &str) -> Account {
        Account {
            home_account_id: HOME_ID.to_owned(),
            environment: AUTHORITY_HOST.to_owned(),
            realm: realm.to_owned(),
            username: "alice@contoso.com".to_owned(),
            authority_type: Some("MSSTS".to_owned()),
        }
    }

    fn key(&self) -> String {
        format!(
            "{}-{}-{}",
            self.home_account_id, self.environment, self.realm
        )
        .to_lowercase()
    }

    fn json(&self) -> String {
        let s = |v: &str| serde_json::to_string(v).unwrap();
        let mut fields = vec![
            format!("\"environment\": {}", s(&self.environment)),
            format!("\"home_account_id\": {}", s(&self.home_account_id)),
            format!("\"realm\": {}", s(&self.realm)),
            format!("\"username\": {}", s(&self.username)),
        ];
        if let Some(t) = &self.authority_type {
            fields.push(format!("\"authority_type\": {}", s(t)));
        }
        format!("{{{}}}", fields.join(", "))
    }
}

/// `msal_token_cache.json` with these entries, in this order.
fn cache_json(accounts: &[Account], tokens: &[At]) -> String {
    let s = |v: &str| serde_json::to_string(v).unwrap();
    let accounts: Vec<String> = accounts
        .iter()
        .map(|a| format!("{}: {}", s(&a.key()), a.json()))
        .collect();
    let tokens: Vec<String> = tokens
        .iter()
        .map(|t| format!("{}: {}", s(&t.key()), t.json()))
        .collect();
    format!(
        "{{\"AccessToken\": {{{}}}, \"Account\": {{{}}}}}",
        tokens.join(", "),
        accounts.join(", ")
    )
}

fn alice_everywhere() -> Vec<Account> {
    vec![Account::alice(TENANT_A), Account::alice(TENANT_B)]
}

/// A token cache of [`alice_everywhere`] holding `tokens`.
fn alices_cache(tokens: &[At]) -> String {
    cache_json(&alice_everywhere(), tokens)
}

/// A CLI config dir in memory at [`DIR`]: the `default` fixture's profile and the given files.
fn memory_dir(files: &[(&str, &str)]) -> Fs {
    let fs = Fs::memory();
    let profile = std::fs::read(config_dir("default").join("azureProfile.json")).unwrap();
    fs.write(Path::new(DIR).join("azureProfile.json"), profile);
    for (name, contents) in files {
        fs.write(Path::new(DIR).join(name), contents.as_bytes().to_vec());
    }
    fs
}

impl Setup {
    /// A credential over an in-memory config dir, with a fresh cache so that nothing is
    /// remembered between calls.
    fn memory_builder(&self, fs: Fs, vars: &[(&str, &str)]) -> AzureCliCredentialBuilder {
        let mut env = Env::from_pairs([
            ("PATH", fixtures::path("azure_cli/bin").to_str().unwrap()),
            ("AZURE_CONFIG_DIR", DIR),
        ]);
        for (k, v) in vars {
            env = env.with(*k, *v);
        }
        AzureCliCredential::builder()
            .env(env)
            .fs(fs)
            .executor(Arc::new(self.executor.clone()))
            .cache(cache::deterministic(self.clock.clock()))
    }

    /// The token for `scope` over an in-memory config dir holding `files`, and whether az ran.
    async fn answer(
        &self,
        files: &[(&str, &str)],
        vars: &[(&str, &str)],
        scope: &str,
    ) -> (String, bool) {
        self.token(self.memory_builder(memory_dir(files), vars), scope)
            .await
    }

    /// [`Setup::answer`] over a config dir holding only MSAL's token cache, `cache`.
    async fn answer_from_cache(&self, cache: &str, scope: &str) -> (String, bool) {
        self.answer(&[("msal_token_cache.json", cache)], &[], scope)
            .await
    }
}

#[tokio::test]
async fn absurd_expiry_numbers_run_az_instead_of_overflowing() {
    let s = Setup::new();
    let min = "\"-9223372036854775808\"";
    let max = "\"9223372036854775807\"";
    for (tokens, why) in [
        (
            vec![At::new("exact-min", ARM, 0).expires_on_json(min)],
            "the exact entry expires at i64::MIN",
        ),
        (
            vec![
                At::new(
                    "containing-min",
                    &format!("https://management.azure.com/user_impersonation {ARM}"),
                    0,
                )
                .expires_on_json(min),
            ],
            "a containing entry expires at i64::MIN",
        ),
        (
            vec![At::new("exact-max", ARM, 0).expires_on_json(max)],
            "the exact entry expires after the year 9999",
        ),
        (
            vec![At::new("exact-huge", ARM, 0).expires_on_json("\"99999999999999999999\"")],
            "beyond 64 bits",
        ),
        (
            vec![At::new("exact-refresh-min", ARM, 3600).refresh_on(min)],
            "refresh_on at i64::MIN: MSAL refreshes first",
        ),
        (
            vec![At::new("exact-number-min", ARM, 0).expires_on_json("-9223372036854775808")],
            "expires_on as a JSON number",
        ),
    ] {
        let cache = alices_cache(&tokens);
        let (token, ran) = s.answer_from_cache(&cache, ARM).await;
        assert!(ran && token == FROM_AZ, "{why}: {token}");
    }
    // A refresh_on far in the future is no reason to refresh: the token is served.
    let cache = alices_cache(&[At::new("exact-refresh-max", ARM, 3600).refresh_on(max)]);
    assert_eq!(
        s.answer_from_cache(&cache, ARM).await,
        ("exact-refresh-max".to_owned(), false)
    );
}

#[tokio::test]
async fn a_token_bound_to_a_client_session_is_never_served() {
    let s = Setup::new();
    let cosmos = "https://cosmos.azure.com/.default";
    let containing = format!("https://cosmos.azure.com/user_impersonation {cosmos}");
    let mut crafted = At::new("bound-exact", cosmos, 3600).ext_cache_key("a1b2c3");
    crafted.key = Some(At::new("", cosmos, 0).key());
    let cases = [
        (
            "the only token containing the scope is bound to a client session (MSAL skips it)",
            vec![At::new("bound", &containing, 3600).ext_cache_key("a1b2c3")],
            (FROM_AZ, true),
        ),
        (
            "a bound token with exactly the scope, under the plain key (a crafted file): uncertain",
            vec![crafted],
            (FROM_AZ, true),
        ),
        (
            "next to a bound token, the plain one is served",
            vec![
                At::new("bound", &containing, 3600).ext_cache_key("a1b2c3"),
                At::new("plain", &containing, 3000),
            ],
            ("plain", false),
        ),
    ];
    for (case, tokens, (token, ran)) in cases {
        assert_eq!(
            s.answer_from_cache(&alices_cache(&tokens), cosmos).await,
            (token.to_owned(), ran),
            "{case}"
        );
    }
}

#[tokio::test]
async fn an_agent_session_runs_az() {
    let s = Setup::new();
    let arm = "https://management.azure.com/.default";
    let agent = s.builder_with("default", &[("COPILOT_AGENT_SESSION_ID", "session-1")]);
    assert_eq!(s.token(agent, arm).await, (FROM_AZ.to_owned(), true));
    // az treats an empty value as no session.
    let s = Setup::new();
    let empty = s.builder_with("default", &[("COPILOT_AGENT_SESSION_ID", "")]);
    assert_eq!(
        s.token(empty, arm).await,
        ("fixture-cli-token-arm-exact".to_owned(), false)
    );
}

#[tokio::test]
async fn a_config_az_cannot_read_runs_az() {
    let s = Setup::new();
    let cache = alices_cache(&[At::new("cached", ARM, 3600)]);
    let cache = ("msal_token_cache.json", cache.as_str());
    // Each of these makes az fail at start-up, or changes where its tokens are.
    for (config, why) in [
        (
            "[core]\noutput = json\n[core]\nonly_show_errors = false\n",
            "a repeated section",
        ),
        (
            "[core]\noutput = json\nOutput = table\n",
            "a repeated option",
        ),
        (
            "output = json\n[core]\n",
            "an option before the first section",
        ),
        (
            "\u{feff}[core]\noutput = json\n",
            "a byte order mark (configparser reads it as text)",
        ),
        ("[core]\nthis is not an option\n", "a line that is neither"),
        ("[core]\n= json\n", "an option without a name"),
        ("[core]\noutput = 50%\n", "a % that interpolation rejects"),
        (
            "[DEFAULT]\nencrypt_token_cache = true\n[core]\noutput = json\n",
            "encryption inherited from DEFAULT",
        ),
        (
            "[core]\nencrypt_token_cache = false\n  true\n",
            "a multi-line boolean",
        ),
        (
            "[core]\nencrypt_token_cache = false ; plaintext\n",
            "an inline comment (part of the value)",
        ),
        ("[core]\nencrypt_token_cache =\n", "an empty boolean"),
        (
            "[core]\nonly_show_errors = sometimes\n",
            "another boolean az reads that is not one",
        ),
        (
            "[cloud]\nname = azurecloud\n",
            "a cloud name az does not know (names are case-sensitive)",
        ),
    ] {
        let (token, ran) = s.answer(&[cache, ("config", config)], &[], ARM).await;
        assert!(ran && token == FROM_AZ, "{why}: {token}");
    }
    for (vars, why) in [
        (
            &[("AZURE_CORE_ENCRYPT_TOKEN_CACHE", " false")][..],
            "a boolean variable az does not trim",
        ),
        (
            &[("AZURE_CORE_ENCRYPT_TOKEN_CACHE", "")],
            "an empty boolean variable",
        ),
        (
            &[("AZURE_CORE_COLLECT_TELEMETRY", "maybe")],
            "another boolean variable",
        ),
    ] {
        let (token, ran) = s.answer(&[cache], vars, ARM).await;
        assert!(ran && token == FROM_AZ, "{why}: {token}");
    }
    // clouds.config can move AzureCloud's authority elsewhere.
    for (clouds, why) in [
        (
            "[AzureCloud]\nendpoint_active_directory = https://login.contoso.example\n",
            "another authority",
        ),
        (
            "[DEFAULT]\nendpoint_active_directory = https://login.contoso.example\n",
            "another authority for every cloud",
        ),
        (
            "[AzureCloud]\nprofile = latest\n[AzureCloud]\nprofile = latest\n",
            "a repeated section",
        ),
        (
            "profile = latest\n",
            "no section header (az deletes the file)",
        ),
        (
            "[MyCloud]\nendpoint_active_directory = https://l\u{f6}gin.example\n",
            "not ASCII (az reads it in the locale's encoding)",
        ),
    ] {
        let (token, ran) = s
            .answer(&[cache, ("clouds.config", clouds)], &[], ARM)
            .await;
        assert!(ran && token == FROM_AZ, "{why}: {token}");
    }
    // What configparser reads as az's defaults is fine.
    for (name, contents) in [
        ("config", "[core]\r\nEncrypt_Token_Cache = FALSE\r\n"),
        (
            "config",
            "# az config\n[core]\n  output = json\n\n[cloud]\nname: AzureCloud\n[DEFAULT]\n",
        ),
        (
            "config",
            "[core]\nfirst_run = yes\n  (a continued value)\nencrypt_token_cache = off\n",
        ),
        (
            "clouds.config",
            "[AzureCloud]\nprofile = latest\n[MyCloud]\nendpoint_active_directory = https://x\n",
        ),
    ] {
        assert_eq!(
            s.answer(&[cache, (name, contents)], &[], ARM).await,
            ("cached".to_owned(), false),
            "{contents:?}"
        );
    }
}

#[tokio::test]
async fn an_expiring_exact_token_falls_through_to_the_one_other_usable_token() {
    let s = Setup::new();
    // The fixture: kusto's exact entry has 2 minutes left, a containing one an hour.
    assert_eq!(
        s.token(
            s.builder("default"),
            "https://kusto.kusto.windows.net/.default"
        )
        .await,
        ("fixture-cli-token-kusto-containing".to_owned(), false)
    );
    let containing = format!("https://management.azure.com/user_impersonation {ARM}");
    let other = format!("{ARM} https://management.azure.com/other");
    for (tokens, expected, why) in [
        (
            vec![
                At::new("exact-expiring", ARM, 299),
                At::new("expired", &containing, -10),
                At::new("usable", &other, 3600),
            ],
            Some("usable"),
            "one usable token besides the expiring exact one",
        ),
        (
            vec![
                At::new("exact-expiring", ARM, 120),
                At::new("usable-1", &containing, 3600),
                At::new("usable-2", &other, 3600),
            ],
            None,
            "two usable tokens: which one depends on the file's order",
        ),
        (
            vec![
                At::new("exact-expiring", ARM, 120),
                At::new("usable-aging", &containing, 3600).refresh_on(&format!("\"{}\"", NOW - 1)),
            ],
            None,
            "the usable token is due for refresh",
        ),
        (
            vec![
                At::new("exact-expiring", ARM, 120),
                At::new("also-expiring", &containing, 200),
            ],
            None,
            "nothing usable: az refreshes",
        ),
        (
            vec![
                At::new("exact-expiring", ARM, 120),
                At::new("usable", &containing, 3600),
                At::new("unreadable", "https://x/.default", 3600).expires_on_json("\"soon\""),
            ],
            None,
            "another entry's expiry that MSAL cannot read (it fails when it gets there)",
        ),
    ] {
        let cache = alices_cache(&tokens);
        let answer = s.answer_from_cache(&cache, ARM).await;
        match expected {
            Some(secret) => assert_eq!(answer, (secret.to_owned(), false), "{why}"),
            None => assert_eq!(answer, (FROM_AZ.to_owned(), true), "{why}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The property: over random caches, the fast path returns exactly the token MSAL would, or runs
// az. `msal` below is the reference: MSAL 1.39's rules transcribed as plainly as possible.

/// MSAL 1.39's answer without going to the network, over the entries in file order: `None`
/// when it would refresh (or az would fail). Python's semantics, step by step:
/// - `ClientApplication.get_accounts(username)`: accounts of the authority's host whose
///   `authority_type` is MSSTS or ADFS (a missing one raises), grouped by `home_account_id` (the
///   last entry speaks for its group), whose username matches case-insensitively; az needs
///   exactly one;
/// - `_acquire_token_silent_from_cache_and_possibly_refresh_it` over `TokenCache.search`: first
///   the entry under the key derived from the query (whatever its target or extended key), then
///   every other entry in order — expired ones (`int(expires_on) < now`, which raises for a
///   non-number) dropped, those not matching the query or not containing the scope or holding an
///   `ext_cache_key` skipped; the first with 5 minutes left is the answer, unless its
///   `refresh_on` has passed (then MSAL refreshes).
fn msal(accounts: &[Account], tokens: &[At], scope: &str, tenant: &str) -> Option<String> {
    // Accounts.
    let mut groups: Vec<(String, String)> = Vec::new();
    for account in accounts.iter().filter(|a| a.environment == AUTHORITY_HOST) {
        let interesting = match account.authority_type.as_deref() {
            None => return None, // KeyError
            Some(t) => t == "MSSTS" || t == "ADFS",
        };
        if !interesting {
            continue;
        }
        match groups
            .iter_mut()
            .find(|(h, _)| *h == account.home_account_id)
        {
            Some(group) => group.1 = account.username.clone(),
            None => groups.push((account.home_account_id.clone(), account.username.clone())),
        }
    }
    let matching: Vec<&(String, String)> = groups
        .iter()
        .filter(|(_, u)| u.to_lowercase() == "alice@contoso.com")
        .collect();
    let [(home, _)] = matching.as_slice() else {
        return None;
    };

    // Python's int() of the JSON values this test writes.
    let int = |json: &str| -> Option<i128> {
        let text = json.trim_matches('"').trim();
        text.parse::<i128>().ok()
    };
    let matches = |t: &At| {
        t.home_account_id == *home
            && t.environment == AUTHORITY_HOST
            && t.client_id == CLI_CLIENT
            && t.realm == tenant
    };
    let now = i128::from(NOW);
    // The loop body: Some(answer) ends the search (answer None: refresh), None goes on.
    let consider = |t: &At| -> Option<Option<String>> {
        let Some(expires_on) = int(&t.expires_on) else {
            return Some(None); // ValueError
        };
        if expires_on - now < 300 {
            return None;
        }
        if let Some(refresh_on) = &t.refresh_on {
            match int(refresh_on) {
                Some(r) if r >= now => {}
                _ => return Some(None),
            }
        }
        Some(Some(t.secret.clone()))
    };

    // The file as Python's json reads it: a key repeated keeps its first place and its last
    // value.
    let mut entries: Vec<(String, &At)> = Vec::new();
    for t in tokens {
        match entries.iter_mut().find(|(k, _)| *k == t.key()) {
            Some(entry) => entry.1 = t,
            None => entries.push((t.key(), t)),
        }
    }
    let key =
        format!("{home}-{AUTHORITY_HOST}-AccessToken-{CLI_CLIENT}-{tenant}-{scope}").to_lowercase();
    let preferred = entries.iter().find(|(k, _)| *k == key).map(|(_, t)| *t);
    if let Some(t) = preferred
        && matches(t)
        && let Some(answer) = consider(t)
    {
        return answer;
    }
    for (k, t) in &entries {
        let Some(expires_on) = int(&t.expires_on) else {
            return None; // ValueError
        };
        if expires_on < now || *k == key || !matches(t) {
            continue;
        }
        let contains = t
            .target
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
            .any(|s| s == scope);
        if !contains || t.ext_cache_key.is_some() {
            continue;
        }
        if let Some(answer) = consider(t) {
            return answer;
        }
    }
    None
}

/// A random cache for `scope`: a few accounts and tokens, most of them plausible.
fn random_cache(rng: &mut fastrand::Rng, scope: &str) -> (Vec<Account>, Vec<At>) {
    let mut accounts = alice_everywhere();
    match rng.u8(0..60) {
        0 => accounts.push(Account {
            home_account_id: "other-home".to_owned(),
            username: "ALICE@contoso.com".to_owned(),
            ..Account::alice(TENANT_A)
        }),
        1 => accounts[0].authority_type = None,
        2 => accounts.push(Account {
            authority_type: Some("MSA".to_owned()),
            home_account_id: "msa-home".to_owned(),
            ..Account::alice(TENANT_A)
        }),
        3 => accounts.push(Account {
            home_account_id: "bob-home".to_owned(),
            username: "bob@contoso.com".to_owned(),
            ..Account::alice(TENANT_A)
        }),
        4 => accounts[1].environment = "login.windows.net".to_owned(),
        _ => {}
    }
    if rng.bool() {
        accounts.reverse();
    }
    let resource = scope.trim_end_matches("/.default");
    let targets = [
        scope.to_owned(),
        scope.to_owned(),
        format!("{resource}/user_impersonation {scope}"),
        format!("{scope} {resource}/other"),
        format!("{resource}/user_impersonation\t{scope}"),
        "https://storage.azure.com/.default".to_owned(),
        scope.to_uppercase(),
        format!("{resource}//.default"),
        String::new(),
    ];
    let offsets = [-3600, -1, 0, 120, 299, 300, 301, 600, 3600, 7200];
    let n = rng.usize(0..7);
    let mut tokens = Vec::new();
    for i in 0..n {
        let mut t = At::new(
            &format!("secret-{i}"),
            &targets[rng.usize(..targets.len())],
            offsets[rng.usize(..offsets.len())],
        );
        if rng.u8(0..20) == 0 {
            t.target = None;
        }
        t.expires_on = match rng.u8(0..100) {
            0 => "\"-9223372036854775808\"".to_owned(),
            1 => "\"9223372036854775807\"".to_owned(),
            2 => "\"99999999999999999999\"".to_owned(),
            3 => "\"soon\"".to_owned(),
            4..=20 => t.expires_on.trim_matches('"').to_owned(),
            21..=24 => format!("\" {} \"", t.expires_on.trim_matches('"')),
            _ => t.expires_on,
        };
        t.refresh_on = match rng.u8(0..40) {
            0..=2 => Some(format!("\"{}\"", NOW - 10)),
            3 => Some(format!("\"{NOW}\"")),
            4..=6 => Some(format!("\"{}\"", NOW + 600)),
            7 => Some("\"later\"".to_owned()),
            _ => None,
        };
        if rng.u8(0..6) == 0 {
            t.home_account_id = "other-home".to_owned();
        }
        match rng.u8(0..12) {
            0 => t.environment = "login.windows.net".to_owned(),
            1 => t.environment = "Login.microsoftonline.com".to_owned(),
            _ => {}
        }
        if rng.u8(0..8) == 0 {
            t.client_id = "1950a258-227b-4e31-a9cf-717495945fc2".to_owned();
        }
        if rng.u8(0..4) == 0 {
            t.realm = if rng.bool() { TENANT_B } else { TENANT_A }.to_owned();
        }
        if rng.u8(0..6) == 0 {
            t.ext_cache_key = Some("a1b2c3".to_owned());
        }
        match rng.u8(0..20) {
            0 => t.token_type = None,
            1 => {
                t.token_type = Some("ssh-cert".to_owned());
                t.key_id = Some("key-1".to_owned());
            }
            _ => {}
        }
        match rng.u8(0..10) {
            0 => t.key = Some(format!("some-other-key-{i}")),
            // Another entry's key: the file then holds only the later of the two.
            1 if !tokens.is_empty() => {
                let other: &At = &tokens[rng.usize(..tokens.len())];
                t.key = Some(other.key());
            }
            _ => {}
        }
        tokens.push(t);
    }
    (accounts, tokens)
}

#[tokio::test]
async fn the_fast_path_returns_what_msal_would_or_runs_az() {
    const CASES: u64 = 1500;
    let s = Setup::new();
    let mut answered = 0;
    let mut fell_through = 0;
    let mut msal_answered = 0;
    for seed in 0..CASES {
        let mut rng = fastrand::Rng::with_seed(seed);
        let scope = if rng.bool() {
            ARM
        } else {
            "https://vault.azure.net/.default"
        };
        let other_tenant = rng.u8(0..4) == 0;
        let tenant = if other_tenant { TENANT_B } else { TENANT_A };
        let (accounts, tokens) = random_cache(&mut rng, scope);
        let cache = cache_json(&accounts, &tokens);
        let expected = msal(&accounts, &tokens, scope, tenant);
        msal_answered += usize::from(expected.is_some());

        let options = TokenRequestOptions::default().with_tenant_id(TENANT_B);
        let credential = s
            .memory_builder(memory_dir(&[("msal_token_cache.json", &cache)]), &[])
            .build()
            .unwrap();
        let runs = s.executor.run_count();
        let token = credential
            .get_token(&[scope], other_tenant.then_some(&options))
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{cache}"));
        if s.executor.run_count() > runs {
            assert_eq!(token.token().expose(), FROM_AZ);
            continue;
        }
        answered += 1;
        assert_eq!(
            Some(token.token().expose()),
            expected.as_deref(),
            "seed {seed}: the fast path answered, MSAL would not (or differently)\n{cache}"
        );
        let entry = tokens
            .iter()
            .find(|t| Some(t.secret.as_str()) == expected.as_deref())
            .unwrap();
        let expires_on: i64 = entry.expires_on.trim_matches('"').trim().parse().unwrap();
        assert_eq!(
            token.expires_on().unix_timestamp(),
            expires_on,
            "seed {seed}"
        );
        if entry.target.as_deref() != Some(scope) {
            fell_through += 1;
        }
    }
    // Not vacuous: the fast path answers most of what MSAL answers, including fall-throughs
    // past an expiring exact entry.
    assert!(
        answered * 2 > msal_answered,
        "{answered} of {msal_answered}"
    );
    assert!(fell_through > 0);
}

#[tokio::test]
async fn a_token_cache_python_reads_differently_runs_az() {
    let s = Setup::new();
    let good = alices_cache(&[At::new("cached", ARM, 3600)]);
    assert_eq!(
        s.answer_from_cache(&good, ARM).await,
        ("cached".to_owned(), false)
    );
    let mut no_authority_type = alice_everywhere();
    no_authority_type[1].authority_type = None;
    for (cache, why) in [
        (
            format!("\u{feff}{good}"),
            "a byte order mark (Python's json refuses it)",
        ),
        (
            cache_json(&no_authority_type, &[At::new("cached", ARM, 3600)]),
            "an account without authority_type (MSAL raises KeyError)",
        ),
    ] {
        let (token, ran) = s.answer_from_cache(&cache, ARM).await;
        assert!(ran && token == FROM_AZ, "{why}: {token}");
    }
    // A repeated field: Python's json keeps the last, and so does this.
    let repeated = good.replace(
        "\"secret\": \"cached\"",
        "\"secret\": \"cached\", \"secret\": \"last\"",
    );
    assert_eq!(
        s.answer_from_cache(&repeated, ARM).await,
        ("last".to_owned(), false)
    );
}
