//! The authorization endpoint of [`MockEntra`](super::MockEntra)
//! (`GET /{tenant}/oauth2/v2.0/authorize`): its checks, and the HTML sign-in page that sends the
//! browser back to the app's loopback redirect URI as the [`MockSignIn`] setting says. Also the
//! device code flow's verification page (`/devicelogin`).

use url::{Host, Url};

use super::user::{CodeRequest, MockSignIn, UserFlows};
use crate::testing::loopback_http::{Action, Outgoing, RecordedRequest};

const HTML: &str = "text/html; charset=utf-8";
const TITLE: &str = "Sign in \u{2014} mock Microsoft Entra ID";
/// The `state` a [`MockSignIn::WrongState`] redirect carries when the request had none.
const WRONG_STATE: &str = "mock-entra-wrong-state";

/// Answers an authorize request: a 400 error page that does not redirect, or the sign-in page.
pub(super) fn authorize(flows: &mut UserFlows, request: &RecordedRequest, now: i64) -> Outgoing {
    if request.method() != "GET" {
        return error_page(405, "The authorization endpoint only accepts GET requests.");
    }
    let query = |name: &str| request.query(name).filter(|v| !v.is_empty());
    for name in [
        "client_id",
        "redirect_uri",
        "response_type",
        "code_challenge",
    ] {
        if query(name).is_none() {
            return error_page(
                400,
                &format!("AADSTS900144: The request must contain the parameter '{name}'."),
            );
        }
    }
    if query("response_type") != Some("code") {
        return error_page(
            400,
            "AADSTS700054: response_type must be 'code' (the mock supports the authorization code flow only).",
        );
    }
    if query("code_challenge_method") != Some("S256") {
        return error_page(
            400,
            "AADSTS501491: code_challenge_method must be 'S256' (the mock refuses plain PKCE).",
        );
    }
    if query("response_mode").is_some_and(|mode| mode != "query") {
        return error_page(
            400,
            "AADSTS900144: response_mode must be 'query' (the mock sends the code in the redirect's query).",
        );
    }
    let redirect_uri = query("redirect_uri").unwrap_or_default();
    let Some(mut target) = loopback_redirect(redirect_uri) else {
        return error_page(
            400,
            "AADSTS50011: The redirect URI specified in the request does not match the redirect URIs configured for the application: the mock accepts http://localhost[:port]/... and http://127.0.0.1[:port]/... only.",
        );
    };
    let state = query("state");
    let code_request = CodeRequest {
        client_id: query("client_id").unwrap_or_default(),
        redirect_uri,
        challenge: query("code_challenge"),
        nonce: query("nonce"),
        scope: query("scope").unwrap_or_default(),
    };
    let sign_in = flows.sign_in.clone();
    {
        let mut pairs = target.query_pairs_mut();
        match &sign_in {
            MockSignIn::Never => {
                drop(pairs);
                return page(200, &waiting_page(query("login_hint")));
            }
            MockSignIn::Approve => {
                pairs.append_pair("code", &flows.issue_code(&code_request, now));
                if let Some(state) = state {
                    pairs.append_pair("state", state);
                }
            }
            MockSignIn::WrongState => {
                pairs.append_pair("code", &flows.issue_code(&code_request, now));
                let wrong = state.map_or_else(|| WRONG_STATE.to_owned(), |s| format!("{s}-forged"));
                pairs.append_pair("state", &wrong);
            }
            MockSignIn::Deny { error, description } => {
                pairs.append_pair("error", error);
                pairs.append_pair("error_description", description);
                if let Some(state) = state {
                    pairs.append_pair("state", state);
                }
            }
        }
    }
    page(200, &sign_in_page(target.as_str(), query("login_hint")))
}

/// `GET /devicelogin`: where the device code message sends the user.
pub(super) fn device_login() -> Outgoing {
    page(
        200,
        &format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{TITLE}</title></head>\n<body><h1>Enter code</h1><p>Enter the code displayed on your app or device. (The mock signs device codes in on its own: push replies to script the polls.)</p></body></html>\n"
        ),
    )
}

/// `redirect_uri` parsed, if it is `http://localhost[:port]/...` or `http://127.0.0.1[:port]/...`
/// without credentials or a fragment.
fn loopback_redirect(redirect_uri: &str) -> Option<Url> {
    let url = Url::parse(redirect_uri).ok()?;
    let loopback = match url.host()? {
        Host::Domain(domain) => domain == "localhost",
        Host::Ipv4(ip) => ip == std::net::Ipv4Addr::LOCALHOST,
        Host::Ipv6(_) => false,
    };
    (loopback
        && url.scheme() == "http"
        && url.username().is_empty()
        && url.password().is_none()
        && url.fragment().is_none())
    .then_some(url)
}

fn sign_in_page(target: &str, login_hint: Option<&str>) -> String {
    let who = login_hint.map_or_else(String::new, |hint| {
        format!(
            "<p>Signing in as <strong>{}</strong>.</p>\n",
            crate::scrub::html_escape(hint)
        )
    });
    // A JSON string is a JavaScript string literal; `<`, `>` and `&` are escaped so the
    // target cannot end the script element.
    let js_target = serde_json::Value::from(target)
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{TITLE}</title></head>\n<body>\n<h1>{TITLE}</h1>\n{who}<p>You are signed in. Returning to the application&hellip;</p>\n<p><a id=\"continue\" href=\"{}\">Continue</a></p>\n<script>window.location.replace({js_target});</script>\n</body></html>\n",
        crate::scrub::html_escape(target)
    )
}

fn waiting_page(login_hint: Option<&str>) -> String {
    let who = login_hint.map_or_else(String::new, |hint| {
        format!(
            "<p>Signing in as <strong>{}</strong>.</p>\n",
            crate::scrub::html_escape(hint)
        )
    });
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{TITLE}</title></head>\n<body>\n<h1>{TITLE}</h1>\n{who}<p>Waiting for you to sign in&hellip;</p>\n</body></html>\n"
    )
}

fn error_page(status: u16, message: &str) -> Outgoing {
    page(
        status,
        &format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{TITLE}</title></head>\n<body>\n<h1>Sorry, but we&rsquo;re having trouble signing you in.</h1>\n<p id=\"error\">{}</p>\n</body></html>\n",
            crate::scrub::html_escape(message)
        ),
    )
}

fn page(status: u16, html: &str) -> Outgoing {
    Outgoing::new(Action::respond(status, HTML, html.as_bytes().to_vec()))
}
