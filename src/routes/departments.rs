//! `/departments`: list and read (`departments:read`); create, update and deactivate (`api:admin`).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::types::Json as SqlJson;
use sqlx::{PgConnection, PgExecutor, Postgres, Row};

use crate::auth::{scope, ApiKeyAuth, Authorized};
use crate::domain::datetime::{format_timestamp, is_supported_date};
use crate::domain::schedule::{Closure, OpeningHours, RangeText, Schedule};
use crate::domain::text;
use crate::error::{check_fields, ApiError, ApiResult, ErrorCode, FieldError};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/departments", get(list).post(create))
        .route(
            "/departments/{id}",
            get(retrieve).patch(update).delete(deactivate),
        )
}

type HoursMap = BTreeMap<String, Vec<RangeText>>;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DepartmentRow {
    pub id: i64,
    pub organization_id: i64,
    pub organization_name: String,
    pub livemode: bool,
    pub name: String,
    pub description: Option<String>,
    pub timezone: String,
    pub slot_duration: i32,
    pub capacity: i32,
    pub is_active: bool,
    pub opening_hours: SqlJson<HoursMap>,
    pub closures: SqlJson<Vec<Closure>>,
    pub min_notice_minutes: i32,
    pub max_advance_days: i32,
    /// Whether every booking must name a staff member (`showAdminsInBooking`).
    pub show_admins_in_booking: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SELECT_DEPARTMENT: &str = "
    SELECT d.id, d.organization_id, o.name AS organization_name, d.livemode, d.name, d.description,
           d.timezone, d.slot_duration, d.capacity, d.is_active, d.opening_hours, d.closures,
           d.min_notice_minutes, d.max_advance_days, d.show_admins_in_booking, d.created_at,
           d.updated_at
      FROM departments d JOIN organizations o ON o.id = d.organization_id";

impl DepartmentRow {
    pub fn tz(&self) -> ApiResult<Tz> {
        self.timezone.parse().map_err(|_| {
            ApiError::internal(anyhow::anyhow!(
                "stored time zone {:?} is unknown",
                self.timezone
            ))
        })
    }

    /// The rules that decide this department's slots (validated when stored).
    pub fn schedule(&self) -> ApiResult<Schedule> {
        Ok(Schedule {
            timezone: self.tz()?,
            slot_minutes: u16::try_from(self.slot_duration).map_err(ApiError::internal)?,
            opening_hours: OpeningHours::parse(&self.opening_hours)
                .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?,
            closures: self.closures.0.clone(),
            min_notice_minutes: i64::from(self.min_notice_minutes),
            max_advance_days: i64::from(self.max_advance_days),
        })
    }

    pub fn to_json(&self) -> Value {
        let hours = OpeningHours::parse(&self.opening_hours)
            .map(|hours| hours.to_map())
            .unwrap_or_else(|_| self.opening_hours.0.clone());
        json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "organization": {"id": self.organization_id, "name": self.organization_name},
            "timezone": self.timezone,
            "slotDuration": self.slot_duration,
            "capacity": self.capacity,
            "isActive": self.is_active,
            "openingHours": hours,
            "closures": self.closures.0,
            "minNoticeMinutes": self.min_notice_minutes,
            "maxAdvanceDays": self.max_advance_days,
            "showAdminsInBooking": self.show_admins_in_booking,
            "livemode": self.livemode,
            "createdAt": format_timestamp(self.created_at),
            "updatedAt": format_timestamp(self.updated_at),
        })
    }
}

/// The caller's department `id` in the caller's mode, or 404 `DEPARTMENT_NOT_FOUND`.
pub async fn find_department<'e>(
    executor: impl PgExecutor<'e>,
    auth: &ApiKeyAuth,
    id: i64,
) -> ApiResult<DepartmentRow> {
    select_department(executor, auth, id, "").await
}

/// The caller's department `id`, locked until the end of the transaction: bookings and
/// reschedules into it, and changes of its schedule, happen one at a time (the capacity trigger
/// takes the same lock), so a booking is decided on the schedule and load that are current.
pub async fn lock_department(
    connection: &mut PgConnection,
    auth: &ApiKeyAuth,
    id: i64,
) -> ApiResult<DepartmentRow> {
    select_department(connection, auth, id, " FOR NO KEY UPDATE OF d").await
}

async fn select_department<'e>(
    executor: impl PgExecutor<'e>,
    auth: &ApiKeyAuth,
    id: i64,
    locking: &str,
) -> ApiResult<DepartmentRow> {
    sqlx::query_as(&format!(
        "{SELECT_DEPARTMENT} WHERE d.id = $1 AND d.organization_id = $2 AND d.livemode = $3{locking}"
    ))
    .bind(id)
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode)
    .fetch_optional(executor)
    .await?
    .ok_or_else(|| ApiError::not_found(ErrorCode::DepartmentNotFound, "Department"))
}

