//! `GET /departments/{id}/availability` (`availability:check`): the department's slots with the
//! places left, from the same schedule rules that `POST /appointments` applies, the same load
//! rule that the database's capacity trigger applies and the same one-at-a-time rule that its
//! exclusion constraint applies to staff members.

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
use crate::domain::staff::Staff;
use crate::error::{check_fields, ApiResult, ErrorCode, FieldError};
use crate::extract::{date_param, ApiPath, ApiQuery};
use crate::routes::departments::{find_department, DepartmentRow};
use crate::routes::workers::find_worker;
use crate::state::AppState;

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
    worker_id: Option<i64>,
}

/// Who a booking of the listed slots would name, which decides the places left in a slot.
enum Booker {
    /// Nobody: the department's places left.
    Anyone,
    /// One of these workers (the one asked for, or any active one when the department requires
    /// a worker): the department's places left, at most the number of them free over the slot.
    OneOf(Vec<i64>),
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
    if query.worker_id.is_some_and(|id| id <= 0) {
        errors.push(FieldError::new(
            "workerId",
            ErrorCode::InvalidRequest,
            "must be a positive integer",
        ));
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
    let (booker, open) = match query.worker_id {
        // An unknown worker is the 404 that POST answers; an inactive one, like an inactive
        // department, lists nothing, since POST refuses every slot of it.
        Some(worker_id) => {
            let worker = find_worker(&state.pool, &auth, department.id, worker_id).await?;
            (Booker::OneOf(vec![worker.id]), worker.is_active)
        }
        None if department.show_admins_in_booking => {
            (Booker::OneOf(active_workers(&state, id).await?), true)
        }
        None => (Booker::Anyone, true),
    };
    let schedule = department.schedule()?;
    let days: Vec<(NaiveDate, Vec<_>)> = if department.is_active && open {
        start
            .iter_days()
            .take_while(|day| *day <= end)
            .map(|day| (day, schedule.slots_on(day)))
            .filter(|(_, slots)| !slots.is_empty())
            .collect()
    } else {
        Vec::new()
    };

    let (load, staff) = load_over(&state, &department, &booker, &days).await?;
    let now = Utc::now();
    let capacity = i64::from(department.capacity);
    let availability: Vec<Value> = days
        .iter()
        .filter_map(|(day, slots)| {
            let listed: Vec<Value> = slots
                .iter()
                .filter_map(|slot| {
                    let mut remaining = load.remaining(capacity, slot.starts_at, slot.ends_at);
                    if let Some(staff) = &staff {
                        remaining = remaining.min(staff.free(slot.starts_at, slot.ends_at));
                    }
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
        "workerId": query.worker_id,
        "timezone": department.timezone,
        "startDate": start.to_string(),
        "endDate": end.to_string(),
        "availability": availability,
    })))
}

/// The department's active workers.
async fn active_workers(state: &AppState, department_id: i64) -> ApiResult<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM workers WHERE department_id = $1 AND is_active ORDER BY id",
    )
    .bind(department_id)
    .fetch_all(&state.pool)
    .await?)
}

/// Live appointments of one interval and worker (or of none).
#[derive(sqlx::FromRow)]
struct Booked {
    worker_id: Option<i64>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    count: i64,
}

/// The department's load over the instants the listed slots span: every appointment that is
/// not cancelled and overlaps them, whatever grid it was booked on; and, when bookings name a
/// worker, the busy time of the workers they may name.
async fn load_over(
    state: &AppState,
    department: &DepartmentRow,
    booker: &Booker,
    days: &[(NaiveDate, Vec<Slot>)],
) -> ApiResult<(Load, Option<Staff>)> {
    let staff = |booked: &[Booked]| match booker {
        Booker::Anyone => None,
        Booker::OneOf(workers) => Some(Staff::new(
            workers.iter().copied(),
            booked
                .iter()
                .filter_map(|b| b.worker_id.map(|worker| (worker, b.starts_at, b.ends_at))),
        )),
    };
    let slots = || days.iter().flat_map(|(_, slots)| slots);
    let (Some(first), Some(last)) = (
        slots().map(|slot| slot.starts_at).min(),
        slots().map(|slot| slot.ends_at).max(),
    ) else {
        return Ok((Load::default(), staff(&[])));
    };
    // An appointment lasts at most a day (a constraint), which bounds the index range.
    // Counted per interval and worker: one row per distinct slot rather than per appointment
    // (a worker holds at most one appointment per interval).
    let booked: Vec<Booked> = sqlx::query_as(
        "SELECT worker_id, starts_at, ends_at, count(*) AS count FROM appointments
          WHERE department_id = $1 AND status <> 'CANCELLED'
            AND starts_at > $2 - interval '1 day' AND starts_at < $3 AND ends_at > $2
          GROUP BY worker_id, starts_at, ends_at",
    )
    .bind(department.id)
    .bind(first)
    .bind(last)
    .fetch_all(&state.pool)
    .await?;
    let load = Load::counted(booked.iter().map(|b| (b.starts_at, b.ends_at, b.count)));
    Ok((load, staff(&booked)))
}
