//! The ownership record of a release stack deployed: what the deployed revision was made from
//! (fingerprint), which revision that is, and the release's identity (`first_deployed`), written
//! only after helm reports the release deployed.

use super::{KubeTarget, Status};
use crate::error::StackError;
use crate::state::State;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub fingerprint: String,
    pub revision: u64,
    /// `info.first_deployed` of the release: another release of the same name (a teammate's, or
    /// one installed again by hand) has another value.
    #[serde(default)]
    pub first_deployed: String,
}

impl Record {
    pub fn new(fingerprint: &str, deployed: &Status) -> Record {
        Record {
            fingerprint: fingerprint.to_owned(),
            revision: deployed.revision,
            first_deployed: deployed.first_deployed.clone(),
        }
    }

    pub fn path(root: &Path, target: &KubeTarget, release: &str) -> PathBuf {
        State::new(root).release_record(target.context(), target.namespace(), release)
    }

    pub fn load(path: &Path) -> Option<Record> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    pub fn save(&self, path: &Path) -> Result<(), StackError> {
        crate::state::write_file(
            path,
            &serde_json::to_string_pretty(self).expect("serializes"),
        )
    }

    /// Whether the deployed release is the one this record describes, at the recorded revision.
    pub fn matches(&self, deployed: &Status) -> bool {
        self.revision == deployed.revision && self.first_deployed == deployed.first_deployed
    }
}