/// Every department of the caller's mode, as a bare array (what the SDK expects).
async fn list(
    auth: Authorized<scope::DepartmentsRead>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<Value>>> {
    let rows: Vec<DepartmentRow> = sqlx::query_as(&format!(
        "{SELECT_DEPARTMENT} WHERE d.organization_id = $1 AND d.livemode = $2 ORDER BY d.id"
    ))
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows.iter().map(DepartmentRow::to_json).collect()))
}

/// One department.
async fn retrieve(
    auth: Authorized<scope::DepartmentsRead>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        find_department(&state.pool, &auth, id).await?.to_json(),
    ))
}

/// The body of POST and PATCH; in a PATCH an absent (or null) field keeps its value.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DepartmentBody {
    name: Option<String>,
    description: Option<String>,
    timezone: Option<String>,
    slot_duration: Option<i64>,
    capacity: Option<i64>,
    is_active: Option<bool>,
    opening_hours: Option<HoursMap>,
    closures: Option<Vec<Closure>>,
    min_notice_minutes: Option<i64>,
    max_advance_days: Option<i64>,
    show_admins_in_booking: Option<bool>,
}

/// Every column of a department, checked.
struct DepartmentFields {
    name: String,
    description: Option<String>,
    timezone: String,
    slot_duration: i32,
    capacity: i32,
    is_active: bool,
    opening_hours: HoursMap,
    closures: Vec<Closure>,
    min_notice_minutes: i32,
    max_advance_days: i32,
    show_admins_in_booking: bool,
}

impl DepartmentFields {
    fn defaults() -> Self {
        Self {
            name: String::new(),
            description: None,
            timezone: String::new(),
            slot_duration: 15,
            capacity: 1,
            is_active: true,
            opening_hours: HoursMap::new(),
            closures: Vec::new(),
            min_notice_minutes: 0,
            max_advance_days: 90,
            show_admins_in_booking: false,
        }
    }

    fn of(row: &DepartmentRow) -> Self {
        Self {
            name: row.name.clone(),
            description: row.description.clone(),
            timezone: row.timezone.clone(),
            slot_duration: row.slot_duration,
            capacity: row.capacity,
            is_active: row.is_active,
            opening_hours: row.opening_hours.0.clone(),
            closures: row.closures.0.clone(),
            min_notice_minutes: row.min_notice_minutes,
            max_advance_days: row.max_advance_days,
            show_admins_in_booking: row.show_admins_in_booking,
        }
    }

