//! The contract hook of the test client: every response the suite receives from the server is
//! checked against openapi.json — its route and method exist, its status is documented for
//! them, and its JSON body matches the documented schema. A violation fails the test that got it.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use axum::http::header::CONTENT_TYPE;
use reqwest::{Method, Response};
use serde::Serialize;
use serde_json::{json, Value};

static SPEC: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../../openapi.json")).expect("openapi.json is JSON")
});

static VALIDATORS: LazyLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> =
    LazyLock::new(Default::default);

/// `/` + escaped segments: a JSON pointer to `keys` inside the spec.
fn pointer(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("/{}", k.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// The documented path template that `path` instantiates, preferring literal segments.
fn template_of(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('/').collect();
    SPEC["paths"]
        .as_object()?
        .keys()
        .filter_map(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (part, segment) in parts.iter().zip(&segments) {
                if part.starts_with('{') && part.ends_with('}') {
                    if segment.is_empty() {
                        return None;
                    }
                } else if part == segment {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some((literal, template.as_str()))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, template)| template)
}

fn validator(schema_pointer: &str) -> Arc<jsonschema::Validator> {
    // A panic elsewhere must not hide this test's own result behind a poisoned lock.
    let mut cache = VALIDATORS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    cache
        .entry(schema_pointer.to_owned())
        .or_insert_with(|| {
            // The whole document is the root, so every `#/components/...` reference resolves.
            let mut root = SPEC.clone();
            let fragment = schema_pointer.replace('{', "%7B").replace('}', "%7D");
            root["$ref"] = json!(format!("#{fragment}"));
            Arc::new(
                jsonschema::draft202012::new(&root)
                    .unwrap_or_else(|e| panic!("schema {schema_pointer}: {e}")),
            )
        })
        .clone()
}

/// Where the JSON schema of a response lives, following a `$ref` to a shared response.
fn response_schema(mut at: String) -> Option<String> {
    let mut response = SPEC.pointer(&at)?;
    if let Some(reference) = response.get("$ref").and_then(Value::as_str) {
        at = reference.trim_start_matches('#').to_owned();
        response = SPEC.pointer(&at)?;
    }
    response
        .get("content")?
        .get("application/json")?
        .get("schema")?;
    Some(format!(
        "{at}{}",
        pointer(&["content", "application/json", "schema"])
    ))
}

/// Checks one response; `Err` says what breaks the contract.
pub fn check(
    method: &Method,
    path: &str,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(), String> {
    let error_schema = pointer(&["components", "schemas", "Error"]);
    let Some(template) = template_of(path) else {
        // Unknown routes answer the documented error body with 404.
        return if status == 404 {
            validate_json(&error_schema, body)
        } else {
            Err(format!("undocumented route answered {status}"))
        };
    };
    let method_name = method.as_str().to_ascii_lowercase();
    if SPEC["paths"][template].get(&method_name).is_none() {
        return if status == 405 {
            validate_json(&error_schema, body)
        } else {
            Err(format!("undocumented method answered {status}"))
        };
    }
    let responses = &SPEC["paths"][template][&method_name]["responses"];
    let class = format!("{}XX", status / 100);
    let key = [status.to_string(), class, "default".to_owned()]
        .into_iter()
        .find(|key| responses.get(key).is_some())
        .ok_or_else(|| format!("status {status} is not documented for {method} {template}"))?;
    let at = pointer(&["paths", template, &method_name, "responses", &key]);
    match response_schema(at) {
        Some(schema) => {
            let json = content_type.is_some_and(|t| t.starts_with("application/json"));
            if !json {
                return Err(format!(
                    "documented as JSON, answered content type {content_type:?}"
                ));
            }
            validate_json(&schema, body)
        }
        None => Ok(()),
    }
}

fn validate_json(schema: &str, body: &[u8]) -> Result<(), String> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| format!("body is not JSON: {}", String::from_utf8_lossy(body)))?;
    let validator = validator(schema);
    let problems: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("body breaks {schema}: {}", problems.join("; ")))
    }
}

