use super::*;
use serde_json::json;

const ENV: &str = "login.microsoftonline.com";
const CLIENT: &str = "11111111-1111-1111-1111-111111111111";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const HOME: &str = "uid-1.72f988bf-86f1-41af-91ab-2d7cd011db47";
const NOW: i64 = 1_893_456_000;

fn scopes(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| (*s).to_owned()).collect()
}

fn new_at<'a>(scopes: &'a [String], secret: &'a Secret, home: &'a str) -> NewAccessToken<'a> {
    NewAccessToken {
        environment: ENV,
        client_id: CLIENT,
        realm: TENANT,
        home_account_id: home,
        scopes,
        secret,
        cached_at: NOW,
        expires_on: NOW + 3600,
        extended_expires_on: NOW + 7200,
        refresh_on: Some(NOW + 1800),
    }
}

fn query<'a>(scopes: &'a [String], home: &'a str) -> AccessTokenQuery<'a> {
    AccessTokenQuery {
        environment: ENV,
        client_id: CLIENT,
        realm: TENANT,
        home_account_id: home,
        scopes,
    }
}

fn doc(cache: &MsalCache) -> Value {
    serde_json::from_slice(&cache.to_bytes()).unwrap()
}

fn parse(v: Value) -> MsalCache {
    MsalCache::parse(v.to_string().as_bytes()).unwrap()
}

#[test]
fn access_token_is_written_with_msal_key_and_string_seconds() {
    let mut cache = MsalCache::empty();
    let s = scopes(&["https://vault.azure.net/.default", "B.read"]);
    let secret = Secret::new("at-secret");
    let mut at = new_at(&s, &secret, "");
    at.environment = "Login.MicrosoftOnline.com";
    cache.put_access_token(at);
    let key =
        format!("-{ENV}-accesstoken-{CLIENT}-{TENANT}-b.read https://vault.azure.net/.default");
    assert_eq!(
        doc(&cache)["AccessToken"][&key],
        json!({
            "credential_type": "AccessToken",
            "secret": "at-secret",
            "home_account_id": null,
            "environment": ENV,
            "client_id": CLIENT,
            "target": "B.read https://vault.azure.net/.default",
            "realm": TENANT,
            "token_type": "Bearer",
            "cached_at": NOW.to_string(),
            "expires_on": (NOW + 3600).to_string(),
            "extended_expires_on": (NOW + 7200).to_string(),
            "refresh_on": (NOW + 1800).to_string(),
        })
    );
}

#[test]
fn round_trip_keeps_what_was_written_and_unknown_data() {
    let original = json!({
        "AccessToken": {
            "other-key": {"secret": "x", "target": "a", "custom_field": [1, 2, {"k": null}]},
            "not-an-object": 5
        },
        "Account": {},
        "SomeOtherTool": {"anything": true, "n": 1.5},
        "Top": "level string"
    });
    let mut cache = parse(original.clone());
    assert_eq!(doc(&cache), original);
    let s = scopes(&["s"]);
    let secret = Secret::new("t");
    cache.put_access_token(new_at(&s, &secret, HOME));
    cache.put_refresh_token(ENV, CLIENT, HOME, &Secret::new("rt"));
    cache.put_id_token(ENV, CLIENT, TENANT, HOME, &Secret::new("idt"));
    cache.put_app_metadata(ENV, CLIENT);
    let written = doc(&cache);
    assert_eq!(written["SomeOtherTool"], original["SomeOtherTool"]);
    assert_eq!(written["Top"], original["Top"]);
    assert_eq!(
        written["AccessToken"]["other-key"],
        original["AccessToken"]["other-key"]
    );
    assert_eq!(written["AccessToken"]["not-an-object"], json!(5));
    // And what we wrote reads back the same.
    let again = MsalCache::parse(&cache.to_bytes()).unwrap();
    assert_eq!(again, cache);
    assert_eq!(
        again
            .find_access_token(&query(&s, HOME), NOW)
            .unwrap()
            .secret,
        secret
    );
}

