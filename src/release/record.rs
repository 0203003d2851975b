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

/// An upgrade stack started, written before `helm upgrade` runs: the fingerprint it deploys and a
/// token helm records as the revision's description. A stack killed while helm finishes (helm
/// survives as an orphan) or before the [`Record`] is saved leaves it behind; the next run adopts
/// the revision only when its description carries this very token — an exact identity, so a
/// revision anybody else made is never taken for ours — instead of upgrading again.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Intent {
    pub fingerprint: String,
    pub token: String,
}

impl Intent {
    /// A new intent with a token unique to this run.
    pub fn new(fingerprint: &str) -> Intent {
        use sha2::{Digest, Sha256};
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let mut h = Sha256::new();
        h.update(format!("{}-{nanos}-{fingerprint}", std::process::id()));
        Intent {
            fingerprint: fingerprint.to_owned(),
            token: hex::encode(h.finalize())[..16].to_owned(),
        }
    }

    pub fn path(root: &Path, target: &KubeTarget, release: &str) -> PathBuf {
        State::new(root).release_intent(target.context(), target.namespace(), release)
    }

    /// The description helm records for the revision this intent makes.
    pub fn description(&self) -> String {
        format!("stack upgrade {}", self.token)
    }

    pub fn load(path: &Path) -> Option<Intent> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    pub fn save(&self, path: &Path) -> Result<(), StackError> {
        crate::state::write_file(
            path,
            &serde_json::to_string_pretty(self).expect("serializes"),
        )
    }

    /// Whether `deployed` is the revision this intent made, deployed, for `fingerprint`.
    pub fn made(&self, fingerprint: &str, deployed: &Status) -> bool {
        self.fingerprint == fingerprint
            && deployed.status == "deployed"
            && deployed.description == self.description()
    }
}
