//! The persistent token cache's types as the rest of the crate names them, when the crate is
//! built without the feature `persistence`: uninhabited (no persistence can be asked for), and
//! a credential's fetcher is used as it is. Built as `cache::persist` in place of
//! `cache/persist/`.

use crate::Error;
use crate::system::Env;

/// Stands for the options, which no builder offers without the feature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TokenCachePersistence {}

impl TokenCachePersistence {
    pub(crate) fn open(
        &self,
        _credential: &'static str,
        _env: &Env,
    ) -> Result<PersistedCaches, Error> {
        match *self {}
    }
}

/// Stands for a credential's opened caches: there are none.
#[derive(Clone)]
pub(crate) enum PersistedCaches {}

/// A fetcher with persistence: the fetcher as it is.
pub(crate) type Persisted<F> = F;
