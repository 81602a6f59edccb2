//! [`AuthenticationRecord`]: who signed in with a user credential, saved by the application to
//! sign the same user in silently later. It holds no secret.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The record format this crate writes (and the other Azure SDKs: `"1.0"`).
const VERSION: &str = "1.0";
/// The longest serialized record read.
const MAX_RECORD_BYTES: usize = 16 * 1024;
const NAME: &str = "AuthenticationRecord";

/// Who signed in with a user credential: the authority, the user's home account id, tenant and
/// user name, and the application (client) id. It holds **no secret**: it names an account, it
/// does not prove anything. An application saves it (as JSON, [`serialize`](Self::serialize))
/// after [`DeviceCodeCredential::authenticate`](crate::DeviceCodeCredential::authenticate) or
/// [`InteractiveBrowserCredential::authenticate`](crate::InteractiveBrowserCredential::authenticate)
/// and hands it to the next credential's builder (`authentication_record`), which then asks for
/// that user's tokens silently.
///
/// The JSON has the fields of the other Azure SDKs' records (`authority`, `homeAccountId`,
/// `tenantId`, `username`, `clientId`, `version`), so a record written by one can be read by
/// another.
///
/// Silent sign-in needs the user's refresh token: in this version of the crate it lives only in
/// the process's memory (the [`TokenCache`](crate::TokenCache) the credentials share), so a
/// record makes later credentials of the **same process** silent; a new process signs in again.
///
/// ```
/// use azure_credentials::AuthenticationRecord;
///
/// let json = r#"{"authority":"login.microsoftonline.com",
///     "homeAccountId":"00000000-0000-0000-0000-000000000001.00000000-0000-0000-0000-000000000002",
///     "tenantId":"00000000-0000-0000-0000-000000000002","username":"ada@contoso.example",
///     "clientId":"04b07795-8ddb-461a-bbee-02f9e1bf7b46","version":"1.0"}"#;
/// let record = AuthenticationRecord::deserialize(json)?;
/// assert_eq!(record.username(), "ada@contoso.example");
/// assert_eq!(AuthenticationRecord::deserialize(&record.serialize())?, record);
/// # Ok::<(), azure_credentials::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationRecord {
    authority: String,
    home_account_id: String,
    tenant_id: String,
    username: String,
    client_id: String,
    version: String,
}

impl AuthenticationRecord {
    pub(crate) fn new(
        authority: &str,
        home_account_id: &str,
        tenant_id: &str,
        username: &str,
        client_id: &str,
    ) -> Self {
        AuthenticationRecord {
            authority: authority.to_owned(),
            home_account_id: home_account_id.to_owned(),
            tenant_id: tenant_id.to_owned(),
            username: username.to_owned(),
            client_id: client_id.to_owned(),
            version: VERSION.to_owned(),
        }
    }

    /// The record as JSON, to save.
    pub fn serialize(&self) -> String {
        // A struct of strings always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a record saved with [`serialize`](Self::serialize) (or by another Azure SDK).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when `json` is not a record:
    /// not JSON, a field missing or empty, a version other than 1.x, or larger than 16 KiB.
    /// The message never quotes the input.
    pub fn deserialize(json: &str) -> Result<Self, Error> {
        let invalid = |why: &str| {
            Error::invalid_input(NAME, format!("not an authentication record: {why}")).with_fix(
                "pass the JSON that AuthenticationRecord::serialize wrote; sign in again with authenticate() to make a new one",
            )
        };
        if json.len() > MAX_RECORD_BYTES {
            return Err(invalid("it is larger than 16 KiB"));
        }
        let record: AuthenticationRecord = serde_json::from_str(json)
            .map_err(|_| invalid("it is not JSON with the record's fields"))?;
        if record.version.split('.').next() != Some("1") {
            return Err(invalid("its version is not 1.x"));
        }
        for (name, value) in [
            ("authority", &record.authority),
            ("homeAccountId", &record.home_account_id),
            ("tenantId", &record.tenant_id),
            ("clientId", &record.client_id),
        ] {
            if value.trim().is_empty() || value.chars().any(char::is_control) {
                return Err(invalid(&format!("its {name} is empty or invalid")));
            }
        }
        if record.username.chars().any(char::is_control) {
            return Err(invalid("its username is invalid"));
        }
        Ok(record)
    }

    /// The authority host the user signed in at, e.g. `login.microsoftonline.com`.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The user's home account id (`<object id>.<home tenant id>`).
    pub fn home_account_id(&self) -> &str {
        &self.home_account_id
    }

    /// The tenant the user signed in to.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// The user's name, usually an email address (may be empty).
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The application (client) id the user signed in to.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The record format's version, `"1.0"`.
    pub fn version(&self) -> &str {
        &self.version
    }
}

impl fmt::Debug for AuthenticationRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticationRecord")
            .field("authority", &self.authority)
            .field("home_account_id", &self.home_account_id)
            .field("tenant_id", &self.tenant_id)
            .field("username", &self.username)
            .field("client_id", &self.client_id)
            .field("version", &self.version)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_with_the_other_sdks_field_names() {
        let record = AuthenticationRecord::new("login.microsoftonline.com", "o.t", "t", "ada", "c");
        let json = record.serialize();
        for field in [
            "\"authority\"",
            "\"homeAccountId\"",
            "\"tenantId\"",
            "\"username\"",
            "\"clientId\"",
            "\"version\":\"1.0\"",
        ] {
            assert!(json.contains(field), "{json}");
        }
        assert_eq!(AuthenticationRecord::deserialize(&json).unwrap(), record);
    }

    #[test]
    fn what_is_not_a_record_is_invalid_input_without_quoting_it() {
        let good = AuthenticationRecord::new("h", "o.t", "t", "u", "c").serialize();
        for bad in [
            String::new(),
            "secret-looking-garbage".to_owned(),
            good.replace("1.0", "2.0"),
            good.replace("\"o.t\"", "\"\""),
            good.replace("\"u\"", "\"a\\u0007\""),
            "x".repeat(MAX_RECORD_BYTES + 1),
        ] {
            let error = AuthenticationRecord::deserialize(&bad).unwrap_err();
            assert!(error.is_invalid_input(), "{bad}");
            assert!(!error.to_string().contains("garbage"));
        }
    }
}
