//! [`AzurePowerShellCredential`]: tokens of the user signed in to Azure PowerShell
//! (`Connect-AzAccount`).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::devtool::{self, Tool};
use super::options::{DeveloperToolOptions, LoginChecked, ToolRunner, devtool_setters};
use crate::context::seam_setters;
use crate::credential::delegate_token_credential;
use crate::system::Output;
use crate::tenant::TenantPolicy;
use crate::{AccessToken, CachedCredential, Context, Error, ErrorKind, TokenFetcher, TokenRequest};

pub(crate) const NAME: &str = "AzurePowerShellCredential";

pub(crate) const TOOL: Tool = Tool {
    credential: NAME,
    program: "pwsh",
    windows_fallback: Some("powershell"),
    display_name: "Azure PowerShell",
    // Az.Accounts has no variable for it: always `~/.Azure`.
    config_dir_var: None,
    default_config_dir: ".Azure",
    login_files: &["AzureRmContext.json"],
    install_fix: "install PowerShell (https://aka.ms/install-powershell) and the Az.Accounts module (`Install-Module Az.Accounts -Scope CurrentUser`), or add the directory holding `pwsh` to PATH",
    login_fix: "run `Connect-AzAccount` in PowerShell (add `-Tenant <tenant>` for another tenant) and try again",
    login_markers: &[
        "Run Connect-AzAccount to login",
        "run Connect-AzAccount to set up",
    ],
};

/// The line the script prints with the token: `{TOKEN_MARKER}{token}%{expiry in Unix seconds}`.
const TOKEN_MARKER: &str = "azure-credentials-token%";
/// The line the script prints when Az.Accounts ≥ 2.2.0 is not there, with the version of the
/// newest Az.Accounts installed, if any.
const NO_MODULE_MARKER: &str = "azure-credentials-no-az-accounts%";
const MINIMUM_AZ_ACCOUNTS: &str = "2.2.0";

/// The PowerShell script run for a token; `<<RESOURCE>>` and `<<TENANT>>` are replaced by
/// validated values (see [`script`]). Everything it prints but the marker line is ignored.
const SCRIPT: &str = r#"$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$required = [version]'2.2.0'
$module = Import-Module -Name Az.Accounts -MinimumVersion $required -PassThru -ErrorAction SilentlyContinue -ErrorVariable importErrors
if (-not $module) {
    $installed = Get-Module -Name Az.Accounts -ListAvailable | Sort-Object -Property Version -Descending | Select-Object -First 1
    if ($installed -and $installed.Version -ge $required) {
        # Installed but not loadable (the execution policy, say): report why.
        if ($importErrors) { throw $importErrors[0] }
        throw 'Import-Module Az.Accounts failed'
    }
    Write-Output "azure-credentials-no-az-accounts%$($installed.Version)"
    exit 0
}
$request = @{ ResourceUrl = '<<RESOURCE>>'; WarningAction = 'Ignore' }
$tenant = '<<TENANT>>'
if ($tenant.Length -gt 0) { $request['TenantId'] = $tenant }
if ($module.Version -ge [version]'2.17.0' -and $module.Version -lt [version]'5.0.0') {
    $request['AsSecureString'] = $true
}
$result = Get-AzAccessToken @request
$token = $result.Token
if ($token -is [System.Security.SecureString]) {
    if ($PSVersionTable.PSVersion.Major -ge 7) {
        $token = ConvertFrom-SecureString -SecureString $token -AsPlainText
    }
    else {
        $bstr = [System.Runtime.InteropServices.Marshal]::SecureStringToBSTR($token)
        try { $token = [System.Runtime.InteropServices.Marshal]::PtrToStringBSTR($bstr) }
        finally { [System.Runtime.InteropServices.Marshal]::ZeroFreeBSTR($bstr) }
    }
}
Write-Output ("`nazure-credentials-token%" + $token + '%' + $result.ExpiresOn.ToUnixTimeSeconds())
"#;

