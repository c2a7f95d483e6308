//! `tollgate analyze`'s input: whatever the file holds, the judge returns a report or an error,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::cli::analyze::{analyze, AnalyzeInput};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<AnalyzeInput>(data) else {
        return;
    };
    if input.windows.len() > 64 {
        return; // bounded work per input; the judge is linear in the windows
    }
    let _ = analyze(&input, true);
});
