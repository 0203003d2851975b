//! A recording fake [`Runner`]: every command is recorded; answers come from a script mapping an
//! argv prefix (program file name first) to an [`Output`]. An unscripted command fails the test.

use super::{Cmd, Output, RunError, Runner};
use std::sync::Mutex;

#[derive(Default)]
pub struct RecordingRunner {
    script: Mutex<Vec<(Vec<String>, Output)>>,
    calls: Mutex<Vec<Cmd>>,
}

impl RecordingRunner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers commands whose argv (program file name, then args) starts with `prefix`.
    /// Later entries take precedence, so a test can override a default answer.
    pub fn on(&self, prefix: &[&str], output: Output) -> &Self {
        self.script
            .lock()
            .unwrap()
            .push((prefix.iter().map(|s| s.to_string()).collect(), output));
        self
    }

    /// Every command run so far, in order.
    pub fn calls(&self) -> Vec<Cmd> {
        self.calls.lock().unwrap().clone()
    }

    /// The command lines run so far (program file name, shell-quoted args).
    pub fn lines(&self) -> Vec<String> {
        self.calls().iter().map(Cmd::short_line).collect()
    }
}

impl Runner for RecordingRunner {
    fn output(&self, cmd: &Cmd) -> Result<Output, RunError> {
        self.calls.lock().unwrap().push(cmd.clone());
        let mut argv = cmd.argv();
        argv[0] = cmd
            .program
            .file_name()
            .map_or(argv[0].clone(), |n| n.to_string_lossy().into_owned());
        let script = self.script.lock().unwrap();
        script
            .iter()
            .rev()
            .find(|(prefix, _)| argv.starts_with(prefix))
            .map(|(_, out)| out.clone())
            .ok_or_else(|| RunError::Spawn {
                tool: cmd.tool_name(),
                cmd: cmd.to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no scripted answer in RecordingRunner",
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_answers_by_prefix() {
        let r = RecordingRunner::new();
        r.on(
            &["kind", "get", "clusters"],
            Output {
                status: 0,
                stdout: String::new(),
                stderr: "No kind clusters found.\n".into(),
            },
        );
        let out = r
            .output(&Cmd::new("/usr/local/bin/kind").args(["get", "clusters"]))
            .unwrap();
        assert_eq!(out.stderr, "No kind clusters found.\n");
        assert!(r.output(&Cmd::new("helm").arg("version")).is_err());
        assert_eq!(r.lines(), vec!["kind get clusters", "helm version"]);
    }
}
