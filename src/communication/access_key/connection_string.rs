//! Reading a connection string (`endpoint=<url>;accesskey=<key>`) and checking an endpoint:
//! an `https` base URL (`http` for loopback hosts only). Errors never repeat the key.

use url::{Host, Url};

use super::NAME;
use crate::Error;

const CONNECTION_STRING_FIX: &str = "copy the connection string from the Azure portal (your Communication Services resource, Settings, Keys): it reads endpoint=https://<resource>.communication.azure.com/;accesskey=<key>";

/// A parsed connection string; `key` borrows from the input.
pub(super) struct ConnectionString<'a> {
    pub(super) endpoint: Url,
    pub(super) key: &'a str,
}

impl<'a> ConnectionString<'a> {
    pub(super) fn parse(text: &'a str) -> Result<Self, Error> {
        let invalid =
            |what: String| Error::invalid_input(NAME, what).with_fix(CONNECTION_STRING_FIX);
        let mut endpoint = None;
        let mut key = None;
        for (i, part) in text
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .enumerate()
        {
            // The value may contain '=' (base64 padding): split at the first one only.
            let Some((name, value)) = part.split_once('=') else {
                return Err(invalid(format!(
                    "part {} of the connection string is not a name=value setting",
                    i + 1
                )));
            };
            let name = name.trim();
            let slot = if name.eq_ignore_ascii_case("endpoint") {
                &mut endpoint
            } else if name.eq_ignore_ascii_case("accesskey") {
                &mut key
            } else {
                // Only a plausible setting name is repeated back: anything else could be a
                // piece of the key.
                let shown = if !name.is_empty()
                    && name.len() <= 32
                    && name.chars().all(|c| c.is_ascii_alphabetic())
                {
                    format!("an unknown setting {name:?}")
                } else {
                    "an unknown setting".to_owned()
                };
                return Err(invalid(format!(
                    "the connection string has {shown} (part {}); only endpoint and accesskey are understood",
                    i + 1
                )));
            };
            if slot.replace(value.trim()).is_some() {
                return Err(invalid(format!(
                    "the connection string sets {} twice",
                    name.to_ascii_lowercase()
                )));
            }
        }
        let (endpoint, key) = match (endpoint, key) {
            (Some(e), Some(k)) => (e, k),
            (None, Some(_)) => {
                return Err(invalid("the connection string has no endpoint=".to_owned()));
            }
            (Some(_), None) => {
                return Err(invalid(
                    "the connection string has no accesskey=".to_owned(),
                ));
            }
            (None, None) => {
                return Err(invalid(
                    "the connection string has neither endpoint= nor accesskey=".to_owned(),
                ));
            }
        };
        Ok(ConnectionString {
            endpoint: parse_endpoint(endpoint)?,
            key,
        })
    }
}

/// An `https` base URL without credentials, query or fragment (`http` for loopback only).
pub(super) fn parse_endpoint(raw: &str) -> Result<Url, Error> {
    let invalid = |what: String| {
        Error::invalid_input(NAME, what).with_fix(
            "use the resource's endpoint as the portal shows it: https://<resource>.communication.azure.com/",
        )
    };
    // Not repeated back when it does not parse: a mangled connection string could put part
    // of the key here.
    let url = Url::parse(raw.trim())
        .map_err(|_| invalid("the endpoint is not an absolute URL".to_owned()))?;
    let Some(host) = url.host() else {
        return Err(invalid("the endpoint has no host".to_owned()));
    };
    let loopback = match &host {
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(invalid(format!(
                "the endpoint http://{host}/ is plain http, which is accepted for loopback hosts only"
            )));
        }
        _ => return Err(invalid("the endpoint's scheme is not https".to_owned())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "the endpoint must not contain a user name or password".to_owned(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(format!(
            "the endpoint of {host} has a query or fragment; it must be a base URL"
        )));
    }
    Ok(url)
}
