//! Reply fallbacks: clients older than Matrix 1.13 put a quote of the message replied to at the
//! top of a reply (`> <@sender> …` lines and a blank line in `body`, `<mx-reply>…</mx-reply>` in
//! `formatted_body`). The quote is not the person's words: it is removed as an event is queued,
//! so commands are parsed and the platform is asked without it, and from the context read back
//! from history.

use matrix_sdk::ruma::events::room::message::sanitize::remove_plain_reply_fallback;
use matrix_sdk::ruma::events::room::message::{
    FormattedBody, MessageType, OriginalSyncRoomMessageEvent, Relation,
};
use serde_json::Value;

/// `event` without its reply fallback, if it is a reply (a message in a thread that answers
/// one in particular counts).
pub(crate) fn strip(event: &mut OriginalSyncRoomMessageEvent) {
    let replies = match &event.content.relates_to {
        Some(Relation::Reply(_)) => true,
        Some(Relation::Thread(thread)) => thread.in_reply_to.is_some() && !thread.is_falling_back,
        _ => false,
    };
    if !replies {
        return;
    }
    let (body, formatted) = match &mut event.content.msgtype {
        MessageType::Text(text) => (&mut text.body, &mut text.formatted),
        MessageType::Emote(emote) => (&mut emote.body, &mut emote.formatted),
        MessageType::Notice(notice) => (&mut notice.body, &mut notice.formatted),
        _ => return,
    };
    *body = remove_plain_reply_fallback(body).to_owned();
    if let Some(formatted) = formatted {
        strip_html(formatted);
    }
}

/// The `body` of a message's JSON `content`, without its reply fallback if it is a reply.
pub(crate) fn body(content: &Value) -> Option<&str> {
    let body = content["body"].as_str()?;
    if content["m.relates_to"]["m.in_reply_to"].is_object() {
        Some(remove_plain_reply_fallback(body))
    } else {
        Some(body)
    }
}

/// `formatted` without its `<mx-reply>` block.
fn strip_html(formatted: &mut FormattedBody) {
    const OPEN: &str = "<mx-reply>";
    const CLOSE: &str = "</mx-reply>";
    if let (Some(start), Some(end)) = (formatted.body.find(OPEN), formatted.body.find(CLOSE)) {
        if start < end {
            formatted.body.replace_range(start..end + CLOSE.len(), "");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(content: Value) -> OriginalSyncRoomMessageEvent {
        serde_json::from_value(json!({
            "type": "m.room.message", "event_id": "$e", "sender": "@anna:x",
            "origin_server_ts": 1, "content": content
        }))
        .expect("an event")
    }

    fn text(event: &OriginalSyncRoomMessageEvent) -> (String, Option<String>) {
        match &event.content.msgtype {
            MessageType::Text(text) => (
                text.body.clone(),
                text.formatted.as_ref().map(|f| f.body.clone()),
            ),
            other => panic!("text expected: {other:?}"),
        }
    }

    #[test]
    fn the_quote_of_a_reply_is_not_the_persons_words() {
        let mut reply = event(json!({
            "msgtype": "m.text",
            "body": "> <@bot:x> [C1] echo: quote me\n\n!chats",
            "format": "org.matrix.custom.html",
            "formatted_body": "<mx-reply><blockquote>[C1] echo: quote me</blockquote></mx-reply>!chats",
            "m.relates_to": {"m.in_reply_to": {"event_id": "$answer"}}
        }));
        strip(&mut reply);
        assert_eq!(
            text(&reply),
            ("!chats".to_owned(), Some("!chats".to_owned()))
        );
        // Not a reply: a line that looks like a quote is the person's.
        let mut quoted = event(json!({"msgtype": "m.text", "body": "> <@bot:x> hi\n\nyes"}));
        strip(&mut quoted);
        assert_eq!(text(&quoted).0, "> <@bot:x> hi\n\nyes");
        // A reply from a client that sends no fallback keeps its words.
        let mut modern = event(json!({
            "msgtype": "m.text", "body": "> as I said\nagain",
            "m.relates_to": {"m.in_reply_to": {"event_id": "$answer"}}
        }));
        strip(&mut modern);
        assert_eq!(text(&modern).0, "> as I said\nagain");
        let history = json!({"body": "> <@bot:x> old\n\nnew words", "m.relates_to": {"m.in_reply_to": {"event_id": "$a"}}});
        assert_eq!(body(&history), Some("new words"));
    }
}
