//! What of a URL may appear in messages, and which hosts are local (never proxied, and the
//! only ones a secret header may reach over plain http).

use std::net::Ipv6Addr;

use url::{Host, Url};

/// Whether `url`'s host is loopback or link-local: never proxied, and the only hosts a secret
/// header may reach over plain http.
pub(crate) fn is_local(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback() || ip.is_link_local(),
        Some(Host::Ipv6(ip)) => match ip.to_ipv4_mapped() {
            Some(v4) => v4.is_loopback() || v4.is_link_local(),
            None => ip.is_loopback() || is_ipv6_link_local(ip),
        },
        Some(Host::Domain(domain)) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            domain == "localhost" || domain.ends_with(".localhost")
        }
        None => false,
    }
}

fn is_ipv6_link_local(ip: Ipv6Addr) -> bool {
    (ip.segments()[0] & 0xffc0) == 0xfe80
}

/// The parts of a URL that may appear in messages: never the query, fragment or user info.
pub(super) struct Target {
    pub(super) host: String,
    /// `host:port`.
    pub(super) authority: String,
    /// `host:port/path`.
    pub(super) endpoint: String,
}

impl Target {
    pub(super) fn of(url: &Url) -> Self {
        let host = url.host_str().unwrap_or("<no host>").to_owned();
        let authority = match url.port_or_known_default() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        let endpoint = format!("{authority}{}", url.path());
        Target {
            host,
            authority,
            endpoint,
        }
    }
}

/// `scheme://host:port/path`: the one way a URL is shown in messages and logs. The port is
/// always shown (the scheme's default included); never the query, fragment or user info.
pub(crate) fn redacted_url(url: &Url) -> String {
    format!("{}://{}", url.scheme(), Target::of(url).endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_link_local_hosts_bypass_proxies() {
        for url in [
            "http://127.0.0.1:8080/x",
            "http://127.5.6.7/",
            "http://[::1]:9/",
            "http://localhost/",
            "http://LocalHost./",
            "http://imds.localhost/",
            "http://169.254.169.254/metadata/identity/oauth2/token",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(is_local(&Url::parse(url).unwrap()), "{url}");
        }
        for url in [
            "https://login.microsoftonline.com/tenant/oauth2/v2.0/token",
            "http://10.0.0.1/",
            "http://[2001:db8::1]/",
            "http://localhost.example.com/",
            "http://169.255.0.1/",
        ] {
            assert!(!is_local(&Url::parse(url).unwrap()), "{url}");
        }
    }
}