#[test]
fn empty_whitespace_and_bom_inputs_parse() {
    for input in [
        &b""[..],
        b"  \n\t",
        b"\xEF\xBB\xBF",
        b"\xEF\xBB\xBF{}",
        b"{}",
    ] {
        let cache = MsalCache::parse(input).unwrap();
        assert!(cache.is_empty(), "{input:?}");
    }
}

#[test]
fn corrupt_input_is_a_schema_error_that_quotes_nothing() {
    let cases: &[(&[u8], SchemaError)] = &[
        (
            b"{\"AccessToken\": {\"k\": {\"secret\": \"leak-me\"",
            SchemaError::NotJson,
        ),
        (b"\xff\xfe{}", SchemaError::NotJson),
        (b"{\"a\":1}{}", SchemaError::NotJson),
        (b"null", SchemaError::NotAnObject),
        (b"[\"leak-me\"]", SchemaError::NotAnObject),
        (b"\"leak-me\"", SchemaError::NotAnObject),
        (
            b"{\"AccessToken\": [\"leak-me\"]}",
            SchemaError::NotAnObject,
        ),
        (b"{\"RefreshToken\": \"leak-me\"}", SchemaError::NotAnObject),
    ];
    for (input, expected) in cases {
        let error = MsalCache::parse(input).unwrap_err();
        assert_eq!(error, *expected, "{}", String::from_utf8_lossy(input));
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("leak-me"), "{shown}");
    }
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(
        MsalCache::parse(deep.as_bytes()).unwrap_err(),
        SchemaError::NotJson
    );
    let big = vec![b' '; MAX_BYTES + 1];
    assert_eq!(MsalCache::parse(&big).unwrap_err(), SchemaError::TooLarge);
}

#[test]
fn debug_shows_no_secret() {
    let mut cache = MsalCache::empty();
    let s = scopes(&["s"]);
    let secret = Secret::new("at-secret-value");
    cache.put_access_token(new_at(&s, &secret, HOME));
    cache.put_refresh_token(ENV, CLIENT, HOME, &Secret::new("rt-secret-value"));
    let found = cache.find_access_token(&query(&s, HOME), NOW).unwrap();
    let shown = format!("{cache:?} {found:?} {:?}", query(&s, HOME));
    assert!(!shown.contains("secret-value"), "{shown}");
}

#[test]
fn access_token_matches_on_scope_set_case_and_order_free() {
    let mut cache = MsalCache::empty();
    let s = scopes(&["A", "b"]);
    let secret = Secret::new("t");
    cache.put_access_token(new_at(&s, &secret, HOME));
    for wanted in [&["b", "A"][..], &["a", "B"], &["A", "b", "b"]] {
        let w = scopes(wanted);
        assert!(
            cache.find_access_token(&query(&w, HOME), NOW).is_some(),
            "{wanted:?}"
        );
    }
    for wanted in [&["A"][..], &["A", "b", "c"], &[]] {
        let w = scopes(wanted);
        assert!(
            cache.find_access_token(&query(&w, HOME), NOW).is_none(),
            "{wanted:?}"
        );
    }
}

#[test]
fn access_token_matches_on_realm_client_home_and_environment() {
    let mut cache = MsalCache::empty();
    let s = scopes(&["s"]);
    let secret = Secret::new("t");
    cache.put_access_token(new_at(&s, &secret, HOME));
    let q = query(&s, HOME);
    assert!(cache.find_access_token(&q, NOW).is_some());
    let upper_env = AccessTokenQuery {
        environment: "LOGIN.microsoftonline.com",
        ..q
    };
    assert!(cache.find_access_token(&upper_env, NOW).is_some());
    let misses = [
        AccessTokenQuery {
            realm: "other-tenant",
            ..q
        },
        AccessTokenQuery {
            client_id: "other-client",
            ..q
        },
        AccessTokenQuery {
            home_account_id: "other.home",
            ..q
        },
        AccessTokenQuery {
            home_account_id: "",
            ..q
        },
        AccessTokenQuery {
            environment: "login.microsoftonline.us",
            ..q
        },
    ];
    for miss in misses {
        assert!(cache.find_access_token(&miss, NOW).is_none(), "{miss:?}");
    }
}

