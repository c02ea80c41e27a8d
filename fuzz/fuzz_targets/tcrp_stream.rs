//! The incremental TCRP decoder on arbitrary bytes in arbitrary chunks.
//! Properties and input format: `ocm_core::fuzzing::tcrp_stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ocm_core::fuzzing::tcrp_stream(data));
