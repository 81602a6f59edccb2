//! Helpers shared by the integration tests. Each test binary declares `mod support;` and uses
//! the parts it needs:
//!
//! - [`azurite`]: Azurite, the Azure Storage emulator, as a child process in OAuth mode over
//!   HTTPS, and a client that trusts it;
//! - [`cache`]: a deterministic token cache on a manual clock;
//! - [`callers`]: many callers of one credential at once;
//! - [`default_chain`]: `DefaultAzureCredential` on made-up machines;
//! - [`entra`]: the Entra mock and a deterministic cache on one manual clock, and what a
//!   credential sent it;
//! - [`federated`]: what the federated credentials' tests share (Entra's "assertion expired",
//!   the assertions it received);
//! - [`fixtures`]: the files under `fixtures/` and scratch directories;
//! - [`http`]: loopback HTTP/1.1 stand-ins for the resources a token is for;
//! - [`imds`]: IMDS absent (off Azure), the check that a mock was asked once, and the values the
//!   managed identity tests give the mock;
//! - [`jwt`]: JWT-shaped test tokens;
//! - [`log_capture`]: every log line at TRACE (a [`log_capture::LeakTest`]), and the check that no
//!   secret was printed;
//! - [`python`]: Python virtualenvs with the other SDKs, made under the target directory;
//! - [`readme`]: the README's tables that the code must match;
//! - [`scopes`]: the scopes tokens are asked for;
//! - [`middleware`]: this crate's error inside a reqwest-middleware error;
//! - [`tls`]: self-signed certificates and https fronts for the mocks;
//! - [`tools`]: a developer tool's machine (scripted executor, cache, recorded outputs), the
//!   commands it ran, and stand-in scripts;
//! - [`wait`]: tokio's paused clock, and waiting for spawned work.

#![allow(dead_code)] // each test binary uses a part

/// Declares a field-less enum and a constant array of all its variants in declaration order, so
/// that a test iterating over every case cannot miss one added later:
/// `listed_enum! { #[derive(..)] enum Fault, all FAULTS { Refused, Hang } }`.
#[allow(unused_macros)]
macro_rules! listed_enum {
    (
        $(#[$meta:meta])*
        enum $name:ident, all $all:ident {
            $($(#[$variant_meta:meta])* $variant:ident),* $(,)?
        }
    ) => {
        $(#[$meta])*
        enum $name {
            $($(#[$variant_meta])* $variant),*
        }

        const $all: [$name; [$(stringify!($variant)),*].len()] = [$($name::$variant),*];
    };
}
#[allow(unused_imports)]
pub(crate) use listed_enum;

pub mod azurite;
pub mod cache;
pub mod callers;
pub mod default_chain;
pub mod entra;
pub mod federated;
pub mod fixtures;
pub mod http;
pub mod imds;
pub mod jwt;
pub mod log_capture;
#[cfg(feature = "reqwest-middleware")]
pub mod middleware;
pub mod python;
pub mod readme;
pub mod scopes;
pub mod tls;
pub mod tools;
pub mod wait;
