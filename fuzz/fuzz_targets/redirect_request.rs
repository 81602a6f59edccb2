#![no_main]
// See azure_credentials::fuzzing::redirect_request for the input's layout.
libfuzzer_sys::fuzz_target!(|data: &[u8]| azure_credentials::fuzzing::redirect_request(data));