#[test]
fn app_token_has_null_home_and_is_found_with_empty_home() {
    let mut cache = MsalCache::empty();
    let s = scopes(&["s"]);
    let secret = Secret::new("app");
    cache.put_access_token(new_at(&s, &secret, ""));
    assert_eq!(
        cache.find_access_token(&query(&s, ""), NOW).unwrap().secret,
        secret
    );
    assert!(cache.find_access_token(&query(&s, HOME), NOW).is_none());
    // An app token other MSALs wrote with "" or no home_account_id reads the same.
    for home in [json!(""), Value::Null] {
        let mut entry = json!({"secret": "x", "environment": ENV, "client_id": CLIENT,
            "realm": TENANT, "target": "s", "expires_on": NOW + 3600});
        if !home.is_null() {
            entry["home_account_id"] = home;
        }
        let cache = parse(json!({"AccessToken": {"k": entry}}));
        assert!(cache.find_access_token(&query(&s, ""), NOW).is_some());
    }
}

#[test]
fn access_token_within_five_minutes_of_expiry_is_not_found() {
    let mut cache = MsalCache::empty();
    let s = scopes(&["s"]);
    let secret = Secret::new("t");
    cache.put_access_token(new_at(&s, &secret, HOME));
    let q = query(&s, HOME);
    let expires_on = NOW + 3600;
    assert!(cache.find_access_token(&q, expires_on - 301).is_some());
    assert!(cache.find_access_token(&q, expires_on - 300).is_none());
    assert!(cache.find_access_token(&q, expires_on + 10).is_none());
    let found = cache.find_access_token(&q, NOW).unwrap();
    assert_eq!(
        (found.expires_on, found.refresh_on),
        (expires_on, Some(NOW + 1800))
    );
}

#[test]
fn numbers_are_read_as_python_int_reads_them() {
    let s = scopes(&["s"]);
    for (expires, expected) in [
        (json!(" 1893459600 "), Some(1_893_459_600)),
        (json!("+1893459600"), Some(1_893_459_600)),
        (json!(1_893_459_600), Some(1_893_459_600)),
        (json!(1_893_459_600.7), Some(1_893_459_600)),
        (json!("1893459600.0"), None),
        (json!("1_893_459_600"), None),
        (json!("99999999999999999999"), None),
        (json!(1e300), None),
        (json!(null), None),
        (json!(true), None),
    ] {
        let cache = parse(
            json!({"AccessToken": {"k": {"secret": "x", "home_account_id": HOME,
            "environment": ENV, "client_id": CLIENT, "realm": TENANT, "target": "s",
            "expires_on": expires}}}),
        );
        let found = cache.find_access_token(&query(&s, HOME), NOW);
        assert_eq!(found.map(|f| f.expires_on), expected, "{expires}");
    }
}

#[test]
fn non_bearer_and_bound_tokens_are_not_found() {
    let s = scopes(&["s"]);
    let base = json!({"secret": "x", "home_account_id": HOME, "environment": ENV,
        "client_id": CLIENT, "realm": TENANT, "target": "s", "expires_on": "1893459600"});
    for (field, value, found) in [
        ("token_type", json!("Bearer"), true),
        ("token_type", json!("bearer"), true),
        ("token_type", json!("pop"), false),
        ("token_type", json!("ssh-cert"), false),
        ("key_id", json!("k1"), false),
        ("ext_cache_key", json!("abc"), false),
    ] {
        let mut entry = base.clone();
        entry[field] = value.clone();
        let cache = parse(json!({"AccessToken": {"k": entry}}));
        assert_eq!(
            cache.find_access_token(&query(&s, HOME), NOW).is_some(),
            found,
            "{field}={value}"
        );
    }
}

