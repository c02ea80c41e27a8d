//! The rooms datagram decoder and the room client's reading of datagrams.
//! Properties and input format: `ocm_testkit::fuzz::room_datagram`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ocm_testkit::fuzz::room_datagram(data));
