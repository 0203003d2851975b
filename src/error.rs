//! Errors callers branch on, and the exit code each maps to (DESIGN.md "Bad input policy").
//!
//! Exit codes: 0 ok, 1 findings or failed checks, 2 usage or configuration error, 3 missing external
//! tool or daemon, 4 an external tool ran and failed (helm, kind, k3d, tofu: its command line, exit
//! status and last stderr lines are shown, or it ran past its timeout), 130 cancelled (Ctrl-C), 70 an internal error (a bug in stack: a panic or a
//! broken invariant). An I/O error that escapes to `main` unclassified counts as 2.

use crate::yaml::{Origin, ParseError, Pos};
use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// Wrong flags or arguments.
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    /// A file the user wrote is malformed or inconsistent.
    #[error("{}{message}", origin.as_ref().map(|o| format!("{o}: ")).unwrap_or_default())]
    Config {
        origin: Option<Origin>,
        message: String,
        hint: Option<String>,
    },
    /// An external tool or daemon is not there.
    #[error("{tool} not found — {hint}")]
    MissingTool { tool: String, hint: String },
    /// A daemon or service stack needs does not answer (Docker, a cluster).
    #[error("{what} is not reachable — {hint}")]
    Unreachable { what: String, hint: String },
    /// An external tool ran and failed: not the user's configuration, not stack's bug.
    #[error("`{command}` failed with exit status {status}{}", if stderr_tail.is_empty() { String::new() } else { format!("\n{stderr_tail}") })]
    ToolFailed {
        tool: String,
        /// The command line as `Cmd` prints it (secrets redacted).
        command: String,
        status: i32,
        /// The last lines of its stderr.
        stderr_tail: String,
        hint: Option<String>,
    },
    /// The user cancelled (Ctrl-C); whatever was running was stopped.
    #[error("cancelled during {during}")]
    Cancelled { during: String },
    /// A bug in stack: an invariant broke.
    #[error("internal error (a bug in stack, please report it): {message}")]
    Internal { message: String },
}

impl StackError {
    pub fn exit_code(&self) -> u8 {
        match self {
            StackError::Usage { .. } | StackError::Config { .. } => 2,
            StackError::MissingTool { .. } | StackError::Unreachable { .. } => 3,
            StackError::ToolFailed { .. } => 4,
            StackError::Cancelled { .. } => 130,
            StackError::Internal { .. } => 70,
        }
    }

    pub fn hint(&self) -> Option<&str> {
        match self {
            StackError::Usage { hint, .. }
            | StackError::Config { hint, .. }
            | StackError::ToolFailed { hint, .. } => hint.as_deref(),
            StackError::MissingTool { .. }
            | StackError::Unreachable { .. }
            | StackError::Cancelled { .. }
            | StackError::Internal { .. } => None,
        }
    }

    pub fn config(
        origin: Option<Origin>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        StackError::Config {
            origin,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// A failed (or unstartable) external command, with what to try.
    pub fn tool(e: crate::tool::RunError, hint: impl Into<String>) -> Self {
        use crate::tool::RunError;
        match e {
            RunError::Spawn { tool, cmd, source } => StackError::MissingTool {
                tool,
                hint: format!("could not start `{cmd}`: {source}"),
            },
            RunError::Failed { tool, cmd, output } => {
                let lines: Vec<&str> = output.stderr.trim_end().lines().collect();
                let tail = lines[lines.len().saturating_sub(20)..].join("\n");
                StackError::ToolFailed {
                    tool,
                    command: cmd,
                    status: output.status,
                    stderr_tail: tail,
                    hint: Some(hint.into()),
                }
            }
            RunError::TimedOut { tool, cmd, after } => StackError::ToolFailed {
                tool,
                command: cmd,
                status: -1,
                stderr_tail: format!("stopped after {}s without finishing", after.as_secs()),
                hint: Some(hint.into()),
            },
            RunError::Cancelled { cmd, .. } => StackError::Cancelled {
                during: format!("`{cmd}`"),
            },
        }
    }

    /// A YAML syntax error becomes a configuration error at its line:col.
    pub fn from_parse(e: ParseError) -> Self {
        StackError::Config {
            origin: Some(Origin {
                file: e.file,
                pos: e.pos,
            }),
            message: if e.message.contains("excessive aliasing") {
                format!("YAML Helm refuses: {}", e.message)
            } else {
                format!("malformed YAML: {}", e.message)
            },
            hint: Some(if e.message.contains("excessive aliasing") {
                "write the values out (or anchor fewer, smaller nodes): Helm refuses this file too"
                    .into()
            } else {
                "fix the YAML syntax at that position".into()
            }),
        }
    }
}

/// How a run ended, for `main`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Clean,
    Findings,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Clean => 0,
            Outcome::Findings => 1,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}
