#![no_main]
// See azure_credentials::fuzzing::az_config_ini for the input's layout.
libfuzzer_sys::fuzz_target!(|data: &[u8]| azure_credentials::fuzzing::az_config_ini(data));
