//! The names of the environment variables the crate reads (or passes on), each defined once.
//! The README's "Environment variables" table lists the
//! same names; a test below keeps the two in step.

/// Defines each name as a constant whose value is its own identifier, and [`ALL`] listing them.
macro_rules! env_vars {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        $(
            $(#[$doc])*
            #[allow(non_upper_case_globals, dead_code)]
            pub(crate) const $name: &str = stringify!($name);
        )*
        /// Every name above, in this file's order.
        #[cfg(test)]
        pub(crate) const ALL: &[&str] = &[$($name),*];
    };
}

env_vars! {
    // A service principal (EnvironmentCredential), workload identity and the Entra ID options.
    /// The tenant (directory) id.
    AZURE_TENANT_ID,
    /// The application (client) id; for managed identity, a user-assigned identity's.
    AZURE_CLIENT_ID,
    /// A client secret.
    AZURE_CLIENT_SECRET,
    /// A PEM file (or, with the feature `pkcs12`, a PKCS#12 file) with a certificate and its
    /// private key.
    AZURE_CLIENT_CERTIFICATE_PATH,
    /// The PKCS#12 file's password.
    AZURE_CLIENT_CERTIFICATE_PASSWORD,
    /// `1` or `true`: send the certificate chain (`x5c`) with each assertion.
    AZURE_CLIENT_SEND_CERTIFICATE_CHAIN,
    /// Username / password authentication, which is refused (deprecated, no MFA).
    AZURE_USERNAME,
    /// See [`AZURE_USERNAME`].
    AZURE_PASSWORD,
    /// The Entra ID authority host.
    AZURE_AUTHORITY_HOST,
    /// The Kubernetes service account token file of workload identity.
    AZURE_FEDERATED_TOKEN_FILE,
    /// Other tenants per-request tenants may name, `;`-separated, `*` for any.
    AZURE_ADDITIONALLY_ALLOWED_TENANTS,
    /// Set (any value): every request goes to the credential's own tenant.
    AZURE_IDENTITY_DISABLE_MULTITENANTAUTH,

    // The CI systems' OIDC endpoints (AzurePipelinesCredential, GitHubActionsCredential).
    /// Azure Pipelines: the job's OIDC token endpoint.
    SYSTEM_OIDCREQUESTURI,
    /// GitHub Actions: the job's ID token endpoint (with `permissions: id-token: write`).
    ACTIONS_ID_TOKEN_REQUEST_URL,
    /// GitHub Actions: the bearer token for [`ACTIONS_ID_TOKEN_REQUEST_URL`].
    ACTIONS_ID_TOKEN_REQUEST_TOKEN,

    // Managed identity: the hosting environments' endpoints and secrets.
    /// App Service, Azure Arc and Service Fabric's endpoint.
    IDENTITY_ENDPOINT,
    /// App Service and Service Fabric's secret header.
    IDENTITY_HEADER,
    /// Service Fabric's certificate thumbprint.
    IDENTITY_SERVER_THUMBPRINT,
    /// Azure ML and Cloud Shell's endpoint.
    MSI_ENDPOINT,
    /// Azure ML's secret.
    MSI_SECRET,
    /// Azure Arc's IMDS endpoint.
    IMDS_ENDPOINT,
    /// Azure ML's default user-assigned identity.
    DEFAULT_IDENTITY_CLIENT_ID,
    /// The IMDS authority of AKS pod identity (no probe then).
    AZURE_POD_IDENTITY_AUTHORITY_HOST,
    /// The IMDS probe's timeout, in milliseconds.
    AZURE_CREDENTIALS_IMDS_PROBE_TIMEOUT_MS,
    /// Windows: where the Azure Arc agent is installed.
    ProgramFiles,
    /// Windows: where the Azure Arc agent keeps its key files.
    ProgramData,

    // The default chain.
    /// Which members of the default chain take part: `dev`, `prod` or one credential's name.
    AZURE_TOKEN_CREDENTIALS,

    // The developer tools.
    /// The Azure CLI's configuration directory (default `~/.azure`).
    AZURE_CONFIG_DIR,
    /// `0`, `false`, `no` or `off`: the Azure CLI credential always runs `az`.
    AZURE_CREDENTIALS_CLI_FAST_PATH,
    /// Set for `az` (never read): no color codes in its output.
    AZURE_CORE_NO_COLOR,
    /// An agent session: az then binds its tokens to it (no fast path).
    COPILOT_AGENT_SESSION_ID,
    /// Starts with `cloud-shell` in Cloud Shell (no fast path).
    AZUREPS_HOST_ENVIRONMENT,
    /// The Azure Developer CLI's configuration directory (default `~/.azd`).
    AZD_CONFIG_DIR,
    /// Where programs are looked for.
    PATH,
    /// Windows: the extensions of programs (`.cmd`, `.exe`, ...).
    PATHEXT,
    /// The home directory (Unix).
    HOME,
    /// The home directory (Windows).
    USERPROFILE,
    /// Windows: the working directory of the tools.
    SYSTEMROOT,
    // The persistent token cache in the Secret Service (feature "secret-service").
    /// The D-Bus session bus of the Secret Service (GNOME Keyring, KWallet).
    DBUS_SESSION_BUS_ADDRESS,
    /// Where the session bus is (`$XDG_RUNTIME_DIR/bus`) when the address is not set.
    XDG_RUNTIME_DIR,
}

