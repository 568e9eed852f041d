//! Fuzzes removebgvideo's answers. The invariants are checked in
//! `cutout::providers::fuzzing`, which the unit tests run too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cutout::providers::fuzzing::removebgvideo(data);
});
