//! The incremental TCRP decoder on arbitrary bytes in arbitrary chunks.
//! Properties and input format: `ocm_testkit::fuzz::tcrp_stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ocm_testkit::fuzz::tcrp_stream(data));
