//! The MSAL token cache schema against the real Python msal: tokens Python's
//! `TokenCache.add()` files are found by our reader, and tokens we write are found by Python's
//! `TokenCache.search()` (and its own key lookup) with the same keys.
//!
//! Setup: a virtualenv under `target/` (`CARGO_TARGET_TMPDIR`) with `msal` from PyPI, created
//! only when missing. Without `python3` or without PyPI the test prints `SKIPPED: ...` and
//! passes. The schema module is compiled into this test from its source (it is crate-private).

mod support;
use support::python;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

// `msal_schema.rs` names the crate's `Secret` as `crate::Secret`.
use azure_credentials::Secret;

#[path = "../src/cache/persist/msal_schema.rs"]
#[allow(dead_code)]
mod msal_schema;

use msal_schema::{AccessTokenQuery, AccountEntry, MsalCache, NewAccessToken};

/// The msal release whose `token_cache.py` the schema follows.
const MSAL_VERSION: &str = "1.39.0";
/// 2030-01-01: every token here is dated around it, and Python is given it as `now`.
const NOW: i64 = 1_893_456_000;
const ENV: &str = "login.microsoftonline.com";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const PUBLIC_CLIENT: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
const CONFIDENTIAL_CLIENT: &str = "7a1d8ee1-0000-4000-8000-0000000000c1";
const UID: &str = "9f4880d8-0000-4000-8000-00000000a11c";
const USER_SCOPE: &str = "https://management.azure.com/user_impersonation";
const APP_SCOPE: &str = "https://vault.azure.net/.default";

/// The Python side: `write <file>` files tokens through `TokenCache.add()` and serializes;
/// `read <file>` deserializes our file and finds our tokens the way MSAL looks them up.
const SCRIPT: &str = r#"
import base64, json, sys, msal

NOW = 1893456000
ENV = "login.microsoftonline.com"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
PUBLIC = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
CONFIDENTIAL = "7a1d8ee1-0000-4000-8000-0000000000c1"
UID = "9f4880d8-0000-4000-8000-00000000a11c"
HOME = UID + "." + TENANT
USER_SCOPE = "https://management.azure.com/user_impersonation"
APP_SCOPE = "https://vault.azure.net/.default"
ENDPOINT = "https://login.microsoftonline.com/" + TENANT + "/oauth2/v2.0/token"
AT = msal.TokenCache.CredentialType.ACCESS_TOKEN
RT = msal.TokenCache.CredentialType.REFRESH_TOKEN

def b64(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

def write(path):
    cache = msal.SerializableTokenCache()
    id_token = b64({"alg": "none"}) + "." + b64({
        "oid": UID, "sub": "subject", "tid": TENANT, "preferred_username": "user@contoso.com",
        "iss": "https://login.microsoftonline.com/" + TENANT + "/v2.0", "aud": PUBLIC,
    }) + ".sig"
    cache.add({
        "client_id": PUBLIC, "scope": [USER_SCOPE], "token_endpoint": ENDPOINT,
        "environment": ENV, "grant_type": "authorization_code",
        "response": {
            "access_token": "py-user-at", "refresh_token": "py-user-rt", "id_token": id_token,
            "client_info": b64({"uid": UID, "utid": TENANT}), "token_type": "Bearer",
            "expires_in": 3600, "ext_expires_in": 3600, "refresh_in": 1800,
        },
    }, now=NOW)
    cache.add({
        "client_id": CONFIDENTIAL, "scope": [APP_SCOPE], "token_endpoint": ENDPOINT,
        "environment": ENV, "grant_type": "client_credentials",
        "response": {"access_token": "py-app-at", "token_type": "Bearer", "expires_in": 3599},
    }, now=NOW)
    with open(path, "w") as f:
        f.write(cache.serialize())

def one(results, what):
    results = list(results)
    assert len(results) == 1, "%s: %d entries" % (what, len(results))
    return results[0]

def read(path):
    cache = msal.SerializableTokenCache()
    with open(path, encoding="ascii") as f:
        text = f.read()
    cache.deserialize(text)
    # Byte for byte what MSAL's serialize() writes for the same document.
    assert cache.serialize() == text, "serialize() differs:\n" + cache.serialize()
    # What ClientApplication's silent flows ask search() for.
    user_at = one(cache.search(AT, target=[USER_SCOPE], query={
        "client_id": PUBLIC, "environment": ENV, "realm": TENANT, "home_account_id": HOME,
    }, now=NOW), "user access token")
    assert user_at["secret"] == "rust-user-at", "user access token secret"
    assert int(user_at["expires_on"]) == NOW + 3600
    assert int(user_at["refresh_on"]) == NOW + 1800
    app_at = one(cache.search(AT, target=[APP_SCOPE], query={
        "client_id": CONFIDENTIAL, "environment": ENV, "realm": TENANT, "home_account_id": None,
    }, now=NOW), "app access token")
    assert app_at["secret"] == "rust-app-at", "app access token secret"
    # The O(1) key lookup finds them too: our keys are the ones MSAL builds.
    assert cache._get_access_token(HOME, ENV, PUBLIC, TENANT, [USER_SCOPE]) == user_at
    assert cache._get_access_token(None, ENV, CONFIDENTIAL, TENANT, [APP_SCOPE]) == app_at
    rt = one(cache.search(RT, query={
        "environment": ENV, "home_account_id": HOME, "client_id": PUBLIC,
    }), "refresh token")
    assert rt["secret"] == "rust-user-rt", "refresh token secret"
    account = one(cache.search(msal.TokenCache.CredentialType.ACCOUNT,
                               query={"environment": ENV}), "account")
    assert account["home_account_id"] == HOME and account["username"] == "us\u00e9r@contoso.com"
    assert account["authority_type"] == "MSSTS"
    one(cache.search(msal.TokenCache.CredentialType.ID_TOKEN, query={
        "environment": ENV, "home_account_id": HOME, "client_id": PUBLIC, "realm": TENANT,
    }), "id token")
    assert cache._get_app_metadata(ENV, PUBLIC), "app metadata"
    # Python's own refresh-token update and removal work on our entry.
    cache.update_rt(rt, "py-renewed-rt")
    rt = one(cache.search(RT, query={"home_account_id": HOME}), "renewed refresh token")
    assert rt["secret"] == "py-renewed-rt"
    cache.remove_rt(rt)
    assert not list(cache.search(RT, query={"home_account_id": HOME})), "refresh token removed"
    print("python msal found every token")

{"write": write, "read": read}[sys.argv[1]](sys.argv[2])
"#;

/// The virtualenv's python, with msal installed; `None` (after printing why) when it cannot
/// be set up.
fn python() -> Option<&'static Path> {
    static PYTHON: OnceLock<Option<PathBuf>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            python::venv(
                &format!("msal-{MSAL_VERSION}"),
                &format!("msal=={MSAL_VERSION}"),
            )
        })
        .as_deref()
}

