//! Prompt assembly: the editable system prompt plus the user's first name, and
//! the user block in the Autoplay SDK's format (`[RECENT PRODUCT ACTIVITY]`,
//! `Knowledge base excerpts:`, `Prior conversation:`, `[CURRENT USER MESSAGE]`).

use std::path::Path;

use crate::dialogue::Turn;
use crate::knowledge::Excerpt;

/// The built-in copy of `config/system_prompt.md`.
pub const DEFAULT_SYSTEM_PROMPT: &str = include_str!("../../config/system_prompt.md");

/// The system prompt from `path`, or the built-in one when the file is absent.
pub fn load_system_prompt(path: &Path) -> Result<String, std::io::Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(path = %path.display(), "system prompt file not found; using the built-in one");
            Ok(DEFAULT_SYSTEM_PROMPT.to_owned())
        }
        Err(e) => Err(e),
    }
}

/// The system prompt for one turn.
pub fn system_prompt(base: &str, first_name: Option<&str>, first_reply: bool) -> String {
    let mut prompt = base.trim_end().to_owned();
    if let Some(name) = first_name {
        prompt.push_str(&format!("\n\nUser's first name: {name}."));
        if !first_reply {
            prompt.push_str(" You have already addressed them by name in this conversation; do not do it again.");
        }
    }
    prompt
}

/// The user block: sections joined by a blank line, empty ones left out; the
/// current message is always there.
pub fn user_block(activity: &str, excerpts: &[Excerpt], history: &[Turn], message: &str) -> String {
    let mut sections = Vec::new();
    if !activity.trim().is_empty() {
        sections.push(format!("[RECENT PRODUCT ACTIVITY]\n{}", activity.trim()));
    }
    if !excerpts.is_empty() {
        let blocks: Vec<String> = excerpts
            .iter()
            .map(|e| format!("--- {} ---\n{}", e.title, e.text.trim()))
            .collect();
        sections.push(format!("Knowledge base excerpts:\n{}", blocks.join("\n\n")));
    }
    if !history.is_empty() {
        let lines: Vec<String> = history
            .iter()
            .map(|t| format!("{}: {}", t.role.as_str(), t.text))
            .collect();
        sections.push(format!("Prior conversation:\n{}", lines.join("\n")));
    }
    sections.push(format!("[CURRENT USER MESSAGE]\n{}", message.trim()));
    sections.join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialogue::Role;

    #[test]
    fn the_user_block_follows_the_sdk_format() {
        let history = [
            Turn {
                role: Role::User,
                text: "hi".into(),
            },
            Turn {
                role: Role::Assistant,
                text: "hello".into(),
            },
        ];
        assert_eq!(
            user_block(
                "Recent activity:\n1. [0] click: x — /p",
                &[],
                &history,
                "how?"
            ),
            "[RECENT PRODUCT ACTIVITY]\nRecent activity:\n1. [0] click: x — /p\n\n\
             Prior conversation:\nuser: hi\nassistant: hello\n\n[CURRENT USER MESSAGE]\nhow?"
        );
        assert_eq!(
            user_block("  ", &[], &[], "hi"),
            "[CURRENT USER MESSAGE]\nhi"
        );
        let excerpt = Excerpt {
            title: "Archive \u{2014} Restore".into(),
            url: "https://x/help/archive#restore".into(),
            text: "Click 'Restore'.\n".into(),
            score: 1.0,
        };
        assert_eq!(
            user_block("", &[excerpt], &[], "how?"),
            "Knowledge base excerpts:\n--- Archive \u{2014} Restore ---\nClick 'Restore'.\n\n\
             [CURRENT USER MESSAGE]\nhow?"
        );
    }

    #[test]
    fn the_system_prompt_carries_the_first_name() {
        let p = system_prompt("Base.", Some("Casey"), true);
        assert_eq!(p, "Base.\n\nUser's first name: Casey.");
        assert!(system_prompt("Base.", Some("Casey"), false).contains("do not do it again"));
        assert_eq!(system_prompt("Base.\n", None, true), "Base.");
    }
}
