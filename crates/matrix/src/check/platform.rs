//! The platform item: the model server answers, lists its models, and serves the configured
//! model and the transcription model.

use super::Item;
use crate::config::{vars, PlatformKind, Settings};
use lambda_matrix_platform::{OpenAiPlatform, Platform};

/// The platform a start would use, asked for its models (a read).
pub(super) async fn platform(settings: &Settings) -> Item {
    let config = match (settings.platform.kind, &settings.platform.openai) {
        (PlatformKind::OpenAi, Some(config)) => config.clone(),
        _ => {
            return Item::ok(
                "platform",
                "the mock platform: nothing to reach (answers are echoes)",
            )
        }
    };
    let base = config.base_url.clone();
    let transcription = config.transcription_model.clone();
    let platform = match OpenAiPlatform::connect(config).await {
        Ok(platform) => platform,
        Err(error) => {
            return Item::fail(
                "platform",
                format!("{base}: {error}"),
                format!("check {} and {}", vars::OPENAI_BASE_URL, vars::OPENAI_MODEL),
            )
        }
    };
    let model = Platform::model(&platform).to_owned();
    let served = match platform.models().await {
        Ok(served) => served,
        Err(error) => return Item::warn(
            "platform",
            format!("{base}: cannot list the models ({error}); model {model} not confirmed"),
            "make sure the server serves that model; a server without GET /models works, unchecked",
        ),
    };
    let list = served.join(", ");
    if !served.contains(&model) {
        return Item::fail(
            "platform",
            format!("{base}: model {model} is not served (served: {list})"),
            format!("set {} to one of them", vars::OPENAI_MODEL),
        );
    }
    match transcription {
        Some(whisper) if !served.contains(&whisper) => Item::warn(
            "platform",
            format!("{base}: model {model}; transcription model {whisper} is not served (served: {list})"),
            format!(
                "voice messages are refused until it is; set {} to a served model, or to none",
                vars::OPENAI_TRANSCRIPTION_MODEL
            ),
        ),
        Some(whisper) => Item::ok(
            "platform",
            format!("{base}: model {model} and transcription model {whisper} served"),
        ),
        None => Item::ok("platform", format!("{base}: model {model} served")),
    }
}