/// Tokens of the user signed in to Azure PowerShell: `Get-AzAccessToken` of the Az.Accounts
/// module (2.2.0 or newer), run by `pwsh` (on Windows, `powershell.exe` when `pwsh` is not
/// installed).
///
/// The script is passed with `-NoProfile -NonInteractive -EncodedCommand`; the program is
/// found on `PATH` and run directly (no shell), with closed stdin, a safe working directory
/// and a timeout (10 s by default) that kills it and what it started. Only the one line the
/// script prints for the token is read; the rest of the output is ignored and never shown.
///
/// Cached like every other source, with a new `Connect-AzAccount` taking effect at once: the
/// credential watches `~/.Azure/AzureRmContext.json` (`%USERPROFILE%\.Azure` on Windows), where
/// Az.Accounts keeps the signed-in account, and drops its cached tokens when it changes.
/// Concurrent callers share one PowerShell process.
///
/// ```no_run
/// use azure_credentials::{AzurePowerShellCredential, TokenCredential};
///
/// # async fn example() -> Result<(), azure_credentials::Error> {
/// let credential = AzurePowerShellCredential::new()?;
/// let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AzurePowerShellCredential {
    credential: LoginChecked,
    tenant_id: Option<String>,
    timeout: Duration,
}

impl AzurePowerShellCredential {
    /// The credential with default options: the process environment, the shared cache, a 10 s
    /// timeout and the tenant of the PowerShell context. Nothing runs until the first token is
    /// asked for; PowerShell or Az.Accounts missing, or no sign-in, is reported then.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when `AZURE_ADDITIONALLY_ALLOWED_TENANTS` names an invalid tenant.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::AzurePowerShellCredential;
    ///
    /// let credential = AzurePowerShellCredential::new()?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// Options for the credential, validated by [`build`](AzurePowerShellCredentialBuilder::build).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use azure_credentials::AzurePowerShellCredential;
    ///
    /// let credential = AzurePowerShellCredential::builder()
    ///     .tenant_id("contoso.onmicrosoft.com")
    ///     .process_timeout(Duration::from_secs(30)) // loading Az.Accounts can be slow
    ///     .build()?;
    /// # Ok::<(), azure_credentials::Error>(())
    /// ```
    pub fn builder() -> AzurePowerShellCredentialBuilder {
        AzurePowerShellCredentialBuilder::default()
    }

    /// The cached credential underneath.
    pub fn cached(&self) -> &CachedCredential {
        self.credential.cached()
    }
}

impl fmt::Debug for AzurePowerShellCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(NAME)
            .field("tenant_id", &self.tenant_id)
            .field("timeout", &self.timeout)
            .finish()
    }
}

delegate_token_credential!(AzurePowerShellCredential => credential);

/// Options for an [`AzurePowerShellCredential`].
#[derive(Clone, Default)]
pub struct AzurePowerShellCredentialBuilder {
    context: Context,
    options: DeveloperToolOptions,
}

impl fmt::Debug for AzurePowerShellCredentialBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzurePowerShellCredentialBuilder")
            .field("tenant_id", &self.options.tenant_id)
            .field("timeout", &self.options.process_timeout)
            .finish_non_exhaustive()
    }
}

impl AzurePowerShellCredentialBuilder {
    seam_setters!(
        env = "Reads `PATH`, `HOME` (`USERPROFILE` on Windows), ...; PowerShell itself gets the \
               process's environment.",
        fs = "The PowerShell context file is watched there.",
        cache,
        executor,
    );

    devtool_setters!(
        tenant_id = "Ask `Get-AzAccessToken` for tokens of this tenant (`-TenantId`).",
        additionally_allowed_tenants,
        process_timeout = "Loading Az.Accounts takes a few seconds on a cold machine.",
    );