/// A reqwest client whose every response is checked against the contract.
#[derive(Clone)]
pub struct ContractClient {
    inner: reqwest::Client,
}

pub struct ContractRequest {
    client: reqwest::Client,
    builder: reqwest::RequestBuilder,
}

impl ContractClient {
    pub fn new(inner: reqwest::Client) -> Self {
        Self { inner }
    }

    pub fn request(&self, method: Method, url: impl reqwest::IntoUrl) -> ContractRequest {
        ContractRequest {
            client: self.inner.clone(),
            builder: self.inner.request(method, url),
        }
    }

    pub fn get(&self, url: impl reqwest::IntoUrl) -> ContractRequest {
        self.request(Method::GET, url)
    }

    pub fn post(&self, url: impl reqwest::IntoUrl) -> ContractRequest {
        self.request(Method::POST, url)
    }
}

impl ContractRequest {
    fn map(self, f: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> Self {
        Self {
            client: self.client,
            builder: f(self.builder),
        }
    }

    pub fn header(self, name: &str, value: impl AsRef<str>) -> Self {
        let value = value.as_ref().to_owned();
        let name = name.to_owned();
        self.map(|b| b.header(name, value))
    }

    pub fn bearer_auth(self, token: impl std::fmt::Display) -> Self {
        self.map(|b| b.bearer_auth(token))
    }

    pub fn json(self, body: &impl Serialize) -> Self {
        let body = serde_json::to_vec(body).expect("serializable body");
        self.map(|b| b.header(CONTENT_TYPE, "application/json").body(body))
    }

    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        self.map(|b| b.body(body))
    }

    /// Sends, checks the answer against the contract (panicking on a violation), and hands back
    /// the same answer.
    pub async fn send(self) -> reqwest::Result<Response> {
        let request = self.builder.build()?;
        let (method, path) = (request.method().clone(), request.url().path().to_owned());
        let response = self.client.execute(request).await?;
        let (status, version, headers) = (
            response.status(),
            response.version(),
            response.headers().clone(),
        );
        let body = response.bytes().await?;
        let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if let Err(problem) = check(&method, &path, status.as_u16(), content_type, &body) {
            panic!("contract violation: {method} {path} answered {status}: {problem}");
        }
        let mut rebuilt = axum::http::Response::builder()
            .status(status)
            .version(version);
        if let Some(map) = rebuilt.headers_mut() {
            *map = headers;
        }
        Ok(Response::from(
            rebuilt.body(body).expect("a valid response"),
        ))
    }
}

#[test]
fn a_wrong_type_or_an_undocumented_status_breaks_the_contract() {
    let credits = moncreneau::routes::credits::json::Credits {
        available_credits: 1,
        consumed_credits: 0,
        refunded_credits: 0,
        livemode: false,
        low_balance_threshold: 5,
    };
    let good = &serde_json::to_vec(&credits).unwrap();
    assert_eq!(
        check(
            &Method::GET,
            "/api/v1/credits",
            200,
            Some("application/json"),
            good
        ),
        Ok(())
    );
    // A number written as a string: malformed on purpose.
    let mut wrong = serde_json::to_value(&credits).unwrap();
    wrong["availableCredits"] = json!("1");
    assert!(check(
        &Method::GET,
        "/api/v1/credits",
        200,
        Some("application/json"),
        &serde_json::to_vec(&wrong).unwrap()
    )
    .is_err());
    assert!(check(
        &Method::GET,
        "/api/v1/credits",
        418,
        Some("application/json"),
        good
    )
    .is_err());
    assert!(check(
        &Method::GET,
        "/api/v1/credits",
        200,
        Some("text/plain"),
        good
    )
    .is_err());
    assert_eq!(
        template_of("/api/v1/webhooks/wh_1/rotate-secret"),
        Some("/api/v1/webhooks/{id}/rotate-secret")
    );
    assert_eq!(
        template_of("/api/v1/appointments/12"),
        Some("/api/v1/appointments/{id}")
    );
}
