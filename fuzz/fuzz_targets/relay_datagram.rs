//! The relay-mode datagram decoder and the relay client's reading of datagrams.
//! Properties and input format: `ocm_testkit::fuzz::relay_datagram`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ocm_testkit::fuzz::relay_datagram(data));
