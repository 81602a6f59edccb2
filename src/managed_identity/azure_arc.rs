//! Azure Arc-enabled servers: a local agent that asks for proof of file-system access first.

use crate::env_vars::{IDENTITY_ENDPOINT, IMDS_ENDPOINT, ProgramData, ProgramFiles};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use url::Url;

use super::source::{
    Ask, Detection, Endpoint, ManagedIdentitySource, NAME, Source, Transport, UserAssignedId,
    secret_url,
};
use crate::system::{Env, Fs, HttpRequest, HttpResponse};
use crate::{Error, ErrorKind, Secret};

const API_VERSION: &str = "2020-06-01";
const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:40342/metadata/identity/oauth2/token";
/// The agent's key files are tiny; anything larger is not one.
const MAX_KEY_BYTES: u64 = 4096;
/// What to do when the agent answers for another identity than the one requested.
const UNCONFIRMED_FIX: &str = "update the Azure Arc agent (older agents ignore user-assigned identities), or use the system-assigned identity";

/// `IDENTITY_ENDPOINT` with `IMDS_ENDPOINT`, or the agent installed (then at its own address).
/// The agent's key travels to the endpoint in the second leg: https, or local http.
pub(super) fn detect(detection: &Detection<'_>) -> Result<Option<Endpoint>, Error> {
    let env = detection.env;
    let url = match detection.all([IDENTITY_ENDPOINT, IMDS_ENDPOINT]) {
        Some([url, _]) => secret_url(IDENTITY_ENDPOINT, &url)?,
        None if agent_installed(env, detection.fs) => {
            Url::parse(DEFAULT_ENDPOINT).expect("a constant URL")
        }
        None => return Ok(None),
    };
    let key_directory = match detection.arc_key_directory {
        Some(dir) => Some(dir.to_owned()),
        None => key_directory(env),
    };
    let source = AzureArc {
        key_directory,
        fs: detection.fs.clone(),
    };
    Endpoint::found(ManagedIdentitySource::AzureArc, url, source)
}

struct AzureArc {
    /// The only directory the key file may be in; `None` on an OS the agent does not support.
    key_directory: Option<PathBuf>,
    /// Where the key file is read from.
    fs: Fs,
}

/// Whether the Arc agent (`himds`) is installed.
fn agent_installed(env: &Env, fs: &Fs) -> bool {
    if cfg!(target_os = "linux") {
        fs.is_file(Path::new("/opt/azcmagent/bin/himds"))
    } else if cfg!(windows) {
        env.var_non_empty(ProgramFiles).is_some_and(|dir| {
            fs.is_file(
                &PathBuf::from(dir)
                    .join("AzureConnectedMachineAgent")
                    .join("himds.exe"),
            )
        })
    } else {
        false
    }
}

/// The only directory the agent's key file may be in; `None` on other systems, where the agent
/// does not run.
fn key_directory(env: &Env) -> Option<PathBuf> {
    if cfg!(target_os = "linux") {
        Some(PathBuf::from("/var/opt/azcmagent/tokens"))
    } else if cfg!(windows) {
        env.var_non_empty(ProgramData).map(|dir| {
            PathBuf::from(dir)
                .join("AzureConnectedMachineAgent")
                .join("Tokens")
        })
    } else {
        None
    }
}

#[async_trait]
impl Source for AzureArc {
    /// `GET {endpoint}?api-version=2020-06-01&resource=…[&client_id|object_id|msi_res_id=…]`
    /// with `Metadata: true`.
    fn token_request(&self, ask: &Ask<'_>) -> HttpRequest {
        HttpRequest::get(ask.url_with_id(API_VERSION, "msi_res_id")).header("Metadata", "true")
    }

