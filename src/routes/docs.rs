//! `GET /openapi.json` (the contract, embedded at build time) and `GET /docs`, a human API
//! reference rendered on the server from that same document: plain HTML and CSS, no script and no
//! asset from elsewhere, so it works offline.
//!
//! Both operations stay written in `openapi/base.json`: they are served at the root and under
//! `/api/v1`, and answer the document itself and HTML, shapes no Rust type describes better.

use std::fmt::Write;
use std::sync::LazyLock;

use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use serde_json::{Map, Value};

use crate::state::AppState;

/// The contract, as committed at the repository root.
pub const SPEC: &str = include_str!("../../openapi.json");

static PAGE: LazyLock<String> = LazyLock::new(|| match serde_json::from_str::<Value>(SPEC) {
    Ok(spec) => render(&spec),
    Err(error) => format!(
        "<!doctype html><p>openapi.json is not valid JSON: {}</p>",
        escape(&error.to_string())
    ),
});

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(spec))
        .route("/docs", get(docs))
}

/// The OpenAPI 3.1 document of this server.
async fn spec() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], SPEC)
}

/// The API reference page.
async fn docs() -> Html<&'static str> {
    Html(PAGE.as_str())
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `**bold**` and `` `code` `` of the spec's descriptions, the rest escaped.
fn prose(text: &str) -> String {
    let mut out = String::new();
    for (index, part) in escape(text).split('`').enumerate() {
        if index % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            for (bold, piece) in part.split("**").enumerate() {
                if bold % 2 == 1 {
                    let _ = write!(out, "<strong>{piece}</strong>");
                } else {
                    out.push_str(piece);
                }
            }
        }
    }
    out.replace('\n', "<br>")
}

fn anchor(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(spec: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => spec
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or(value),
        None => value,
    }
}

/// A short type label: `Appointment` (linked), `string (date-time)`, `array of Slot`…
fn type_label(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("<a href=\"#schema-{}\">{}</a>", anchor(name), escape(name));
    }
    if let Some(options) = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Value::as_array)
    {
        return options
            .iter()
            .map(type_label)
            .collect::<Vec<_>>()
            .join(" | ");
    }
    let kind = match schema.get("type") {
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        Some(Value::String(kind)) => kind.clone(),
        _ => "any".to_owned(),
    };
    let mut label = if kind.starts_with("array") {
        let items = schema.get("items").map(type_label).unwrap_or_default();
        kind.replacen("array", &format!("array of {items}"), 1)
    } else {
        escape(&kind)
    };
    if let Some(format) = schema.get("format").and_then(Value::as_str) {
        let _ = write!(label, " ({})", escape(format));
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values.iter().map(|v| escape(&v.to_string())).collect();
        let _ = write!(label, ": {}", values.join(", "));
    }
    label
}

fn properties_table(spec: &Value, schema: &Value, out: &mut String) {
    let schema = resolve(spec, schema);
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        let _ = write!(out, "<p class=\"type\">{}</p>", type_label(schema));
        return;
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push_str("<table><tr><th>field</th><th>type</th><th>description</th></tr>");
    for (name, property) in properties {
        let description = property
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mark = if required.contains(&name.as_str()) {
            " <span class=\"req\">required</span>"
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr><td><code>{}</code>{mark}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            type_label(property),
            prose(description)
        );
    }
    out.push_str("</table>");
}

fn content_schema(value: &Value) -> Option<&Value> {
    value
        .get("content")?
        .as_object()?
        .values()
        .next()?
        .get("schema")
}

