//! [`Context`]: the seams a credential reaches the world through, bundled.

use std::fmt;
use std::sync::Arc;

use crate::TokenCache;
use crate::setters::setters;
use crate::system::{Clock, Env, Executor, Fs, Http, TokioExecutor};

/// The seams every credential reaches the world through — environment variables ([`Env`]),
/// files ([`Fs`]), HTTP ([`Http`]), the token cache ([`TokenCache`], and with it the
/// [`Clock`]) and the process runner ([`Executor`]) — bundled, so that a builder takes them with
/// one call and a chain hands every member the same ones.
///
/// What is not set is the real thing: the process environment, the real file system,
/// [`Http::shared`], [`TokenCache::shared`] and [`TokioExecutor`]. Cloning is cheap.
///
/// ```
/// use azure_credentials::system::{Env, Fs};
/// use azure_credentials::{Context, ManagedIdentityCredential, TokenCache};
///
/// # fn run() -> Result<(), azure_credentials::Error> {
/// // A test's world: no process environment, no files, a cache of its own.
/// let context = Context::default()
///     .with_env(Env::empty().with("IDENTITY_ENDPOINT", "http://127.0.0.1:8081/msi/token"))
///     .with_fs(Fs::memory())
///     .with_cache(TokenCache::builder().build());
/// let credential = ManagedIdentityCredential::builder().context(context).build();
/// # let _ = credential; Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Context {
    env: Option<Env>,
    fs: Option<Fs>,
    http: Option<Http>,
    cache: Option<TokenCache>,
    executor: Option<Arc<dyn Executor>>,
}

impl Context {
    setters! {
        /// Where environment variables are read. Default: the process environment.
        with_env(env: Env) => Some(env);

        /// Where files are read. Default: the real file system.
        with_fs(fs: Fs) => Some(fs);

        /// The HTTP client of credentials that use one. Default: [`Http::shared`].
        with_http(http: Http) => Some(http);

        /// The token cache, whose clock also dates tokens. Default: [`TokenCache::shared`].
        with_cache(cache: TokenCache) => Some(cache);

        /// What runs the developer tools (`az`, `azd`). Default: [`TokioExecutor`].
        with_executor(executor: Arc<dyn Executor>) => Some(executor);
    }

    /// The environment variables.
    pub fn env(&self) -> Env {
        self.env.clone().unwrap_or_else(Env::process)
    }

    /// The file system.
    pub fn fs(&self) -> Fs {
        self.fs.clone().unwrap_or_else(Fs::real)
    }

    /// The HTTP client.
    pub fn http(&self) -> Http {
        self.http.clone().unwrap_or_else(Http::shared)
    }

    /// The token cache.
    pub fn cache(&self) -> TokenCache {
        self.cache.clone().unwrap_or_else(TokenCache::shared)
    }

    /// The token cache if one was set: for credentials whose default is not the shared one.
    #[cfg(feature = "communication")]
    pub(crate) fn cache_if_set(&self) -> Option<TokenCache> {
        self.cache.clone()
    }

    /// The clock: the token cache's.
    pub fn clock(&self) -> Clock {
        self.cache().clock().clone()
    }

    /// The process runner.
    pub fn executor(&self) -> Arc<dyn Executor> {
        self.executor
            .clone()
            .unwrap_or_else(|| Arc::new(TokioExecutor::default()))
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Which seams are replaced; an `Env`'s values could be secrets, so they are not shown.
        let set = |set: bool| if set { "set" } else { "default" };
        f.debug_struct("Context")
            .field("env", &set(self.env.is_some()))
            .field("fs", &set(self.fs.is_some()))
            .field("http", &set(self.http.is_some()))
            .field("cache", &self.cache)
            .field("executor", &set(self.executor.is_some()))
            .finish()
    }
}

/// Adds `context(..)` and one-line setters for the named seams to a builder whose `context`
/// field is a [`Context`]: `seam_setters!(env, fs, http, cache, executor)` (any subset, in that
/// order). Each setter replaces that seam of the builder's context. A seam may carry a
/// paragraph of its own for that builder: `seam_setters!(env = "Reads `AZURE_CONFIG_DIR`.")`.
macro_rules! seam_setters {
    ($($seam:ident $(= $doc:literal)?),* $(,)?) => {
        /// All the seams at once (environment, files, HTTP, cache, process runner): see
        /// [`Context`](crate::Context). Setters for single seams replace that part of it.
        pub fn context(mut self, context: $crate::Context) -> Self {
            self.context = context;
            self
        }
        $($crate::context::seam_setters!(@one $seam [$($doc)?]);)*
    };
    (@one env [$($doc:literal)?]) => {
        /// Where environment variables are read. Default: the process environment.
        $(#[doc = ""] #[doc = $doc])?
        pub fn env(mut self, env: $crate::system::Env) -> Self {
            self.context = self.context.with_env(env);
            self
        }
    };
    (@one fs [$($doc:literal)?]) => {
        /// Where files are read. Default: the real file system.
        $(#[doc = ""] #[doc = $doc])?
        pub fn fs(mut self, fs: $crate::system::Fs) -> Self {
            self.context = self.context.with_fs(fs);
            self
        }
    };
    (@one http [$($doc:literal)?]) => {
        /// The HTTP client. Default: [`Http::shared`](crate::system::Http::shared).
        $(#[doc = ""] #[doc = $doc])?
        pub fn http(mut self, http: $crate::system::Http) -> Self {
            self.context = self.context.with_http(http);
            self
        }
    };
    (@one cache [$($doc:literal)?]) => {
        /// The token cache, whose clock also dates tokens. Default:
        /// [`TokenCache::shared`](crate::TokenCache::shared).
        $(#[doc = ""] #[doc = $doc])?
        pub fn cache(mut self, cache: $crate::TokenCache) -> Self {
            self.context = self.context.with_cache(cache);
            self
        }
    };
    (@one executor [$($doc:literal)?]) => {
        /// What runs the tool. Default: [`TokioExecutor`](crate::system::TokioExecutor).
        $(#[doc = ""] #[doc = $doc])?
        pub fn executor(mut self, executor: std::sync::Arc<dyn $crate::system::Executor>) -> Self {
            self.context = self.context.with_executor(executor);
            self
        }
    };
}
pub(crate) use seam_setters;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_seams_are_the_real_ones_and_set_ones_are_kept() {
        let cache = TokenCache::builder().build();
        let context = Context::default()
            .with_env(Env::empty().with("X", "1"))
            .with_cache(cache.clone());
        assert_eq!(context.env().var("X").as_deref(), Some("1"));
        assert!(format!("{:?}", context.clone().cache()) == format!("{cache:?}"));
        let printed = format!("{context:?}");
        assert!(printed.contains("env: \"set\""), "{printed}");
        assert!(
            !printed.contains("\"1\""),
            "values are not printed: {printed}"
        );
    }
}
