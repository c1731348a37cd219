//! `GET /departments/{id}/availability` (`availability:check`): the department's slots with the
//! places left, from the same schedule rules that `POST /appointments` applies and the same load
//! rule that the database's capacity trigger applies.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{scope, Authorized};
use crate::domain::datetime::format_instant;
use crate::domain::load::Load;
use crate::domain::schedule::Slot;
use crate::error::{check_fields, ApiResult, ErrorCode, FieldError};
use crate::extract::{date_param, ApiPath, ApiQuery};
use crate::routes::departments::find_department;
use crate::startup::AppState;

/// The longest range one request may ask for, both ends included.
const MAX_DAYS: i64 = 92;

pub fn router() -> Router<AppState> {
    Router::new().route("/departments/{id}/availability", get(availability))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AvailabilityQuery {
    start_date: Option<String>,
    end_date: Option<String>,
    include_unavailable: Option<bool>,
}

fn parse_date(field: &str, value: Option<&str>, errors: &mut Vec<FieldError>) -> Option<NaiveDate> {
    let Some(text) = value else {
        errors.push(FieldError::missing(field));
        return None;
    };
    date_param(field, text)
        .map_err(|error| errors.push(error))
        .ok()
}

/// Bookable slots per day between two local dates; every slot with `includeUnavailable=true`.
async fn availability(
    auth: Authorized<scope::AvailabilityCheck>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<AvailabilityQuery>,
) -> ApiResult<Json<Value>> {
    let mut errors = Vec::new();
    let start = parse_date("startDate", query.start_date.as_deref(), &mut errors);
    let end = parse_date("endDate", query.end_date.as_deref(), &mut errors);
    if let (Some(start), Some(end)) = (start, end) {
        if end < start {
            errors.push(FieldError::new(
                "endDate",
                ErrorCode::InvalidRequest,
                "must not be before startDate",
            ));
        } else if (end - start).num_days() + 1 > MAX_DAYS {
            errors.push(FieldError::new(
                "endDate",
                ErrorCode::InvalidRequest,
                "the range may cover at most 92 days",
            ));
        }
    }
    check_fields(errors)?;
    let (Some(start), Some(end)) = (start, end) else {
        return Err(crate::error::ApiError::new(
            ErrorCode::InvalidRequest,
            "startDate and endDate are required",
        ));
    };
    let include_unavailable = query.include_unavailable.unwrap_or(false);

    let department = find_department(&state.pool, &auth, id).await?;
    let schedule = department.schedule()?;
    let days: Vec<(NaiveDate, Vec<_>)> = if department.is_active {
        start
            .iter_days()
            .take_while(|day| *day <= end)
            .map(|day| (day, schedule.slots_on(day)))
            .filter(|(_, slots)| !slots.is_empty())
            .collect()
    } else {
        Vec::new()
    };

    let load = load_over(&state, id, &days).await?;
    let now = Utc::now();
    let capacity = i64::from(department.capacity);
    let availability: Vec<Value> = days
        .iter()
        .filter_map(|(day, slots)| {
            let listed: Vec<Value> = slots
                .iter()
                .filter_map(|slot| {
                    let remaining = load.remaining(capacity, slot.starts_at, slot.ends_at);
                    let available = remaining > 0 && schedule.bookability(slot, now).is_ok();
                    (available || include_unavailable).then(|| {
                        json!({
                            "time": slot.local.format("%H:%M").to_string(),
                            "dateTime": slot.local.format("%Y-%m-%dT%H:%M:%S").to_string(),
                            "startsAt": format_instant(slot.starts_at),
                            "endsAt": format_instant(slot.ends_at),
                            "available": available,
                            "remaining": remaining,
                        })
                    })
                })
                .collect();
            (!listed.is_empty()).then(|| json!({"date": day.to_string(), "slots": listed}))
        })
        .collect();
    Ok(Json(json!({
        "departmentId": id,
        "timezone": department.timezone,
        "startDate": start.to_string(),
        "endDate": end.to_string(),
        "availability": availability,
    })))
}

/// The department's load over the instants the listed slots span: every appointment that is
/// not cancelled and overlaps them, whatever grid it was booked on.
async fn load_over(
    state: &AppState,
    department_id: i64,
    days: &[(NaiveDate, Vec<Slot>)],
) -> ApiResult<Load> {
    let slots = || days.iter().flat_map(|(_, slots)| slots);
    let (Some(first), Some(last)) = (
        slots().map(|slot| slot.starts_at).min(),
        slots().map(|slot| slot.ends_at).max(),
    ) else {
        return Ok(Load::default());
    };
    // An appointment lasts at most a day (a constraint), which bounds the index range.
    // Counted per interval: one row per distinct slot rather than per appointment.
    let intervals: Vec<(DateTime<Utc>, DateTime<Utc>, i64)> = sqlx::query_as(
        "SELECT starts_at, ends_at, count(*) FROM appointments
          WHERE department_id = $1 AND status <> 'CANCELLED'
            AND starts_at > $2 - interval '1 day' AND starts_at < $3 AND ends_at > $2
          GROUP BY starts_at, ends_at",
    )
    .bind(department_id)
    .bind(first)
    .bind(last)
    .fetch_all(&state.pool)
    .await?;
    Ok(Load::counted(intervals))
}
