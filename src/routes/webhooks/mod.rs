//! `/webhooks` (`webhooks:manage`): endpoints, their secrets, a test delivery, the attempt log
//! and manual retries.

pub mod json;

use aide::axum::routing::{get_with, post_with};
use aide::axum::ApiRouter;
use aide::transform::{TransformOperation, TransformResponse};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;

use self::json::{
    check_members, DeliveryAttempt, DeliveryAttemptPage, DeliveryId, RetryQueued, Webhook,
    WebhookCreate, WebhookCreated, WebhookDeleted, WebhookId, WebhookList, WebhookRotated,
    WebhookTestEvent, WebhookTestResult, WebhookUpdate,
};
use crate::auth::{scope, Authorized};
use crate::domain::datetime::format_timestamp;
use crate::error::{check_fields, ApiResult, FieldError};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::openapi::{link, refer_response};
use crate::routes::pagination::PageQuery;
use crate::state::AppState;
use crate::store::webhooks::{self as store, NewWebhook};
use crate::webhooks::guard::check_receiver_url;
use crate::webhooks::rules::ROTATION_OVERLAP;
use crate::webhooks::sender::Secrets;
use crate::webhooks::signing::{generate_secret, secret_bytes};

pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/webhooks",
            get_with(list, list_docs).post_with(create, create_docs),
        )
        .api_route(
            "/webhooks/{id}",
            get_with(retrieve, retrieve_docs)
                .put_with(update, update_docs)
                .delete_with(remove, remove_docs),
        )
        .api_route("/webhooks/{id}/test", post_with(test, test_docs))
        .api_route(
            "/webhooks/{id}/rotate-secret",
            post_with(rotate_secret, rotate_secret_docs),
        )
        .api_route(
            "/webhooks/{id}/deliveries",
            get_with(deliveries, deliveries_docs),
        )
        .api_route(
            "/webhooks/{id}/deliveries/{delivery_id}/retry",
            post_with(retry, retry_docs),
        )
}

/// The public form of a stored endpoint, its circuit as the settings read it now.
fn public(state: &AppState, webhook: &store::Webhook) -> Webhook {
    Webhook::new(webhook, state.settings.webhook_circuit(), Utc::now())
}

/// The receiver URL, checked (and normalized) by the address guard; the error goes to `errors`.
async fn check_url(
    state: &AppState,
    url: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match check_receiver_url(url?, state.settings.webhook_allow_private).await {
        Ok(url) => Some(url.to_string()),
        Err(message) => {
            errors.push(FieldError::invalid("url", message));
            None
        }
    }
}

/// Registers an endpoint; the secret is generated unless given, and shown in this answer.
async fn create(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<WebhookCreate>,
) -> ApiResult<(StatusCode, Json<WebhookCreated>)> {
    let mut errors = Vec::new();
    body.refused(&mut errors);
    let secret = match &body.secret {
        Some(secret) if secret_bytes(secret).is_none() => {
            errors.push(FieldError::invalid(
                "secret",
                "must be whsec_ followed by the base64 of 24 to 64 bytes",
            ));
            String::new()
        }
        Some(secret) => secret.clone(),
        None => generate_secret(),
    };
    let url = check_url(&state, body.url.as_deref(), &mut errors).await;
    let (events, description) = check_members(
        body.events.as_deref(),
        body.description.as_deref(),
        &mut errors,
    );
    check_fields(errors)?;
    // With no error, the required members are there.
    let (Some(url), Some(events)) = (url, events) else {
        return Err(crate::error::ApiError::internal(anyhow::anyhow!(
            "a checked webhook lacks its url or events"
        )));
    };
    let new = NewWebhook {
        url,
        events,
        description,
        secret,
    };
    let webhook = store::create(&state.pool, auth.tenant, &new).await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookCreated {
            webhook: public(&state, &webhook),
            secret: webhook.secret,
        }),
    ))
}

fn create_docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 400, "WebhookBadRequest");
    op.id("createWebhook")
        .summary("Create a webhook")
        .description("Registers a receiver for the events of the caller's mode. The URL is checked now (https, not resolving to an internal address) and again, after DNS resolution, at every delivery. Events that happen from now on are delivered as described under `webhooks`; earlier ones can be read from `GET /events`.")
        .tag("webhooks")
        .response_with::<201, Json<WebhookCreated>, _>(|r| {
            links_of_created(
                r.description("Created, active, in the caller's mode; `secret` is shown here (and by rotate-secret) only.")
                    .example(WebhookCreated::example()),
            )
        })
}