/// Runs the script in `mode` on `file`; panics with its output when it fails.
fn run_script(python: &Path, mode: &str, file: &Path) {
    let script = file.with_extension("py");
    std::fs::write(&script, SCRIPT).unwrap();
    let out = Command::new(python)
        .arg(&script)
        .arg(mode)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python {mode} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn work_file(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("msal_cache_python");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn home() -> String {
    format!("{UID}.{TENANT}")
}

#[test]
fn tokens_python_msal_files_are_found_by_our_reader() {
    let Some(python) = python() else { return };
    let file = work_file("written_by_python.json");
    run_script(python, "write", &file);
    let cache = MsalCache::parse(&std::fs::read(&file).unwrap()).unwrap();
    let home = home();

    let user_scopes = [USER_SCOPE.to_owned()];
    let user = cache
        .find_access_token(
            &AccessTokenQuery {
                environment: ENV,
                client_id: PUBLIC_CLIENT,
                realm: TENANT,
                home_account_id: &home,
                scopes: &user_scopes,
            },
            NOW,
        )
        .expect("the user's access token");
    assert_eq!(user.secret, Secret::new("py-user-at"));
    assert_eq!(
        (user.expires_on, user.refresh_on),
        (NOW + 3600, Some(NOW + 1800))
    );
    assert_eq!(
        cache.find_refresh_token(ENV, PUBLIC_CLIENT, &home),
        Some(Secret::new("py-user-rt"))
    );
    let account = cache.find_account(ENV, &home).expect("the account");
    assert_eq!(
        (account.username.as_str(), account.local_account_id.as_str()),
        ("user@contoso.com", UID)
    );

    let app_scopes = [APP_SCOPE.to_owned()];
    let app = cache
        .find_access_token(
            &AccessTokenQuery {
                environment: ENV,
                client_id: CONFIDENTIAL_CLIENT,
                realm: TENANT,
                home_account_id: "",
                scopes: &app_scopes,
            },
            NOW,
        )
        .expect("the app's access token");
    assert_eq!(app.secret, Secret::new("py-app-at"));
    assert_eq!((app.expires_on, app.refresh_on), (NOW + 3599, None));

    // Written back by us, Python's document is unchanged.
    let again = MsalCache::parse(&cache.to_bytes()).unwrap();
    assert_eq!(again, cache);
}

#[test]
fn tokens_we_write_are_found_by_python_msal() {
    let Some(python) = python() else { return };
    let home = home();
    let mut cache = MsalCache::empty();
    let user_scopes = [USER_SCOPE.to_owned()];
    let user_at = Secret::new("rust-user-at");
    cache.put_access_token(NewAccessToken {
        environment: ENV,
        client_id: PUBLIC_CLIENT,
        realm: TENANT,
        home_account_id: &home,
        scopes: &user_scopes,
        secret: &user_at,
        cached_at: NOW,
        expires_on: NOW + 3600,
        extended_expires_on: NOW + 3600,
        refresh_on: Some(NOW + 1800),
    });
    cache.put_refresh_token(ENV, PUBLIC_CLIENT, &home, &Secret::new("rust-user-rt"));
    cache.put_id_token(
        ENV,
        PUBLIC_CLIENT,
        TENANT,
        &home,
        &Secret::new("e30.e30.sig"),
    );
    cache.put_account(&AccountEntry {
        home_account_id: home.clone(),
        environment: ENV.into(),
        realm: TENANT.into(),
        local_account_id: UID.into(),
        username: "usér@contoso.com".into(),
        authority_type: "MSSTS".into(),
    });
    cache.put_app_metadata(ENV, PUBLIC_CLIENT);
    let app_scopes = [APP_SCOPE.to_owned()];
    let app_at = Secret::new("rust-app-at");
    cache.put_access_token(NewAccessToken {
        environment: ENV,
        client_id: CONFIDENTIAL_CLIENT,
        realm: TENANT,
        home_account_id: "",
        scopes: &app_scopes,
        secret: &app_at,
        cached_at: NOW,
        expires_on: NOW + 3599,
        extended_expires_on: NOW + 3599,
        refresh_on: None,
    });
    cache.put_app_metadata(ENV, CONFIDENTIAL_CLIENT);

    let file = work_file("written_by_rust.json");
    std::fs::write(&file, cache.to_bytes()).unwrap();
    run_script(python, "read", &file);
}
