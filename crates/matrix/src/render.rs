//! Turning an answer (Markdown) into what is sent: a plain-text body and sanitised HTML, split
//! into parts that each fit in one event.

use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag};

/// The longest body of one part, in bytes. Events are limited to 64 KiB in total, and the HTML
/// is larger than the text, so a part stays well under that.
pub const MAX_PART_BYTES: usize = 16 * 1024;

/// One message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// Plain text (the Markdown source).
    pub body: String,
    /// Sanitised HTML, if the Markdown has any formatting.
    pub html: Option<String>,
}

/// Link schemes that stay links; anything else (e.g. `javascript:`) becomes plain text.
const SAFE_SCHEMES: &[&str] = &["https:", "http:", "mailto:", "matrix:"];

/// Renders Markdown to HTML with raw HTML escaped (never passed through) and unsafe links and
/// images dropped to text.
pub fn markdown_to_html(markdown: &str) -> String {
    let mut in_unsafe = 0usize;
    let events = Parser::new_ext(
        markdown,
        Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES,
    )
    .filter_map(|event| match event {
        // Raw HTML from anyone is shown as text, never interpreted.
        Event::Html(text) | Event::InlineHtml(text) => Some(Event::Text(text)),
        Event::Start(Tag::Link { dest_url, .. }) if !is_safe(&dest_url) => {
            in_unsafe += 1;
            None
        }
        Event::Start(Tag::Image { dest_url, .. }) => {
            // Images would be fetched by the client: show the alt text only.
            let _ = dest_url;
            in_unsafe += 1;
            None
        }
        Event::End(pulldown_cmark::TagEnd::Link | pulldown_cmark::TagEnd::Image)
            if in_unsafe > 0 =>
        {
            in_unsafe -= 1;
            None
        }
        other => Some(other),
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    out.trim_end().to_owned()
}

fn is_safe(url: &CowStr<'_>) -> bool {
    let lower = url.to_ascii_lowercase();
    SAFE_SCHEMES.iter().any(|s| lower.starts_with(s))
}

/// Renders one Markdown text, without HTML when it is just a plain paragraph.
pub fn render(markdown: &str) -> Rendered {
    let html = markdown_to_html(markdown);
    let plain = html
        .strip_prefix("<p>")
        .and_then(|h| h.strip_suffix("</p>"))
        .is_some_and(|inner| !inner.contains('<') && !inner.contains('&'));
    Rendered {
        body: markdown.to_owned(),
        html: (!plain).then_some(html),
    }
}

/// Renders an answer, split into parts of at most [`MAX_PART_BYTES`] of text each, cutting at
/// paragraph, then line, then word boundaries, and never inside a character.
pub fn render_parts(markdown: &str) -> Vec<Rendered> {
    split(markdown, MAX_PART_BYTES)
        .into_iter()
        .map(|part| render(&part))
        .collect()
}

/// The Markdown of each part [`render_parts`] would make.
pub fn split_markdown(markdown: &str) -> Vec<String> {
    split(markdown, MAX_PART_BYTES)
}

fn split(text: &str, max: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while rest.len() > max {
        let window = &rest[..floor_char_boundary(rest, max)];
        // A paragraph or line break in the second half of the window, else the last space,
        // else (one enormous word) a hard cut at a character boundary.
        let cut = ["\n\n", "\n"]
            .iter()
            .filter_map(|sep| window.rfind(sep).filter(|i| *i > max / 2))
            .chain(window.rfind(' ').filter(|i| *i > 0))
            .next()
            .unwrap_or(window.len());
        parts.push(rest[..cut].trim_end().to_owned());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() || parts.is_empty() {
        parts.push(rest.to_owned());
    }
    parts
}

fn floor_char_boundary(s: &str, mut index: usize) -> usize {
    while index > 0 && !s.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn markdown_becomes_html_and_plain_text_stays_plain() {
        let r = render("**bold** and `code`");
        assert_eq!(r.body, "**bold** and `code`");
        assert_eq!(
            r.html.as_deref(),
            Some("<p><strong>bold</strong> and <code>code</code></p>")
        );
        assert_eq!(render("just words").html, None);
    }

    #[test]
    fn person_text_in_html_is_escaped() {
        let html = markdown_to_html(
            "[C1] echo: <script>alert(1)</script> <b onclick=x>hi</b> & <img src=x>",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<b "), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("&amp;"), "{html}");
    }

    #[test]
    fn unsafe_links_and_images_become_text() {
        let html = markdown_to_html(
            "[click](javascript:alert(1)) [ok](https://example.org) ![cat](http://x/cat.png)",
        );
        assert!(!html.contains("javascript"), "{html}");
        assert!(
            html.contains("<a href=\"https://example.org\">ok</a>"),
            "{html}"
        );
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("click") && html.contains("cat"), "{html}");
    }

    #[test]
    fn long_answers_are_split_at_paragraphs() {
        let paragraph = "word ".repeat(1000); // ~5 KB
        let text = [paragraph.trim(); 7].join("\n\n");
        let parts = render_parts(&text);
        assert!(parts.len() >= 3, "{}", parts.len());
        assert!(parts.iter().all(|p| p.body.len() <= MAX_PART_BYTES));
        let joined: Vec<String> = parts.iter().map(|p| p.body.clone()).collect();
        assert_eq!(joined.join("\n\n"), text, "nothing is lost or reordered");
    }

    proptest! {
        #[test]
        fn splitting_keeps_every_word_and_respects_the_limit(words in proptest::collection::vec("[a-zя😀]{1,12}", 0..400), max in 60usize..200) {
            let text = words.join(" ");
            let parts = split(&text, max);
            prop_assert!(parts.iter().all(|p| p.len() <= max));
            let rejoined: Vec<&str> = parts.iter().flat_map(|p| p.split_whitespace()).collect();
            let original: Vec<&str> = text.split_whitespace().collect();
            prop_assert_eq!(rejoined, original);
        }
    }
}
