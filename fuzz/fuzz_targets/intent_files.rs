//! `nlu::Project::from_sources` with the input as one file's text; when it
//! loads, train the matcher on it and classify a few messages. Nothing may
//! panic and confidences stay within [0, 1].
#![no_main]

use copilot_server::nlu::{Matcher, Project, Thresholds};
use libfuzzer_sys::fuzz_target;

const MESSAGES: [&str; 6] = [
    "hello there",
    "what did I just do?",
    "",
    "!!!",
    "/greet{\"name\":\"x\"}",
    "how do I bulk edit rows on this page",
];

fuzz_target!(|text: &str| {
    let Ok(project) = Project::from_sources([("data/nlu.yml", text)]) else {
        return;
    };
    let matcher = Matcher::train(&project, Thresholds::default());
    let firsts = project.examples.iter().take(3).map(|e| e.text.as_str());
    for message in MESSAGES.into_iter().chain(firsts) {
        let c = matcher.classify(message);
        assert!(
            (0.0..=1.0).contains(&c.intent.confidence),
            "confidence {} for {message:?}",
            c.intent.confidence
        );
        assert!(c.ranking.len() <= 10);
        for score in &c.ranking {
            assert!((0.0..=1.0).contains(&score.confidence), "{score:?}");
        }
    }
});
