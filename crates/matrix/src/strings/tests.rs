use super::*;
use crate::command::ParseError;
use crate::render::render;
use lambda_matrix_core::{Chat, ChatId, ChatStatus, NameError};

#[test]
fn default_chat_names_follow_the_language() {
    let c1 = ChatId::FIRST;
    assert_eq!(Texts::new(Lang::En).chat_name(c1), "Chat 1");
    assert_eq!(Texts::new(Lang::Ru).chat_name(c1), "Чат 1");
}

/// Every person-facing text, by function name, in `lang`.
fn every_text(lang: Lang) -> Vec<(&'static str, String)> {
    let t = Texts::new(lang);
    let chat = Chat {
        owner: "@anna:x".into(),
        id: ChatId::FIRST,
        name: "Work".into(),
        status: ChatStatus::Active,
        room_id: "!r:x".into(),
    };
    let id = ChatId::FIRST;
    let mut all = vec![
        ("chat_name", t.chat_name(id)),
        (
            "model_list",
            t.model_list(&["mock".into(), "fast".into()], "fast"),
        ),
        ("model_set", t.model_set("fast")),
        ("model_unknown", t.model_unknown("gpt-9", &["mock".into()])),
        ("models_unavailable", t.models_unavailable()),
        ("no_instructions", t.no_instructions()),
        (
            "instructions_shown",
            t.instructions_shown("Be brief.\nUse *French*."),
        ),
        ("instructions_set", t.instructions_set(17)),
        ("instructions_cleared", t.instructions_cleared()),
        ("instructions_too_long", t.instructions_too_long(2001, 2000)),
        (
            "chat_settings",
            t.chat_settings("fast", true, Some("Be brief.")),
        ),
        ("chat_room_only", t.chat_room_only("!model")),
        (
            "usage_report",
            t.usage_report(
                &[ModelUse {
                    model: "llama".into(),
                    tokens: 120,
                    answers: 2,
                    estimated: true,
                }],
                &[],
                (Some(1000), None),
            ),
        ),
        (
            "budget_reached",
            t.budget_reached(true, 1000, "2026-12-06 00:00 UTC", Some("small")),
        ),
        (
            "budget_still_used_up",
            t.budget_still_used_up("2026-12-06 00:00 UTC"),
        ),
        ("fallback_mark", t.fallback_mark("small")),
        ("space_name", t.space_name()),
        ("space_topic", t.space_topic()),
        ("help", t.help()),
        ("welcome", t.welcome(&chat)),
        ("welcome_back", t.welcome_back()),
        ("created", t.created(&chat)),
        ("chat_list", t.chat_list(std::slice::from_ref(&chat))),
        ("renamed", t.renamed(&chat)),
        ("archived", t.archived(&chat)),
        ("unarchived", t.unarchived(&chat)),
        ("invited_to_chat", t.invited_to_chat(&chat)),
        ("invited_to_space", t.invited_to_space()),
        ("already_member", t.already_member()),
        ("archived_notice", t.archived_notice(id)),
        ("text_only", t.text_only()),
        ("could_not_decrypt", t.could_not_decrypt()),
        ("dm_hint", t.dm_hint()),
        ("platform_failed", t.platform_failed()),
        ("platform_timeout", t.platform_timeout()),
        ("needs_chat_id", t.needs_chat_id("!archive C1")),
        ("no_such_chat", t.no_such_chat(id)),
        ("already_archived", t.already_archived(id)),
        ("not_archived", t.not_archived(id)),
        ("too_many_chats", t.too_many_chats(3)),
        ("slow_down", t.slow_down(3)),
        ("too_many_messages", t.too_many_messages(30)),
        ("too_many_dms", t.too_many_dms(3)),
        ("group_room", t.group_room()),
        ("only_owner", t.only_owner("@anna:example.org")),
        ("no_longer_allowed", t.no_longer_allowed()),
        ("no_space", t.no_space()),
        ("unknown_room", t.unknown_room()),
        ("command_failed", t.command_failed()),
        ("delete_ask", t.delete_ask(&chat)),
        ("deleted", t.deleted(&chat)),
        ("forget_ask", t.forget_ask(2)),
        ("forgotten", t.forgotten()),
        ("answer_cancelled", t.answer_cancelled()),
        ("cancel_done", t.cancel_done(1)),
        ("nothing_to_cancel", t.nothing_to_cancel()),
        ("edited_answer_heading", t.edited_answer_heading()),
        ("platform_busy", t.platform_busy()),
        ("platform_misconfigured", t.platform_misconfigured()),
        ("platform_unavailable", t.platform_unavailable()),
        ("answer_in_progress", t.answer_in_progress()),
        ("answer_interrupted", t.answer_interrupted()),
        ("answer_stopped", t.answer_stopped()),
        ("answer_cut", t.answer_cut(64_000)),
        (
            "attachment_too_big",
            t.attachment_too_big(Some(25 << 20), 20 << 20),
        ),
        ("attachment_missing", t.attachment_missing()),
        ("attachment_unreachable", t.attachment_unreachable()),
        ("cannot_watch_videos", t.cannot_watch_videos()),
        ("cannot_see_images", t.cannot_see_images()),
        ("cannot_hear_audio", t.cannot_hear_audio()),
        ("cannot_read_file_type", t.cannot_read_file_type()),
    ];
    let errors = [
        ParseError::Unknown("x".into()),
        ParseError::MissingArgument("rename"),
        ParseError::UnexpectedArgument("help"),
        ParseError::UnexpectedArgument("delete"),
        ParseError::BadChatId("x".into()),
        ParseError::BadName(NameError::Empty),
        ParseError::BadName(NameError::TooLong { chars: 99 }),
        ParseError::TooLong,
    ];
    for error in &errors {
        all.push(("parse_error", t.parse_error(error)));
    }
    all
}

