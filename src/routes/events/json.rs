//! The shapes of `/events` on the wire. An event is sent exactly as it was delivered to the
//! webhooks: its stored payload, untouched. Its schema (`Event`, with `EventType`) stays in
//! `openapi/base.json`, where the webhook payloads of the contract are described on top of it;
//! `EventPage`, the `type` filter and the `EventId` path parameter are derived from these types.

use std::borrow::Cow;

use aide::generate::GenContext;
use aide::openapi::{
    Operation, Parameter, ParameterData, ParameterSchemaOrContent, QueryStyle, ReferenceOr,
    SchemaObject,
};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{check_fields, ApiResult, ErrorCode, FieldError};
use crate::extract::{PathParameters, QueryParameters};
use crate::openapi::refer_parameter;
use crate::routes::pagination::{Listed, Page, PageQuery, PageRequest};
use crate::webhooks::EVENT_TYPES;

/// The query of `GET /events`.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    r#type: Option<String>,
    page: Option<i64>,
    size: Option<i64>,
}

/// A checked `GET /events` query.
pub struct EventsRequest {
    /// Only events of this type (one of `EVENT_TYPES`).
    pub kind: Option<String>,
    pub page: PageRequest,
}

impl EventsQuery {
    /// The filter and page, or a 400 naming every wrong parameter.
    pub fn parse(self) -> ApiResult<EventsRequest> {
        let mut errors = Vec::new();
        let page = PageQuery {
            page: self.page,
            size: self.size,
        }
        .check(&mut errors);
        if let Some(kind) = &self.r#type {
            if !EVENT_TYPES.contains(&kind.as_str()) {
                errors.push(FieldError::new(
                    "type",
                    ErrorCode::InvalidRequest,
                    "unknown event type",
                ));
            }
        }
        check_fields(errors)?;
        Ok(EventsRequest {
            kind: self.r#type,
            page,
        })
    }
}

/// `type` (a reference to the contract's `EventType`), then the shared `page` and `size`.
impl QueryParameters for EventsQuery {
    fn document(_: &mut GenContext, operation: &mut Operation) {
        operation
            .parameters
            .push(ReferenceOr::Item(Parameter::Query {
                parameter_data: ParameterData {
                    name: "type".to_owned(),
                    description: Some(
                        "Only events of this type; an unknown type: 400 INVALID_REQUEST."
                            .to_owned(),
                    ),
                    required: false,
                    deprecated: None,
                    format: ParameterSchemaOrContent::Schema(SchemaObject {
                        json_schema: Schema::new_ref("#/components/schemas/EventType".to_owned()),
                        external_docs: None,
                        example: None,
                    }),
                    example: Some("appointment.created".into()),
                    examples: Default::default(),
                    explode: None,
                    extensions: Default::default(),
                },
                allow_reserved: false,
                style: QueryStyle::Form,
                allow_empty_value: None,
            }));
        refer_parameter(operation, "Page");
        refer_parameter(operation, "Size");
    }
}

/// The id of an event (`evt_…`), as given in the path.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub String);

/// The contract's shared `EventId` parameter.
impl PathParameters for EventId {
    fn document(_: &mut GenContext, operation: &mut Operation) {
        refer_parameter(operation, "EventId");
    }
}

/// An event, exactly as delivered to webhooks: the stored payload, sent as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Event(pub Value);

/// A reference to the contract's `Event` (generated from `events::Envelope`, see
/// `events::envelope_schema`), never a schema of its own: every event type's schema extends it.
impl JsonSchema for Event {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Event".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        Schema::new_ref("#/components/schemas/Event".to_owned())
    }
}

/// The contract's example event: an `appointment.created`, as delivered.
const EXAMPLE: &str = r#"{
  "id": "evt_Qw3Er5Ty7Ui9Op1As3Df5Gh7",
  "type": "appointment.created",
  "created": "2026-01-21T14:30:00Z",
  "livemode": false,
  "sequence": 1,
  "data": {
    "object": {
      "id": 12345,
      "departmentId": 5,
      "department": {"id": 5, "name": "Passport Service"},
      "workerId": null,
      "dateTime": "2026-02-15T10:00:00",
      "endDateTime": "2026-02-15T10:15:00",
      "timezone": "Africa/Conakry",
      "startsAt": "2026-02-15T10:00:00Z",
      "endsAt": "2026-02-15T10:15:00Z",
      "status": "CONFIRMED",
      "name": "Jean Dupont",
      "externalUserId": "u-42",
      "phone": "+224621234567",
      "email": "jean@example.gn",
      "notes": "First visit",
      "metadata": {"channel": "web"},
      "qrCode": "http://localhost:8080/api/v1/appointments/12345/qr.svg?token=Q3x9a1b2c3d4e5f6g7h8i9j0k1l2m3n4",
      "creditsConsumed": 1,
      "livemode": false,
      "createdAt": "2026-01-21T14:30:00.123Z",
      "updatedAt": "2026-01-21T14:30:00.123Z",
      "cancelledAt": null,
      "cancelledBy": null,
      "cancelReason": null,
      "creditsUsed": 1
    }
  }
}"#;

impl Event {
    /// The contract's example event (null only if `EXAMPLE` stopped parsing, which the test of
    /// the committed spec would show).
    pub fn example() -> Self {
        Self(serde_json::from_str(EXAMPLE).unwrap_or_default())
    }
}

/// A page of events, newest first.
pub type EventPage = Page<Event>;

impl Listed for Event {
    const PAGE_DESCRIPTION: &'static str = "A page of events, newest first.";
}
