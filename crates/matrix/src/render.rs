//! Turning an answer (Markdown) into what is sent: a plain-text body and sanitised HTML, split
//! into parts that each fit in one event. How big an event may be is the caller's to say
//! (`fits`): the size that counts is the event as serialized, not the text.

use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag};

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

/// `text` (a chat name, a word a person typed) made safe to put into the bot's Markdown: every
/// character Markdown could read as markup is backslash-escaped (`\` `` ` `` `*` `_` `{` `}`
/// `[` `]` `(` `)` `#` `+` `-` `.` `!` `|` `<` `>` `~` `&`), so it shows as itself: never a link,
/// emphasis, code, heading, list item (`1.` / `1)` / `-`), table, raw HTML or character
/// reference. Line breaks become spaces: the text is shown inline.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '-' | '.'
            | '!' | '|' | '<' | '>' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Renders one Markdown text, without HTML when it is just a plain paragraph.
pub fn render(markdown: &str) -> Rendered {
    render_in(markdown, None)
}

/// Renders `markdown` as the continuation of a fenced code block opened by `fence` (the
/// opening line of a block an earlier part left open), so a code block cut in two stays code.
fn render_in(markdown: &str, fence: Option<&str>) -> Rendered {
    let html = match fence {
        Some(fence) => markdown_to_html(&format!("{fence}\n{markdown}")),
        None => markdown_to_html(markdown),
    };
    // Without HTML a client shows the body, the Markdown source: only when that reads exactly
    // like the rendered paragraph (an escaped `\_` in the source would show its backslash).
    let plain = html
        .strip_prefix("<p>")
        .and_then(|h| h.strip_suffix("</p>"))
        .is_some_and(|inner| {
            inner == markdown.trim() && !inner.contains('<') && !inner.contains('&')
        });
    Rendered {
        body: markdown.to_owned(),
        html: (!plain).then_some(html),
    }
}

/// One part of a text split to fit events: the bytes `start..end` of the text (consecutive
/// parts cover it without gaps), and how the part renders (its body is the slice without the
/// whitespace around it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// Where the part starts in the text.
    pub start: usize,
    /// Where it ends (the next part's start).
    pub end: usize,
    /// What is sent.
    pub rendered: Rendered,
}

/// No part's text is longer than this, whatever `fits` says (no event can hold more).
const MAX_PROBE: usize = 64 * 1024;

/// Splits `text[from..]` into consecutive parts that each satisfy `fits` (the event made from
/// the part is small enough), in order. Each part is the longest prefix of what is left that
/// fits, cut back to a paragraph, line or word boundary in its second half when there is one,
/// and never inside a character. A fenced code block cut in two is rendered as code in both
/// parts. Empty or blank text gives one part. `from` must be a character boundary.
pub fn split_fitting(text: &str, from: usize, fits: &dyn Fn(&Rendered) -> bool) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut start = from.min(text.len());
    while start < text.len() && !text[start..].trim().is_empty() {
        let fence = open_fence(&text[..start]);
        let end = part_end(text, start, fence.as_deref(), fits);
        parts.push(Part {
            start,
            end,
            rendered: render_in(text[start..end].trim(), fence.as_deref()),
        });
        start = end;
    }
    match parts.last_mut() {
        // Trailing whitespace belongs to the last part.
        Some(last) => last.end = text.len(),
        None => parts.push(Part {
            start,
            end: text.len(),
            rendered: render(text[start..].trim()),
        }),
    }
    parts
}