#[test]
fn two_matching_access_tokens_are_no_answer() {
    let s = scopes(&["s"]);
    let entry = json!({"secret": "x", "home_account_id": HOME, "environment": ENV,
        "client_id": CLIENT, "realm": TENANT, "target": "s", "expires_on": "1893459600"});
    let cache = parse(json!({"AccessToken": {"k1": entry, "k2": entry}}));
    assert!(cache.find_access_token(&query(&s, HOME), NOW).is_none());
}

#[test]
fn put_replaces_same_key_and_overlapping_scopes_of_the_same_owner_only() {
    let mut cache = MsalCache::empty();
    let (ab, bc, d) = (scopes(&["a", "B"]), scopes(&["b", "c"]), scopes(&["d"]));
    let (s1, s2, s3, s4) = (
        Secret::new("1"),
        Secret::new("2"),
        Secret::new("3"),
        Secret::new("4"),
    );
    cache.put_access_token(new_at(&ab, &s1, HOME));
    cache.put_access_token(new_at(&d, &s2, HOME));
    // Another tenant's token with overlapping scopes stays.
    cache.put_access_token(NewAccessToken {
        realm: "other-tenant",
        ..new_at(&ab, &s3, HOME)
    });
    cache.put_access_token(new_at(&bc, &s4, HOME));
    assert!(cache.find_access_token(&query(&ab, HOME), NOW).is_none());
    assert_eq!(
        cache
            .find_access_token(&query(&bc, HOME), NOW)
            .unwrap()
            .secret,
        s4
    );
    assert_eq!(
        cache
            .find_access_token(&query(&d, HOME), NOW)
            .unwrap()
            .secret,
        s2
    );
    let other = AccessTokenQuery {
        realm: "other-tenant",
        ..query(&ab, HOME)
    };
    assert_eq!(cache.find_access_token(&other, NOW).unwrap().secret, s3);
    // Same key: replaced in place.
    let s5 = Secret::new("5");
    cache.put_access_token(new_at(&bc, &s5, HOME));
    assert_eq!(doc(&cache)["AccessToken"].as_object().unwrap().len(), 3);
    assert_eq!(
        cache
            .find_access_token(&query(&bc, HOME), NOW)
            .unwrap()
            .secret,
        s5
    );
}

#[test]
fn refresh_token_round_trip_key_and_replacement() {
    let mut cache = parse(json!({"RefreshToken": {
        // Python files one refresh token per scope set.
        "py-1": {"credential_type": "RefreshToken", "secret": "old", "home_account_id": HOME,
            "environment": ENV, "client_id": CLIENT, "target": "a", "last_modification_time": "100"},
        "py-2": {"credential_type": "RefreshToken", "secret": "newer", "home_account_id": HOME,
            "environment": ENV, "client_id": CLIENT, "target": "b", "last_modification_time": "200"},
        "other-client": {"secret": "o", "home_account_id": HOME, "environment": ENV,
            "client_id": "other"},
    }}));
    assert_eq!(
        cache.find_refresh_token("LOGIN.microsoftonline.com", CLIENT, HOME),
        Some(Secret::new("newer"))
    );
    assert_eq!(cache.find_refresh_token(ENV, CLIENT, "other.home"), None);
    assert_eq!(cache.find_refresh_token(ENV, CLIENT, ""), None);
    let rt = Secret::new("mine");
    cache.put_refresh_token(ENV, CLIENT, HOME, &rt);
    let written = doc(&cache);
    let section = written["RefreshToken"].as_object().unwrap();
    assert_eq!(section.len(), 2, "{:?}", section.keys());
    assert_eq!(
        section[&format!("{HOME}-{ENV}-refreshtoken-{CLIENT}--")],
        json!({"credential_type": "RefreshToken", "secret": "mine", "home_account_id": HOME,
            "environment": ENV, "client_id": CLIENT})
    );
    assert_eq!(cache.find_refresh_token(ENV, CLIENT, HOME), Some(rt));
    assert_eq!(
        cache.find_refresh_token(ENV, "other", HOME),
        Some(Secret::new("o"))
    );
}

