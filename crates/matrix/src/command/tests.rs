use super::*;
use lambda_matrix_core::MAX_NAME_CHARS;
use proptest::prelude::*;

fn id(n: u32) -> ChatId {
    ChatId::new(n).expect("id")
}

fn name(s: &str) -> ChatName {
    ChatName::parse(s).expect("name")
}

/// Each input parses to what it says; `None`: not a command.
fn assert_parses(cases: Vec<(&str, Option<Result<Command, ParseError>>)>) {
    for (input, want) in cases {
        assert_eq!(parse(input), want, "parsing {input:?}");
    }
}

#[test]
fn parses_command_words_and_what_is_not_a_command() {
    let huge = format!("!new {}", "x".repeat(MAX_COMMAND_BYTES));
    assert_parses(vec![
        ("hello", None),
        ("", None),
        ("  not !a command", None),
        ("!help", Some(Ok(Command::Help))),
        ("!cancel", Some(Ok(Command::Cancel))),
        (
            "!cancel now",
            Some(Err(ParseError::UnexpectedArgument("cancel"))),
        ),
        ("  !HELP  ", Some(Ok(Command::Help))),
        (
            "!help me",
            Some(Err(ParseError::UnexpectedArgument("help"))),
        ),
        ("!chats", Some(Ok(Command::Chats))),
        (
            "!chats all",
            Some(Err(ParseError::UnexpectedArgument("chats"))),
        ),
        (
            "!delete-everything",
            Some(Err(ParseError::Unknown("delete-everything".into()))),
        ),
        ("!", Some(Err(ParseError::Unknown(String::new())))),
        (&huge, Some(Err(ParseError::TooLong))),
    ]);
}

#[test]
fn parses_the_chat_settings_commands() {
    assert_parses(vec![
        ("!model", Some(Ok(Command::Model(None)))),
        (
            "!Model  llama-3.1:8b ",
            Some(Ok(Command::Model(Some("llama-3.1:8b".into())))),
        ),
        (
            "!model two words",
            Some(Err(ParseError::UnexpectedArgument("model"))),
        ),
        ("!settings", Some(Ok(Command::Settings))),
        ("!usage", Some(Ok(Command::Usage))),
        (
            "!settings now",
            Some(Err(ParseError::UnexpectedArgument("settings"))),
        ),
        (
            "!instructions",
            Some(Ok(Command::Instructions(Instructions::Show))),
        ),
        (
            "!instructions CLEAR",
            Some(Ok(Command::Instructions(Instructions::Clear))),
        ),
        (
            "!instructions\nAnswer in French.\n\nBe *brief*.  ",
            Some(Ok(Command::Instructions(Instructions::Set(
                "Answer in French.\n\nBe *brief*.".into(),
            )))),
        ),
        (
            "!instructions clear the table first",
            Some(Ok(Command::Instructions(Instructions::Set(
                "clear the table first".into(),
            )))),
        ),
    ]);
}

#[test]
fn parses_new_and_rename_with_their_names() {
    let long = "n".repeat(MAX_NAME_CHARS + 1);
    let new_long = format!("!new {long}");
    assert_parses(vec![
        ("!new", Some(Ok(Command::New(None)))),
        (
            "!new   Trip   to  Riga ",
            Some(Ok(Command::New(Some(name("Trip to Riga"))))),
        ),
        (
            "!new Путешествие 🌍",
            Some(Ok(Command::New(Some(name("Путешествие 🌍"))))),
        ),
        (
            "!new\u{200B}",
            Some(Err(ParseError::Unknown("new\u{200b}".into()))),
        ),
        (
            "!new \u{200B}\u{202E}",
            Some(Err(ParseError::BadName(
                lambda_matrix_core::NameError::Empty,
            ))),
        ),
        (
            &new_long,
            Some(Err(ParseError::BadName(
                lambda_matrix_core::NameError::TooLong {
                    chars: MAX_NAME_CHARS + 1,
                },
            ))),
        ),
        ("!rename", Some(Err(ParseError::MissingArgument("rename")))),
        (
            "!rename Groceries",
            Some(Ok(Command::Rename {
                target: None,
                name: name("Groceries"),
            })),
        ),
        (
            "!rename c2 Groceries list",
            Some(Ok(Command::Rename {
                target: Some(id(2)),
                name: name("Groceries list"),
            })),
        ),
        (
            "!rename C2",
            Some(Err(ParseError::MissingArgument("rename"))),
        ),
        (
            "!rename C0 x",
            Some(Ok(Command::Rename {
                target: None,
                name: name("C0 x"),
            })),
        ),
    ]);
}

#[test]
fn parses_chat_ids_and_confirmations() {
    assert_parses(vec![
        (
            "!delete",
            Some(Ok(Command::Delete {
                target: None,
                confirmed: false,
            })),
        ),
        (
            "!delete c3",
            Some(Ok(Command::Delete {
                target: Some(id(3)),
                confirmed: false,
            })),
        ),
        (
            "!delete C3 CONFIRM",
            Some(Ok(Command::Delete {
                target: Some(id(3)),
                confirmed: true,
            })),
        ),
        (
            "!delete confirm",
            Some(Ok(Command::Delete {
                target: None,
                confirmed: true,
            })),
        ),
        (
            "!delete C3 please",
            Some(Err(ParseError::UnexpectedArgument("delete"))),
        ),
        (
            "!delete chat",
            Some(Err(ParseError::BadChatId("chat".into()))),
        ),
        (
            "!forget-me",
            Some(Ok(Command::ForgetMe { confirmed: false })),
        ),
        (
            "!forget-me confirm",
            Some(Ok(Command::ForgetMe { confirmed: true })),
        ),
        (
            "!forget-me now",
            Some(Err(ParseError::UnexpectedArgument("forget-me"))),
        ),
        ("!archive", Some(Ok(Command::Archive(None)))),
        ("!archive C3", Some(Ok(Command::Archive(Some(id(3)))))),
        (
            "!archive three",
            Some(Err(ParseError::BadChatId("three".into()))),
        ),
        (
            "!unarchive",
            Some(Err(ParseError::MissingArgument("unarchive"))),
        ),
        ("!unarchive C12", Some(Ok(Command::Unarchive(id(12))))),
        (
            "!unarchive C1 C2",
            Some(Err(ParseError::BadChatId("C1 C2".into()))),
        ),
        ("!invite", Some(Ok(Command::Invite(None)))),
        ("!invite C1", Some(Ok(Command::Invite(Some(id(1)))))),
    ]);
}

#[test]
fn unknown_words_are_echoed_short() {
    let input = format!("!{}", "x".repeat(500));
    match parse(&input) {
        Some(Err(ParseError::Unknown(word))) => assert!(word.chars().count() <= 41, "{word}"),
        other => panic!("unexpected {other:?}"),
    }
}

proptest! {
    #[test]
    fn never_panics(body in "\\PC{0,300}") {
        let _ = parse(&body);
    }

    #[test]
    fn never_panics_on_command_like_input(word in "(help|new|chats|rename|archive|unarchive|invite|x)", args in "[ \\t]{0,3}[Cc]?[0-9]{0,12}[ \\PC]{0,40}") {
        let _ = parse(&format!("!{word} {args}"));
    }

    #[test]
    fn rename_with_an_id_keeps_the_id(n in 1u32.., label in "[a-zA-Zа-я][a-zA-Zа-я ]{0,30}") {
        let parsed = parse(&format!("!rename C{n} {label}"));
        let is_expected = matches!(parsed, Some(Ok(Command::Rename { target: Some(t), .. })) if t.number() == n);
        prop_assert!(is_expected);
    }
}
