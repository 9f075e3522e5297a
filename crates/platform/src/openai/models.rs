//! Choosing the model when none is configured: the server's only one.

use super::wire::ModelList;
use crate::PlatformError;

/// The model to use given the served `models`: the only one, else an error naming them.
pub fn only_model(models: ModelList) -> Result<String, PlatformError> {
    let mut ids: Vec<String> = models.data.into_iter().map(|model| model.id).collect();
    match ids.len() {
        1 => Ok(ids.remove(0)),
        0 => Err(PlatformError::Failed(
            "the server lists no models; set the model explicitly".into(),
        )),
        _ => Err(PlatformError::Failed(format!(
            "the server serves {} models ({}); set the model to one of them",
            ids.len(),
            ids.join(", ")
        ))),
    }
}

/// `error` from listing the models, with a hint that setting the model avoids listing them.
pub fn explain(error: PlatformError) -> PlatformError {
    const HINT: &str =
        "could not list the models (GET /models) to choose one; set the model explicitly";
    match error {
        PlatformError::Rejected { status, message } => PlatformError::Rejected {
            status,
            message: format!("{HINT}: {message}"),
        },
        PlatformError::Unavailable(message) => {
            PlatformError::Unavailable(format!("{HINT}: {message}"))
        }
        PlatformError::Malformed(message) => PlatformError::Malformed(format!("{HINT}: {message}")),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::wire::Model;

    fn list(ids: &[&str]) -> ModelList {
        ModelList {
            data: ids.iter().map(|id| Model { id: (*id).into() }).collect(),
        }
    }

    #[test]
    fn the_only_model_is_chosen() {
        assert_eq!(only_model(list(&["llama"])).expect("one"), "llama");
    }

    #[test]
    fn several_or_no_models_are_an_error_naming_them() {
        let error = only_model(list(&["a-model", "b-model"])).expect_err("two");
        assert!(error.to_string().contains("a-model, b-model"), "{error}");
        let error = only_model(list(&[])).expect_err("none");
        assert!(error.to_string().contains("no models"), "{error}");
    }
}
