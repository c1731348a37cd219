//! One HTTP POST of a signed event to a receiver, with a timeout, no redirects and the address
//! guard; used by the delivery worker and by `POST /webhooks/{id}/test`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::redirect::Policy;
use reqwest::Url;
use serde_json::Value;

use super::guard::{literal_is_forbidden, GuardedResolver};
use super::signing::{body_bytes, hex_signature, standard_signature};
use crate::config::Settings;

/// The secrets that sign a delivery: the current one and, during a rotation, the previous one.
pub struct Secrets<'a> {
    pub current: &'a str,
    pub previous: Option<&'a str>,
}

/// What came of one attempt.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Option<u16>,
    pub duration: Duration,
    pub error: Option<String>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.status
            .is_some_and(|status| (200..300).contains(&status))
    }

    pub fn gone(&self) -> bool {
        self.status == Some(410)
    }
}

#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
}

impl Sender {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .redirect(Policy::none())
            .timeout(settings.webhook_timeout)
            .connect_timeout(settings.webhook_timeout)
            .user_agent(concat!("Moncreneau-Webhooks/", env!("CARGO_PKG_VERSION")));
        if !settings.webhook_allow_private {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        Ok(Self {
            client: builder.build()?,
            allow_private: settings.webhook_allow_private,
        })
    }

    /// Posts `event` (the stored event body) to `url`, signed with `secrets`.
    pub async fn send(&self, url: &str, event: &Value, secrets: &Secrets<'_>) -> Outcome {
        let started = Instant::now();
        let failed = |error: String| Outcome {
            status: None,
            duration: started.elapsed(),
            error: Some(error),
        };
        let url = match Url::parse(url) {
            Ok(url) => url,
            Err(_) => return failed("invalid receiver URL".to_owned()),
        };
        if !self.allow_private && (url.scheme() != "https" || literal_is_forbidden(&url)) {
            return failed("the receiver address is not allowed".to_owned());
        }
        let id = event["id"].as_str().unwrap_or_default();
        let event_type = event["type"].as_str().unwrap_or_default();
        let body = body_bytes(event);
        let timestamp = Utc::now().timestamp();
        let hex = hex_signature(secrets.current, &body);
        let standard: Vec<String> = std::iter::once(secrets.current)
            .chain(secrets.previous)
            .filter_map(|secret| standard_signature(secret, id, timestamp, &body))
            .collect();
        let mut request = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("x-moncreneau-event", event_type)
            .header("x-moncreneau-signature", format!("sha256={hex}"))
            .header("x-webhook-signature", &hex)
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", standard.join(" "));
        if let Some(previous) = secrets.previous {
            let old = hex_signature(previous, &body);
            request = request
                .header("x-moncreneau-signature-previous", format!("sha256={old}"))
                .header("x-webhook-signature-previous", old);
        }
        match request.body(body).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                // Read (a bounded part of) the answer so the connection can be reused.
                let _ = tokio::time::timeout(Duration::from_secs(1), response.bytes()).await;
                Outcome {
                    status: Some(status),
                    duration: started.elapsed(),
                    error: (!(200..300).contains(&status))
                        .then(|| format!("receiver answered {status}")),
                }
            }
            Err(error) if error.is_timeout() => failed("timed out".to_owned()),
            Err(error) if error.is_connect() => {
                failed(format!("connection failed: {}", root_cause(&error)))
            }
            Err(error) => failed(format!("request failed: {}", root_cause(&error))),
        }
    }
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}
