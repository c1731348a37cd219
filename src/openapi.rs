//! The contract document: `openapi.json` is generated, never edited by hand. It is the
//! hand-written base (`openapi/base.json`: info, servers, tags, security schemes, the shared
//! error components, and the keyless operations around the API: health, readiness, metrics and
//! docs) with the operations, schemas and webhooks that aide derives from the typed routes and
//! events laid over it.
//!
//! Regenerate the committed file with `cargo run -- openapi > openapi.json`; a unit test fails
//! while the committed file differs from what the code generates.

use aide::openapi::{Link, LinkOperation, OpenApi, Operation, ReferenceOr, StatusCode};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::JsonSchema;

use crate::events::{
    envelope_schema, CreditsDepletedEvent, CreditsLowEvent, APPOINTMENT_CANCELLED,
    APPOINTMENT_CREATED, APPOINTMENT_NO_SHOW, APPOINTMENT_UPDATED, APPOINTMENT_VALIDATED,
    CREDITS_DEPLETED, CREDITS_LOW, WEBHOOK_TEST,
};
use crate::routes;
use crate::routes::appointments::json::{
    AppointmentCancelledEvent, AppointmentCreatedEvent, AppointmentNoShowEvent,
    AppointmentUpdatedEvent, AppointmentValidatedEvent,
};
use crate::routes::webhooks::json::WebhookTestEvent;

/// The hand-written part of the contract.
pub const BASE: &str = include_str!("../openapi/base.json");

/// Where every route of the contract is served.
const PREFIX: &str = "/api/v1";

/// The whole document, as committed: pretty-printed with two spaces, keys in the order of the
/// base and of aide's types, a final newline.
pub fn generate() -> anyhow::Result<String> {
    let mut document: Json = serde_json::from_str(BASE)?;
    let generated = Json::of(&documented())?;
    if let Some(paths) = generated.get("paths") {
        let target = document.entry("paths");
        for (path, item) in paths.entries() {
            let target = target.entry(&format!("{PREFIX}{path}"));
            for (method, operation) in item.entries() {
                let mut operation = operation.clone();
                operation.open_security();
                target.insert(method, operation);
            }
        }
    }
    let target = document.entry("components").entry("schemas");
    if let Some(schemas) = generated.get("components").and_then(|c| c.get("schemas")) {
        for (name, schema) in schemas.entries() {
            target.insert(name, schema.clone());
        }
    }
    for (name, schema) in event_schemas() {
        target.insert(&name, Json::of(&schema)?);
    }
    let schemas = target.clone();
    document.insert_before("webhooks", webhooks(&schemas), "components");
    Ok(serde_json::to_string_pretty(&document)? + "\n")
}

/// The schemas of the event payloads described in code, which no operation refers to (the
/// `webhooks` of the base do), with those they refer to.
fn event_schemas() -> serde_json::Map<String, serde_json::Value> {
    // The settings aide gives its own generator, so these read like the operations' schemas.
    let mut generator = SchemaGenerator::new(SchemaSettings::draft07().with(|settings| {
        settings.inline_subschemas = false;
        settings.definitions_path = "#/components/schemas/".into();
    }));
    for (_, _, add) in event_types() {
        let _ = add(&mut generator);
    }
    let mut definitions = generator.take_definitions(true);
    let example = AppointmentCreatedEvent::example();
    definitions.insert("Event".to_owned(), envelope_schema(&example).into());
    definitions
}

/// Adds the schema of a type to a generator, by reference.
type AddSchema = fn(&mut SchemaGenerator) -> schemars::Schema;

