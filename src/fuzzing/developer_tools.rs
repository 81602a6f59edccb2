//! The Azure CLI's files (`msal_token_cache.json`, `azureProfile.json`, `config`) read the way
//! its fast path reads them, and what az and azd print on stdout and stderr.

use std::path::Path;

use super::{BASE_UNIX_SECS, Input, TENANT, consume, strip_bom, text};
use crate::developer_tools::azure_cli::{self, ini, msal_cache};
use crate::developer_tools::azure_developer_cli;
use crate::developer_tools::devtool;
use crate::system::{Env, Fs, Output};

const AZ_CONFIG_DIR: &str = "/fuzz/.azure";
const AZ_SCOPE: &str = "https://management.azure.com/.default";

fn az_lookup(
    fs: &Fs,
    env: &Env,
    scope: &str,
    tenant: Option<&str>,
    subscription: Option<&str>,
    now: i64,
) {
    let query = msal_cache::Query {
        fs,
        env,
        config_dir: Path::new(AZ_CONFIG_DIR),
        scope,
        tenant,
        subscription,
        now,
    };
    if let Ok(found) = msal_cache::lookup(&query) {
        std::hint::black_box((
            found.secret,
            found.expires_on,
            found.refresh_on,
            found.tenant,
        ));
    }
}

fn az_file(name: &str) -> std::path::PathBuf {
    Path::new(AZ_CONFIG_DIR).join(name)
}

/// A loose integer as MSAL writes it (a number or a string of digits), saturating.
fn loose_i64(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s
            .trim()
            .parse::<i128>()
            .ok()
            .map(|n| i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })),
        _ => None,
    }
}

/// az's `msal_token_cache.json`, looked up the way the fast path does. The account, tenant,
/// scope and clock are taken from the file itself (the `selector`-th account and access
/// token), with a matching `azureProfile.json`, so that mutated caches reach the token choice
/// and its expiry arithmetic instead of stopping at "no such account".
///
/// Layout: `[i64 now: seconds after the chosen token's expires_on - 10 min, or after BASE when
/// that is not a date of this era][u8 selector]
/// [msal_token_cache.json]`.
pub fn az_token_cache(data: &[u8]) {
    let mut input = Input::new(data);
    let offset = input.i64();
    let selector = usize::from(input.u8());
    let file = input.rest();
    let json: serde_json::Value = serde_json::from_slice(strip_bom(file)).unwrap_or_default();
    let pick = |section: &str, want: &dyn Fn(&serde_json::Value) -> bool| {
        let entries: Vec<&serde_json::Value> = json
            .get(section)
            .and_then(serde_json::Value::as_object)
            .map(|m| m.values().filter(|v| want(v)).collect())
            .unwrap_or_default();
        (!entries.is_empty()).then(|| entries[selector % entries.len()])
    };
    let username = pick("Account", &|a| {
        a.get("username").is_some_and(|u| u.is_string())
    })
    .and_then(|a| a["username"].as_str())
    .unwrap_or("alice@contoso.com");
    let token = pick("AccessToken", &|t| {
        t.get("realm").is_some_and(|r| r.is_string())
            && t.get("target").is_some_and(|r| r.is_string())
    });
    let tenant = token.and_then(|t| t["realm"].as_str()).unwrap_or(TENANT);
    let target = token.and_then(|t| t["target"].as_str()).unwrap_or(AZ_SCOPE);
    let words: Vec<&str> = target.split(' ').collect();
    let scope = if selector & 0x80 != 0 {
        target
    } else {
        words[(selector >> 1) % words.len()]
    };
    // Ten minutes before the token expires (when that is a date of this era; an absurd
    // expires_on meets a realistic clock), moved by the offset.
    let base = token
        .and_then(|t| t.get("expires_on"))
        .and_then(loose_i64)
        .filter(|secs| (0..=1 << 40).contains(secs))
        .map_or(BASE_UNIX_SECS, |secs| secs - 600);
    let now = base.wrapping_add(offset);

    let profile = serde_json::json!({"subscriptions": [{
        "id": "3c4b5a69-1f2d-4e6b-9a7e-8d2f0b1c3e5a",
        "isDefault": true,
        "tenantId": tenant,
        "environmentName": "AzureCloud",
        "user": {"name": username, "type": "user"},
    }]});
    let fs = Fs::memory();
    fs.write(az_file("azureProfile.json"), profile.to_string());
    fs.write(az_file("msal_token_cache.json"), file);
    let tenant = (selector & 0x40 != 0).then_some(tenant);
    az_lookup(&fs, &Env::empty(), scope, tenant, None, now);
}