/// What the created webhook's id leads to.
fn links_of_created(
    mut response: TransformResponse<WebhookCreated>,
) -> TransformResponse<WebhookCreated> {
    let links = &mut response.inner().links;
    for (name, operation) in [
        ("GetWebhook", "getWebhook"),
        ("UpdateWebhook", "updateWebhook"),
        ("DeleteWebhook", "deleteWebhook"),
        ("TestWebhook", "testWebhook"),
        ("RotateWebhookSecret", "rotateWebhookSecret"),
        ("ListWebhookDeliveries", "listWebhookDeliveries"),
    ] {
        links.insert(
            name.to_owned(),
            link(operation, &[("id", "$response.body#/id")], None),
        );
    }
    response
}

/// The endpoints of the caller's mode, secrets hidden.
async fn list(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
) -> ApiResult<Json<WebhookList>> {
    let webhooks = store::list(&state.pool, auth.tenant).await?;
    Ok(Json(WebhookList {
        data: webhooks.iter().map(|w| public(&state, w)).collect(),
    }))
}

fn list_docs(op: TransformOperation) -> TransformOperation {
    op.id("listWebhooks")
        .summary("List webhooks")
        .tag("webhooks")
        .response_with::<200, Json<WebhookList>, _>(|r| {
            r.description(
                "Every webhook of the caller's organization and mode, oldest first, without secrets.",
            )
            .example(WebhookList {
                data: vec![Webhook::example()],
            })
        })
}

/// One endpoint, secret hidden.
async fn retrieve(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<WebhookId>,
) -> ApiResult<Json<Webhook>> {
    let webhook = store::find(&state.pool, auth.tenant, &id.0).await?;
    Ok(Json(public(&state, &webhook)))
}

fn retrieve_docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "WebhookNotFound");
    op.id("getWebhook")
        .summary("Get a webhook")
        .tag("webhooks")
        .response_with::<200, Json<Webhook>, _>(|r| {
            r.description("The webhook, without its secret.")
                .example(Webhook::example())
        })
}

/// Changes url, events, description or active; re-enabling clears the failure record. The body
/// is checked before the webhook is looked up (400 before 404).
async fn update(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<WebhookId>,
    ApiJson(body): ApiJson<WebhookUpdate>,
) -> ApiResult<Json<Webhook>> {
    let mut errors = Vec::new();
    body.refused(&mut errors);
    let url = check_url(&state, body.url.as_deref(), &mut errors).await;
    let (events, description) = check_members(
        body.events.as_deref(),
        body.description.as_deref(),
        &mut errors,
    );
    check_fields(errors)?;
    let changes = body.changes(url, events, description);
    let webhook = store::update(&state.pool, auth.tenant, &id.0, &changes).await?;
    Ok(Json(public(&state, &webhook)))
}

fn update_docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 400, "WebhookBadRequest");
    refer_response(op.inner_mut(), 404, "WebhookNotFound");
    op.id("updateWebhook")
        .summary("Update a webhook")
        .description("Changes `url`, `events`, `description` or `active`; absent or null members keep their value. `active: true` re-enables a webhook the server disabled (clearing `disabledReason`). The body is checked before the webhook is looked up (400 before 404).")
        .tag("webhooks")
        .response_with::<200, Json<Webhook>, _>(|r| {
            r.description("The webhook after the change, without its secret.")
        })
}

/// Deletes an endpoint and its delivery log.
async fn remove(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<WebhookId>,
) -> ApiResult<Json<WebhookDeleted>> {
    let webhook = store::delete(&state.pool, auth.tenant, &id.0).await?;
    Ok(Json(WebhookDeleted {
        id: webhook.id,
        deleted: true,
    }))
}

fn remove_docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "WebhookNotFound");
    op.id("deleteWebhook")
        .summary("Delete a webhook")
        .tag("webhooks")
        .response_with::<200, Json<WebhookDeleted>, _>(|r| {
            r.description("Deleted, with its pending deliveries and attempt log.")
        })
}

/// Sends a signed `webhook.test` event now and reports how the receiver answered. The event is
/// not stored: its envelope is sent as written, in its fields' order.
async fn test(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<WebhookId>,
) -> ApiResult<Json<WebhookTestResult>> {
    let webhook = store::find(&state.pool, auth.tenant, &id.0).await?;
    let WebhookTestEvent(event) = WebhookTestEvent::new(&webhook.id, webhook.livemode);
    let secrets = Secrets {
        current: &webhook.secret,
        previous: webhook.previous_secret(Utc::now()),
    };
    let outcome = state
        .sender
        .send_event(&webhook.url, &event.id, &event.kind, &event, &secrets)
        .await;
    Ok(Json(WebhookTestResult::new(&outcome)))
}