    /// Validates the options and builds the credential. Spawns nothing.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) when the tenant id holds
    /// characters that cannot be one (it would reach the PowerShell script), or
    /// `AZURE_ADDITIONALLY_ALLOWED_TENANTS` names an invalid tenant.
    ///
    /// # Examples
    ///
    /// ```
    /// use azure_credentials::{AzurePowerShellCredential, ErrorKind};
    ///
    /// let error = AzurePowerShellCredential::builder()
    ///     .tenant_id("contoso'; Remove-Item ~ -Recurse; '")
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::InvalidInput);
    /// ```
    pub fn build(self) -> Result<AzurePowerShellCredential, Error> {
        let setup = self.options.setup(&TOOL, &self.context)?;
        let DeveloperToolOptions {
            tenant_id,
            process_timeout: timeout,
            ..
        } = self.options;
        let identity = setup.identity(tenant_id.as_deref());
        tracing::debug!(
            credential = NAME,
            tenant = ?tenant_id,
            watched = ?setup.watched(),
            "credential built"
        );
        let fetcher = PwshFetcher {
            runner: setup.runner(),
            tenant_id: tenant_id.clone(),
            tenants: setup.tenants.clone(),
        };
        Ok(AzurePowerShellCredential {
            credential: setup.credential(identity, fetcher),
            tenant_id,
            timeout,
        })
    }
}

struct PwshFetcher {
    runner: ToolRunner,
    tenant_id: Option<String>,
    tenants: TenantPolicy,
}

impl fmt::Debug for PwshFetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PwshFetcher")
            .field("tenant_id", &self.tenant_id)
            .field("timeout", &self.runner.timeout)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TokenFetcher for PwshFetcher {
    async fn fetch(&self, request: &TokenRequest) -> Result<AccessToken, Error> {
        let (_, resource, tenant) =
            devtool::resource_request(NAME, request, self.tenant_id.as_deref())?;
        if let Some(claims) = request.claims() {
            return Err(claims_error(tenant, claims));
        }
        let script = script(resource, tenant.unwrap_or_default());
        let command = self.runner.command([
            "-NoProfile",
            "-NonInteractive",
            "-EncodedCommand",
            &encode_command(&script),
        ])?;
        let failure = |output: &Output| failure(output, &stderr_text(output.stderr()));
        let too_long = || unexpected_output("more output than a token", None);
        let output = self.runner.run(command, failure, too_long).await?;
        parse_output(output.stdout(), output.stderr())
    }

    fn resolve_tenant<'a>(&'a self, requested: &'a str) -> Result<Option<&'a str>, Error> {
        self.tenants.resolve(requested)
    }
}

/// The script for `resource` and `tenant` (empty for the context's). Both were validated
/// (ASCII letters, digits and `. - _ : /`); quoting them again keeps the single-quoted strings
/// closed whatever a future validation lets through.
pub(crate) fn script(resource: &str, tenant: &str) -> String {
    SCRIPT
        .replace("<<RESOURCE>>", &single_quoted_content(resource))
        .replace("<<TENANT>>", &single_quoted_content(tenant))
}

/// `value` inside a PowerShell single-quoted string: every quote PowerShell accepts as one
/// (including the typographic ones) doubled, control characters dropped.
fn single_quoted_content(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars().filter(|c| !c.is_control()) {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
        out.push(c);
    }
    out
}

/// `-EncodedCommand`'s form: base64 of the script in UTF-16LE.
pub(crate) fn encode_command(script: &str) -> String {
    let bytes: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    devtool::base64(&bytes)
}

/// A claims challenge needs an interactive sign-in, which the script cannot do.
fn claims_error(tenant: Option<&str>, claims: &str) -> Error {
    let command = format!(
        "Connect-AzAccount -ClaimsChallenge {}",
        devtool::base64(claims.as_bytes())
    );
    devtool::claims_challenge_error(
        NAME,
        command,
        "-Tenant",
        tenant,
        "sign-in",
        " in PowerShell (Az.Accounts 5.2.0 or newer)",
    )
}

