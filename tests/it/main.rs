//! The one integration-test binary (one link, many modules).
//!
//! Tiers: tests that need nothing external run everywhere; tests that need a real component call
//! `support::require(...)` first, which skips them with a visible message when the component is absent
//! and FAILS them when `STACK_TEST_REQUIRE=all` (CI sets it after installing everything).

// Tests run the built binary and real tools the way a user would; the one-spawner rule
// (clippy.toml) is for the product crate.
#![allow(clippy::disallowed_methods)]

mod build;
mod buildkit;
mod checks_kube;
mod checks_net;
mod cli;
mod cluster;
mod conformance;
mod converge;
mod corpus;
mod deliver;
mod differential;
mod forward;
mod init;
mod junit;
mod kube;
mod live;
mod oci;
mod parsers;
mod promote;
mod release;
mod rig;
mod rig_ns;
mod safety;
mod schema_conformance;
mod strvals;
mod support;
mod test_stage;
mod tidy;
mod up;
mod validate;
