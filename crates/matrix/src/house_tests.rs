//! The shape of the code, checked: a read of a record or of a store is never folded into
//! "absent" (docs/ARCHITECTURE.md "Absence is not failure"), no function is over 80 lines and
//! no source file over 600, docs/ARCHITECTURE.md's module list names every file of this
//! crate's `src/` (and no file that is gone), and docs/OPERATIONS.md's "Log lines" lists every
//! WARN and ERROR line the bot can print.

use std::path::{Path, PathBuf};

const ARCHITECTURE: &str = include_str!("../../../docs/ARCHITECTURE.md");
const OPERATIONS: &str = include_str!("../../../docs/OPERATIONS.md");

/// Longest function, in lines.
const MAX_FUNCTION_LINES: usize = 80;
/// Longest source file, in lines (tests apart).
const MAX_FILE_LINES: usize = 600;

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The source files of every crate's `src/`, tests apart (`tests.rs`, `*_tests.rs`).
fn sources() -> Vec<(PathBuf, String)> {
    let crates = workspace().join("crates");
    let mut all = Vec::new();
    for krate in std::fs::read_dir(&crates).expect("crates/").flatten() {
        for file in rust_files(&krate.path().join("src")) {
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name == "tests.rs" || name.ends_with("_tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).expect("readable source");
            all.push((file, text));
        }
    }
    all
}

/// `text` without its `#[cfg(test)]` module at the end, if it has one.
fn without_test_module(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// What folds a failure into "absent".
const FOLDS: &[&str] = &[".ok()", "unwrap_or_default()", "let _ ="];
/// What reads a record or a store.
const READS: &[&str] = &[
    "records::",
    "store()",
    "state_store()",
    "get_custom_value",
    ".dump()",
    "get_member",
    ".members(",
    "leaving::recorded",
    "InFlight::saved",
    "space_marker(",
    "chat_marker(",
    "dm_record(",
    "find_space_of(",
    "room_record(",
];

/// The statement around line `at` of `lines`: from after the last line that ends one (`;`,
/// `{`, `}`) to the first that ends it.
fn statement(lines: &[&str], at: usize) -> String {
    let ends = |line: &str| {
        let line = line.trim_end();
        line.ends_with(';') || line.ends_with('{') || line.ends_with('}')
    };
    let mut start = at;
    while start > 0 && !ends(lines[start - 1]) {
        start -= 1;
    }
    let mut end = at;
    while end + 1 < lines.len() && !ends(lines[end]) {
        end += 1;
    }
    lines[start..=end].join("\n")
}

/// The lines of `code` (1-based) where a read is folded into "absent".
fn folded_reads(code: &str) -> Vec<usize> {
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("//") || !FOLDS.iter().any(|f| line.contains(f)) {
            continue;
        }
        let statement = statement(&lines, at);
        if READS.iter().any(|read| statement.contains(read)) {
            found.push(at + 1);
        }
    }
    found
}

#[test]
fn no_read_of_a_record_or_a_store_is_folded_into_absent() {
    let mut found = Vec::new();
    for (path, text) in sources() {
        let code = without_test_module(&text);
        let lines: Vec<&str> = code.lines().collect();
        for at in folded_reads(code) {
            found.push(format!("{}:{at}: {}", path.display(), lines[at - 1].trim()));
        }
    }
    assert!(
        found.is_empty(),
        "a read folded into \"absent\" (return a Result and let the caller decide):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_fold_check_sees_the_folds_that_were_fixed() {
    // Two of the folds this check was written after (leaving.rs and mod.rs before the parts).
    let code = r#"
async fn dm_record(room: &Room) -> Option<DmRecord> {
    crate::records::dm_record(room).await.ok()??.trusted()
}

fn link() {
    let link = crate::records::state(&space, "m.space.child", id)
        .await
        .ok()
        .flatten();
    let parsed = text.parse::<u32>().ok();
}
"#;
    assert_eq!(folded_reads(code), vec![3, 9]);
}

/// The functions of `code` longer than `max` lines: `(name, first line, lines)`.
fn long_functions(code: &str, max: usize) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut long = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let Some(after) = ["fn ", "pub fn ", "async fn ", "pub async fn "]
            .iter()
            .chain(&["pub(crate) fn ", "pub(crate) async fn ", "pub(super) fn "])
            .chain(&["pub(super) async fn ", "const fn ", "pub const fn "])
            .find_map(|prefix| trimmed.strip_prefix(prefix))
        else {
            continue;
        };
        let indent = &line[..line.len() - trimmed.len()];
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // A declaration without a body (a trait's) ends with `;` before any `{`.
        let Some(open) = (at..lines.len()).find(|i| {
            let l = lines[*i].trim_end();
            l.ends_with('{') || l.ends_with(';')
        }) else {
            continue;
        };
        if lines[open].trim_end().ends_with(';') {
            continue;
        }
        let close = format!("{indent}}}");
        let end = (open..lines.len())
            .find(|i| lines[*i].trim_end() == close)
            .unwrap_or(lines.len() - 1);
        let length = end - at + 1;
        if length > max {
            long.push((name, at + 1, length));
        }
    }
    long
}

#[test]
fn no_function_is_over_80_lines_and_no_file_over_600() {
    let mut found = Vec::new();
    for (path, text) in sources() {
        let lines = text.lines().count();
        if lines > MAX_FILE_LINES {
            found.push(format!("{}: {lines} lines", path.display()));
        }
        for (name, at, length) in long_functions(without_test_module(&text), MAX_FUNCTION_LINES) {
            found.push(format!(
                "{}:{at}: fn {name} is {length} lines",
                path.display()
            ));
        }
    }
    assert!(found.is_empty(), "too long:\n{}", found.join("\n"));
}

