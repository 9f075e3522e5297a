//! Glob patterns for `MATRIX_ALLOWED_USERS`: `*` is any run of characters, `?` any one
//! character; matching ignores ASCII case (server names are case-insensitive). A pattern with a
//! `:` is matched part by part (localpart, then server name, split at the first `:`), so a `*`
//! in the localpart can never swallow a server name.

/// One pattern such as `@*:example.org`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    /// A pattern; `None` if it is empty or contains whitespace.
    pub fn new(pattern: &str) -> Option<Self> {
        if pattern.is_empty() || pattern.chars().any(char::is_whitespace) {
            None
        } else {
            Some(Glob(pattern.to_ascii_lowercase()))
        }
    }

    /// The pattern as written (lower-cased).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, user_id: &str) -> bool {
        let user_id = user_id.to_ascii_lowercase();
        match (self.0.split_once(':'), user_id.split_once(':')) {
            (Some((local_p, server_p)), Some((local, server))) => {
                wildcard(local_p, local) && wildcard(server_p, server)
            }
            (Some(_), None) => false,
            (None, _) => wildcard(&self.0, &user_id),
        }
    }
}

/// Whole-string wildcard match of `text` against `pattern`.
fn wildcard(pattern: &str, text: &str) -> bool {
    {
        let pattern: Vec<char> = pattern.chars().collect();
        let text: Vec<char> = text.chars().collect();
        // Iterative wildcard matching with backtracking to the last `*`: linear in practice,
        // never exponential.
        let (mut p, mut t) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match pattern.get(p) {
                Some('*') => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(c) if *c == '?' || *c == text[t] => {
                    p += 1;
                    t += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        p = sp + 1;
                        t = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        pattern[p..].iter().all(|c| *c == '*')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_user_ids_as_operators_expect() {
        let cases = [
            ("@*:example.org", "@anna:example.org", true),
            ("@*:example.org", "@anna:EXAMPLE.org", true),
            ("@*:example.org", "@anna:example.org.evil.com", false),
            ("@*:example.org", "@anna:evil.com#:example.org", false),
            ("@*:example.org", "@eve:notexample.org", false),
            ("@anna:example.org", "@anna:example.org", true),
            ("@anna:example.org", "@annabel:example.org", false),
            ("@team-?:x", "@team-a:x", true),
            ("@team-?:x", "@team-ab:x", false),
            ("*", "@anyone:anywhere", true),
            ("@*:*.example.org", "@a:chat.example.org", true),
            ("@*:*.example.org", "@a:example.org", false),
        ];
        for (pattern, user, want) in cases {
            let glob = Glob::new(pattern).expect("valid pattern");
            assert_eq!(glob.matches(user), want, "{pattern} vs {user}");
        }
    }

    #[test]
    fn rejects_empty_and_spaced_patterns() {
        assert_eq!(Glob::new(""), None);
        assert_eq!(Glob::new("@a b:x"), None);
    }

    #[test]
    fn pathological_patterns_still_answer() {
        // Exponential backtracking would not finish this; the iterative matcher does at once.
        let glob = Glob::new(&"*a".repeat(50)).expect("valid");
        assert!(!glob.matches(&("a".repeat(49) + "b")));
        assert!(glob.matches(&"a".repeat(60)));
    }
}
