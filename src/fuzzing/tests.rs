//! Properties: no entry point panics, on the seeds, on every truncation of them, on random
//! mutations of them (bit flips, splices, JSON values swapped for extreme ones) and on random
//! bytes. Deterministic (fixed seeds); a failure prints the input, to add to
//! fuzz/regressions/<target>/.

use super::*;
use std::io::Write as _;
use std::path::PathBuf;

/// How an entry point's parameter prefix is laid out (see each function's comment).
#[derive(Clone, Copy)]
enum Param {
    U8,
    U16,
    I64,
    U64,
    /// A length byte (`0xFF`: none), then that many bytes.
    Field,
}
use Param::*;

struct Target {
    name: &'static str,
    run: fn(&[u8]),
    params: &'static [Param],
}

const TARGETS: &[Target] = &[
    Target {
        name: "mi_token_body",
        run: mi_token_body,
        params: &[I64],
    },
    Target {
        name: "mi_error_body",
        run: mi_error_body,
        params: &[],
    },
    Target {
        name: "mi_date",
        run: mi_date,
        params: &[],
    },
    Target {
        name: "arc_challenge",
        run: arc_challenge,
        params: &[],
    },
    Target {
        name: "mi_response",
        run: mi_response,
        params: &[U8, U8, U16, Field, Field, Field],
    },
    Target {
        name: "entra_response",
        run: entra_response,
        params: &[U16, I64, Field, Field],
    },
    Target {
        name: "entra_token_response",
        run: entra_token_response,
        params: &[U16, Field, Field],
    },
    Target {
        name: "jwt_claims",
        run: jwt_claims,
        params: &[],
    },
    Target {
        name: "az_token_cache",
        run: az_token_cache,
        params: &[I64, U8],
    },
    #[cfg(feature = "persistence")]
    Target {
        name: "msal_cache",
        run: msal_cache,
        params: &[],
    },
    Target {
        name: "az_profile",
        run: az_profile,
        params: &[U8],
    },
    Target {
        name: "az_config",
        run: az_config,
        params: &[U8],
    },
    Target {
        name: "az_config_ini",
        run: az_config_ini,
        params: &[],
    },
    Target {
        name: "az_output",
        run: az_output,
        params: &[],
    },
    Target {
        name: "azd_output",
        run: azd_output,
        params: &[],
    },
    Target {
        name: "cli_stderr",
        run: cli_stderr,
        params: &[U8],
    },
    Target {
        name: "pwsh_output",
        run: pwsh_output,
        params: &[],
    },
    Target {
        name: "oidc_response",
        run: oidc_response,
        params: &[U8, U16, Field, Field, Field, Field],
    },
    #[cfg(feature = "user-sign-in")]
    Target {
        name: "device_code",
        run: device_code,
        params: &[],
    },
    #[cfg(feature = "user-sign-in")]
    Target {
        name: "redirect_request",
        run: redirect_request,
        params: &[Field],
    },
    #[cfg(feature = "user-sign-in")]
    Target {
        name: "user_account",
        run: user_account,
        params: &[U8, Field],
    },
    Target {
        name: "scrub",
        run: scrub,
        params: &[],
    },
    Target {
        name: "retry_after",
        run: retry_after,
        params: &[I64, U8],
    },
    #[cfg(feature = "communication")]
    Target {
        name: "access_key",
        run: access_key,
        params: &[I64, Field, Field],
    },
    Target {
        name: "certificate",
        run: certificate,
        params: &[Field],
    },
    Target {
        name: "der",
        run: der,
        params: &[],
    },
    Target {
        name: "www_authenticate",
        run: www_authenticate,
        params: &[U8],
    },
    Target {
        name: "cache_deadlines",
        run: cache_deadlines,
        params: &[I64, I64, I64, U8, U64, U64],
    },
];

