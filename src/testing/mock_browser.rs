//! [`MockBrowser`]: a browser without a browser, for the interactive sign-in tests and demo.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use url::{Host, Url};

use crate::system::{Command, Executor, Output, ProcessError, ProcessErrorKind};

/// The most of a page the browser reads.
const MAX_PAGE: usize = 1024 * 1024;

/// An [`Executor`] that plays the browser a credential opens for an interactive sign-in,
/// against a [`MockEntra`](super::MockEntra) sign-in page, without a browser.
///
/// Each run takes the command's **last argument** as the URL (as `xdg-open URL`, `open URL` or
/// `cmd /c start "" URL` end), GETs it, finds the link `<a id="continue" href="...">` the sign-in
/// page carries, GETs its target (the credential's redirect listener) and keeps the page that
/// listener answered ([`last_page`](Self::last_page)); then the run succeeds with exit code 0
/// and no output. When the page has no continue link ([`MockSignIn::Never`](super::MockSignIn::Never)),
/// the run never finishes: the caller's timeout or drop ends it.
///
/// It only talks to loopback hosts (`127.0.0.1`, `::1`, `localhost`, which it resolves to those
/// itself), without a proxy and without following redirects; any other URL fails the run with
/// a [`ProcessErrorKind::Io`] error before anything is sent. A failed request fails the run
/// the same way.
///
/// Cloning gives another handle to the same records, so a test keeps one and hands the
/// credential an `Arc` of another. The run waits for the listener's answer, so a credential
/// must serve its redirect listener while the executor's `run` is in flight.
///
/// ```
/// use azure_credentials::testing::MockBrowser;
///
/// let browser = MockBrowser::new();
/// assert_eq!(browser.opened(), 0);
/// assert!(browser.last_page().is_none());
/// ```
#[derive(Clone, Default)]
pub struct MockBrowser {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    urls: Mutex<Vec<String>>,
    last_page: Mutex<Option<String>>,
}

impl MockBrowser {
    /// A browser that opened nothing yet.
    pub fn new() -> Self {
        MockBrowser::default()
    }

    /// How many URLs runs were asked to open.
    pub fn opened(&self) -> usize {
        self.inner.urls.lock().len()
    }

    /// The URLs runs were asked to open, in order (the sign-in pages, not the redirects).
    pub fn urls(&self) -> Vec<String> {
        self.inner.urls.lock().clone()
    }

    /// The body of the page the redirect listener answered last, if a sign-in got that far.
    pub fn last_page(&self) -> Option<String> {
        self.inner.last_page.lock().clone()
    }

    /// Opens `url` and follows the sign-in page's continue link.
    async fn browse(&self, url: &str, program: &std::ffi::OsStr) -> Result<(), ProcessError> {
        let fail = |why: &str| {
            // The URLs carry states and codes: the log says what failed, not where.
            tracing::debug!(why, "MockBrowser: the run failed");
            ProcessError::new(ProcessErrorKind::Io, program)
        };
        let client = client().ok_or_else(|| fail("could not build the HTTP client"))?;
        let sign_in = loopback_url(url).ok_or_else(|| fail("not a loopback http URL"))?;
        let page = get(&client, sign_in)
            .await
            .ok_or_else(|| fail("the sign-in page could not be read"))?;
        let Some(target) = continue_link(&page) else {
            // The user never finishes signing in.
            return std::future::pending().await;
        };
        let target = loopback_url(&target)
            .ok_or_else(|| fail("the continue link is not a loopback http URL"))?;
        let answered = get(&client, target)
            .await
            .ok_or_else(|| fail("the redirect listener's page could not be read"))?;
        *self.inner.last_page.lock() = Some(answered);
        Ok(())
    }
}

impl fmt::Debug for MockBrowser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URLs and pages may carry codes: counts only.
        f.debug_struct("MockBrowser")
            .field("opened", &self.opened())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Executor for MockBrowser {
    async fn run(&self, command: &Command) -> Result<Output, ProcessError> {
        let program = command.program();
        let Some(url) = command.get_args().last().and_then(|arg| arg.to_str()) else {
            tracing::debug!("MockBrowser: the command's last argument is not a URL");
            return Err(ProcessError::new(ProcessErrorKind::Io, program));
        };
        self.inner.urls.lock().push(url.to_owned());
        self.browse(url, program).await?;
        Ok(Output::new(Some(0), Vec::new(), Vec::new()))
    }
}

/// `url` parsed, if it is `http` to a loopback host.
fn loopback_url(url: &str) -> Option<Url> {
    let url = Url::parse(url).ok()?;
    let loopback = match url.host()? {
        Host::Domain(domain) => domain.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    };
    (loopback && url.scheme() == "http").then_some(url)
}

/// A client for loopback http only: no proxy, no redirects, `localhost` pinned to loopback.
pub(in crate::testing) fn client() -> Option<reqwest::Client> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // reqwest is built without a rustls provider: it must be handed a config, though the
    // browser never speaks https.
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let loopback = [
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0),
    ];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .resolve_to_addrs("localhost", &loopback)
        .build()
        .ok()
}

/// GETs `url` and returns the body (at most 1 MiB), whatever the status.
async fn get(client: &reqwest::Client, url: Url) -> Option<String> {
    let mut response = client.get(url).send().await.ok()?;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        if body.len().saturating_add(chunk.len()) > MAX_PAGE {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(String::from_utf8_lossy(&body).into_owned())
}

/// The un-escaped `href` of the element with `id="continue"`.
pub(in crate::testing) fn continue_link(page: &str) -> Option<String> {
    let at = page.find("id=\"continue\"")?;
    let start = page.get(..at)?.rfind('<')?;
    let end = at + page.get(at..)?.find('>')?;
    let tag = page.get(start..end)?;
    let href = tag.get(tag.find("href=\"")? + "href=\"".len()..)?;
    let href = href.get(..href.find('"')?)?;
    Some(unescape(href))
}

/// Undoes the escapes of [`super::entra`]'s pages (and `&#x27;`).
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_continue_link_is_found_and_unescaped() {
        let page = "<p><a href=\"x\">x</a></p><a id=\"continue\" href=\"http://127.0.0.1:1/?code=a&amp;state=b%20c\">Continue</a>";
        assert_eq!(
            continue_link(page).as_deref(),
            Some("http://127.0.0.1:1/?code=a&state=b%20c")
        );
        assert_eq!(continue_link("<p>Waiting</p>"), None);
    }

    #[test]
    fn only_loopback_http_urls_are_opened() {
        for ok in [
            "http://127.0.0.1:8400/",
            "http://localhost/x",
            "http://[::1]:1/",
            "http://127.1.2.3/",
        ] {
            assert!(loopback_url(ok).is_some(), "{ok}");
        }
        for refused in [
            "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
            "http://example.invalid/",
            "https://127.0.0.1/",
            "http://localhost.example.com/",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(loopback_url(refused).is_none(), "{refused}");
        }
    }
}