fn operation(spec: &Value, method: &str, path: &str, op: &Value, out: &mut String) {
    let id = op
        .get("operationId")
        .and_then(Value::as_str)
        .unwrap_or(path);
    let summary = op
        .get("summary")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let _ = write!(
        out,
        "<section class=\"op\" id=\"op-{}\"><h3><span class=\"method {method}\">{}</span> <code>{}</code></h3><p class=\"summary\">{}</p>",
        anchor(id),
        method.to_uppercase(),
        escape(path),
        prose(summary)
    );
    if let Some(description) = op.get("description").and_then(Value::as_str) {
        let _ = write!(out, "<p>{}</p>", prose(description));
    }
    if let Some(scope) = op.get("x-required-scope").and_then(Value::as_str) {
        let _ = write!(out, "<p>Scope: <code>{}</code></p>", escape(scope));
    }
    if let Some(parameters) = op.get("parameters").and_then(Value::as_array) {
        out.push_str("<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>description</th></tr>");
        for parameter in parameters.iter().map(|p| resolve(spec, p)) {
            let name = parameter
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let place = parameter
                .get("in")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let required = parameter
                .get("required")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let kind = parameter.get("schema").map(type_label).unwrap_or_default();
            let description = parameter
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let mark = if required {
                " <span class=\"req\">required</span>"
            } else {
                ""
            };
            let _ = write!(
                out,
                "<tr><td><code>{}</code>{mark}</td><td>{}</td><td>{kind}</td><td>{}</td></tr>",
                escape(name),
                escape(place),
                prose(description)
            );
        }
        out.push_str("</table>");
    }
    if let Some(body) = op.get("requestBody").map(|b| resolve(spec, b)) {
        out.push_str("<h4>Request body</h4>");
        if let Some(schema) = content_schema(body) {
            properties_table(spec, schema, out);
        }
    }
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        out.push_str(
            "<h4>Responses</h4><table><tr><th>status</th><th>description</th><th>body</th></tr>",
        );
        for (status, response) in responses {
            let response = resolve(spec, response);
            let description = response
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let body = content_schema(response).map(type_label).unwrap_or_default();
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{body}</td></tr>",
                escape(status),
                prose(description)
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</section>");
}

fn render(spec: &Value) -> String {
    let empty = Map::new();
    let info = &spec["info"];
    let title = info["title"].as_str().unwrap_or("API");
    let paths = spec["paths"].as_object().unwrap_or(&empty);
    let tags: Vec<(String, String)> = spec["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .map(|t| {
                    (
                        t["name"].as_str().unwrap_or_default().to_owned(),
                        t["description"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let tag_of = |op: &Value| op["tags"][0].as_str().unwrap_or("other").to_owned();

    let mut nav = String::new();
    let mut body = String::new();
    for (tag, description) in &tags {
        let _ = write!(
            nav,
            "<li><a href=\"#tag-{}\">{}</a><ul>",
            anchor(tag),
            escape(tag)
        );
        let _ = write!(
            body,
            "<h2 id=\"tag-{}\">{}</h2><p>{}</p>",
            anchor(tag),
            escape(tag),
            prose(description)
        );
        for (path, item) in paths {
            for method in METHODS {
                let Some(op) = item.get(method).filter(|op| tag_of(op) == *tag) else {
                    continue;
                };
                let id = op
                    .get("operationId")
                    .and_then(Value::as_str)
                    .unwrap_or(path);
                let _ = write!(
                    nav,
                    "<li><a href=\"#op-{}\">{} {}</a></li>",
                    anchor(id),
                    method.to_uppercase(),
                    escape(path)
                );
                operation(spec, method, path, op, &mut body);
            }
        }
        nav.push_str("</ul></li>");
    }
    if let Some(webhooks) = spec["webhooks"].as_object() {
        nav.push_str("<li><a href=\"#webhook-events\">webhook events</a></li>");
        body.push_str("<h2 id=\"webhook-events\">Webhook events</h2>");
        for (name, item) in webhooks {
            if let Some(op) = item.get("post") {
                operation(spec, "post", &format!("event {name}"), op, &mut body);
            }
        }
    }
    body.push_str("<h2 id=\"schemas\">Schemas</h2>");
    nav.push_str("<li><a href=\"#schemas\">schemas</a></li>");
    if let Some(schemas) = spec["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            let _ = write!(
                body,
                "<section class=\"schema\" id=\"schema-{}\"><h3>{}</h3>",
                anchor(name),
                escape(name)
            );
            if let Some(description) = schema.get("description").and_then(Value::as_str) {
                let _ = write!(body, "<p>{}</p>", prose(description));
            }
            properties_table(spec, schema, &mut body);
            body.push_str("</section>");
        }
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} API reference</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}</style></head>\
         <body><nav><h1>{title}</h1><p>v{version} · <a href=\"/openapi.json\">openapi.json</a></p><ul>{nav}</ul></nav>\
         <main><h1>{title} API reference</h1><p>{description}</p>{body}</main></body></html>",
        title = escape(title),
        version = escape(info["version"].as_str().unwrap_or_default()),
        description = prose(info["description"].as_str().unwrap_or_default()),
    )
}

const STYLE: &str = "body{margin:0;font:15px/1.5 system-ui,sans-serif;color:#1d2330;display:flex}\
nav{width:300px;overflow-wrap:anywhere;height:100vh;overflow:auto;position:sticky;top:0;background:#f4f6f9;padding:16px;box-sizing:border-box;font-size:13px}\
nav ul{list-style:none;padding-left:10px}nav a{color:#24408e;text-decoration:none}\
main{flex:1;padding:24px 40px;max-width:1100px}h2{border-bottom:2px solid #dde3ee;padding-bottom:4px;margin-top:40px}\
.op{border:1px solid #dde3ee;border-radius:6px;padding:4px 16px;margin:16px 0}\
.method{display:inline-block;min-width:64px;text-align:center;border-radius:4px;color:#fff;font-size:13px;padding:2px 6px}\
.get{background:#2f7d32}.post{background:#24408e}.put{background:#8a5a00}.patch{background:#6a3d9a}.delete{background:#b3261e}\
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:14px}td,th{border:1px solid #dde3ee;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f4f6f9}code{background:#eef1f6;padding:0 3px;border-radius:3px}.req{color:#b3261e;font-size:12px}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_lists_every_operation_of_the_spec() {
        let spec: Value = serde_json::from_str(SPEC).unwrap();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for method in METHODS {
                if item.get(method).is_some() {
                    assert!(
                        PAGE.contains(&format!("<code>{}</code>", escape(path))),
                        "{method} {path}"
                    );
                }
            }
        }
        assert!(!PAGE.contains("<script"), "no script");
        assert!(
            !PAGE.contains(" src=") && !PAGE.contains("<link"),
            "no asset loaded from anywhere"
        );
    }

    #[test]
    fn descriptions_are_escaped() {
        assert_eq!(
            prose("a <b> `x<y>` **z**"),
            "a &lt;b&gt; <code>x&lt;y&gt;</code> <strong>z</strong>"
        );
    }
}
