//! Macros that write the one-line setters builders share, so that one option has one name,
//! one signature and one text everywhere. The seams' setters are [`seam_setters!`]
//! (`context.rs`); the Entra ID and developer-tool options are `entra_setters!` and
//! `devtool_setters!`, made of these. Also here: [`debug_fields!`], the `Debug` that shows
//! only the fields it names, which builders and credentials use to keep secrets out.
//!
//! [`seam_setters!`]: crate::context::seam_setters

/// A setter storing `Some(value.into())` in a field: `option_setter!(/// doc
/// name: Type => path.to.field)`.
macro_rules! option_setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty => $($field:ident).+) => {
        $(#[$doc])*
        pub fn $name(mut self, $name: impl Into<$ty>) -> Self {
            self.$($field).+ = Some($name.into());
            self
        }
    };
}
pub(crate) use option_setter;

/// The `additionally_allowed_tenants` setter, storing the list in a field:
/// `allowed_tenants_setter!(path.to.field)`, optionally followed by a paragraph of the
/// builder's own.
macro_rules! allowed_tenants_setter {
    ($($field:ident).+ $(, $doc:literal)?) => {
        /// Tenants besides its own that callers may request tokens for with
        /// [`TokenRequestOptions::with_tenant_id`](crate::TokenRequestOptions::with_tenant_id);
        /// `"*"` allows any. Replaces `AZURE_ADDITIONALLY_ALLOWED_TENANTS` (`;`-separated),
        /// which is the default.
        $(#[doc = ""] #[doc = $doc])?
        pub fn additionally_allowed_tenants(
            mut self,
            tenants: impl IntoIterator<Item = impl Into<String>>,
        ) -> Self {
            self.$($field).+ = Some(tenants.into_iter().map(Into::into).collect());
            self
        }
    };
}
pub(crate) use allowed_tenants_setter;

/// Setters storing their argument in a field as it is, or wrapped in `Some` (an `impl Into<T>`
/// argument converted first), one a line:
///
/// ```ignore
/// setters! {
///     /// Docs.
///     name(arg: Type) => path.to.field;
///     /// Docs.
///     other(arg: Type) => Some(path.to.field);
/// }
/// ```
macro_rules! setters {
    () => {};
    (
        $(#[$doc:meta])*
        $name:ident($arg:ident: impl Into<$ty:ty>) => Some($($field:ident).+);
        $($rest:tt)*
    ) => {
        $(#[$doc])*
        pub fn $name(mut self, $arg: impl Into<$ty>) -> Self {
            self.$($field).+ = Some($arg.into());
            self
        }
        $crate::setters::setters!($($rest)*);
    };
    (
        $(#[$doc:meta])*
        $name:ident($arg:ident: $ty:ty) => Some($($field:ident).+);
        $($rest:tt)*
    ) => {
        $(#[$doc])*
        pub fn $name(mut self, $arg: $ty) -> Self {
            self.$($field).+ = Some($arg);
            self
        }
        $crate::setters::setters!($($rest)*);
    };
    (
        $(#[$doc:meta])*
        $name:ident($arg:ident: $ty:ty) => $($field:ident).+;
        $($rest:tt)*
    ) => {
        $(#[$doc])*
        pub fn $name(mut self, $arg: $ty) -> Self {
            self.$($field).+ = $arg;
            self
        }
        $crate::setters::setters!($($rest)*);
    };
}
pub(crate) use setters;

/// A hand-written `Debug` that shows only the fields it names, so that a field added later
/// (a secret, say) stays out until someone names it: `debug_fields!(Type { a, b: path.to.b })`
/// prints `Type { a: .., b: .. }`; a trailing `..` prints the `..` of
/// `finish_non_exhaustive`; `Type as NAME { .. }` prints `NAME` instead of the type's name.
macro_rules! debug_fields {
    (@name $ty:ident) => { stringify!($ty) };
    (@name $ty:ident $name:ident) => { $name };
    (@field $this:ident $label:ident) => { &$this.$label };
    (@field $this:ident $label:ident $($path:ident).+) => { &$this.$($path).+ };
    ($ty:ident $(as $name:ident)? { $($label:ident $(: $($path:ident).+)?),+ , .. }) => {
        $crate::setters::debug_fields!(
            @impl $ty [$($name)?] finish_non_exhaustive $($label $(: $($path).+)?),+
        );
    };
    ($ty:ident $(as $name:ident)? { $($label:ident $(: $($path:ident).+)?),+ $(,)? }) => {
        $crate::setters::debug_fields!(@impl $ty [$($name)?] finish $($label $(: $($path).+)?),+);
    };
    (@impl $ty:ident [$($name:ident)?] $finish:ident $($label:ident $(: $($path:ident).+)?),+) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct($crate::setters::debug_fields!(@name $ty $($name)?))
                    $(.field(
                        stringify!($label),
                        $crate::setters::debug_fields!(@field self $label $($($path).+)?),
                    ))+
                    .$finish()
            }
        }
    };
}
pub(crate) use debug_fields;
