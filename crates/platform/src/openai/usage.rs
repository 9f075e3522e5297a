//! The tokens an answer cost: as the server reports them (`usage` of a whole reply, or the last
//! chunk of a stream asked with `stream_options.include_usage`), else estimated from the text
//! and marked so. Transcripts are always estimated (the transcription endpoint reports none).

use super::wire::WireUsage;
use crate::{estimate_tokens, Answer, Usage};

/// The usage a server reported, its model not yet named.
pub fn reported(usage: Option<WireUsage>) -> Option<Usage> {
    usage.map(|usage| Usage {
        model: String::new(),
        prompt: usage.prompt_tokens,
        completion: usage.completion_tokens,
        estimated: false,
    })
}

/// Names `model` on the usage `answer` carries, or estimates it from `prompt` (the text sent)
/// and the answer's text when the server reported none.
pub fn complete(answer: &mut Answer, model: &str, prompt: &str) {
    if answer.usage.is_empty() {
        answer.usage.push(Usage {
            model: String::new(),
            prompt: estimate_tokens(prompt),
            completion: estimate_tokens(&answer.text),
            estimated: true,
        });
    }
    for usage in &mut answer.usage {
        if usage.model.is_empty() {
            usage.model = model.to_owned();
        }
    }
}

/// The estimated usage of the transcription `model` for `transcripts`.
pub fn transcribed(model: &str, transcripts: &[String]) -> Usage {
    Usage {
        model: model.to_owned(),
        prompt: 0,
        completion: transcripts.iter().map(|text| estimate_tokens(text)).sum(),
        estimated: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reported_usage_is_named_and_a_missing_one_estimated() {
        let mut answer = Answer {
            text: "12345678".into(),
            cut: false,
            usage: reported(Some(WireUsage {
                prompt_tokens: 10,
                completion_tokens: 3,
            }))
            .into_iter()
            .collect(),
        };
        complete(&mut answer, "llama", "ignored");
        assert_eq!(
            answer.usage,
            [Usage {
                model: "llama".into(),
                prompt: 10,
                completion: 3,
                estimated: false
            }]
        );
        answer.usage.clear();
        complete(&mut answer, "llama", "abcdefghi");
        assert_eq!(
            answer.usage,
            [Usage {
                model: "llama".into(),
                prompt: 3,
                completion: 2,
                estimated: true
            }]
        );
        assert_eq!(
            transcribed("whisper-1", &["abcd".into(), "e".into()]).completion,
            2
        );
    }
}
