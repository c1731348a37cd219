//! One HTTP POST of a signed event to a receiver, with no redirects, the address guard, one
//! timeout for the whole attempt (connection, answer head and answer body) and at most
//! `ANSWER_READ_CAP` bytes of the answer read; used by the delivery worker and by
//! `POST /webhooks/{id}/test`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::redirect::Policy;
use reqwest::Url;
use serde::Serialize;
use serde_json::Value;
use tokio::time::timeout;

use super::guard::{literal_is_forbidden, GuardedResolver};
use super::signing::{body_bytes, hex_signature, standard_signature};
use crate::config::Settings;

/// The most of a receiver's answer body that is read. Nothing of it is stored (the verdict is the
/// status); reading a short acknowledgement to its end lets the connection be reused, and
/// stopping here bounds what a receiver answering megabytes can make the server read.
pub const ANSWER_READ_CAP: usize = 4 * 1024;

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
        self.error.is_none()
            && self
                .status
                .is_some_and(|status| (200..300).contains(&status))
    }

    pub fn gone(&self) -> bool {
        self.status == Some(410)
    }
}

/// What went wrong with an attempt whose receiver answered `status`, if anything: `finished`
/// tells whether its answer was read (up to the cap) before the attempt's time ran out.
fn answer_error(status: u16, finished: bool) -> Option<String> {
    match (status, finished) {
        (200..=299, true) => None,
        // A 2xx whose answer did not arrive in time is not trusted as a success: the attempt
        // is made again, as for any timeout (receivers deduplicate on the event id).
        (200..=299, false) => Some("timed out reading the answer".to_owned()),
        _ => Some(format!("receiver answered {status}")),
    }
}

#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
}

impl Sender {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        // The answer's head is bounded by hyper's HTTP/1 defaults (at most 100 headers in a
        // read buffer of ~400 KiB, past which the attempt fails); HTTP/2, whose header lists
        // would need their own bound, is not built in (reqwest without its `http2` feature).
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
            timeout: settings.webhook_timeout,
        })
    }

    /// Posts `event` (the stored event body) to `url`, signed with `secrets`.
    pub async fn send(&self, url: &str, event: &Value, secrets: &Secrets<'_>) -> Outcome {
        let id = event["id"].as_str().unwrap_or_default();
        let event_type = event["type"].as_str().unwrap_or_default();
        self.send_event(url, id, event_type, event, secrets).await
    }

    /// Posts the event `id` of type `event_type`, whose body is `event` in its fields' order, to
    /// `url`, signed with `secrets`.
    pub async fn send_event(
        &self,
        url: &str,
        id: &str,
        event_type: &str,
        event: &impl Serialize,
        secrets: &Secrets<'_>,
    ) -> Outcome {
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
        // One time budget for the whole attempt, so that a receiver dripping its answer cannot
        // stretch it; the client's own timeout stays as a second guard.
        let remaining = || self.timeout.saturating_sub(started.elapsed());
        let response = match timeout(remaining(), request.body(body).send()).await {
            Err(_) => return failed("timed out".to_owned()),
            Ok(Err(error)) if error.is_timeout() => return failed("timed out".to_owned()),
            Ok(Err(error)) if error.is_connect() => {
                return failed(format!("connection failed: {}", root_cause(&error)))
            }
            Ok(Err(error)) => return failed(format!("request failed: {}", root_cause(&error))),
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        let finished = match timeout(remaining(), read_capped(response)).await {
            Err(_) => false,
            // A receiver that cut its answer short did answer; only running out of time counts.
            Ok(Err(error)) => !error.is_timeout(),
            Ok(Ok(())) => true,
        };
        Outcome {
            status: Some(status),
            duration: started.elapsed(),
            error: answer_error(status, finished),
        }
    }
}

/// Reads the answer body up to `ANSWER_READ_CAP` bytes, a chunk at a time, keeping none of it:
/// a longer answer is dropped there, which closes its connection instead of reading on.
async fn read_capped(mut response: reqwest::Response) -> Result<(), reqwest::Error> {
    let mut read = 0;
    while read < ANSWER_READ_CAP {
        match response.chunk().await? {
            Some(chunk) => read += chunk.len(),
            None => break,
        }
    }
    Ok(())
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_decides_once_the_answer_is_read_in_time() {
        for (status, finished, expected, why) in [
            (200, true, None, "2xx read in time"),
            (204, true, None, "2xx without a body"),
            (
                200,
                false,
                Some("timed out reading the answer"),
                "2xx whose answer outlasted the attempt",
            ),
            (503, true, Some("receiver answered 503"), "5xx"),
            (503, false, Some("receiver answered 503"), "5xx, answer cut"),
            (
                410,
                false,
                Some("receiver answered 410"),
                "gone, answer cut",
            ),
            (
                302,
                true,
                Some("receiver answered 302"),
                "redirects are not followed",
            ),
        ] {
            assert_eq!(answer_error(status, finished).as_deref(), expected, "{why}");
        }
    }

    #[test]
    fn only_a_2xx_without_error_succeeds_and_a_410_is_gone_however_it_ended() {
        let outcome = |status: u16, finished: bool| Outcome {
            status: Some(status),
            duration: Duration::ZERO,
            error: answer_error(status, finished),
        };
        assert!(outcome(200, true).succeeded());
        assert!(!outcome(200, false).succeeded());
        assert!(!outcome(500, true).succeeded());
        assert!(outcome(410, false).gone());
    }
}
