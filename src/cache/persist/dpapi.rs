//! Windows: the cache file's bytes encrypted with DPAPI for the current user
//! (`CryptProtectData` / `CryptUnprotectData`), as Python's msal-extensions
//! (`FilePersistenceWithDataProtection`, through azure-identity) and .NET's keep
//! `%LOCALAPPDATA%\.IdentityService\{name}{suffix}`: no extra entropy, no prompt
//! (`CRYPTPROTECT_UI_FORBIDDEN`), so each reads what the other wrote.
//!
//! Encryption is only a transform of the bytes: the file itself is written, locked and
//! re-read by the file store exactly as the unencrypted one is.
//!
//! The crate's only unsafe code: the two DPAPI calls and freeing their output, each with its
//! safety argument.
#![allow(unsafe_code)]

use std::io;
use std::ptr;

use windows_sys::Win32::Foundation::{ERROR_INVALID_DATA, LocalFree};
use windows_sys::Win32::Security::Cryptography::{
    CRYPT_INTEGER_BLOB, CRYPTPROTECT_UI_FORBIDDEN, CryptProtectData, CryptUnprotectData,
};

use super::error::{PersistError, PersistErrorKind};

/// `NTE_BAD_DATA`: what DPAPI also answers for bytes that are no protected blob.
const NTE_BAD_DATA: i32 = 0x8009_0005_u32 as i32;

/// `plain` encrypted for the current user.
pub(crate) fn protect(plain: &[u8]) -> Result<Vec<u8>, PersistError> {
    let input = blob(plain)?;
    let mut output = CRYPT_INTEGER_BLOB {
        cbData: 0,
        pbData: ptr::null_mut(),
    };
    // SAFETY: `input` points at `plain`, which outlives the call and is only read; every
    // optional argument is null; `output` is ours to receive the allocation freed below.
    let ok = unsafe {
        CryptProtectData(
            &input,
            ptr::null(),
            ptr::null(),
            ptr::null(),
            ptr::null(),
            CRYPTPROTECT_UI_FORBIDDEN,
            &mut output,
        )
    };
    if ok == 0 {
        let cause = io::Error::last_os_error();
        return Err(PersistError::with_source(
            PersistErrorKind::Protection,
            "Windows' data protection (DPAPI CryptProtectData) could not encrypt the token cache \
             for this user",
            cause,
        ));
    }
    Ok(take(output))
}

/// `protected` decrypted; a [`PersistErrorKind::Undecryptable`] error when the bytes are no
/// DPAPI blob (a damaged or unencrypted file), a [`PersistErrorKind::Protection`] one when
/// DPAPI refuses (another user's file, a profile whose keys are not loaded).
pub(crate) fn unprotect(protected: &[u8]) -> Result<Vec<u8>, PersistError> {
    let input = blob(protected)?;
    let mut output = CRYPT_INTEGER_BLOB {
        cbData: 0,
        pbData: ptr::null_mut(),
    };
    // SAFETY: as in `protect`; the description out-pointer is null (not wanted).
    let ok = unsafe {
        CryptUnprotectData(
            &input,
            ptr::null_mut(),
            ptr::null(),
            ptr::null(),
            ptr::null(),
            CRYPTPROTECT_UI_FORBIDDEN,
            &mut output,
        )
    };
    if ok == 0 {
        let cause = io::Error::last_os_error();
        let not_a_blob = matches!(cause.raw_os_error(), Some(code)
            if code == ERROR_INVALID_DATA as i32 || code == NTE_BAD_DATA);
        return Err(if not_a_blob {
            PersistError::with_source(
                PersistErrorKind::Undecryptable,
                "the token cache file is not encrypted with Windows' data protection (DPAPI)",
                cause,
            )
        } else {
            PersistError::with_source(
                PersistErrorKind::Protection,
                "Windows' data protection (DPAPI CryptUnprotectData) could not decrypt the token \
                 cache for this user (was it written by another user or on another machine?)",
                cause,
            )
        });
    }
    Ok(take(output))
}

