//! `GET /appointments`: paged, filtered, sorted.

use axum::extract::State;
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::Value;
use sqlx::{Postgres, QueryBuilder};

use super::{AppointmentRow, SELECT_APPOINTMENT};
use crate::auth::{scope, ApiKeyAuth, Authorized};
use crate::domain::status::Status;
use crate::error::{check_fields, ApiResult, ErrorCode, FieldError};
use crate::extract::{date_param, ApiQuery};
use crate::routes::pagination::PageQuery;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    page: Option<i64>,
    size: Option<i64>,
    status: Option<String>,
    department_id: Option<i64>,
    worker_id: Option<i64>,
    external_user_id: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    sort: Option<String>,
}

fn bad(field: &str, message: &str) -> FieldError {
    FieldError::new(field, ErrorCode::InvalidRequest, message)
}

fn date(field: &str, value: Option<&str>, errors: &mut Vec<FieldError>) -> Option<NaiveDate> {
    date_param(field, value?)
        .map_err(|error| errors.push(error))
        .ok()
}

/// Filters are ANDed; dates are local to each appointment's department, both ends included.
fn push_filters(builder: &mut QueryBuilder<'_, Postgres>, auth: &ApiKeyAuth, filters: &Filters) {
    builder
        .push(" WHERE a.organization_id = ")
        .push_bind(auth.tenant.organization_id)
        .push(" AND a.livemode = ")
        .push_bind(auth.tenant.livemode);
    if let Some(status) = filters.status {
        builder.push(" AND a.status = ").push_bind(status.as_str());
    }
    if let Some(id) = filters.department_id {
        builder.push(" AND a.department_id = ").push_bind(id);
    }
    if let Some(id) = filters.worker_id {
        builder.push(" AND a.worker_id = ").push_bind(id);
    }
    if let Some(id) = &filters.external_user_id {
        builder
            .push(" AND a.external_user_id = ")
            .push_bind(id.clone());
    }
    if let Some(start) = filters.start_date {
        builder
            .push(" AND a.local_starts_at >= ")
            .push_bind(start.and_hms_opt(0, 0, 0));
    }
    if let Some(end) = filters.end_date {
        builder
            .push(" AND a.local_starts_at < ")
            .push_bind(end.succ_opt().and_then(|next| next.and_hms_opt(0, 0, 0)));
    }
}

struct Filters {
    status: Option<Status>,
    department_id: Option<i64>,
    worker_id: Option<i64>,
    external_user_id: Option<String>,
    start_date: Option<NaiveDate>,
    end_date: Option<NaiveDate>,
}

/// A page of the caller's appointments; default order is by start (`dateTime`).
pub async fn list(
    auth: Authorized<scope::AppointmentsRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let mut errors = Vec::new();
    let page = PageQuery {
        page: query.page,
        size: query.size,
    }
    .check(&mut errors);
    let status = query.status.as_deref().and_then(|text| {
        let parsed = Status::from_filter(text);
        if parsed.is_none() {
            errors.push(bad(
                "status",
                "must be one of CONFIRMED (or SCHEDULED), CANCELLED, COMPLETED, NO_SHOW",
            ));
        }
        parsed
    });
    let order = match query.sort.as_deref().unwrap_or("dateTime") {
        "dateTime" => "a.starts_at ASC, a.id ASC",
        "-dateTime" => "a.starts_at DESC, a.id DESC",
        "createdAt" => "a.created_at ASC, a.id ASC",
        "-createdAt" => "a.created_at DESC, a.id DESC",
        _ => {
            errors.push(bad(
                "sort",
                "must be one of dateTime, -dateTime, createdAt, -createdAt",
            ));
            ""
        }
    };
    let filters = Filters {
        status,
        department_id: query.department_id,
        worker_id: query.worker_id,
        external_user_id: query.external_user_id,
        start_date: date("startDate", query.start_date.as_deref(), &mut errors),
        end_date: date("endDate", query.end_date.as_deref(), &mut errors),
    };
    if let (Some(start), Some(end)) = (filters.start_date, filters.end_date) {
        if end < start {
            errors.push(bad("endDate", "must not be before startDate"));
        }
    }
    check_fields(errors)?;

    let mut count = QueryBuilder::new("SELECT count(*) FROM appointments a");
    push_filters(&mut count, &auth, &filters);
    let total: i64 = count.build_query_scalar().fetch_one(&state.pool).await?;

    let mut select = QueryBuilder::new(SELECT_APPOINTMENT);
    push_filters(&mut select, &auth, &filters);
    select
        .push(format_args!(" ORDER BY {order}"))
        .push(page.limit_clause());
    let rows: Vec<AppointmentRow> = select.build_query_as().fetch_all(&state.pool).await?;
    let content = rows
        .iter()
        .map(|row| row.to_json(&state.settings.public_url))
        .collect();
    Ok(Json(page.respond(content, total)))
}
