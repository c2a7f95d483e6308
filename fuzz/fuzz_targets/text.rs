//! The one sanitizer of outside text: whatever comes in, nothing that drives a terminal comes out,
//! and status text stays within its cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::util::text;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let shown = text::for_terminal(&raw);
    assert!(!shown.chars().any(|c| c.is_control() && c != '\n'), "{shown:?}");
    let kept = text::for_status(&raw, 64);
    assert!(kept.chars().count() <= 65, "{kept:?}");
    assert!(!kept.chars().any(char::is_control), "{kept:?}");
});