/// A blob borrowing `bytes` (DPAPI only reads an input blob).
fn blob(bytes: &[u8]) -> Result<CRYPT_INTEGER_BLOB, PersistError> {
    let len = u32::try_from(bytes.len()).map_err(|_| {
        PersistError::new(
            PersistErrorKind::TooLarge,
            "the token cache is too large to encrypt",
        )
    })?;
    Ok(CRYPT_INTEGER_BLOB {
        cbData: len,
        pbData: bytes.as_ptr().cast_mut(),
    })
}

/// Copies DPAPI's output and frees it (`LocalFree`), wiping the copy DPAPI made first: it may
/// be the plaintext.
fn take(output: CRYPT_INTEGER_BLOB) -> Vec<u8> {
    if output.pbData.is_null() {
        return Vec::new();
    }
    let len = output.cbData as usize;
    // SAFETY: on success DPAPI set `pbData` to an allocation of `cbData` bytes that is ours
    // until `LocalFree`.
    let bytes = unsafe { std::slice::from_raw_parts(output.pbData, len) }.to_vec();
    // SAFETY: the same allocation, written through its own pointer, then freed once.
    unsafe {
        ptr::write_bytes(output.pbData, 0, len);
        LocalFree(output.pbData.cast());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_dpapi_round_trips_and_the_protected_bytes_are_not_the_plaintext() {
        let plain = br#"{"AccessToken":{"k":{"secret":"not-a-real-token"}}}"#;
        let protected = protect(plain).unwrap();
        assert!(
            !protected
                .windows(b"not-a-real-token".len())
                .any(|w| w == b"not-a-real-token"),
            "the protected bytes contain the plaintext"
        );
        assert_eq!(unprotect(&protected).unwrap(), plain);
        // An empty document too.
        assert_eq!(unprotect(&protect(b"").unwrap()).unwrap(), b"");
    }

    /// Through the persistent cache as a credential uses it: the file holds DPAPI's bytes, a
    /// fresh read decrypts them, and a plaintext file in its place is set aside, not fatal.
    #[test]
    fn windows_dpapi_store_keeps_the_file_encrypted_and_reads_it_back() {
        use crate::Secret;
        use crate::cache::persist::tests::scratch_dir;
        use crate::cache::persist::{Backend, PersistentCache};

        let dir = scratch_dir("dpapi-store").join(".IdentityService");
        let path = dir.join("msal.cache.nocae");
        let cache = PersistentCache::at(path.clone(), Backend::Dpapi);
        let refresh = Secret::new("dpapi-test-refresh-token");
        let (env, client, home) = ("login.microsoftonline.com", "client-id", "uid.utid");
        cache
            .update(|document| document.put_refresh_token(env, client, home, &refresh))
            .unwrap();

        let on_disk = std::fs::read(&path).unwrap();
        assert!(!on_disk.is_empty());
        assert!(!on_disk.starts_with(b"{"), "the file is plaintext JSON");
        assert!(
            !on_disk
                .windows(refresh.len())
                .any(|w| w == refresh.expose().as_bytes()),
            "the refresh token is on disk in the clear"
        );
        let unprotected = unprotect(&on_disk).unwrap();
        assert!(unprotected.starts_with(b"{"));

        // Read again from the file, not from memory.
        let found = cache
            .load_fresh()
            .unwrap()
            .find_refresh_token(env, client, home);
        assert_eq!(found.as_ref().map(Secret::expose), Some(refresh.expose()));

        // Another tool's plaintext in its place: set aside, the cache starts empty.
        std::fs::write(&path, br#"{"RefreshToken":{}}"#).unwrap();
        let document = cache.load_fresh().unwrap();
        assert!(document.find_refresh_token(env, client, home).is_none());
        assert!(!path.exists(), "the undecryptable file was not set aside");
        let aside = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
            .count();
        assert_eq!(aside, 1);
    }

    #[test]
    fn windows_dpapi_refuses_plaintext_as_undecryptable_with_a_typed_error() {
        let error = unprotect(br#"{"AccessToken":{}}"#).unwrap_err();
        assert_eq!(error.kind(), PersistErrorKind::Undecryptable, "{error}");
        assert!(error.to_string().contains("DPAPI"), "{error}");
        assert!(std::error::Error::source(&error).is_some());
    }
}
