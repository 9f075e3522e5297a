//! The events the bot sends, built in one place so their size can be known before sending.
//!
//! Every reply and edit carries the part it is of an answer in its relation,
//! `m.relates_to."org.lambda.matrix.part": {"index": i, "count": n}` (`count` once known;
//! `"partial": true` while a streamed part is still growing; `"text_of"`: the event whose text
//! an answer used, the message or an edit of it). The relation stays readable
//! without decrypting (the SDK copies `m.relates_to` into the encrypted event's clear
//! content), so catch-up sees which parts of an answer exist even after losing every key.
//!
//! Size: the homeserver refuses an event over 64 KiB (the whole event: content, relation,
//! encryption, and the envelope the server adds). A part is checked in its largest form (a
//! streamed edit: text and HTML twice, plus the progress note) with an estimate of encryption,
//! so the same parts are valid as replies, edits, encrypted or not.

use super::kind::{content, Kind};
use crate::markers::{PartMark, PARTIAL_FIELD, PART_MARK};
use crate::render::{split_fitting, Part, Rendered};
use matrix_sdk::ruma::events::room::message::{
    AddMentions, ForwardThread, ReplacementMetadata, ReplyMetadata,
};
use matrix_sdk::ruma::EventId;
use serde_json::{json, Value};

/// The homeserver's limit on one event (Matrix spec: 65,536 bytes).
pub const EVENT_LIMIT: usize = 65_536;
/// Room left for what the homeserver adds around the content (ids, hashes, signatures,
/// auth and previous events).
const ENVELOPE: usize = 4_096;
/// Room left in a streamed part for the note that it is still growing.
const NOTE_RESERVE: usize = 512;

/// A reply to `to` with `part`.
pub(crate) fn reply(kind: Kind, part: &Rendered, to: ReplyMetadata<'_>, mark: &PartMark) -> Value {
    let message = content(kind, part.body.clone(), part.html.clone()).make_reply_to(
        to,
        ForwardThread::Yes,
        AddMentions::No,
    );
    let mut json = serde_json::to_value(&message).unwrap_or_else(|_| json!({}));
    json["m.relates_to"][PART_MARK] = mark_json(mark);
    if mark.partial {
        json[PARTIAL_FIELD] = json!(true);
    }
    json
}

/// An edit of the bot's reply `target`, replacing its content with `part`.
pub(crate) fn edit(kind: Kind, part: &Rendered, target: &EventId, mark: &PartMark) -> Value {
    let message = content(kind, part.body.clone(), part.html.clone())
        .make_replacement(ReplacementMetadata::new(target.to_owned(), None));
    let mut json = serde_json::to_value(&message).unwrap_or_else(|_| json!({}));
    json["m.relates_to"][PART_MARK] = mark_json(mark);
    if mark.partial {
        json[PARTIAL_FIELD] = json!(true);
        json["m.new_content"][PARTIAL_FIELD] = json!(true);
    }
    json
}

/// A message that is not a reply (welcomes), with `part`.
pub(crate) fn plain(kind: Kind, part: &Rendered) -> Value {
    serde_json::to_value(content(kind, part.body.clone(), part.html.clone()))
        .unwrap_or_else(|_| json!({}))
}

/// The mark as written in the relation.
fn mark_json(mark: &PartMark) -> Value {
    serde_json::to_value(mark).unwrap_or_else(|_| json!({ "index": mark.index }))
}

/// `json` without its HTML (the fallback when the server still finds an event too large).
pub(crate) fn without_html(mut json: Value) -> Value {
    fn strip(content: &mut Value) {
        if let Some(object) = content.as_object_mut() {
            object.remove("format");
            object.remove("formatted_body");
        }
    }
    strip(&mut json);
    strip(&mut json["m.new_content"]);
    if json["m.new_content"].is_null() {
        if let Some(object) = json.as_object_mut() {
            object.remove("m.new_content");
        }
    }
    json
}

/// The size `content` will have on the server, encrypted (an upper estimate: Megolm adds a
/// fixed overhead and base64 a third; the relation is kept in the clear as well).
pub fn wire_size(content: &Value) -> usize {
    let plain = serde_json::to_string(content).map_or(usize::MAX / 2, |s| s.len());
    let relation = serde_json::to_string(&content["m.relates_to"]).map_or(0, |s| s.len());
    // The encrypted payload: {"type":…,"content":…,"room_id":…}, then a Megolm message (version,
    // index, padding, MAC, signature), then base64, then the encrypted content's own fields.
    let payload = plain + 160;
    let megolm = payload + 16 + 96;
    megolm.div_ceil(3) * 4 + relation + 320
}