/// Every event type a webhook receives, with the name of its schema and how to add it.
fn event_types() -> [(&'static str, String, AddSchema); 8] {
    fn entry<T: JsonSchema>(kind: &'static str) -> (&'static str, String, AddSchema) {
        (kind, T::schema_name().into_owned(), |generator| {
            generator.subschema_for::<T>()
        })
    }
    [
        entry::<AppointmentCreatedEvent>(APPOINTMENT_CREATED),
        entry::<AppointmentUpdatedEvent>(APPOINTMENT_UPDATED),
        entry::<AppointmentCancelledEvent>(APPOINTMENT_CANCELLED),
        entry::<AppointmentValidatedEvent>(APPOINTMENT_VALIDATED),
        entry::<AppointmentNoShowEvent>(APPOINTMENT_NO_SHOW),
        entry::<CreditsLowEvent>(CREDITS_LOW),
        entry::<CreditsDepletedEvent>(CREDITS_DEPLETED),
        entry::<WebhookTestEvent>(WEBHOOK_TEST),
    ]
}

/// What every delivery does, whatever its type (the second part of each webhook's description).
const DELIVERY: &str = r#"- **Request.** `POST` of the event body to the webhook `url`, `Content-Type: application/json`, `User-Agent: Moncreneau-Webhooks/<server version>`, one timeout, MONCRENEAU_WEBHOOK_TIMEOUT_MS (default 10 s), for the whole attempt: connecting, the answer's status and headers, and reading its body. Redirects are not followed (a 3xx is a failure).
- **Body bytes.** Laid out like Python's `json.dumps` with default arguments: `", "` and `": "` separators, non-ASCII characters escaped as `\uXXXX` (UTF-16 surrogate pairs beyond the BMP), so the official SDK helper, which re-serializes the parsed body, computes the same bytes and verifies. Verifying over the raw body is always safe.
- **Signatures.** `X-Moncreneau-Signature: sha256=<hex>` and `X-Webhook-Signature: <hex>`: HMAC-SHA256 of the raw body keyed with the whole secret string (`whsec_…` included), lower-case hex. `webhook-id`, `webhook-timestamp` and `webhook-signature` follow Standard Webhooks: `webhook-signature` is a space-separated list of `v1,<base64>` entries, each the HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` keyed with the base64-decoded bytes after `whsec_`, one per live secret. During a secret rotation (24 hours) `X-Moncreneau-Signature-Previous` and `X-Webhook-Signature-Previous` carry the same signatures made with the previous secret, and `webhook-signature` has two entries. Compare in constant time; reject stale `webhook-timestamp` values (Standard Webhooks libraries allow 5 minutes).
- **Answer.** The status decides, once the answer is read: at most the first 4 KiB of its body are read and none of it is stored, so a short body (or none) is best. Any 2xx read within the timeout: delivered; a 2xx whose body (up to 4 KiB) has not arrived by then counts as a timeout (`timed out reading the answer`). 410 Gone: the webhook is disabled (`active: false`, `disabledReason`), the delivery ends FAILED and queued deliveries of the webhook end FAILED without being sent. Anything else, a timeout or a connection failure: retried on MONCRENEAU_WEBHOOK_RETRY_SCHEDULE (default 5s, 1m, 5m, 30m, 2h, 6h, 12h, 24h after the 1st, 2nd, … failure), each delay with ±10 % random jitter; when the schedule is spent the delivery ends FAILED. A webhook failing for 3 days without a single success is disabled. Re-enable it with `PUT /webhooks/{id}` (`active: true`), resend with `POST /webhooks/{id}/deliveries/{delivery_id}/retry`, catch up with `GET /events`.
- **Receivers.** `https` only, and never an address that resolves to a loopback, private, link-local, multicast, unspecified or otherwise internal or special-purpose range, checked at registration and again at each delivery after DNS resolution (the attempt fails otherwise), unless the operator sets MONCRENEAU_WEBHOOK_ALLOW_PRIVATE=true. An IPv6 address that carries an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, SIIT `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`, Teredo `2001::/32` by its server and its client) is judged by that IPv4; any other IPv6 address must be global unicast (`2000::/3`, documentation, benchmarking and ORCHID blocks excluded).
- **At least once.** An event may arrive more than once (retries, a worker lost mid-attempt, manual retries) and deliveries may overlap or arrive out of order: deduplicate on the event `id` (= `webhook-id`, the same on every attempt), and drop appointment events whose `sequence` is not above the last one processed for that appointment. Answer 2xx fast and process afterwards."#;

/// The document's `webhooks`: one operation per event type, receiving its schema (from
/// `schemas`, the document's components), with the delivery's headers and answers.
fn webhooks(schemas: &Json) -> Json {
    let text = |value: &str| Json::String(value.to_owned());
    let refer = |path: &str| Json::Object(vec![("$ref".to_owned(), text(path))]);
    let object = |entries: Vec<(&str, Json)>| {
        Json::Object(
            entries
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect(),
        )
    };
    let headers = [
        "WebhookSignatureHeader",
        "WebhookSignatureHexHeader",
        "WebhookPreviousSignatureHeader",
        "WebhookPreviousSignatureHexHeader",
        "StandardWebhookIdHeader",
        "StandardWebhookTimestampHeader",
        "StandardWebhookSignatureHeader",
        "WebhookUserAgentHeader",
    ];
    let mut entries = Vec::new();
    for (kind, name, _) in event_types() {
        let schema = schemas.get(&name);
        // The schema's description: its first sentence is the summary.
        let sentence = match schema.and_then(|schema| schema.get("description")) {
            Some(Json::String(description)) => description.clone(),
            _ => String::new(),
        };
        let summary =
            sentence
                .split(". ")
                .next()
                .unwrap_or_default()
                .replacen(&format!("`{kind}`"), kind, 1);
        let example = match schema.and_then(|schema| schema.get("examples")) {
            Some(Json::Array(examples)) => examples.first().cloned().unwrap_or(Json::Null),
            _ => Json::Null,
        };
        let operation_id: String = kind
            .split(['.', '_'])
            .map(|word| {
                let mut letters = word.chars();
                letters.next().map_or_else(String::new, |first| {
                    first.to_uppercase().chain(letters).collect()
                })
            })
            .collect();
        let mut parameters = vec![object(vec![
            ("name", text("X-Moncreneau-Event")),
            ("in", text("header")),
            ("required", Json::Bool(true)),
            ("description", text("The event type.")),
            ("schema", object(vec![("const", text(kind))])),
            ("example", text(kind)),
        ])];
        parameters.extend(
            headers
                .iter()
                .map(|header| refer(&format!("#/components/parameters/{header}"))),
        );
        let body = object(vec![
            ("required", Json::Bool(true)),
            (
                "description",
                text("The event, its bytes laid out like Python's `json.dumps`."),
            ),
            (
                "content",
                object(vec![(
                    "application/json",
                    object(vec![
                        ("schema", refer(&format!("#/components/schemas/{name}"))),
                        (
                            "examples",
                            object(vec![(
                                &kind.replace('.', "_"),
                                object(vec![("value", example)]),
                            )]),
                        ),
                    ]),
                )]),
            ),
        ]);
        let responses = object(vec![
            (
                "2XX",
                object(vec![("description", text("Delivered (the response body is ignored)."))]),
            ),
            (
                "410",
                object(vec![(
                    "description",
                    text("Gone: the webhook is disabled and the delivery is not retried."),
                )]),
            ),
            (
                "default",
                object(vec![(
                    "description",
                    text("Any other status, a redirect, a timeout or a connection failure: retried on the schedule with ±10 % jitter (FAILED once it is spent; the webhook is disabled after 3 days without success)."),
                )]),
            ),
        ]);
        let operation = object(vec![
            ("operationId", Json::String(format!("on{operation_id}"))),
            ("summary", Json::String(summary)),
            (
                "description",
                Json::String(format!(
                    "{sentence}\n\nHow each delivery is made:\n\n{DELIVERY}"
                )),
            ),
            ("tags", Json::Array(vec![text("webhooks")])),
            ("security", Json::Array(Vec::new())),
            ("parameters", Json::Array(parameters)),
            ("requestBody", body),
            ("responses", responses),
        ]);
        entries.push((kind.to_owned(), object(vec![("post", operation)])));
    }
    Json::Object(entries)
}

/// The operations and schemas of the routes described in code, with what every one of them
/// shares added: the request id on each success (and the rate-limit headers where a key is
/// counted), and the 500 and 503 any request may meet.
pub fn documented() -> OpenApi {
    // Each handler's responses are declared in its docs (with their status, such as 201):
    // none is guessed from its return type.
    aide::generate::infer_responses(false);
    let mut api = OpenApi::default();
    let _ = routes::documented().finish_api(&mut api);
    for (_, item) in api
        .paths
        .iter_mut()
        .flat_map(|paths| paths.paths.iter_mut())
    {
        let ReferenceOr::Item(item) = item else {
            continue;
        };
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            describe_scope(operation);
            // Only API keys are counted (the operator's token is not rate-limited).
            let counted = operation
                .security
                .iter()
                .any(|requirement| requirement.contains_key("apiKeyHeader"));
            let responses = operation.responses.get_or_insert_with(Default::default);
            for (status, response) in responses.responses.iter_mut() {
                let (StatusCode::Code(200..=299), ReferenceOr::Item(response)) = (status, response)
                else {
                    continue;
                };
                let mut headers = vec!["X-Request-Id"];
                if counted {
                    headers.extend([
                        "X-RateLimit-Limit",
                        "X-RateLimit-Remaining",
                        "X-RateLimit-Reset",
                    ]);
                }
                for name in headers {
                    response.headers.insert(
                        name.to_owned(),
                        ReferenceOr::ref_(&format!("#/components/headers/{name}")),
                    );
                }
            }
            for (code, name) in [(500, "InternalError"), (503, "ServiceUnavailable")] {
                responses.responses.insert(
                    StatusCode::Code(code),
                    ReferenceOr::ref_(&format!("#/components/responses/{name}")),
                );
            }
            responses.responses.sort_keys();
        }
    }
    api
}

/// The extension that marks an operation reached without credentials until [`generate`] writes
/// it as `"security": []`: aide leaves an empty `security` out, which would put the document's
/// key requirement back on the operation.
const NO_CREDENTIALS: &str = "x-moncreneau-no-credentials";

/// Marks an operation as reached without any credential (`"security": []` in the spec).
pub fn without_credentials(operation: &mut Operation) {
    operation.security.clear();
    operation
        .extensions
        .insert(NO_CREDENTIALS.to_owned(), serde_json::Value::Bool(true));
}

/// The sentence that opens the description of an operation requiring `scope`.
fn scope_sentence(scope: &str) -> String {
    if scope == "api:admin" {
        "Scope `api:admin`.".to_owned()
    } else {
        format!("Scope `{scope}` (or `api:admin`).")
    }
}

/// Opens the description of an operation with the scope its `Authorized<S>` extractor states
/// (`x-required-scope`): the only place a route's scope is written.
fn describe_scope(operation: &mut Operation) {
    let Some(scope) = operation
        .extensions
        .get("x-required-scope")
        .and_then(|scope| scope.as_str())
    else {
        return;
    };
    let sentence = scope_sentence(scope);
    operation.description = match operation.description.take() {
        Some(text) => Some(format!("{sentence} {text}")),
        None => Some(sentence),
    };
}

/// Adds the response of status `code` as a reference to `components/responses/{name}`.
pub fn refer_response(operation: &mut Operation, code: u16, name: &str) {
    operation
        .responses
        .get_or_insert_with(Default::default)
        .responses
        .insert(
            StatusCode::Code(code),
            ReferenceOr::ref_(&format!("#/components/responses/{name}")),
        );
}

/// A link to the operation `operation_id`, filling its `parameters` (name, runtime expression
/// such as `$response.body#/id`) and, when given, its request body.
pub fn link(
    operation_id: &str,
    parameters: &[(&str, &str)],
    request_body: Option<serde_json::Value>,
) -> ReferenceOr<Link> {
    ReferenceOr::Item(Link {
        description: None,
        operation: LinkOperation::OperationId(operation_id.to_owned()),
        request_body,
        parameters: parameters
            .iter()
            .map(|(name, expression)| ((*name).to_owned(), (*expression).into()))
            .collect(),
        server: None,
        extensions: Default::default(),
    })
}

/// Adds the parameter `components/parameters/{name}` by reference.
pub fn refer_parameter(operation: &mut Operation, name: &str) {
    operation.parameters.push(ReferenceOr::ref_(&format!(
        "#/components/parameters/{name}"
    )));
}

/// A JSON value whose objects keep their keys in the order read (serde_json's own `Value`
/// sorts them, which would reorder the whole document).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// A value as serde writes it, in its fields' order.
    fn of<T: Serialize>(value: &T) -> serde_json::Result<Self> {
        serde_json::from_str(&serde_json::to_string(value)?)
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn entries(&self) -> &[(String, Json)] {
        match self {
            Json::Object(entries) => entries,
            _ => &[],
        }
    }

    /// The value at `key`, an empty object appended first when absent (or when this is not an
    /// object, which then becomes one).
    fn entry(&mut self, key: &str) -> &mut Json {
        if !matches!(self, Json::Object(_)) {
            *self = Json::Object(Vec::new());
        }
        let Json::Object(entries) = self else {
            unreachable!("made an object above")
        };
        let index = match entries.iter().position(|(k, _)| k == key) {
            Some(index) => index,
            None => {
                entries.push((key.to_owned(), Json::Object(Vec::new())));
                entries.len() - 1
            }
        };
        &mut entries[index].1
    }

    /// An operation marked by [`without_credentials`] gets `"security": []` where the mark was.
    fn open_security(&mut self) {
        if let Json::Object(entries) = self {
            for (key, value) in entries.iter_mut() {
                if key == NO_CREDENTIALS {
                    *key = "security".to_owned();
                    *value = Json::Array(Vec::new());
                }
            }
        }
    }

    /// Sets `key`, in place when present, otherwise just before `before` (appended when that is
    /// absent too).
    fn insert_before(&mut self, key: &str, value: Json, before: &str) {
        if self.get(key).is_none() {
            if let Json::Object(entries) = self {
                if let Some(index) = entries.iter().position(|(k, _)| k == before) {
                    entries.insert(index, (key.to_owned(), value));
                    return;
                }
            }
        }
        self.insert(key, value);
    }

    /// Sets `key`, in place when present, appended otherwise.
    fn insert(&mut self, key: &str, value: Json) {
        *self.entry(key) = value;
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(value) => serializer.serialize_bool(*value),
            Json::Number(value) => value.serialize(serializer),
            Json::String(value) => serializer.serialize_str(value),
            Json::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Json, E> {
        Ok(Json::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Json, E> {
        Ok(Json::Number(value.into()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Json, E> {
        Ok(Json::Number(value.into()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(value)
            .map(Json::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Json, E> {
        Ok(Json::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Json, E> {
        Ok(Json::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry()? {
            entries.push((key, value));
        }
        Ok(Json::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed `openapi.json` is what the code generates (compared as JSON values, so
    /// only a difference of content fails).
    #[test]
    fn the_committed_spec_is_the_generated_one() {
        let generated: serde_json::Value =
            serde_json::from_str(&generate().expect("the spec generates")).unwrap();
        let committed: serde_json::Value =
            serde_json::from_str(include_str!("../openapi.json")).unwrap();
        assert!(
            generated == committed,
            "openapi.json differs from what the code generates: \
             run `cargo run -- openapi > openapi.json` and commit the result"
        );
    }

    /// A scope is stated once, by the extractor: each description opens with it and no
    /// handler's docs state one of their own.
    #[test]
    fn each_description_states_the_required_scope_once() {
        let api = serde_json::to_value(documented()).unwrap();
        let mut checked = 0;
        for (path, item) in api["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let Some(scope) = operation["x-required-scope"].as_str() else {
                    continue;
                };
                let description = operation["description"].as_str().unwrap_or_default();
                let sentence = scope_sentence(scope);
                assert!(
                    description.starts_with(&sentence),
                    "{method} {path} requires {scope} but its description reads {description:?}"
                );
                assert_eq!(
                    description.matches("Scope `").count(),
                    1,
                    "{method} {path} states a scope of its own: {description:?}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 30, "only {checked} operations require a scope");
    }

    #[test]
    fn the_base_alone_is_written_back_byte_for_byte() {
        let base: Json = serde_json::from_str(BASE).unwrap();
        assert_eq!(serde_json::to_string_pretty(&base).unwrap() + "\n", BASE);
    }
}