/// Where the part starting at `start` ends.
fn part_end(
    text: &str,
    start: usize,
    fence: Option<&str>,
    fits: &dyn Fn(&Rendered) -> bool,
) -> usize {
    let piece_fits = |end: usize| fits(&render_in(text[start..end].trim(), fence));
    let rest = text.len() - start;
    if rest <= MAX_PROBE && piece_fits(text.len()) {
        return text.len();
    }
    // The longest prefix that fits: `lo` fits (or is empty), `hi` does not.
    // When the rest is short enough to have been tried whole, its end is known not to fit.
    let (mut lo, mut hi) = if rest <= MAX_PROBE {
        (start, text.len())
    } else {
        (start, start + MAX_PROBE + 1)
    };
    while hi - lo > 1 {
        let mut mid = text.floor_char_boundary(lo + (hi - lo) / 2);
        if mid <= lo {
            mid = text.ceil_char_boundary(lo + 1);
            if mid >= hi {
                break;
            }
        }
        if piece_fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    if lo == start {
        // Not even one character fits: send one anyway rather than loop forever.
        return text.ceil_char_boundary(start + 1);
    }
    let cut = good_cut(text, start, lo);
    if cut != lo && piece_fits(cut) {
        cut
    } else {
        lo
    }
}

/// The end of the last paragraph break, else line break, else space in the second half of
/// `text[start..end]`; `end` if there is none.
fn good_cut(text: &str, start: usize, end: usize) -> usize {
    let window = &text[start..end];
    let half = window.len() / 2;
    ["\n\n", "\n", " "]
        .iter()
        .find_map(|sep| {
            window
                .rfind(sep)
                .filter(|i| *i >= half && *i > 0)
                .map(|i| start + i + sep.len())
        })
        .unwrap_or(end)
}

/// The opening line of a fenced code block (```` ``` ```` or `~~~`) that `before` leaves open.
fn open_fence(before: &str) -> Option<String> {
    let mut open: Option<(char, usize, String)> = None;
    for line in before.lines() {
        let trimmed = line.trim_start_matches(' ');
        if line.len() - trimmed.len() > 3 {
            continue;
        }
        let Some(marker) = trimmed.chars().next().filter(|c| *c == '`' || *c == '~') else {
            continue;
        };
        let run = trimmed.chars().take_while(|c| *c == marker).count();
        if run < 3 {
            continue;
        }
        match &open {
            None => open = Some((marker, run, trimmed.trim_end().to_owned())),
            Some((m, n, _)) if *m == marker && run >= *n && trimmed[run..].trim().is_empty() => {
                open = None
            }
            Some(_) => {}
        }
    }
    open.map(|(_, _, line)| line)
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
    fn escaped_text_renders_as_itself() {
        for text in [
            "[x](https://example.org)",
            "**bold** _em_ ~~strike~~ `code`",
            "<b>hi</b> &amp; &#8238;",
            "# heading",
            "1. item",
            "2) item",
            "- item",
            "+ item",
            "> quote",
            "a | b |\n|---|---|",
            "![cat](http://x/cat.png) <https://example.org> https://example.org",
            "\\*not em\\* trailing\\",
            "{braces} !bang ***",
        ] {
            let escaped = escape_markdown(text);
            let html = markdown_to_html(&escaped);
            let inner = html
                .strip_prefix("<p>")
                .and_then(|h| h.strip_suffix("</p>"))
                .unwrap_or_else(|| panic!("{text:?} is one plain paragraph: {html}"));
            let shown = inner
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&amp;", "&");
            assert_eq!(shown, text.replace('\n', " "), "{text:?} -> {escaped:?}");
            // With no markup left, a client shows the HTML, not the escaped source.
            assert!(
                render(&escaped).html.is_some() || escaped == text,
                "{text:?}"
            );
        }
        assert_eq!(render("plain words").html, None);
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

    /// Parts whose body and HTML together stay under `max` bytes.
    fn under(max: usize) -> impl Fn(&Rendered) -> bool {
        move |r| r.body.len() + r.html.as_ref().map_or(0, String::len) <= max
    }

    fn pieces<'a>(text: &'a str, parts: &[Part]) -> Vec<&'a str> {
        parts.iter().map(|p| &text[p.start..p.end]).collect()
    }

    #[test]
    fn long_answers_are_split_at_paragraphs() {
        let paragraph = "word ".repeat(1000); // ~5 KB
        let text = [paragraph.trim(); 7].join("\n\n");
        let parts = split_fitting(&text, 0, &under(16 * 1024));
        assert!(parts.len() >= 3, "{}", parts.len());
        assert!(parts.iter().all(|p| under(16 * 1024)(&p.rendered)));
        for part in &parts[..parts.len() - 1] {
            assert!(text[..part.end].ends_with("\n\n"), "cut at a paragraph");
        }
        assert_eq!(
            pieces(&text, &parts).concat(),
            text,
            "nothing is lost or reordered"
        );
    }

    #[test]
    fn a_short_text_is_one_part_and_blank_text_still_gives_one() {
        let parts = split_fitting("hello **you**", 0, &under(1000));
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].rendered, render("hello **you**"));
        assert_eq!(split_fitting("", 0, &under(10)).len(), 1);
        assert_eq!(split_fitting("  \n ", 0, &under(10)).len(), 1);
    }

    #[test]
    fn a_code_block_cut_in_two_stays_code_in_both_parts() {
        let lines: Vec<String> = (0..400).map(|i| format!("let x{i} = a < b;")).collect();
        let text = format!("Here:\n\n```rust\n{}\n```\n\nDone.", lines.join("\n"));
        let parts = split_fitting(&text, 0, &under(6000));
        assert!(parts.len() >= 3, "{}", parts.len());
        for part in &parts {
            let html = part.rendered.html.as_deref().unwrap_or_default();
            assert!(
                html.contains("<pre><code"),
                "every part shows code: {html:.200}"
            );
            assert!(
                !html.contains("let x1 = a &lt; b;</p>"),
                "no code as a paragraph"
            );
        }
        assert_eq!(pieces(&text, &parts).concat(), text);
    }

    #[test]
    fn splitting_can_start_after_parts_already_sent() {
        let text = "one two three four five six seven eight nine ten";
        let first = split_fitting(text, 0, &under(20));
        let again = split_fitting(text, first[0].end, &under(20));
        assert_eq!(
            first[1..],
            again[..],
            "the parts after the first are the same"
        );
    }

    #[test]
    fn open_fences_are_found() {
        assert_eq!(open_fence("a\n```py\nx = 1\n"), Some("```py".into()));
        assert_eq!(open_fence("```\nx\n```\n"), None);
        assert_eq!(
            open_fence("~~~~\n```\n"),
            Some("~~~~".into()),
            "another marker does not close"
        );
        assert_eq!(
            open_fence("    ```\n"),
            None,
            "indented four spaces is not a fence"
        );
    }

    proptest! {
        #[test]
        fn splitting_keeps_every_byte_and_respects_the_limit(
            words in proptest::collection::vec("[a-zя😀<&*`#|]{1,12}|\n|\n\n|```", 0..400),
            max in 120usize..600,
        ) {
            let text = words.join(" ");
            let parts = split_fitting(&text, 0, &under(max));
            prop_assert_eq!(pieces(&text, &parts).concat(), text.clone());
            for part in &parts {
                // A part is over the limit only when it is a single character.
                prop_assert!(under(max)(&part.rendered) || part.rendered.body.chars().count() <= 1);
            }
        }
    }
}
