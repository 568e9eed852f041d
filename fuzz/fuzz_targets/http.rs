//! Fuzzes the HTTP helpers every provider shares: `Retry-After`, quoted
//! bodies, error bodies without any words Cutout recognises. The invariants are checked in
//! `cutout::providers::fuzzing`, which the unit tests run too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cutout::providers::fuzzing::http(data);
});