/// The error for a run that failed, from its stderr (as text, see [`stderr_text`]).
fn failure(output: &Output, stderr: &str) -> Error {
    const EXECUTION_POLICY: [&str; 3] = [
        "AuthorizationManager check failed",
        "running scripts is disabled on this system",
        "about_Execution_Policies",
    ];
    const INTERACTION: [&str; 3] = [
        "User interaction is required",
        "-ClaimsChallenge",
        "interaction_required",
    ];
    if EXECUTION_POLICY.iter().any(|m| stderr.contains(m)) {
        return Error::unavailable(
            NAME,
            format!(
                "PowerShell's execution policy keeps Az.Accounts from loading: {}",
                devtool::summarize(stderr)
            ),
        )
        .with_fix("allow signed modules for your account: `Set-ExecutionPolicy -Scope CurrentUser RemoteSigned` (see about_Execution_Policies)");
    }
    if INTERACTION.iter().any(|m| stderr.contains(m)) {
        return Error::authentication(
            NAME,
            format!(
                "Azure PowerShell needs an interactive sign-in: {}",
                devtool::summarize(stderr)
            ),
        )
        .with_aadsts_codes(devtool::aadsts_codes(stderr))
        .with_fix("run `Connect-AzAccount` in PowerShell with the parameters the message names (-Tenant, -ClaimsChallenge, ...), then try again");
    }
    let error = TOOL.failure(output, stderr);
    // The command line is an encoded script: point at the command inside it instead.
    if error.kind() == ErrorKind::Authentication && error.aadsts_codes().is_empty() {
        return error.with_fix(
            "run `Get-AzAccessToken -ResourceUrl <resource>` in PowerShell to see the whole error",
        );
    }
    error
}

/// PowerShell's stderr as text. With stderr redirected it writes errors as CLIXML
/// (`#< CLIXML` then `<Objs ...><S S="Error">line_x000D__x000A_</S>...`); the error lines are
/// decoded and the rest (progress records) dropped. PowerShell 7's layout for an error in a
/// script (`Cmdlet:` / `Line |` / the source / `| message`) is put on one line first, so that
/// the summary is the message.
pub(crate) fn stderr_text(stderr: &[u8]) -> String {
    let raw = String::from_utf8_lossy(stderr);
    let text = match raw.find("#< CLIXML") {
        Some(start) => {
            let (before, clixml) = raw.split_at(start);
            let mut text = before.to_owned();
            text.push_str(&clixml_errors(clixml));
            text
        }
        None => raw.into_owned(),
    };
    let text = strip_ansi(&text);
    let text = match concise_view_message(&text) {
        Some(message) => format!("{message}\n{text}"),
        None => text,
    };
    // `Get-AzAccessToken: ...` says nothing the error does not (and `...Token: x` reads as a
    // secret to the scrubber): the message alone.
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let message = line
            .trim_start()
            .strip_prefix("Get-AzAccessToken")
            .and_then(|rest| rest.trim_start().strip_prefix(':'))
            .map(str::trim_start);
        out.push_str(message.unwrap_or(line));
    }
    out
}

/// The text of the `<S S="Error">` elements of a CLIXML document.
fn clixml_errors(clixml: &str) -> String {
    const OPEN: &str = "<S S=\"Error\">";
    let mut text = String::new();
    let mut rest = clixml;
    while let Some(i) = rest.find(OPEN) {
        rest = &rest[i + OPEN.len()..];
        let end = rest.find("</S>").unwrap_or(rest.len());
        text.push_str(&unescape_clixml(&rest[..end]));
        rest = &rest[end..];
    }
    text
}

