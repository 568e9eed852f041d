//! Fuzzes the settings file: whatever loads must save and load back the
//! same. The invariants are checked in
//! `cutout::providers::fuzzing`, which the unit tests run too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cutout::providers::fuzzing::settings(data);
});
