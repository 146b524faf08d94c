//! Names from emails, by the seed's rule: the local part split on `.` and `_`,
//! each piece capitalised (`casey.jones@…` → `Casey Jones`).

/// `casey.jones@example.com` → `Casey Jones`; `None` without a usable local part.
pub fn display_name(email: &str) -> Option<String> {
    let (local, _) = email.split_once('@')?;
    let pieces: Vec<String> = local
        .split(['.', '_'])
        .filter(|p| !p.is_empty())
        .map(capitalise)
        .collect();
    (!pieces.is_empty()).then(|| pieces.join(" "))
}

/// The first piece of a display name: what replies call the user.
pub fn first_name(display: &str) -> &str {
    display.split(' ').next().unwrap_or(display)
}

/// Python's `str.capitalize`: first character upper, the rest lower.
fn capitalise(piece: &str) -> String {
    let mut chars = piece.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_seed_rule() {
        let cases = [
            ("casey.jones@example.com", Some("Casey Jones")),
            ("mary_ann.o@x.io", Some("Mary Ann O")),
            ("JONES@x.io", Some("Jones")),
            ("..@x.io", None),
            ("no-at-sign", None),
            ("élodie.durand@x.fr", Some("Élodie Durand")),
        ];
        for (email, expected) in cases {
            assert_eq!(display_name(email).as_deref(), expected, "{email}");
        }
        assert_eq!(first_name("Casey Jones"), "Casey");
    }
}
