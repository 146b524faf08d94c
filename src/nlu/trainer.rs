//! Loads the project (the intents folder, or the built-in intents, with the
//! console's labels applied) and trains the classifier: at start, and again
//! whenever the NLU inbox labels a message.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use super::overrides::{self, Overrides};
use super::project::{EMBEDDED, Error, Project};
use super::{Matcher, Thresholds};
use crate::config::NluSettings;

/// When the labels file was last changed, and its size: what a training read.
type Stamp = Option<(SystemTime, u64)>;

/// Clones share what was last trained on.
#[derive(Debug, Clone)]
pub struct Trainer {
    intents_dir: PathBuf,
    overrides: Overrides,
    settings: NluSettings,
    trained_on: Arc<parking_lot::Mutex<Stamp>>,
}

impl Trainer {
    pub fn new(settings: &NluSettings) -> Self {
        Self {
            intents_dir: settings.intents_dir.clone(),
            overrides: Overrides::new(settings.overrides_path()),
            settings: settings.clone(),
            trained_on: Arc::default(),
        }
    }

    fn stamp(&self) -> Stamp {
        let meta = std::fs::metadata(self.overrides.path()).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }

    /// The labels file changed since the last training (another instance
    /// sharing the folder labelled something).
    pub fn labels_changed(&self) -> bool {
        self.stamp() != *self.trained_on.lock()
    }

    pub fn overrides(&self) -> &Overrides {
        &self.overrides
    }

    /// The project with the labels applied.
    pub fn project(&self) -> Result<Project, Error> {
        // Taken before reading: a change during the read is seen next time.
        *self.trained_on.lock() = self.stamp();
        let dir = &self.intents_dir;
        let mut project = if dir.is_dir() {
            tracing::debug!(dir = %dir.display(), "loading intents");
            Project::load_dir(dir)?
        } else {
            tracing::info!(dir = %dir.display(), "intents directory not found; using the built-in intents");
            Project::from_sources(EMBEDDED.iter().copied())?
        };
        let labels = self.overrides.load()?;
        if !labels.is_empty() {
            tracing::info!(
                labels = labels.len(),
                file = %self.overrides.path().display(),
                "console labels applied"
            );
        }
        overrides::apply(&mut project, &labels);
        Ok(project)
    }

    pub fn thresholds(&self, project: &Project) -> Thresholds {
        self.settings.thresholds(&project.config)
    }

    /// Loads and trains (CPU-bound: call from a blocking thread when serving).
    pub fn train(&self) -> Result<Matcher, Error> {
        let project = self.project()?;
        Ok(Matcher::train(&project, self.thresholds(&project)))
    }
}