/// Values that have broken parsers: extreme and malformed numbers, offsets and dates,
/// a byte-order mark, odd Unicode, JSON that is not the expected shape.
const INTERESTING: &[&str] = &[
    "-9223372036854775808",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "99999999999999999999999",
    "253402300800",
    "-62135596800",
    "-1",
    "0",
    "1",
    "-0",
    "1e400",
    "-1e400",
    "1e18",
    "1.5",
    "NaN",
    "--128:00",
    "-128:00",
    "+127:127",
    "--128",
    "+-1:-1",
    "\u{feff}",
    "\u{feff}{",
    "\u{10FFFF}",
    "é",
    "\\ud800",
    "\0",
    "",
    " ",
    "\r\n",
    "null",
    "true",
    "[]",
    "{}",
    "[[[[[[[[",
    "\"",
    "12/31/9999 23:59:59 +23:59",
    "1/1/-1 12:00:00 PM",
    "00/00/0000 00:00:00",
    "13:60:60",
    "9999-12-31T23:59:59Z",
    "0000-01-01 00:00:00 -23:59",
    "Fri, 31 Dec 9999 23:59:59 GMT",
    "Thu, 01 Jan 1970 00:00:00 GMT",
    "AADSTS4294967296",
    "AADSTS",
    "eyJ",
    "ERROR:",
    "Basic realm=",
    "realm=\"",
    "[core]",
    "accesskey=",
    "endpoint=",
    "-----BEGIN CERTIFICATE-----",
    "\u{1b}[31m",
];

fn interesting_i64(rng: &mut fastrand::Rng) -> i64 {
    const VALUES: &[i64] = &[
        0,
        1,
        -1,
        i64::MIN,
        i64::MAX,
        i64::MIN + 1,
        i64::MAX - 1,
        BASE_UNIX_NANOS,
        -BASE_UNIX_NANOS,
        BASE_UNIX_SECS,
        253_402_300_800,
        -62_135_596_800,
        1 << 62,
        -(1 << 62),
        3_600_000_000_000,
        -3_600_000_000_000,
    ];
    match rng.u8(0..4) {
        0 => rng.i64(..),
        1 => rng.i64(-10_000_000_000_000..10_000_000_000_000),
        _ => VALUES[rng.usize(..VALUES.len())].wrapping_add(rng.i64(-2..=2)),
    }
}

fn random_prefix(rng: &mut fastrand::Rng, params: &[Param]) -> Vec<u8> {
    let mut out = Vec::new();
    for param in params {
        match param {
            U8 => out.push(rng.u8(..)),
            U16 => {
                let status: u16 = match rng.u8(0..3) {
                    0 => rng.u16(..),
                    _ => [200, 400, 401, 403, 404, 429, 500, 502, 503][rng.usize(..9)],
                };
                out.extend(status.to_le_bytes());
            }
            I64 => out.extend(interesting_i64(rng).to_le_bytes()),
            U64 => out.extend((interesting_i64(rng) as u64).to_le_bytes()),
            Field => {
                let value = match rng.u8(0..3) {
                    0 => {
                        out.push(0xFF);
                        continue;
                    }
                    1 => INTERESTING[rng.usize(..INTERESTING.len())]
                        .as_bytes()
                        .to_vec(),
                    _ => random_bytes(rng, 40),
                };
                let len = value.len().min(0xFE);
                out.push(len as u8);
                out.extend(&value[..len]);
            }
        }
    }
    out
}