#[test]
fn the_length_check_sees_a_long_function() {
    let body = "    let x = 1;\n".repeat(MAX_FUNCTION_LINES);
    let code = format!("fn short() {{\n}}\n\npub async fn long(a: u8) -> u8 {{\n{body}}}\n");
    assert_eq!(
        long_functions(&code, MAX_FUNCTION_LINES),
        vec![("long".to_owned(), 4, MAX_FUNCTION_LINES + 2)]
    );
}

#[test]
fn the_architecture_names_every_module_of_the_adapter() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut missing = Vec::new();
    let mut named = Vec::new();
    for file in rust_files(&src) {
        let relative = file
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "tests.rs" || name.ends_with("_tests.rs") || name == "main.rs" {
            continue;
        }
        // A folder's `mod.rs` is named as the folder.
        let shown = relative
            .strip_suffix("/mod.rs")
            .map_or(relative.clone(), |folder| format!("{folder}/"));
        if !ARCHITECTURE.contains(&format!("`{shown}`")) {
            missing.push(shown.clone());
        }
        named.push(shown);
    }
    assert!(
        missing.is_empty(),
        "docs/ARCHITECTURE.md's module list does not name: {missing:?}"
    );
    // And every path it names in the list is still there.
    let list = ARCHITECTURE
        .split("## Modules")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/ARCHITECTURE.md has a \"## Modules\" section");
    for path in list.split('`').skip(1).step_by(2) {
        if path.ends_with(".rs") || path.ends_with('/') {
            assert!(
                named.iter().any(|n| n == path),
                "docs/ARCHITECTURE.md names {path}, which is not in crates/matrix/src"
            );
        }
    }
}

/// Where the bot's log lines are written, from this crate's folder; the fake model server
/// (`fake_openai`, for tests) apart.
const LOGGING_SOURCES: &[&str] = &["../core/src", "../platform/src", "src"];

/// The sources of [`LOGGING_SOURCES`], tests apart: `(path from this crate, text)`.
fn logging_sources() -> Vec<(PathBuf, String)> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = Vec::new();
    for dir in LOGGING_SOURCES {
        for file in rust_files(&manifest.join(dir)) {
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let fake = file.components().any(|c| c.as_os_str() == "fake_openai");
            if fake || name == "tests.rs" || name.ends_with("_tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).expect("readable source");
            let shown = file.strip_prefix(manifest).unwrap_or(&file).to_path_buf();
            all.push((shown, text));
        }
    }
    all
}

/// A string literal's text: escapes resolved, a `\` at the end of a line joining it to the
/// next one without the next one's indentation (as Rust reads it).
fn unescape(literal: &str) -> String {
    let mut text = String::new();
    let mut chars = literal.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        match chars.next() {
            Some('\n') => while chars.next_if(|c| c.is_whitespace()).is_some() {},
            Some('n') => text.push('\n'),
            Some('t') => text.push('\t'),
            Some(other) => text.push(other),
            None => {}
        }
    }
    text
}

/// The string literals among the arguments of a macro call, `args` starting after its `(`:
/// only those at its top level (not inside a `format!` of a field), up to its `)`.
fn macro_literals(args: &str) -> Vec<String> {
    let mut literals = Vec::new();
    let mut depth = 0usize;
    let mut chars = args.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth == 0 => break,
            ')' | ']' | '}' => depth -= 1,
            '"' => {
                let mut end = args.len();
                let mut escaped = false;
                for (i, c) in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        end = i;
                        break;
                    }
                }
                if depth == 0 {
                    literals.push(unescape(&args[at + 1..end]));
                }
            }
            _ => {}
        }
    }
    literals
}

/// The `warn!` and `error!` calls of `code` (with or without `tracing::`, not in comments):
/// `(line, message)`, the message being the call's last string literal ("" if none).
fn log_calls(code: &str) -> Vec<(usize, String)> {
    let mut calls = Vec::new();
    for name in ["warn!(", "error!("] {
        for (at, _) in code.match_indices(name) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let line_start = code[..at].rfind('\n').map_or(0, |i| i + 1);
            if code[line_start..at].trim_start().starts_with("//") {
                continue;
            }
            let message = macro_literals(&code[at + name.len()..]).pop();
            let line = code[..at].matches('\n').count() + 1;
            calls.push((line, message.unwrap_or_default()));
        }
    }
    calls.sort();
    calls
}

#[test]
fn every_warn_and_error_line_is_in_the_operations_guide() {
    let section = OPERATIONS
        .split("\n## Log lines\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/OPERATIONS.md has a \"## Log lines\" section");
    let mut calls = 0;
    let mut missing = Vec::new();
    for (path, text) in logging_sources() {
        for (line, message) in log_calls(without_test_module(&text)) {
            calls += 1;
            // A format string: the text before its first placeholder.
            let fixed = message.split('{').next().unwrap_or_default().trim();
            if !fixed.is_empty() && !section.contains(fixed) {
                missing.push(format!("{}:{line}: {message}", path.display()));
            }
        }
    }
    assert!(
        calls >= 60,
        "only {calls} warn!/error! calls found: does the scan still read the sources?"
    );
    assert!(
        missing.is_empty(),
        "docs/OPERATIONS.md's \"## Log lines\" does not list:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_log_line_check_reads_the_message_of_each_call() {
    let code = r#"
fn f() {
    tracing::warn!(%room_id, error = format!("{error:#}"), "cannot do it; \"trying\" again");
    // warn!("a comment");
    error!(
        "{} is set but \
         wrong",
        vars::X
    );
    self.prewarn!("not a log call");
}
"#;
    assert_eq!(
        log_calls(code),
        vec![
            (3, "cannot do it; \"trying\" again".to_owned()),
            (5, "{} is set but wrong".to_owned()),
        ]
    );
}
