//! A pod's `/version` answer and the JSON pointers into it: never panics. Input: the pointer
//! (up to the first newline), then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::gates::fleet::attest::parse_attestation;
use tollgate::gates::fleet::AttestConfig;

fuzz_target!(|data: &[u8]| {
    let (pointer, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (String::from_utf8_lossy(&data[..i]).into_owned(), &data[i + 1..]),
        None => ("/version".to_string(), data),
    };
    let config = AttestConfig {
        version_pointer: pointer.clone(),
        config_hash_pointer: pointer,
        ..AttestConfig::default()
    };
    if let Err(e) = parse_attestation(&config, body) {
        let _ = (e.kind(), e.reported(), e.to_string());
    }
});