/// Variables the crate does not read itself but the libraries it uses do (the HTTP client's
/// proxy settings, the trust store); error messages and the README name them.
#[cfg(test)]
pub(crate) const READ_BY_DEPENDENCIES: &[&str] = &[
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "REQUEST_METHOD",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const README: &str = include_str!("../README.md");

    /// The first column of the README's "Environment variables" table.
    fn readme_table() -> Vec<String> {
        let section = README
            .split("\n## ")
            .find(|s| s.starts_with("Environment variables"))
            .expect("README has a section \"## Environment variables\"");
        section
            .lines()
            .filter(|l| l.starts_with("| `"))
            .filter_map(|l| l.split('`').nth(1))
            .map(str::to_owned)
            .collect()
    }

    /// Backticked words anywhere in the README that look like variables (`NAME_WITH_CAPS`).
    /// Every piece between two backticks is looked at: prose between code spans has spaces.
    fn readme_mentions() -> BTreeSet<String> {
        README
            .split('`')
            .filter(|w| {
                w.contains('_')
                    && w.starts_with(|c: char| c.is_ascii_uppercase())
                    && w.bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            })
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_readme_table_lists_every_variable_once_and_nothing_else() {
        let table = readme_table();
        let listed: BTreeSet<&str> = table.iter().map(String::as_str).collect();
        assert_eq!(
            listed.len(),
            table.len(),
            "a name is listed twice: {table:?}"
        );
        let ours: BTreeSet<&str> = ALL.iter().chain(READ_BY_DEPENDENCIES).copied().collect();
        let undocumented: Vec<_> = ours.difference(&listed).collect();
        let unknown: Vec<_> = listed.difference(&ours).collect();
        assert!(
            undocumented.is_empty(),
            "not in the README's table: {undocumented:?}"
        );
        assert!(
            unknown.is_empty(),
            "in the README's table but not in src/env_vars.rs: {unknown:?}"
        );
    }

    #[test]
    fn every_variable_the_readme_names_exists() {
        // The Azure CLI's own settings (`AZURE_<SECTION>_<OPTION>`, read by the fast path the
        // way az reads them) are a family, not names of ours.
        let az_settings = ["AZURE_CORE_ENCRYPT_TOKEN_CACHE", "AZURE_CLOUD_NAME"];
        let unknown: Vec<String> = readme_mentions()
            .into_iter()
            .filter(|w| !ALL.contains(&w.as_str()))
            .filter(|w| !READ_BY_DEPENDENCIES.contains(&w.as_str()))
            .filter(|w| !az_settings.contains(&w.as_str()))
            .filter(|w| w != "AZURE_<SECTION>_<OPTION>")
            .collect();
        assert!(
            unknown.is_empty(),
            "the README names variables src/env_vars.rs does not define: {unknown:?}"
        );
    }
}