    /// The two legs: the agent answers the first request with a 401 naming a key file
    /// (`WWW-Authenticate: Basic realm=<path>`); the second request carries the file's
    /// contents. The file is read only if it is a `.key` file in the agent's directory, a
    /// regular file (not a link, FIFO or directory: never followed or blocked on) and at most
    /// 4096 bytes, so a rogue endpoint cannot make us send any other file or hang a thread.
    async fn request_token(
        &self,
        transport: &dyn Transport,
        ask: &Ask<'_>,
    ) -> Result<HttpResponse, Error> {
        let challenge = transport.send(self.token_request(ask)).await?;
        match challenge.status() {
            401 => {}
            200..=299 => {
                return Err(Error::new(
                    ErrorKind::Other,
                    NAME,
                    "the Azure Arc endpoint answered without asking for its key (expected a 401 challenge)",
                )
                .with_fix("check that IDENTITY_ENDPOINT points at the Arc agent"));
            }
            // Anything else is a failure of the endpoint, classified like any other source's.
            _ => return Ok(challenge),
        }
        let path = challenge
            .header("www-authenticate")
            .and_then(realm)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Other,
                    NAME,
                    "the Azure Arc agent's 401 names no key file (no `WWW-Authenticate: Basic realm=...`)",
                )
            })?;
        let Some(directory) = &self.key_directory else {
            return Err(Error::unavailable(
                NAME,
                "Azure Arc managed identity is supported on Linux and Windows only",
            ));
        };
        let key = read_key(&self.fs, Path::new(path), directory)?;
        let authorization = Secret::new(format!("Basic {}", key.expose()));
        let request = self
            .token_request(ask)
            .secret_header("Authorization", &authorization);
        transport.send(request).await
    }

    /// Older agents ignore a requested user-assigned identity and return the system-assigned
    /// one: an answer that does not name the requested identity is refused.
    fn unconfirmed(&self, id: &UserAssignedId) -> Result<(), Error> {
        Err(Error::authentication(
            NAME,
            format!("the Azure Arc agent did not confirm the requested identity ({id}); refusing a token that may be another identity's"),
        )
        .with_fix(UNCONFIRMED_FIX))
    }

    fn wrong_identity_fix(&self) -> &'static str {
        UNCONFIRMED_FIX
    }
}

/// The path in `Basic realm=<path>` (quotes allowed).
pub(crate) fn realm(header: &str) -> Option<&str> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let rest = rest.trim_start();
    let value = rest
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case("realm="))
        .map(|_| &rest[6..])?;
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    (!value.is_empty()).then_some(value)
}

fn read_key(fs: &Fs, path: &Path, directory: &Path) -> Result<Secret, Error> {
    let refuse = |why: &str| {
        Error::new(
            ErrorKind::Other,
            NAME,
            format!("refusing the key file the Azure Arc endpoint named: {why}"),
        )
        .with_fix("check that IDENTITY_ENDPOINT points at the Arc agent")
    };
    if path.extension().is_none_or(|e| e != "key") {
        return Err(refuse("it is not a .key file"));
    }
    if path.parent() != Some(directory) {
        return Err(refuse(&format!(
            "it is not in the agent's directory {}",
            directory.display()
        )));
    }
    // Not a link, FIFO or directory, never followed or blocked on: see the Fs method.
    let contents = fs
        .read_regular_file_nofollow(path, MAX_KEY_BYTES)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => {
                refuse(&format!("it is larger than {MAX_KEY_BYTES} bytes"))
            }
            std::io::ErrorKind::InvalidInput => refuse(&format!("it is {e}")),
            _ => refuse(&format!("it cannot be read ({e})")),
        })?;
    let contents = String::from_utf8(contents).map_err(|_| refuse("it is not text"))?;
    Ok(Secret::new(contents))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_parsing() {
        assert_eq!(
            realm("Basic realm=/var/opt/azcmagent/tokens/a.key"),
            Some("/var/opt/azcmagent/tokens/a.key")
        );
        assert_eq!(realm("basic REALM=\"C:\\x\\a.key\""), Some("C:\\x\\a.key"));
        assert_eq!(realm("Bearer realm=/x.key"), None);
        assert_eq!(realm("Basic"), None);
        assert_eq!(realm("Basic realm="), None);
        assert_eq!(realm("Basic charset=x"), None);
        assert_eq!(realm(""), None);
    }

    #[test]
    fn key_file_rules() {
        let fs = Fs::memory();
        let dir = Path::new("/var/opt/azcmagent/tokens");
        fs.write("/var/opt/azcmagent/tokens/good.key", "key-secret");
        fs.write("/var/opt/azcmagent/tokens/big.key", vec![b'k'; 4097]);
        fs.write("/var/opt/azcmagent/tokens/notakey.txt", "x");
        fs.write("/etc/shadow.key", "x");
        assert_eq!(
            read_key(&fs, Path::new("/var/opt/azcmagent/tokens/good.key"), dir)
                .unwrap()
                .expose(),
            "key-secret"
        );
        for (path, why) in [
            ("/var/opt/azcmagent/tokens/big.key", "larger than 4096"),
            ("/var/opt/azcmagent/tokens/notakey.txt", "not a .key file"),
            ("/etc/shadow.key", "not in the agent's directory"),
            (
                "/var/opt/azcmagent/tokens/../../../etc/shadow.key",
                "not in the agent's directory",
            ),
            ("/var/opt/azcmagent/tokens/missing.key", "cannot be read"),
        ] {
            let err = read_key(&fs, Path::new(path), dir).unwrap_err();
            assert!(err.to_string().contains(why), "{path}: {err}");
            assert!(!err.to_string().contains("key-secret"));
        }
    }
}
