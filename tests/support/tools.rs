//! The developer tools' side of a test: what the credential asked the scripted executor to run.

use azure_credentials::testing::ScriptedExecutor;

/// The arguments of the last command the executor ran (after the program).
pub fn last_args(executor: &ScriptedExecutor) -> Vec<String> {
    executor
        .last_command()
        .unwrap()
        .get_args()
        .iter()
        .map(|a| a.to_str().unwrap().to_owned())
        .collect()
}

/// The script of a `-EncodedCommand` argument: base64 of UTF-16LE text.
pub fn decode_encoded_command(encoded: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bytes = Vec::new();
    let (mut bits, mut count) = (0u32, 0);
    for c in encoded.bytes().filter(|c| *c != b'=') {
        let value = ALPHABET.iter().position(|a| *a == c).expect("base64") as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    assert_eq!(bytes.len() % 2, 0, "UTF-16 is two bytes a unit");
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).expect("UTF-16")
}
