//! A whole rooms server driven by an arbitrary sequence of inputs.
//! Properties and input format: `ocm_testkit::fuzz::server_ops`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ocm_testkit::fuzz::server_ops(data));