/// XML entities and CLIXML's `_xHHHH_` escapes of characters.
fn unescape_clixml(text: &str) -> String {
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("_x") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let escaped = after
            .get(..5)
            .filter(|e| e.ends_with('_'))
            .and_then(|e| u32::from_str_radix(&e[..4], 16).ok())
            .and_then(char::from_u32);
        match escaped {
            Some(c) => {
                out.push(c);
                rest = &after[5..];
            }
            None => {
                out.push_str("_x");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`), which PowerShell 7 may color
/// errors with.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        }
    }
    out
}

/// PowerShell 7's concise view of an error in a script, on one line:
///
/// ```text
/// Get-AzAccessToken:
/// Line |
///   19 |  $result = Get-AzAccessToken @request
///      |            ~~~~~~~~~~~~~~~~~~~~~~~~~
///      | Run Connect-AzAccount to login.
/// ```
///
/// becomes `Get-AzAccessToken: Run Connect-AzAccount to login.`
fn concise_view_message(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with("Line |"))?;
    let header = lines
        .iter()
        .take(at)
        .rev()
        .map(|l| l.trim())
        .find(|l| !l.is_empty())?;
    let message: Vec<&str> = lines
        .iter()
        .skip(at)
        .skip_while(|l| !l.contains('~'))
        .skip(1)
        .map_while(|l| l.trim_start().strip_prefix('|'))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if message.is_empty() {
        return None;
    }
    Some(format!("{header} {}", message.join(" ")))
}

fn unexpected_output(what: &str, stderr: Option<&str>) -> Error {
    let mut message = format!("the Get-AzAccessToken script returned {what}");
    if let Some(stderr) = stderr.filter(|s| !s.trim().is_empty()) {
        message.push_str(&format!(" (stderr: {})", devtool::summarize(stderr)));
    }
    Error::new(ErrorKind::Other, NAME, message).with_fix(
        "run `Get-AzAccessToken -ResourceUrl <resource>` in PowerShell to see what it returns; update Az.Accounts (`Update-Module Az.Accounts`) if it is old",
    )
}

/// The token from the script's output: the one marker line (anything else is ignored and never
/// shown: the output holds the token), or the module-missing marker.
pub(crate) fn parse_output(stdout: &[u8], stderr: &[u8]) -> Result<AccessToken, Error> {
    let stdout = String::from_utf8_lossy(stdout);
    let lines = stdout
        .lines()
        .map(|l| l.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}'));
    let mut found = None;
    for line in lines {
        if let Some(version) = line.strip_prefix(NO_MODULE_MARKER) {
            return Err(module_missing(version));
        }
        if let Some(rest) = line.strip_prefix(TOKEN_MARKER) {
            if found.is_some() {
                return Err(unexpected_output("more than one token line", None));
            }
            found = Some(rest);
        }
    }
    let Some(rest) = found else {
        let stderr = stderr_text(stderr);
        return Err(unexpected_output("no token line", Some(&stderr)));
    };
    let (token, expires_on) = rest
        .rsplit_once('%')
        .ok_or_else(|| unexpected_output("a token line without an expiry", None))?;
    if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(unexpected_output("an empty or malformed token", None));
    }
    let expires_on = expires_on
        .parse::<i64>()
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .ok_or_else(|| unexpected_output("a token without a valid expiry", None))?;
    // The script does not say which tenant, nor who; the token does.
    Ok(crate::jwt::identify(
        AccessToken::new(token.to_owned(), expires_on).with_source(NAME),
    ))
}

/// Az.Accounts is missing, or older than 2.2.0 (`version`: the newest installed, if any).
fn module_missing(version: &str) -> Error {
    let version = version.trim();
    let shown = !version.is_empty()
        && version.len() <= 32
        && version.chars().all(|c| c.is_ascii_digit() || c == '.');
    let message = if shown {
        format!("Az.Accounts {version} is installed; {MINIMUM_AZ_ACCOUNTS} or newer is needed")
    } else {
        format!("the Az.Accounts module ({MINIMUM_AZ_ACCOUNTS} or newer) is not installed")
    };
    let fix = if shown {
        "update it in PowerShell: `Update-Module Az.Accounts` (or `Install-Module Az.Accounts -Scope CurrentUser -Force`)"
    } else {
        "install it in PowerShell: `Install-Module Az.Accounts -Scope CurrentUser`, then `Connect-AzAccount`"
    };
    Error::unavailable(NAME, message).with_fix(fix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_encoded_command_is_the_script_in_utf16le_base64() {
        // tests/azure_powershell.rs decodes whole scripts.
        assert_eq!(encode_command("ab"), "YQBiAA==");
        assert_eq!(encode_command("é€"), "6QCsIA==");
    }

    #[test]
    fn the_script_names_the_resource_the_tenant_and_its_markers() {
        let s = script("https://vault.azure.net", "");
        assert!(s.contains("ResourceUrl = 'https://vault.azure.net'"), "{s}");
        assert!(s.contains("$tenant = ''"), "{s}");
        assert!(s.contains(TOKEN_MARKER) && s.contains(NO_MODULE_MARKER));
        assert!(s.contains(&format!("[version]'{MINIMUM_AZ_ACCOUNTS}'")));
        let s = script("https://vault.azure.net", "contoso.onmicrosoft.com");
        assert!(s.contains("$tenant = 'contoso.onmicrosoft.com'"), "{s}");
        // A quote of any kind cannot close the string early.
        let s = script("x'; Remove-Item ~; '\u{2019}", "");
        assert!(
            s.contains("ResourceUrl = 'x''; Remove-Item ~; ''\u{2019}\u{2019}'"),
            "{s}"
        );
    }

    #[test]
    fn the_token_line_is_found_among_noise() {
        let stdout =
            b"WARNING: noise\r\n\r\nazure-credentials-token%tok.en_1%1893459600\r\nmore noise\n";
        let token = parse_output(stdout, b"").unwrap();
        assert_eq!(token.token().expose(), "tok.en_1");
        assert_eq!(token.expires_on(), datetime!(2030-01-01 1:00 UTC));
        assert_eq!(token.source(), NAME);
    }

    #[test]
    fn a_bad_token_line_is_refused_without_echoing_it() {
        for stdout in [
            &b"azure-credentials-token%secret-value"[..],
            b"azure-credentials-token%secret-value%soon",
            b"azure-credentials-token%%1893459600",
            b"azure-credentials-token%secret value%1893459600",
            b"azure-credentials-token%secret-value%99999999999999999",
            b"azure-credentials-token%secret-value%1\nazure-credentials-token%secret-value%2",
            b"secret-value",
            b"",
        ] {
            let err = parse_output(stdout, b"").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Other);
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    #[test]
    fn clixml_errors_are_decoded() {
        let stderr = "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><Obj S=\"progress\" RefId=\"0\"><TN RefId=\"0\"><T>System.Management.Automation.PSCustomObject</T></TN><MS><I64 N=\"SourceId\">1</I64></MS></Obj><S S=\"Error\">_x001B_[91mGet-AzAccessToken: _x001B_[0mRun Connect-AzAccount to login &amp; retry._x000D__x000A_</S><S S=\"Error\">second_x000A_</S></Objs>";
        assert_eq!(
            stderr_text(stderr.as_bytes()),
            "Run Connect-AzAccount to login & retry.\r\nsecond\n"
        );
        assert_eq!(unescape_clixml("a_x_b_x00_c_xZZZZ_"), "a_x_b_x00_c_xZZZZ_");
    }

    #[test]
    fn the_concise_view_becomes_one_line() {
        let stderr = "Get-AzAccessToken: \nLine |\n  19 |  $result = Get-AzAccessToken @request\n     |            ~~~~~~~~~~~~~~~~~~~~~~~~~\n     | Run Connect-AzAccount to login.\n";
        assert_eq!(
            devtool::summarize(&stderr_text(stderr.as_bytes())),
            "Run Connect-AzAccount to login."
        );
        let windows_powershell = "Get-AzAccessToken : Run Connect-AzAccount to login.\r\nAt line:19 char:11\r\n+ $result = Get-AzAccessToken @request\r\n";
        assert_eq!(
            devtool::summarize(&stderr_text(windows_powershell.as_bytes())),
            "Run Connect-AzAccount to login."
        );
    }

    #[test]
    fn module_versions_are_shown_only_when_they_look_like_versions() {
        let err = module_missing("1.9.5");
        assert!(err.to_string().contains("Az.Accounts 1.9.5 is installed"));
        let err = module_missing("");
        assert!(err.to_string().contains("is not installed"));
        let err = module_missing("1.0; secret");
        assert!(!err.to_string().contains("secret"));
    }
}
