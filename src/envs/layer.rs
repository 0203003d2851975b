//! A layer file read once: its values tree, and what makes Helm refuse it although it is YAML.

use crate::config::Project;
use crate::diag::Finding;
use crate::error::StackError;
use crate::values;
use crate::yaml::{self, Map, Value};
use std::sync::Arc;

/// A parsed layer file, shared by every target that uses it.
pub struct Layer {
    pub root: Map,
    /// Why Helm would refuse the file although it is YAML (`.nan`, `.inf`).
    pub refusals: Vec<Finding>,
}

/// A layer and the notes its YAML left (YAML 1.1 vs 1.2 readings, duplicate keys).
pub type ParsedLayer = (Layer, Vec<yaml::Note>);

/// Reads `file` (relative to the project root) as Helm reads a values file.
pub fn parse_layer(project: &Project, file: &str) -> Result<ParsedLayer, StackError> {
    let text = std::fs::read_to_string(project.root.join(file)).map_err(|e| {
        StackError::config(
            None,
            format!("cannot read {file}: {e}"),
            "check that the file exists and is readable",
        )
    })?;
    let doc = yaml::parse_values(&Arc::from(file), &text).map_err(StackError::from_parse)?;
    let mut refusals = Vec::new();
    values::checks::helm_refusals(&doc.root, &mut refusals);
    let Value::Map(root) = doc.root.value else {
        unreachable!("parse_values returns a map")
    };
    Ok((Layer { root, refusals }, doc.notes))
}
