//! Images: build contexts (walk, ignore, content hash, tar) and git metadata for build args.
//! Invariant: no process is spawned here except through a `tool::Runner` (git).

pub mod context;
pub mod git;