/// Whether `part` fits in an event in every form the bot sends it.
pub fn fits(part: &Rendered) -> bool {
    // The largest form: a streamed edit of a reply with an event id, every mark set.
    let target = EventId::parse("$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").ok();
    let Some(target) = target else {
        return false;
    };
    let mark = PartMark {
        count: Some(9_999),
        ..PartMark::growing(9_999)
    };
    wire_size(&edit(Kind::Answer, part, &target, &mark)) + NOTE_RESERVE <= EVENT_LIMIT - ENVELOPE
}

/// `markdown` from byte `from` on, split into parts that each fit in one event.
pub(crate) fn parts_from(markdown: &str, from: usize) -> Vec<Part> {
    split_fitting(markdown, from, &fits)
}

/// `markdown` split into parts that each fit in one event.
pub(crate) fn parts(markdown: &str) -> Vec<Rendered> {
    parts_from(markdown, 0)
        .into_iter()
        .map(|p| p.rendered)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use matrix_sdk::ruma::{event_id, user_id};
    use proptest::prelude::*;

    /// Every form a part is sent in, with the largest marks.
    fn every_form(part: &Rendered) -> Vec<Value> {
        let target = event_id!("$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        let to = ReplyMetadata::new(target, user_id!("@someone:example.org"), None);
        let mark = PartMark {
            count: Some(9_999),
            ..PartMark::growing(9_999)
        };
        vec![
            reply(Kind::Answer, part, to, &mark),
            reply(Kind::Notice, part, to, &PartMark::of(9_999, 9_999)),
            edit(Kind::Answer, part, target, &mark),
            edit(Kind::Answer, part, target, &PartMark::of(9_999, 9_999)),
            plain(Kind::Notice, part),
        ]
    }

    fn assert_all_fit(text: &str) {
        let parts = parts(text);
        for part in &parts {
            for form in every_form(part) {
                let size = wire_size(&form);
                assert!(size < EVENT_LIMIT - ENVELOPE, "{size} bytes");
                // And the plain (unencrypted) event is smaller still.
                let plain = serde_json::to_string(&form).expect("json").len();
                assert!(plain < size, "{plain} vs {size}");
            }
        }
    }

    #[test]
    fn dense_markup_that_was_refused_now_fits() {
        // A ~15 KB inline-code echo of markup characters: 413 M_TOO_LARGE before.
        let text = format!("[C1] echo: `{}`", "<&>\"".repeat(3800));
        assert_all_fit(&text);
        assert!(parts(&text).len() >= 2, "it needs more than one event");
    }

    #[test]
    fn the_marks_are_in_the_relation() {
        let part = Rendered {
            body: "hi".into(),
            html: None,
        };
        let target = event_id!("$target");
        let to = ReplyMetadata::new(target, user_id!("@a:b"), None);
        let json = reply(Kind::Answer, &part, to, &PartMark::of(1, 3));
        assert_eq!(json["m.relates_to"]["m.in_reply_to"]["event_id"], "$target");
        assert_eq!(
            json["m.relates_to"][PART_MARK],
            json!({"index": 1, "count": 3})
        );
        let json = edit(Kind::Answer, &part, target, &PartMark::growing(0));
        assert_eq!(json["m.relates_to"]["rel_type"], "m.replace");
        assert_eq!(
            json["m.relates_to"][PART_MARK],
            json!({"index": 0, "partial": true})
        );
        assert_eq!(json["m.new_content"][PARTIAL_FIELD], true);
        let html = Rendered {
            body: "**b**".into(),
            html: Some("<strong>b</strong>".into()),
        };
        let bare = without_html(edit(Kind::Answer, &html, target, &PartMark::of(0, 1)));
        assert!(
            bare.get("formatted_body").is_none()
                && bare["m.new_content"].get("formatted_body").is_none()
        );
        assert_eq!(bare["m.new_content"]["body"], "**b**");
    }

    /// Text a model produces that makes events large: dense markup, code, tables, long words,
    /// multi-byte and right-to-left scripts, control characters.
    fn adversarial() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[<>&\"']{1,200}",
            "```[a-z]{0,5}\n[ -~]{0,300}\n```",
            "\\|[ a-z<&]{1,20}\\|[ a-z<&]{1,20}\\|\n",
            "[a-zA-Z0-9]{100,3000}",
            "[א-ת ]{1,200}",
            "[а-я😀🏳️‍🌈 ]{1,200}",
            "[\u{1}-\u{1f}]{1,50}",
            "\\*\\*[a-z ]{1,40}\\*\\* ",
            "\n\n",
        ];
        proptest::collection::vec(piece, 1..60).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn every_event_fits_and_the_parts_give_back_the_text(text in adversarial()) {
            let split = parts_from(&text, 0);
            let rejoined: String = split.iter().map(|p| &text[p.start..p.end]).collect();
            prop_assert_eq!(&rejoined, &text);
            for part in &split {
                for form in every_form(&part.rendered) {
                    prop_assert!(wire_size(&form) < EVENT_LIMIT - ENVELOPE);
                }
            }
        }
    }
}