    /// Binds the columns in table order: name, description, timezone, slot_duration, capacity,
    /// is_active, opening_hours, closures, min_notice_minutes, max_advance_days,
    /// show_admins_in_booking.
    fn bind_to<'q>(
        &'q self,
        query: Query<'q, Postgres, PgArguments>,
    ) -> Query<'q, Postgres, PgArguments> {
        query
            .bind(&self.name)
            .bind(&self.description)
            .bind(&self.timezone)
            .bind(self.slot_duration)
            .bind(self.capacity)
            .bind(self.is_active)
            .bind(SqlJson(&self.opening_hours))
            .bind(SqlJson(&self.closures))
            .bind(self.min_notice_minutes)
            .bind(self.max_advance_days)
            .bind(self.show_admins_in_booking)
    }

    /// Applies `body` over these values, collecting every bad field.
    fn apply(mut self, body: DepartmentBody) -> ApiResult<Self> {
        let mut errors = Vec::new();
        if let Some(name) = body.name {
            match text::required(&name, 200) {
                Ok(name) => self.name = name,
                Err(_) => errors.push(FieldError::invalid(
                    "name",
                    "must be 1 to 200 characters, not blank",
                )),
            }
        }
        if let Some(description) = body.description {
            if description.chars().count() <= 2000 {
                self.description = Some(description).filter(|d| !d.trim().is_empty());
            } else {
                errors.push(FieldError::invalid(
                    "description",
                    "must be at most 2000 characters",
                ));
            }
        }
        if let Some(timezone) = body.timezone {
            if timezone.parse::<Tz>().is_ok() {
                self.timezone = timezone;
            } else {
                errors.push(FieldError::invalid(
                    "timezone",
                    "must be an IANA time zone such as Africa/Conakry",
                ));
            }
        }
        let mut bounded = |field: &str,
                           value: Option<i64>,
                           range: std::ops::RangeInclusive<i64>,
                           target: &mut i32| {
            if let Some(value) = value {
                match i32::try_from(value) {
                    Ok(fits) if range.contains(&value) => *target = fits,
                    _ => errors.push(FieldError::invalid(
                        field,
                        format!("must be between {} and {}", range.start(), range.end()),
                    )),
                }
            }
        };
        bounded(
            "slotDuration",
            body.slot_duration,
            5..=1440,
            &mut self.slot_duration,
        );
        bounded("capacity", body.capacity, 1..=1000, &mut self.capacity);
        bounded(
            "minNoticeMinutes",
            body.min_notice_minutes,
            0..=525_600,
            &mut self.min_notice_minutes,
        );
        bounded(
            "maxAdvanceDays",
            body.max_advance_days,
            1..=730,
            &mut self.max_advance_days,
        );
        if let Some(active) = body.is_active {
            self.is_active = active;
        }
        if let Some(required) = body.show_admins_in_booking {
            self.show_admins_in_booking = required;
        }
        if let Some(hours) = body.opening_hours {
            match OpeningHours::parse(&hours) {
                Ok(parsed) => self.opening_hours = parsed.to_map(),
                Err(message) => errors.push(FieldError::invalid("openingHours", message)),
            }
        }
        if let Some(closures) = body.closures {
            let bad = closures.iter().position(|c| {
                c.start_date > c.end_date
                    || !is_supported_date(c.start_date)
                    || !is_supported_date(c.end_date)
                    || c.reason.as_ref().is_some_and(|r| r.chars().count() > 200)
            });
            match bad {
                _ if closures.len() > 500 => {
                    errors.push(FieldError::invalid("closures", "at most 500 closures"))
                }
                Some(index) => errors.push(FieldError::invalid(
                    &format!("closures[{index}]"),
                    "dates YYYY-MM-DD between the years 0001 and 9999, startDate not after endDate; reason at most 200 characters",
                )),
                None => self.closures = closures,
            }
        }
        check_fields(errors)?;
        Ok(self)
    }
}

/// Creates a department in the caller's mode.
async fn create(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<DepartmentBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut missing = Vec::new();
    if body.name.is_none() {
        missing.push(FieldError::missing("name"));
    }
    if body.timezone.is_none() {
        missing.push(FieldError::missing("timezone"));
    }
    check_fields(missing)?;
    let fields = DepartmentFields::defaults().apply(body)?;
    let query = sqlx::query(
        "INSERT INTO departments (organization_id, livemode, name, description, timezone, slot_duration,
                                  capacity, is_active, opening_hours, closures, min_notice_minutes, max_advance_days,
                                  show_admins_in_booking)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         RETURNING id",
    )
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode);
    let id: i64 = fields
        .bind_to(query)
        .fetch_one(&state.pool)
        .await?
        .try_get("id")?;
    let row = find_department(&state.pool, &auth, id).await?;
    Ok((StatusCode::CREATED, Json(row.to_json())))
}

/// Changes the fields given. Existing appointments keep their instants and workers, whatever
/// changed (turning `showAdminsInBooking` on included); one above a lowered capacity stays valid,
/// and the department takes nobody new at those instants until it is below capacity again.
async fn update(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<DepartmentBody>,
) -> ApiResult<Json<Value>> {
    let mut tx = state.pool.begin().await?;
    let row = lock_department(&mut tx, &auth, id).await?;
    let fields = DepartmentFields::of(&row).apply(body)?;
    let query = sqlx::query(
        "UPDATE departments SET name = $2, description = $3, timezone = $4, slot_duration = $5, capacity = $6,
                is_active = $7, opening_hours = $8, closures = $9, min_notice_minutes = $10,
                max_advance_days = $11, show_admins_in_booking = $12, updated_at = now()
          WHERE id = $1",
    )
    .bind(id);
    fields.bind_to(query).execute(&mut *tx).await?;
    let row = find_department(&mut *tx, &auth, id).await?;
    tx.commit().await?;
    Ok(Json(row.to_json()))
}

/// Deactivates a department: it stays readable, its appointments stay, it takes no new booking.
async fn deactivate(
    auth: Authorized<scope::ApiAdmin>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let updated = sqlx::query(
        "UPDATE departments SET is_active = FALSE, updated_at = now()
          WHERE id = $1 AND organization_id = $2 AND livemode = $3",
    )
    .bind(id)
    .bind(auth.tenant.organization_id)
    .bind(auth.tenant.livemode)
    .execute(&state.pool)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(ApiError::not_found(
            ErrorCode::DepartmentNotFound,
            "Department",
        ));
    }
    Ok(Json(
        find_department(&state.pool, &auth, id).await?.to_json(),
    ))
}
