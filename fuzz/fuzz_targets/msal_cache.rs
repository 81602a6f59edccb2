#![no_main]
// See azure_credentials::fuzzing::msal_cache for the input's layout.
libfuzzer_sys::fuzz_target!(|data: &[u8]| azure_credentials::fuzzing::msal_cache(data));
