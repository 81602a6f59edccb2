//! The Azure CLI's files (`msal_token_cache.json`, `azureProfile.json`, `config`) read the way
//! its fast path reads them, and what az and azd print on stdout and stderr.

use std::path::Path;

use super::checks::{shown, twin};
use super::{BASE_UNIX_SECS, Input, TENANT, consume, strip_bom, text};
use crate::developer_tools::azure_cli::{self, ini, msal_cache};
use crate::developer_tools::devtool;
use crate::developer_tools::{azure_developer_cli, azure_powershell};
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

/// The line Azure PowerShell's token script prints with the token:
/// `azure-credentials-token%{token}%{expiry}`.
const PWSH_TOKEN_MARKER: &str = "azure-credentials-token%";

/// What Azure PowerShell's token script prints, read as the credential reads it: stdout and
/// stderr of a run that exited 0 (`parse_output`: the marker line among noise, the
/// module-missing marker, stderr when there is no token), and stderr as a failed run's error
/// (`stderr_text`: CLIXML, ANSI colors, PowerShell 7's concise view). Checked: nothing panics;
/// a token is the token part of a marker line of stdout; no error shows the token part of a
/// line of stdout that holds the marker (8 bytes or more, written once in the input; a value
/// an error shows is checked again with that value changed, as [`super::checks`] does).
///
/// Layout: `[stdout]` up to the first NUL byte, then `[stderr]` (no NUL: all stdout).
pub fn pwsh_output(data: &[u8]) {
    let (stdout, stderr) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    // The parser reads stdout lossily too: the same answer, with offsets into one string.
    let stdout = text(stdout).into_owned();
    let secrets = pwsh_marker_tokens(&stdout);
    let run = |stdout: &str| {
        let parsed = azure_powershell::parse_output(stdout.as_bytes(), stderr);
        let output = Output::new(Some(1), stdout.as_bytes().to_vec(), stderr.to_vec());
        let failed =
            azure_powershell::TOOL.failure(&output, &azure_powershell::stderr_text(stderr));
        (parsed, failed)
    };
    let (parsed, failed) = run(&stdout);
    if let Ok(token) = &parsed {
        let value = token.token().expose();
        assert!(
            secrets
                .iter()
                .any(|(start, end)| &stdout[*start..*end] == value),
            "a token that is no marker line's: {value:?}"
        );
        assert!(!value.is_empty(), "an empty token");
    }
    let input = [stdout.as_bytes(), text(stderr).as_bytes()].concat();
    for &(start, end) in &secrets {
        let secret = &stdout[start..end];
        if secret.len() < 8 || occurrences(&input, secret.as_bytes()) != 1 {
            continue;
        }
        let errors = [parsed.as_ref().err(), Some(&failed)];
        if !errors
            .into_iter()
            .flatten()
            .any(|e| shown(e).contains(secret))
        {
            continue;
        }
        // Shown: because the error quotes the line, or because the token is a word the error
        // holds anyway? The same input with another token tells.
        let twin = twin(secret);
        if twin == secret || occurrences(&input, twin.as_bytes()) != 0 {
            continue;
        }
        let changed = [&stdout[..start], twin.as_str(), &stdout[end..]].concat();
        let (parsed, failed) = run(&changed);
        for error in [parsed.as_ref().err(), Some(&failed)].into_iter().flatten() {
            let shown = shown(error);
            assert!(
                !shown.contains(&twin),
                "the token of a marker line ({twin:?}) reached the error: {shown}"
            );
        }
    }
}

/// Where the token part of each line of `stdout` that holds the marker is: after the marker,
/// up to the line's last `%` (or its end), without surrounding white space or BOM.
fn pwsh_marker_tokens(stdout: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut line_start = 0;
    for line in stdout.split_inclusive('\n') {
        if let Some(at) = line.find(PWSH_TOKEN_MARKER) {
            let rest = &line[at + PWSH_TOKEN_MARKER.len()..];
            let token = rest.rsplit_once('%').map_or(rest, |(token, _)| token);
            let blank = |c: char| c.is_whitespace() || c == '\u{feff}';
            let trimmed = token.trim_start_matches(blank);
            let start = line_start + at + PWSH_TOKEN_MARKER.len() + (token.len() - trimmed.len());
            found.push((start, start + trimmed.trim_end_matches(blank).len()));
        }
        line_start += line.len();
    }
    found
}

fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() {
        return 0;
    }
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}
