//! Helpers shared by the integration tests. Each test binary declares `mod support;` and uses
//! the parts it needs:
//!
//! - [`cache`]: a deterministic token cache on a manual clock;
//! - [`default_chain`]: `DefaultAzureCredential` on made-up machines;
//! - [`federated`]: what the federated credentials' tests share (Entra's "assertion expired",
//!   the assertions it received);
//! - [`fixtures`]: the files under `fixtures/` and scratch directories;
//! - [`http`]: loopback HTTP/1.1 stand-ins for the resources a token is for;
//! - [`imds`]: IMDS absent (off Azure), and the check that a mock was asked once;
//! - [`jwt`]: JWT-shaped test tokens;
//! - [`log_capture`]: every log line at TRACE, and the check that no secret was printed;
//! - [`readme`]: the README's tables that the code must match;
//! - [`tls`]: self-signed certificates and https fronts for the mocks;
//! - [`tools`]: the commands a developer-tool credential ran;
//! - [`wait`]: tokio's paused clock, and waiting for spawned work.

#![allow(dead_code)] // each test binary uses a part

pub mod cache;
pub mod default_chain;
pub mod federated;
pub mod fixtures;
pub mod http;
pub mod imds;
pub mod jwt;
pub mod log_capture;
pub mod readme;
pub mod tls;
pub mod tools;
pub mod wait;
