#![no_main]
// See azure_credentials::fuzzing::www_authenticate for the input's layout.
libfuzzer_sys::fuzz_target!(|data: &[u8]| azure_credentials::fuzzing::www_authenticate(data));
