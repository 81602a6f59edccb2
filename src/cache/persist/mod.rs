//! The persistent token cache: the plain-file store and its cross-process lock.

pub(crate) mod error;
pub(crate) mod file;
pub(crate) mod lock;
#[cfg(test)]
mod tests;