#[test]
fn refresh_token_is_removed_only_if_it_still_holds_the_secret() {
    let mut cache = MsalCache::empty();
    cache.put_refresh_token(ENV, CLIENT, HOME, &Secret::new("renewed"));
    cache.remove_refresh_token(ENV, CLIENT, HOME, &Secret::new("stale"));
    assert_eq!(
        cache.find_refresh_token(ENV, CLIENT, HOME),
        Some(Secret::new("renewed"))
    );
    cache.remove_refresh_token(ENV, CLIENT, HOME, &Secret::new("renewed"));
    assert_eq!(cache.find_refresh_token(ENV, CLIENT, HOME), None);
}

#[test]
fn account_id_token_and_app_metadata_are_written_as_msal_writes_them() {
    let mut cache = MsalCache::empty();
    let account = AccountEntry {
        home_account_id: HOME.into(),
        environment: ENV.into(),
        realm: TENANT.into(),
        local_account_id: "uid-1".into(),
        username: "User@Contoso.com".into(),
        authority_type: "MSSTS".into(),
    };
    cache.put_account(&account);
    cache.put_id_token(ENV, CLIENT, TENANT, HOME, &Secret::new("a.b.c"));
    cache.put_app_metadata(ENV, CLIENT);
    let written = doc(&cache);
    assert_eq!(
        written["Account"][&format!("{HOME}-{ENV}-{TENANT}")],
        json!({"home_account_id": HOME, "environment": ENV, "realm": TENANT,
            "local_account_id": "uid-1", "username": "User@Contoso.com", "authority_type": "MSSTS"})
    );
    assert_eq!(
        written["IdToken"][&format!("{HOME}-{ENV}-idtoken-{CLIENT}-{TENANT}-")],
        json!({"credential_type": "IdToken", "secret": "a.b.c", "home_account_id": HOME,
            "environment": ENV, "realm": TENANT, "client_id": CLIENT})
    );
    assert_eq!(
        written["AppMetadata"][&format!("appmetadata-{ENV}-{CLIENT}")],
        json!({"client_id": CLIENT, "environment": ENV})
    );
    assert_eq!(cache.find_account(ENV, HOME), Some(account.clone()));
    // A guest account in another tenant does not hide the home tenant's.
    let guest = AccountEntry {
        realm: "guest-tenant".into(),
        ..account.clone()
    };
    cache.put_account(&guest);
    assert_eq!(cache.find_account(ENV, HOME), Some(account));
    assert_eq!(cache.find_account(ENV, "other.home"), None);
}

#[test]
fn app_metadata_with_a_family_id_is_kept() {
    let key = format!("appmetadata-{ENV}-{CLIENT}");
    let mut cache = parse(json!({"AppMetadata": {&key: {"client_id": CLIENT,
        "environment": ENV, "family_id": "1"}}}));
    cache.put_app_metadata(ENV, CLIENT);
    assert_eq!(doc(&cache)["AppMetadata"][&key]["family_id"], json!("1"));
}

