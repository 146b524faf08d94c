//! Loads the project (the intents folder, or the built-in intents, with the
//! console's labels applied) and trains the classifier: at start, and again
//! whenever the NLU inbox labels a message.

use std::path::PathBuf;

use super::overrides::{self, Overrides};
use super::project::{EMBEDDED, Error, Project};
use super::{Matcher, Thresholds};
use crate::config::NluSettings;

#[derive(Debug, Clone)]
pub struct Trainer {
    intents_dir: PathBuf,
    overrides: Overrides,
    settings: NluSettings,
}

impl Trainer {
    pub fn new(settings: &NluSettings) -> Self {
        Self {
            intents_dir: settings.intents_dir.clone(),
            overrides: Overrides::new(settings.overrides_path()),
            settings: settings.clone(),
        }
    }

    pub fn overrides(&self) -> &Overrides {
        &self.overrides
    }

    /// The project with the labels applied.
    pub fn project(&self) -> Result<Project, Error> {
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
