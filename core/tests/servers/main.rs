//! The servers, whole, in memory: every test drives a [`ocm_testkit::Harness`], which
//! checks every property of `ocm_core::invariants::check_step` after every input.
//! One file per area; they read as the protocol's specification.

mod common;
mod extensions;
mod relay;
mod rooms_chat;
mod rooms_properties;
mod rooms_tcp;
mod rooms_tcrp;