#[test]
fn sizes_are_shown_for_people() {
    let (en, ru) = (Texts::new(Lang::En), Texts::new(Lang::Ru));
    assert_eq!(en.size(512), "512 bytes");
    assert_eq!(en.size(1025), "2 KB");
    assert_eq!(en.size(25 << 20), "25.0 MB");
    assert_eq!(ru.size(3 << 19), "1,5 МБ");
    assert!(en.attachment_too_big(Some(2000), 1000).contains("2 KB"));
    let unknown = en.attachment_too_big(None, 1000);
    assert!(
        unknown.contains("too big") && unknown.contains("1000 bytes") && !unknown.contains("2 KB"),
        "{unknown}"
    );
    assert!(ru.attachment_too_big(None, 1000).contains("1000"));
}

#[test]
fn every_text_exists_in_both_languages() {
    let (en, ru) = (every_text(Lang::En), every_text(Lang::Ru));
    // The list above names every text function: a new one must be added to it.
    let defined = [
        include_str!("chats.rs"),
        include_str!("notices.rs"),
        include_str!("settings.rs"),
        include_str!("usage.rs"),
    ]
    .iter()
    .map(|source| source.matches("    pub fn ").count())
    .sum::<usize>();
    let listed: std::collections::BTreeSet<_> = en.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        defined,
        listed.len(),
        "a text function is missing from every_text()"
    );
    // Names that are the same word in both languages.
    let same_in_both = ["space_name"];
    for ((name, en), (_, ru)) in en.iter().zip(&ru) {
        assert!(!en.trim().is_empty(), "{name}: English text is empty");
        assert!(!ru.trim().is_empty(), "{name}: Russian text is empty");
        if same_in_both.contains(name) {
            continue;
        }
        assert_ne!(en, ru, "{name}: not translated");
        assert!(
            ru.chars()
                .any(|c| ('а'..='я').contains(&c.to_lowercase().next().unwrap_or(c))),
            "{name}: the Russian text has no Russian words: {ru}"
        );
        assert!(
            !en.chars().any(|c| ('а'..='я').contains(&c)),
            "{name}: the English text has Russian in it: {en}"
        );
    }
}

/// Every tag in the HTML a text renders to (`<p>` for a plain paragraph sent without HTML).
fn tags(rendered: &crate::render::Rendered) -> Vec<String> {
    let Some(html) = &rendered.html else {
        return vec!["<p>".into(), "</p>".into()];
    };
    // Text in the HTML is escaped, so every `<` opens a tag.
    html.split('<')
        .skip(1)
        .map(|t| format!("<{}>", t.split('>').next().unwrap_or_default()))
        .collect()
}