fn test_docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "WebhookNotFound");
    op.id("testWebhook")
        .summary("Send a test event")
        .description("Sends a signed `webhook.test` event (see `webhooks`) to the webhook now, whatever its subscription and even when inactive, and waits for the answer: MONCRENEAU_WEBHOOK_TIMEOUT_MS bounds the whole attempt, reading the answer's body included, of which at most the first 4 KiB are read and none is returned. The event is not stored, not retried and not logged among the deliveries. No request body (any body is ignored).")
        .tag("webhooks")
        .response_with::<200, Json<WebhookTestResult>, _>(|r| {
            r.description(
                "How the receiver answered (200 even when the receiver failed: see `success`).",
            )
        })
}

/// A new secret; the old one keeps signing alongside for 24 hours.
async fn rotate_secret(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<WebhookId>,
) -> ApiResult<Json<WebhookRotated>> {
    let webhook = store::rotate_secret(
        &state.pool,
        auth.tenant,
        &id.0,
        &generate_secret(),
        ROTATION_OVERLAP,
    )
    .await?;
    Ok(Json(WebhookRotated {
        webhook: public(&state, &webhook),
        previous_secret_expires_at: webhook.previous_secret_expires_at.map(format_timestamp),
        secret: webhook.secret,
    }))
}

fn rotate_secret_docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "WebhookNotFound");
    op.id("rotateWebhookSecret")
        .summary("Rotate the signing secret")
        .description("Generates a new secret. For 24 hours deliveries are signed with both: `X-Moncreneau-Signature` / `X-Webhook-Signature` with the new one, the `…-Previous` headers with the old one, and `webhook-signature` carries one entry per secret. Rotating again within those 24 hours drops the oldest secret at once. No request body (any body is ignored).")
        .tag("webhooks")
        .response_with::<200, Json<WebhookRotated>, _>(|r| {
            r.description("The webhook with its new secret.")
                .example(WebhookRotated::example())
        })
}

/// The attempt log of an endpoint, newest first; the page is checked before the endpoint is
/// looked up (400 before 404).
async fn deliveries(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<WebhookId>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<DeliveryAttemptPage>> {
    let page = query.request()?;
    let total = store::count_attempts(&state.pool, auth.tenant, &id.0).await?;
    let attempts = store::attempts(&state.pool, &id.0, &page.limit_clause()).await?;
    Ok(Json(DeliveryAttemptPage::new(
        page,
        attempts.into_iter().map(DeliveryAttempt::new).collect(),
        total,
    )))
}

fn deliveries_docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "WebhookNotFound");
    op.id("listWebhookDeliveries")
        .summary("Delivery attempt log")
        .description("Every attempt made by the delivery worker (test events are not logged). Page parameters are checked before the webhook is looked up (400 before 404).")
        .tag("webhooks")
        .response_with::<200, Json<DeliveryAttemptPage>, _>(|r| {
            r.description("A page of attempts of this webhook, newest first.")
        })
}

/// Queues one more attempt of a delivery, due now, whatever became of it; an attempt already in
/// flight is left to finish. Once the retry schedule is spent, a failed manual retry stays failed.
async fn retry(
    auth: Authorized<scope::WebhooksManage>,
    State(state): State<AppState>,
    ApiPath((id, delivery_id)): ApiPath<(WebhookId, DeliveryId)>,
) -> ApiResult<(StatusCode, Json<RetryQueued>)> {
    let queued = store::retry(&state.pool, auth.tenant, &id.0, &delivery_id.0).await?;
    Ok((StatusCode::ACCEPTED, Json(RetryQueued::new(queued, id.0))))
}

fn retry_docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "WebhookOrDeliveryNotFound");
    op.id("retryWebhookDelivery")
        .summary("Retry a delivery")
        .description("Puts the delivery back to PENDING, due now, whatever became of it (a SUCCEEDED delivery is sent again). The attempt counter goes on, so a retried delivery whose schedule is already spent gets no further automatic retry when it fails; a delivery of an inactive webhook ends FAILED without being sent. 404 WEBHOOK_NOT_FOUND for an unknown webhook, NOT_FOUND for a delivery that is not this webhook's. No request body.")
        .tag("webhooks")
        .response_with::<202, Json<RetryQueued>, _>(|r| {
            r.description("Queued again, due now; the worker makes the attempt shortly.")
        })
}
