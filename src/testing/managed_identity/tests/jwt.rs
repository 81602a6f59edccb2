//! MockReply::jwt: tokens shaped like Entra ID access tokens.

use super::*;

/// The JSON of a JWT's header and claims.
fn jwt_parts(jwt: &str) -> (Value, Value, String) {
    use base64::Engine as _;
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "{jwt}");
    let decode = |part: &str| -> Value {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    (decode(parts[0]), decode(parts[1]), parts[2].to_owned())
}

#[tokio::test]
async fn jwt_tokens_carry_entra_claims_for_the_requested_resource_and_lifetime() {
    let mock = MockManagedIdentity::start().await;
    let clock = ManualClock::new(datetime!(2030-01-01 0:00 UTC));
    mock.set_clock(clock.clock());
    mock.set_default(MockReply::jwt());
    mock.push(MockReply::jwt().expires_in(600));

    let short = imds(&mock).await;
    let target = format!(
        "{}&client_id=my-app",
        imds_target("https%3A%2F%2Fstorage.azure.com")
    );
    let storage = get(mock.addr(), &target, &[("Metadata", "true")]).await;

    let (header, claims, signature) = jwt_parts(&token_of(&short));
    assert_eq!(
        header,
        serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": "mock"})
    );
    let start = datetime!(2030-01-01 0:00 UTC).unix_timestamp();
    assert_eq!(claims["aud"], "https://vault.azure.net");
    assert_eq!(
        claims["iss"],
        format!(
            "https://sts.windows.net/{}/",
            MockManagedIdentity::TENANT_ID
        )
    );
    assert_eq!(claims["tid"], MockManagedIdentity::TENANT_ID);
    assert_eq!(claims["appid"], MockManagedIdentity::DEFAULT_CLIENT_ID);
    assert_eq!(claims["iat"], start);
    assert_eq!(claims["nbf"], start);
    assert_eq!(claims["exp"], start + 600);
    assert_eq!(short.json()["expires_on"], (start + 600).to_string());
    assert_eq!(signature, "mock-imds-token-1");

    let (_, claims, signature) = jwt_parts(&token_of(&storage));
    assert_eq!(claims["aud"], "https://storage.azure.com");
    assert_eq!(claims["appid"], "my-app");
    assert_eq!(claims["exp"], start + 3600);
    assert_eq!(signature, "mock-imds-token-2");
}
