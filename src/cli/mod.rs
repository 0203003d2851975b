//! Command-line definitions only: clap structs, no work. `main` maps them onto `ops`.

use crate::ui::Format;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "stack",
    version,
    about = "One binary for a Kubernetes app team's platform repo",
    propagate_version = true
)]
pub struct Cli {
    /// Project root (where stack.yaml, charts/ and envs/ live). Default: the current directory.
    #[arg(long, short = 'C', global = true, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value = "human")]
    pub format: Format,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate configuration offline.
    #[command(subcommand)]
    Validate(Validate),
    /// Print the JSON Schema of stack.yaml (for editor completion).
    Schema,
}

#[derive(Debug, Subcommand)]
pub enum Validate {
    /// Compose every environment's Helm values exactly as Helm would and validate them.
    Envs(ValidateEnvs),
}

#[derive(Debug, clap::Args)]
pub struct ValidateEnvs {
    /// Cloud layer (envs/<NAME>.yaml). Default: stack.yaml `envs.cloud`, else the only cloud file.
    #[arg(long, value_name = "NAME")]
    pub cloud: Option<String>,
    /// Also run real `helm template` for every target (deep mode for CI).
    #[arg(long)]
    pub helm: bool,
    /// Changed files (as pre-commit passes them): only the targets they affect are validated.
    pub files: Vec<PathBuf>,
}