#[test]
fn entries_of_the_wrong_shape_are_skipped_not_fatal() {
    let s = scopes(&["s"]);
    let cache = parse(json!({
        "AccessToken": {"a": 1, "b": [], "c": {"secret": 5, "home_account_id": HOME,
            "environment": ENV, "client_id": CLIENT, "realm": TENANT, "target": "s",
            "expires_on": "1893459600"}, "d": {"target": 7}},
        "RefreshToken": {"a": null, "b": {"secret": "x", "home_account_id": HOME,
            "environment": ENV, "client_id": CLIENT, "last_modification_time": "soon"}},
        "Account": {"a": "b", "c": {"home_account_id": HOME, "environment": ENV}},
    }));
    assert!(cache.find_access_token(&query(&s, HOME), NOW).is_none());
    assert_eq!(cache.find_refresh_token(ENV, CLIENT, HOME), None);
    assert_eq!(cache.find_account(ENV, HOME), None);
}

#[test]
fn written_document_is_ascii_with_python_escapes_and_reads_back() {
    let mut cache = parse(json!({"Other": {"note": "snow \u{2603} and \u{1F600}, tab\t \"q\""}}));
    cache.put_account(&AccountEntry {
        home_account_id: HOME.into(),
        environment: ENV.into(),
        realm: TENANT.into(),
        local_account_id: "uid-1".into(),
        username: "josé@contoso.com".into(),
        authority_type: "MSSTS".into(),
    });
    let bytes = cache.to_bytes();
    assert!(bytes.is_ascii());
    let text = String::from_utf8(bytes.clone()).unwrap();
    // What Python's json.dumps(ensure_ascii=True) writes for the same strings.
    assert!(
        text.contains(r#""username": "jos\u00e9@contoso.com""#),
        "{text}"
    );
    assert!(
        text.contains(r#""snow \u2603 and \ud83d\ude00, tab\t \"q\"""#),
        "{text}"
    );
    assert!(text.starts_with("{\n    \""), "{text}");
    assert_eq!(MsalCache::parse(&bytes).unwrap(), cache);
    assert_eq!(
        cache.find_account(ENV, HOME).unwrap().username,
        "josé@contoso.com"
    );
}

#[test]
fn refresh_token_without_account_is_filed_with_null_home() {
    let mut cache = MsalCache::empty();
    cache.put_refresh_token(ENV, CLIENT, "", &Secret::new("rt"));
    assert_eq!(
        doc(&cache)["RefreshToken"][&format!("-{ENV}-refreshtoken-{CLIENT}--")]["home_account_id"],
        Value::Null
    );
    assert_eq!(
        cache.find_refresh_token(ENV, CLIENT, ""),
        Some(Secret::new("rt"))
    );
    assert_eq!(cache.find_refresh_token(ENV, CLIENT, HOME), None);
}

#[test]
fn an_authority_with_a_port_files_its_tokens_under_the_host_alone_as_msal_does() {
    let mut cache = MsalCache::empty();
    let s = scopes(&["https://vault.azure.net/.default"]);
    let secret = Secret::new("at-secret");
    let mut at = new_at(&s, &secret, "");
    at.environment = "127.0.0.1:8443";
    cache.put_access_token(at);
    cache.put_app_metadata("127.0.0.1:8443", CLIENT);
    let written = doc(&cache);
    let key = format!("-127.0.0.1-accesstoken-{CLIENT}-{TENANT}-https://vault.azure.net/.default");
    assert_eq!(written["AccessToken"][&key]["environment"], "127.0.0.1");
    assert_eq!(
        written["AppMetadata"][format!("appmetadata-127.0.0.1-{CLIENT}")]["environment"],
        "127.0.0.1"
    );
    // What Python msal wrote for `https://127.0.0.1:8443/{tenant}` is found from that host.
    let mut q = query(&s, "");
    q.environment = "127.0.0.1:8443";
    let found = parse(written).find_access_token(&q, NOW).unwrap();
    assert_eq!(found.secret, Secret::new("at-secret"));

    assert_eq!(host_only("[::1]:8443"), "[::1]");
    assert_eq!(
        host_only("login.microsoftonline.com"),
        "login.microsoftonline.com"
    );
    assert_eq!(host_only("host:"), "host:");
}
