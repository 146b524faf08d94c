//! Labels given in the console's NLU inbox, kept in a Rasa NLU file beside
//! the project (`nlu-overrides.yml`), so a Rasa team can review them and
//! copy them into their data, and so they survive restarts. A label moves the
//! text: it is taken out of any other intent's examples and added to its own.

use std::path::{Path, PathBuf};

use super::project::{Error, Example, Project};

/// The overrides file.
#[derive(Debug, Clone)]
pub struct Overrides {
    path: PathBuf,
}

/// How texts are compared: case and spacing do not make another example.
pub fn normalise(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl Overrides {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `(intent, text)` pairs in the file's order; none when there is no file.
    pub fn load(&self) -> Result<Vec<(String, String)>, Error> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let name = self.path.display().to_string();
        let project = Project::from_sources([(name.as_str(), text.as_str())])?;
        Ok(project
            .examples
            .into_iter()
            .map(|e| (e.intent, e.text))
            .collect())
    }

    /// Labels `texts` as `intent` (replacing earlier labels of the same
    /// texts) and rewrites the file; returns how many labels it holds.
    pub fn add(&self, intent: &str, texts: &[String]) -> Result<usize, Error> {
        let mut labels = self.load()?;
        for text in texts {
            let text = one_line(text);
            if text.is_empty() {
                continue;
            }
            let key = normalise(&text);
            labels.retain(|(_, t)| normalise(t) != key);
            labels.push((intent.to_owned(), text));
        }
        self.write(&labels)?;
        Ok(labels.len())
    }

    /// Written whole to a temporary file, then renamed over the old one: a
    /// crash leaves the old file or the new, never half of one.
    fn write(&self, labels: &[(String, String)]) -> Result<(), Error> {
        let mut intents: Vec<&str> = Vec::new();
        for (intent, _) in labels {
            if !intents.contains(&intent.as_str()) {
                intents.push(intent);
            }
        }
        let mut yaml = String::from(
            "# Written by copilot-server's console (NLU inbox labels). Each text here\n\
             # overrides the same text anywhere in the project's NLU data.\n\
             version: \"3.1\"\nnlu:\n",
        );
        for intent in intents {
            yaml.push_str(&format!("- intent: {intent}\n  examples: |\n"));
            for (_, text) in labels.iter().filter(|(i, _)| i == intent) {
                yaml.push_str(&format!("    - {text}\n"));
            }
        }
        let io = |source| Error::Read {
            path: self.path.clone(),
            source,
        };
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let temporary = self.path.with_extension("yml.tmp");
        std::fs::write(&temporary, yaml).map_err(io)?;
        std::fs::rename(&temporary, &self.path).map_err(io)
    }
}

/// Examples are one line each in Rasa's block lists.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Moves each labelled text to its intent in `project`.
pub fn apply(project: &mut Project, labels: &[(String, String)]) {
    for (intent, text) in labels {
        let key = normalise(text);
        project.examples.retain(|e| normalise(&e.text) != key);
        project.examples.push(Example {
            intent: intent.clone(),
            text: text.clone(),
            entities: Vec::new(),
        });
        if !project.intents.contains(intent) {
            project.intents.push(intent.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_written_as_rasa_nlu_and_replace_earlier_ones() {
        let dir = std::env::temp_dir().join(format!("overrides-{}", uuid::Uuid::new_v4()));
        let overrides = Overrides::new(dir.join("nlu-overrides.yml"));
        assert!(overrides.load().unwrap().is_empty());
        overrides
            .add("greet", &["Yo  there".to_owned(), "sup".to_owned()])
            .unwrap();
        let total = overrides.add("goodbye", &["yo there".to_owned()]).unwrap();
        assert_eq!(total, 2);
        assert_eq!(
            overrides.load().unwrap(),
            vec![
                ("greet".to_owned(), "sup".to_owned()),
                ("goodbye".to_owned(), "yo there".to_owned())
            ]
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn apply_moves_a_text_to_its_new_intent() {
        let mut project = Project::from_sources([(
            "nlu.yml",
            "nlu:\n- intent: greet\n  examples: |\n    - hello\n    - hi\n",
        )])
        .unwrap();
        apply(&mut project, &[("goodbye".to_owned(), "Hello".to_owned())]);
        let texts: Vec<_> = project
            .examples
            .iter()
            .map(|e| (e.intent.as_str(), e.text.as_str()))
            .collect();
        assert_eq!(texts, vec![("greet", "hi"), ("goodbye", "Hello")]);
        assert!(project.intents.contains(&"goodbye".to_owned()));
    }
}