fn random_bytes(rng: &mut fastrand::Rng, max_len: usize) -> Vec<u8> {
    let len = rng.usize(..=max_len);
    match rng.u8(0..3) {
        0 => (0..len).map(|_| rng.u8(..)).collect(),
        1 => (0..len).map(|_| rng.u8(0x20..0x7f)).collect(),
        _ => {
            // JSON-ish: punctuation, digits and the interesting values.
            let mut out = Vec::new();
            while out.len() < len {
                match rng.u8(0..4) {
                    0 => {
                        const BYTES: &[u8] = b"{}[]:,\" -+.0123456789eE/";
                        out.push(BYTES[rng.usize(..BYTES.len())]);
                    }
                    1 => out.extend(INTERESTING[rng.usize(..INTERESTING.len())].as_bytes()),
                    2 => out.extend(br#""expires_on":"#),
                    _ => out.extend(br#""access_token":"t","#),
                }
            }
            out
        }
    }
}

/// Where the scalar value after a `:` or `=` at `at` starts and ends.
fn value_span(doc: &[u8], at: usize) -> (usize, usize) {
    let mut start = at + 1;
    while doc.get(start).is_some_and(|b| *b == b' ' || *b == b'\t') {
        start += 1;
    }
    let mut end = start;
    if doc.get(start) == Some(&b'"') {
        end += 1;
        while end < doc.len() && doc[end] != b'"' {
            end += if doc[end] == b'\\' { 2 } else { 1 };
        }
        return (start, (end + 1).min(doc.len()));
    }
    while end < doc.len() && !b",}]\r\n".contains(&doc[end]) {
        end += 1;
    }
    (start, end)
}

/// The word around `at`: between separators of dates, headers and connection strings.
fn word_span(doc: &[u8], at: usize) -> (usize, usize) {
    let separator = |b: &u8| b" \t\r\n,;:=\"/{}[]".contains(b);
    let start = doc[..at].iter().rposition(separator).map_or(0, |i| i + 1);
    let end = doc[at..]
        .iter()
        .position(separator)
        .map_or(doc.len(), |i| at + i);
    (start, end)
}

fn mutate(rng: &mut fastrand::Rng, doc: &[u8]) -> Vec<u8> {
    let mut out = doc.to_vec();
    for _ in 0..rng.usize(1..=3) {
        let interesting = INTERESTING[rng.usize(..INTERESTING.len())].as_bytes();
        let at = rng.usize(..=out.len());
        match rng.u8(0..7) {
            0 if at < out.len() => out[at] ^= 1 << rng.u8(0..8),
            1 if at < out.len() => {
                const BYTES: &[u8] = b"\0\xff\"\\{[\n:+-9";
                out[at] = BYTES[rng.usize(..BYTES.len())];
            }
            2 => {
                out.splice(at..at, interesting.iter().copied());
            }
            3 => {
                // A JSON value or INI setting swapped for an interesting one.
                let separators: Vec<usize> = (0..out.len())
                    .filter(|&i| out[i] == b':' || out[i] == b'=')
                    .collect();
                if separators.is_empty() {
                    continue;
                }
                let (start, end) = value_span(&out, separators[rng.usize(..separators.len())]);
                let value = if rng.bool() {
                    let quoted = serde_json::to_string(INTERESTING[rng.usize(..INTERESTING.len())])
                        .unwrap_or_default();
                    quoted.into_bytes()
                } else {
                    interesting.to_vec()
                };
                out.splice(start..end, value);
            }
            4 if at < out.len() => {
                let (start, end) = word_span(&out, at);
                out.splice(start..end, interesting.iter().copied());
            }
            5 => {
                let end = rng.usize(at..=out.len().min(at + 64));
                out.drain(at..end);
            }
            _ => {
                let end = rng.usize(at..=out.len().min(at + 64));
                let copy = out[at..end].to_vec();
                let to = rng.usize(..=out.len());
                out.splice(to..to, copy);
            }
        }
    }
    out
}

// ---- seeds from fuzz/seeds.txt ----------------------------------------------------------

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters.
fn glob_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| glob_match(tail, &rest[i..]))
        }
    }
}

/// The files a pattern of fuzz/seeds.txt names, in order.
fn expand(pattern: &str) -> Vec<PathBuf> {
    let mut paths = vec![root()];
    for component in pattern.split('/') {
        let mut next = Vec::new();
        for dir in &paths {
            if !component.contains('*') {
                next.push(dir.join(component));
                continue;
            }
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok()?.file_name().into_string().ok())
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            next.extend(
                names
                    .into_iter()
                    .filter(|n| glob_match(component, n))
                    .map(|n| dir.join(n)),
            );
        }
        paths = next;
    }
    paths.retain(|p| p.is_file());
    paths
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex in fuzz/seeds.txt"))
        .collect()
}

/// `(prefix, document)` for each seed of `target`.
fn seeds(target: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    use rustls_pki_types::pem::{PemObject, SectionKind};
    let manifest = std::fs::read_to_string(root().join("fuzz/seeds.txt")).unwrap();
    let mut out = Vec::new();
    for line in manifest.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some(target) {
            continue;
        }
        let prefix = match words.next() {
            Some("-") | None => Vec::new(),
            Some(hex) => unhex(hex),
        };
        for pattern in words {
            let (der, pattern) = match pattern.strip_prefix("der:") {
                Some(p) => (true, p),
                None => (false, pattern),
            };
            let files = expand(pattern);
            assert!(
                !files.is_empty(),
                "fuzz/seeds.txt: nothing matches {pattern}"
            );
            for file in files {
                let bytes = std::fs::read(&file).unwrap();
                if der {
                    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(&bytes) {
                        out.push((prefix.clone(), section.unwrap().1));
                    }
                } else {
                    out.push((prefix.clone(), bytes));
                }
            }
        }
    }
    out
}

