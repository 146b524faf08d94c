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
    /// Held from reading the labels until the trained classifier is in use:
    /// without it a training that read older labels (the poller's, begun
    /// just before a label landed) could finish last and undo the label.
    training: Arc<parking_lot::Mutex<()>>,
}

impl Trainer {
    pub fn new(settings: &NluSettings) -> Self {
        Self {
            intents_dir: settings.intents_dir.clone(),
            overrides: Overrides::new(settings.overrides_path()),
            settings: settings.clone(),
            trained_on: Arc::default(),
            training: Arc::default(),
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

    /// Adds labelled examples, retrains and hands the classifier to
    /// `install`, all before any other training may start; the number of
    /// labelled examples in the file. CPU-bound and blocking.
    pub fn label(
        &self,
        intent: &str,
        texts: &[String],
        install: impl FnOnce(Matcher),
    ) -> Result<usize, Error> {
        let _one_training = self.training.lock();
        let examples = self.overrides.add(intent, texts)?;
        install(self.train()?);
        Ok(examples)
    }

    /// Retrains and installs only if the labels file changed since the last
    /// training (another instance sharing the folder labelled something);
    /// whether it did. CPU-bound and blocking.
    pub fn retrain_if_changed(&self, install: impl FnOnce(Matcher)) -> Result<bool, Error> {
        let _one_training = self.training.lock();
        if !self.labels_changed() {
            return Ok(false);
        }
        install(self.train()?);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let intents = dir.path().join("intents");
        std::fs::create_dir(&intents).unwrap();
        std::fs::write(
            intents.join("nlu.yml"),
            "version: \"3.1\"\nnlu:\n- intent: greet\n  examples: |\n    - hello\n    - hi there\n    - good morning\n\
             - intent: goodbye\n  examples: |\n    - bye\n    - see you later\n    - good night\n",
        )
        .unwrap();
        dir
    }

    fn trainer(dir: &tempfile::TempDir) -> Trainer {
        let settings = NluSettings {
            intents_dir: dir.path().join("intents"),
            fallback_threshold: None,
            ambiguity_threshold: None,
            max_history: None,
            action_endpoint: String::new(),
            action_timeout_ms: 1000,
            overrides_file: PathBuf::new(),
            labels_reload_seconds: std::time::Duration::from_secs(1),
        };
        Trainer::new(&settings)
    }

    #[test]
    fn after_a_label_the_poller_finds_nothing_new() {
        let dir = project_dir();
        let trainer = trainer(&dir);
        trainer.train().unwrap();
        assert!(!trainer.retrain_if_changed(|_| {}).unwrap());
        let mut installed = None;
        let examples = trainer
            .label("goodbye", &["ciao for now".to_owned()], |m| {
                installed = Some(m);
            })
            .unwrap();
        assert_eq!(examples, 1);
        let matcher = installed.expect("the label installs a classifier");
        assert_eq!(matcher.classify("ciao for now").intent.name, "goodbye");
        assert!(
            !trainer
                .retrain_if_changed(|_| panic!("nothing changed"))
                .unwrap()
        );
    }

    /// Another instance labelled something and the poller is retraining
    /// on it when this instance's console labels too: the console's training
    /// waits, so the older one cannot be installed over it.
    #[test]
    fn a_label_waits_for_the_training_in_progress() {
        let dir = project_dir();
        let trainer = trainer(&dir);
        trainer.train().unwrap();
        // The other instance's label, written to the shared file.
        trainer
            .overrides()
            .add("greet", &["ahoy matey".to_owned()])
            .unwrap();
        let in_use = Arc::new(parking_lot::Mutex::new(Vec::<&str>::new()));
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, poller_started) = std::sync::mpsc::channel::<()>();
        let poller = {
            let (trainer, in_use) = (trainer.clone(), in_use.clone());
            std::thread::spawn(move || {
                trainer
                    .retrain_if_changed(|_| {
                        started.send(()).unwrap();
                        held.recv().unwrap();
                        in_use.lock().push("poller");
                    })
                    .unwrap()
            })
        };
        poller_started.recv().unwrap();
        let console = {
            let (trainer, in_use) = (trainer.clone(), in_use.clone());
            std::thread::spawn(move || {
                trainer
                    .label("goodbye", &["ciao for now".to_owned()], |_| {
                        in_use.lock().push("console");
                    })
                    .unwrap()
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(in_use.lock().is_empty(), "the console's label did not wait");
        release.send(()).unwrap();
        assert!(poller.join().unwrap());
        assert_eq!(console.join().unwrap(), 2);
        assert_eq!(*in_use.lock(), ["poller", "console"]);
    }
}