/// az's `azureProfile.json`: which subscription, account and tenant the fast path would use.
/// The `selector` picks a subscription of the file and whether to ask for it by id or name and
/// with which tenant, so that mutated profiles reach the matching rules.
///
/// Layout: `[u8 selector][azureProfile.json]`.
pub fn az_profile(data: &[u8]) {
    let mut input = Input::new(data);
    let selector = input.u8();
    let file = input.rest();
    let json: serde_json::Value = serde_json::from_slice(strip_bom(file)).unwrap_or_default();
    let subscriptions = json
        .get("subscriptions")
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let chosen = subscriptions
        .get(usize::from(selector >> 4) % subscriptions.len().max(1))
        .and_then(serde_json::Value::as_object);
    let field = |name: &str| chosen.and_then(|s| s.get(name)).and_then(|v| v.as_str());
    let subscription = match selector & 0b11 {
        0 => None,
        1 => field("id"),
        2 => field("name"),
        _ => Some("not-a-subscription"),
    };
    let tenant = match (selector >> 2) & 0b11 {
        0 => None,
        1 => field("tenantId"),
        2 => Some(TENANT),
        _ => Some("Contoso.onmicrosoft.com"),
    };
    let fs = Fs::memory();
    fs.write(az_file("azureProfile.json"), file);
    fs.write(az_file("msal_token_cache.json"), "{}");
    az_lookup(
        &fs,
        &Env::empty(),
        AZ_SCOPE,
        tenant,
        subscription,
        BASE_UNIX_SECS,
    );
}

/// az's `config` INI file (token cache encryption, active cloud), with or without the
/// environment variables that override it.
///
/// Layout: `[u8 selector][config]`.
pub fn az_config(data: &[u8]) {
    let mut input = Input::new(data);
    let selector = input.u8();
    let mut env = Vec::new();
    match selector & 0b11 {
        0 => {}
        1 => env.push(("AZURE_CORE_ENCRYPT_TOKEN_CACHE", "false")),
        2 => env.push(("AZURE_CORE_ENCRYPT_TOKEN_CACHE", "True")),
        _ => env.push(("AZURE_CORE_ENCRYPT_TOKEN_CACHE", "maybe")),
    }
    match (selector >> 2) & 0b11 {
        0 => {}
        1 => env.push(("AZURE_CLOUD_NAME", "AzureCloud")),
        2 => env.push(("AZURE_CLOUD_NAME", "AzureUSGovernment")),
        _ => env.push(("AZURE_CLOUD_NAME", "")),
    }
    let fs = Fs::memory();
    fs.write(az_file("config"), input.rest());
    fs.write(
        az_file("azureProfile.json"),
        r#"{"subscriptions":[{"id":"3c4b5a69-1f2d-4e6b-9a7e-8d2f0b1c3e5a","isDefault":true,"tenantId":"72f988bf-86f1-41af-91ab-2d7cd011db47","environmentName":"AzureCloud","user":{"name":"alice@contoso.com","type":"user"}}]}"#,
    );
    fs.write(az_file("msal_token_cache.json"), "{}");
    az_lookup(
        &fs,
        &Env::from_pairs(env),
        AZ_SCOPE,
        None,
        None,
        BASE_UNIX_SECS,
    );
}

/// az's INI reader alone (the `az_config` target goes through the whole lookup). Checked on
/// what it accepts: the options a section lists (its own and `DEFAULT`'s) are all readable
/// when the section is in the file and none is when it is not, and their names are lower case.
///
/// Layout: `[file]`.
pub fn az_config_ini(data: &[u8]) {
    let text = text(data);
    let Ok(ini) = ini::parse(&text) else {
        return;
    };
    std::hint::black_box(ini.is_ascii());
    // The sections az reads, and those the file names (`[name]`, up to the last `]`).
    let named = text.lines().filter_map(|line| {
        let (name, _) = line.trim().strip_prefix('[')?.rsplit_once(']')?;
        Some(name)
    });
    let sections = ["core", "cloud", "AzureCloud", "DEFAULT"]
        .into_iter()
        .chain(named.take(16));
    for section in sections {
        let names: Vec<&str> = ini.options(section).collect();
        let present = names.iter().any(|n| ini.get(section, n).is_some());
        for name in &names {
            assert_eq!(
                *name,
                name.to_ascii_lowercase(),
                "an option name that is not lower case"
            );
            assert_eq!(
                ini.get(section, name).is_some(),
                present,
                "[{section}] lists {name:?} but it reads otherwise than its other options"
            );
        }
        std::hint::black_box(ini.get(section, "encrypt_token_cache"));
        std::hint::black_box(ini.get(section, "name"));
    }
}

/// The JSON `az account get-access-token` prints, with its expiry (epoch seconds or, from az
/// before 2.54, local time).
///
/// Layout: `[stdout]`.
pub fn az_output(data: &[u8]) {
    consume(azure_cli::parse_output(data));
}

/// The JSON `azd auth token` prints, with its RFC 3339 expiry and the token's tenant claim.
///
/// Layout: `[stdout]`.
pub fn azd_output(data: &[u8]) {
    consume(azure_developer_cli::parse_output(data));
}

/// What az or azd print on stderr when they fail: read into an error as each credential does.
///
/// Layout: `[u8 selector: bit 0 azd, bits 1-2 the exit code (1, 127, 2, killed)][stderr]`.
pub fn cli_stderr(data: &[u8]) {
    let mut input = Input::new(data);
    let selector = input.u8();
    let code = match (selector >> 1) & 0b11 {
        0 => Some(1),
        1 => Some(127),
        2 => Some(2),
        _ => None,
    };
    let stderr = input.rest();
    let output = Output::new(code, Vec::new(), stderr.to_vec());
    let error = if selector & 1 == 0 {
        azure_cli::TOOL.failure(&output, &text(stderr))
    } else {
        azure_developer_cli::TOOL.failure(&output, &azure_developer_cli::stderr_text(stderr))
    };
    std::hint::black_box(error.to_string());
    std::hint::black_box(devtool::aadsts_codes(&text(stderr)));
}