// ---- running ----------------------------------------------------------------------------

fn call(target: &Target, input: &[u8]) {
    if let Err(panic) = std::panic::catch_unwind(|| (target.run)(input)) {
        let _ = writeln!(
            std::io::stderr(),
            "fuzzing::{} panicked on this input (save it under fuzz/regressions/{}/):\n{}",
            target.name,
            target.name,
            input.escape_ascii()
        );
        std::panic::resume_unwind(panic);
    }
}

/// How many inputs of each kind: certificates cost real cryptography.
struct Budget {
    random: usize,
    mutations: usize,
    truncations_per_seed: usize,
}

const FULL: Budget = Budget {
    random: 500,
    mutations: 3000,
    truncations_per_seed: 300,
};

fn exercise(name: &str, budget: Budget) {
    let target = TARGETS.iter().find(|t| t.name == name).unwrap();
    let mut rng = fastrand::Rng::with_seed(0x11_f022 ^ name.len() as u64);
    let seeds = seeds(name);
    for _ in 0..budget.random {
        let mut input = random_prefix(&mut rng, target.params);
        input.extend(random_bytes(&mut rng, 400));
        call(target, &input);
    }
    for (prefix, doc) in &seeds {
        let whole = [prefix.as_slice(), doc].concat();
        call(target, &whole);
        let step = (whole.len() / budget.truncations_per_seed).max(1);
        for end in (0..whole.len()).step_by(step) {
            call(target, &whole[..end]);
        }
    }
    if seeds.is_empty() {
        return;
    }
    for i in 0..budget.mutations {
        let (prefix, doc) = &seeds[i % seeds.len()];
        let mut input = if rng.u8(0..4) == 0 {
            random_prefix(&mut rng, target.params)
        } else {
            prefix.clone()
        };
        input.extend(mutate(&mut rng, doc));
        call(target, &input);
    }
}

#[test]
fn every_target_has_seeds_or_is_structured() {
    for target in TARGETS {
        assert!(
            !seeds(target.name).is_empty() || target.name == "cache_deadlines",
            "{} has no seeds in fuzz/seeds.txt",
            target.name
        );
    }
}

#[test]
fn every_entry_point_has_a_fuzz_target_and_back() {
    for target in TARGETS {
        let path = root().join(format!("fuzz/fuzz_targets/{}.rs", target.name));
        let source = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            source.contains(&format!("fuzzing::{}(data)", target.name)),
            "{} does not call fuzzing::{}",
            path.display(),
            target.name
        );
    }
    for entry in std::fs::read_dir(root().join("fuzz/fuzz_targets")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let name = name.trim_end_matches(".rs");
        // Their entry points are built with their features only.
        if cfg!(not(feature = "persistence")) && name == "msal_cache"
            || cfg!(not(feature = "user-sign-in"))
                && ["device_code", "redirect_request", "user_account"].contains(&name)
            || cfg!(not(feature = "communication")) && name == "access_key"
        {
            continue;
        }
        assert!(
            TARGETS.iter().any(|t| t.name == name),
            "fuzz target {name} has no property test here"
        );
    }
}

#[test]
fn managed_identity_token_bodies_never_panic() {
    exercise("mi_token_body", FULL);
}

#[test]
fn managed_identity_error_bodies_never_panic() {
    exercise("mi_error_body", FULL);
}

#[test]
fn managed_identity_dates_never_panic() {
    exercise("mi_date", FULL);
}

#[test]
fn www_authenticate_challenges_keep_the_middlewares_promises() {
    exercise("www_authenticate", FULL);
}

#[test]
fn arc_challenges_never_panic() {
    exercise("arc_challenge", FULL);
}

#[test]
fn managed_identity_responses_keep_the_credentials_promises() {
    exercise("mi_response", FULL);
}

#[test]
fn entra_responses_never_panic() {
    exercise("entra_response", FULL);
}

