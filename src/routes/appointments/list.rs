//! `GET /appointments`: paged, filtered, sorted.

use aide::transform::TransformOperation;
use axum::extract::State;
use axum::Json;

use super::json::{Appointment, AppointmentPage, ListQuery};
use crate::auth::{scope, Authorized};
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::state::AppState;
use crate::store::appointments as store;

/// A page of the caller's appointments; default order is by start (`dateTime`).
pub async fn list(
    auth: Authorized<scope::AppointmentsRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<AppointmentPage>> {
    let listing = query.parse()?;
    let total = store::count(&state.pool, auth.tenant, &listing.filters).await?;
    let rows = store::page(
        &state.pool,
        auth.tenant,
        &listing.filters,
        listing.sort,
        &listing.page.limit_clause(),
    )
    .await?;
    let content = rows
        .iter()
        .map(|row| Appointment::new(row, &state.settings.public_url))
        .collect();
    Ok(Json(AppointmentPage::new(listing.page, content, total)))
}

pub fn docs(op: TransformOperation) -> TransformOperation {
    op.id("listAppointments")
        .summary("List appointments")
        .description("Filters are ANDed. Default order: `dateTime` ascending (then id).")
        .tag("appointments")
        .response_with::<200, Json<AppointmentPage>, _>(|r| {
            r.description("A page of appointments.")
        })
}
