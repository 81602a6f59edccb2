//! The persistent token cache (issue 15): MSAL's cache document, its stores and locks.

pub(crate) mod msal_schema;