#[test]
fn entra_token_responses_keep_the_credentials_promises() {
    exercise("entra_token_response", FULL);
}

#[test]
fn jwt_claims_never_panic() {
    exercise("jwt_claims", FULL);
}

#[test]
fn azure_cli_token_caches_never_panic() {
    // Its seeds are 5-15 kB of JSON, each read twice: fewer of them.
    exercise(
        "az_token_cache",
        Budget {
            random: 500,
            mutations: 1000,
            truncations_per_seed: 60,
        },
    );
}

#[cfg(feature = "persistence")]
#[test]
fn msal_cache_documents_read_back_and_keep_put_promises() {
    // Its seeds are 1-15 kB of JSON, each read several times: fewer of them.
    exercise(
        "msal_cache",
        Budget {
            random: 500,
            mutations: 1000,
            truncations_per_seed: 60,
        },
    );
}

#[test]
fn azure_cli_profiles_never_panic() {
    exercise("az_profile", FULL);
}

#[test]
fn azure_cli_configs_never_panic() {
    exercise("az_config", FULL);
}

#[test]
fn azure_cli_ini_files_never_panic() {
    exercise("az_config_ini", FULL);
}

#[test]
fn azure_cli_output_never_panics() {
    exercise("az_output", FULL);
}

#[test]
fn azure_developer_cli_output_never_panics() {
    exercise("azd_output", FULL);
}

#[test]
fn cli_stderr_never_panics() {
    exercise("cli_stderr", FULL);
}

#[test]
fn azure_powershell_output_keeps_its_token_to_itself() {
    exercise("pwsh_output", FULL);
}

#[test]
fn ci_oidc_responses_keep_the_credentials_promises() {
    exercise("oidc_response", FULL);
}

#[cfg(feature = "user-sign-in")]
#[test]
fn device_code_answers_never_panic() {
    exercise("device_code", FULL);
}

#[cfg(feature = "user-sign-in")]
#[test]
fn redirect_requests_never_panic() {
    exercise("redirect_request", FULL);
}

#[cfg(feature = "user-sign-in")]
#[test]
fn id_tokens_and_records_keep_their_promises() {
    exercise("user_account", FULL);
}

#[test]
fn scrubbed_text_keeps_the_scrubbers_promises() {
    exercise("scrub", FULL);
}

#[test]
fn retry_after_never_panics() {
    exercise("retry_after", FULL);
}

#[cfg(feature = "communication")]
#[test]
fn access_key_connection_strings_never_panic() {
    exercise("access_key", FULL);
}

#[test]
fn certificates_never_panic() {
    exercise(
        "certificate",
        Budget {
            random: 200,
            mutations: 300,
            truncations_per_seed: 40,
        },
    );
}

#[test]
fn der_never_panics() {
    exercise("der", FULL);
}

#[test]
fn cache_deadlines_stay_in_order() {
    exercise(
        "cache_deadlines",
        Budget {
            random: 20_000,
            mutations: 0,
            truncations_per_seed: 0,
        },
    );
}

/// Every input a fuzz target ever crashed on, replayed.
#[test]
fn fuzz_regressions_never_panic() {
    for target in TARGETS {
        let dir = root().join("fuzz/regressions").join(target.name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            call(target, &std::fs::read(&path).unwrap());
        }
    }
}

/// `checks::assert_not_a_panic` compares whole messages (an answer may say "panicked"): it must
/// still recognise the error the cache makes of a real panic.
#[test]
#[should_panic(expected = "the credential panicked")]
fn the_panic_check_recognises_a_caught_panic() {
    #[derive(Debug)]
    struct Panics;
    #[async_trait::async_trait]
    impl crate::TokenFetcher for Panics {
        async fn fetch(&self, _: &crate::TokenRequest) -> Result<crate::AccessToken, crate::Error> {
            panic!("a bug in a token source")
        }
    }
    let credential = crate::TokenCache::builder()
        .build()
        .credential(crate::CacheIdentity::new("Panics"), Panics);
    let error = endpoint::block_on(crate::TokenCredential::get_token(
        &credential,
        &["https://vault.azure.net/.default"],
        None,
    ))
    .expect_err("a panic is an error");
    checks::assert_not_a_panic(&error);
}
