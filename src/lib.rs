//! `stack`: validate, up, test, preview and live for a Kubernetes app team's platform repo.
//! See ARCHITECTURE.md for the map.

pub mod check;
pub mod cli;
pub mod cluster_target;
pub mod config;
pub mod diag;
pub mod docker;
pub mod envs;
pub mod error;
pub mod image;
pub mod kube;
pub mod net;
pub mod oci;
pub mod ops;
pub mod release;
pub mod rt;
pub mod state;
pub mod tool;
pub mod ui;
pub mod values;
pub mod watch;
pub mod yaml;
