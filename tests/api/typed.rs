//! Responses read into the types the server writes them from. A test reads the whole response
//! first (`app.get(path, key).reply().await`, or `read(response).await`), then asserts its
//! status and parses its body in one plain call marked `#[track_caller]`: a wrong status, a
//! body that is not JSON or a shape that does not parse fails at the test's own line, naming
//! the field that broke. (`#[track_caller]` does not reach through an `async fn`, hence the
//! two steps.)

use std::future::Future;

use moncreneau::routes::availability::json::AvailabilitySlot;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// A response read whole: status, the headers tests look at, body text.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub request_id: Option<String>,
    pub text: String,
}

/// Sends a request and reads its response: `app.get(path, key).reply().await`.
pub trait ReadReply {
    fn reply(self) -> impl Future<Output = Reply>;
}

impl<F: Future<Output = Response>> ReadReply for F {
    async fn reply(self) -> Reply {
        read(self.await).await
    }
}

/// Reads a response already received into a [`Reply`].
pub async fn read(response: Response) -> Reply {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header(CONTENT_TYPE.as_str());
    let request_id = header("x-request-id");
    let status = response.status();
    let text = response.text().await.expect("a readable body");
    Reply {
        status,
        content_type,
        request_id,
        text,
    }
}

/// The `HH:MM` a slot is listed at (its `time`, which reading checked against its `dateTime`).
pub fn local_time(slot: &AvailabilitySlot) -> String {
    slot.time.0.format("%H:%M").to_string()
}

/// The error body of every 4xx and 5xx, as the contract's `Error` describes it.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    /// Every bad field of a 400, when there are some.
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    /// Machine-readable context, `{}` when there is none.
    pub details: serde_json::Map<String, serde_json::Value>,
    pub request_id: String,
}

#[derive(Debug, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl ErrorDetail {
    /// One member of `details`, if given.
    pub fn detail(&self, name: &str) -> Option<&serde_json::Value> {
        self.details.get(name)
    }
}

impl ErrorBody {
    /// The field and code of the first field error, if any.
    pub fn first(&self) -> Option<(&str, &str)> {
        let error = self.errors.first()?;
        Some((error.field.as_str(), error.code.as_str()))
    }

    /// The fields named by the 400, in its order.
    pub fn fields(&self) -> Vec<&str> {
        self.errors
            .iter()
            .map(|error| error.field.as_str())
            .collect()
    }
}

impl Reply {
    /// Asserts `status` and a JSON content type, and parses the body as a `T`.
    #[track_caller]
    pub fn json<T: DeserializeOwned>(&self, status: StatusCode) -> T {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self.parse()
    }

    /// Asserts an error: `status`, `error.code`, and the request id of the header in the body.
    #[track_caller]
    pub fn error(&self, status: StatusCode, code: &str) -> ErrorBody {
        let body: ErrorBody = self.json(status);
        assert_eq!(body.error.code, code, "wrong error code in {}", self.text);
        assert!(
            !body.error.message.is_empty(),
            "no message in {}",
            self.text
        );
        assert!(
            body.errors.iter().all(|error| !error.message.is_empty()),
            "a field error without a message in {}",
            self.text
        );
        assert_eq!(
            Some(&body.error.request_id),
            self.request_id.as_ref(),
            "the body's request id differs from the header's"
        );
        body
    }

    /// The body as a `T`, whatever the status; a JSON content type is still required.
    #[track_caller]
    pub fn parse<T: DeserializeOwned>(&self) -> T {
        let content_type = self.content_type.as_deref().unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "a JSON body was expected, got {content_type:?}: {}",
            self.text
        );
        let mut deserializer = serde_json::Deserializer::from_str(&self.text);
        serde_path_to_error::deserialize(&mut deserializer).unwrap_or_else(|error| {
            panic!(
                "the body is not a {} at `{}`: {}; body: {}",
                std::any::type_name::<T>(),
                error.path(),
                error.inner(),
                self.text
            )
        })
    }
}