/// What a client shows of a rendered text: the HTML without tags, unescaped.
fn visible_text(rendered: &crate::render::Rendered) -> String {
    let Some(html) = &rendered.html else {
        return rendered.body.clone();
    };
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Names and words a person could type to smuggle markup into the bot's notices.
const HOSTILE: &[&str] = &[
    "[x](https://example.org)",
    "**bold**",
    "<b>bold</b>",
    "_em_ ~~gone~~ `code`",
    "# Heading",
    "1. first",
    "- item",
    "> quote",
    "a | b |",
    "![img](https://example.org/i.png)",
    "<https://example.org> https://example.org",
    "&#8238;&amp; \\*",
    "*",
    "**",
    "trailing\\",
    "{x}+!.#",
];

#[test]
fn a_hostile_chat_name_shows_as_text_in_every_notice() {
    let chat = |name: &str| Chat {
        owner: "@anna:x".into(),
        id: ChatId::FIRST,
        name: name.into(),
        status: ChatStatus::Archived,
        room_id: "!r:x".into(),
    };
    for lang in [Lang::En, Lang::Ru] {
        let t = Texts::new(lang);
        let notices = |chat: &Chat| {
            vec![
                ("welcome", t.welcome(chat)),
                ("created", t.created(chat)),
                ("chat_list", t.chat_list(std::slice::from_ref(chat))),
                ("renamed", t.renamed(chat)),
                ("archived", t.archived(chat)),
                ("unarchived", t.unarchived(chat)),
                ("invited_to_chat", t.invited_to_chat(chat)),
                ("delete_ask", t.delete_ask(chat)),
                ("deleted", t.deleted(chat)),
            ]
        };
        let plain = notices(&chat("Work"));
        for name in HOSTILE {
            for ((what, markdown), (_, harmless)) in notices(&chat(name)).iter().zip(&plain) {
                let rendered = render(markdown);
                let html = rendered.html.clone().unwrap_or_default();
                assert!(!html.contains("<a"), "{what} {name:?}: a link: {html}");
                assert!(
                    !html.contains("<em>") && !html.contains("<del>"),
                    "{what} {name:?}: {html}"
                );
                assert_eq!(
                    tags(&rendered),
                    tags(&render(harmless)),
                    "{what} {name:?}: the name adds no markup (no <strong> of its own): {html}"
                );
                let shown = visible_text(&rendered);
                assert!(
                    shown.contains(name),
                    "{what} {name:?}: the name is not all visible: {shown}"
                );
            }
        }
    }
}

#[test]
fn unknown_command_words_and_bad_ids_show_as_text() {
    for lang in [Lang::En, Lang::Ru] {
        let t = Texts::new(lang);
        for word in HOSTILE {
            for error in [
                ParseError::Unknown((*word).into()),
                ParseError::BadChatId((*word).into()),
            ] {
                let rendered = render(&t.parse_error(&error));
                let html = rendered.html.clone().unwrap_or_default();
                assert!(!html.contains("<a"), "{error:?}: a link: {html}");
                assert!(!html.contains("<strong>"), "{error:?}: bold: {html}");
                let harmless = match error {
                    ParseError::Unknown(_) => ParseError::Unknown("frobnicate".into()),
                    _ => ParseError::BadChatId("frobnicate".into()),
                };
                assert_eq!(
                    tags(&rendered),
                    tags(&render(&t.parse_error(&harmless))),
                    "{error:?}: {html}"
                );
                let shown = visible_text(&rendered);
                assert!(shown.contains(word), "{error:?}: not all visible: {shown}");
            }
        }
    }
}

#[test]
fn hidden_characters_a_person_typed_are_not_echoed() {
    let t = Texts::new(Lang::En);
    let echoed = t.parse_error(&ParseError::Unknown("ev\u{202E}il\u{200B}\n\n# x".into()));
    assert_eq!(
        echoed,
        "I do not know the command !evil \\# x. `!help` lists the commands."
    );
    assert_eq!(shown("a\n\n  b\u{2066}"), "a b");
}

#[test]
fn help_names_every_command_in_both_languages() {
    for lang in [Lang::En, Lang::Ru] {
        let help = Texts::new(lang).help();
        for cmd in [
            "!new",
            "!chats",
            "!rename",
            "!archive",
            "!unarchive",
            "!invite",
            "!cancel",
            "!delete",
            "!forget-me",
            "!model",
            "!instructions",
            "!settings",
            "!usage",
            "!help",
            "🛑",
            "🔁",
        ] {
            assert!(help.contains(cmd), "{lang:?} help lacks {cmd}");
        }
    }
}
