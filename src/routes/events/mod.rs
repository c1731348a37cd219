//! `/events` (ext, `webhooks:manage`): the events of the last 30 days, so that a receiver that
//! was down can catch up.

pub mod json;

use aide::axum::routing::get_with;
use aide::axum::ApiRouter;
use aide::transform::{TransformOperation, TransformResponse};
use axum::extract::State;
use axum::Json;

use self::json::{Event, EventId, EventPage, EventsQuery};
use crate::auth::{scope, Authorized};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{ApiPath, ApiQuery};
use crate::openapi::{link, refer_response};
use crate::state::AppState;
use crate::store::events as store;

pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route("/events", get_with(list, list_docs))
        .api_route("/events/{id}", get_with(retrieve, retrieve_docs))
}

/// Events newest first, optionally of one type; each exactly as delivered.
async fn list(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> ApiResult<Json<EventPage>> {
    let request = query.parse()?;
    let kind = request.kind.as_deref();
    let total = store::count(&state.pool, auth.tenant, kind).await?;
    let payloads =
        store::page(&state.pool, auth.tenant, kind, &request.page.limit_clause()).await?;
    Ok(Json(EventPage::new(
        request.page,
        payloads.into_iter().map(Event).collect(),
        total,
    )))
}

fn list_docs(op: TransformOperation) -> TransformOperation {
    op.id("listEvents")
        .summary("List events")
        .description("The events of the caller's organization and mode of the last 30 days, so that a receiver that was down can catch up (deduplicate on `id`, order appointment events by `sequence`). `webhook.test` events are never stored, so they are never listed.")
        .tag("events")
        .response_with::<200, Json<EventPage>, _>(|r| {
            link_to_first(r.description(
                "A page of events of the last 30 days, newest first, each exactly as delivered (items: Event).",
            ))
        })
}

/// The first listed event's id leads to that event.
fn link_to_first(mut response: TransformResponse<EventPage>) -> TransformResponse<EventPage> {
    response.inner().links.insert(
        "GetEvent".to_owned(),
        link("getEvent", &[("id", "$response.body#/content/0/id")], None),
    );
    response
}

/// One event of the last 30 days.
async fn retrieve(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<EventId>,
) -> ApiResult<Json<Event>> {
    store::find(&state.pool, auth.tenant, &id.0)
        .await?
        .map(|payload| Json(Event(payload)))
        .ok_or_else(|| ApiError::not_found(ErrorCode::NotFound, "Event"))
}

fn retrieve_docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "EventNotFound");
    op.id("getEvent")
        .summary("Get an event")
        .description("One event of the last 30 days; 404 NOT_FOUND for an older one, another organization's or mode's, or an unknown id.")
        .tag("events")
        .response_with::<200, Json<Event>, _>(|r| {
            r.description("The event, exactly as delivered.")
                .example(Event::example())
        })
}
