//! The departments of a tenant: read, locked, created, changed and deactivated. Bookings,
//! moves, availability and workers read (or lock) a department through this module too.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::types::Json as SqlJson;
use sqlx::{PgConnection, PgExecutor, PgPool, Postgres, Row};

use crate::domain::schedule::{Closure, OpeningHours, RangeText, Schedule};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::tenant::Tenant;

/// Opening ranges per lower-case weekday, as stored.
pub type HoursMap = BTreeMap<String, Vec<RangeText>>;

/// One department as stored, with the name of its organization.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Department {
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

impl Department {
    /// The organization and mode the department belongs to.
    pub fn tenant(&self) -> Tenant {
        Tenant {
            organization_id: self.organization_id,
            livemode: self.livemode,
        }
    }

    /// The stored time zone (checked when written).
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
}

/// Every column a caller sets, checked (see `routes::departments::json`).
#[derive(Debug, Clone)]
pub struct Fields {
    pub name: String,
    pub description: Option<String>,
    pub timezone: String,
    pub slot_duration: i32,
    pub capacity: i32,
    pub is_active: bool,
    pub opening_hours: HoursMap,
    pub closures: Vec<Closure>,
    pub min_notice_minutes: i32,
    pub max_advance_days: i32,
    pub show_admins_in_booking: bool,
}

impl Fields {
    /// The values `department` has now.
    pub fn of(department: &Department) -> Self {
        Self {
            name: department.name.clone(),
            description: department.description.clone(),
            timezone: department.timezone.clone(),
            slot_duration: department.slot_duration,
            capacity: department.capacity,
            is_active: department.is_active,
            opening_hours: department.opening_hours.0.clone(),
            closures: department.closures.0.clone(),
            min_notice_minutes: department.min_notice_minutes,
            max_advance_days: department.max_advance_days,
            show_admins_in_booking: department.show_admins_in_booking,
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
}

/// The columns of [`Department`] (tables `departments d` and `organizations o`), for a query
/// that selects more beside them.
macro_rules! department_columns {
    () => {
        "d.id, d.organization_id, o.name AS organization_name, d.livemode, d.name, d.description,
         d.timezone, d.slot_duration, d.capacity, d.is_active, d.opening_hours, d.closures,
         d.min_notice_minutes, d.max_advance_days, d.show_admins_in_booking, d.created_at,
         d.updated_at"
    };
}
pub(crate) use department_columns;

const SELECT_DEPARTMENT: &str = concat!(
    "SELECT ",
    department_columns!(),
    " FROM departments d JOIN organizations o ON o.id = d.organization_id"
);

/// 404 `DEPARTMENT_NOT_FOUND`: unknown, or of another organization or mode.
pub fn department_not_found() -> ApiError {
    ApiError::not_found(ErrorCode::DepartmentNotFound, "Department")
}

/// Every department of the tenant, by id.
pub async fn list(pool: &PgPool, tenant: Tenant) -> ApiResult<Vec<Department>> {
    Ok(sqlx::query_as(&format!(
        "{SELECT_DEPARTMENT} WHERE d.organization_id = $1 AND d.livemode = $2 ORDER BY d.id"
    ))
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .fetch_all(pool)
    .await?)
}

/// The tenant's department `id`, or 404 `DEPARTMENT_NOT_FOUND`.
pub async fn find_department<'e>(
    executor: impl PgExecutor<'e>,
    tenant: Tenant,
    id: i64,
) -> ApiResult<Department> {
    select_department(executor, tenant, id, "").await
}

/// The tenant's department `id`, locked until the end of the transaction: bookings and
/// reschedules into it, and changes of its schedule, happen one at a time (the capacity trigger
/// takes the same lock), so a booking is decided on the schedule and load that are current.
pub async fn lock_department(
    connection: &mut PgConnection,
    tenant: Tenant,
    id: i64,
) -> ApiResult<Department> {
    select_department(connection, tenant, id, " FOR NO KEY UPDATE OF d").await
}

async fn select_department<'e>(
    executor: impl PgExecutor<'e>,
    tenant: Tenant,
    id: i64,
    locking: &str,
) -> ApiResult<Department> {
    sqlx::query_as(&format!(
        "{SELECT_DEPARTMENT} WHERE d.id = $1 AND d.organization_id = $2 AND d.livemode = $3{locking}"
    ))
    .bind(id)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .fetch_optional(executor)
    .await?
    .ok_or_else(department_not_found)
}

/// Creates a department of the tenant.
pub async fn create(pool: &PgPool, tenant: Tenant, fields: &Fields) -> ApiResult<Department> {
    let query = sqlx::query(
        "INSERT INTO departments (organization_id, livemode, name, description, timezone, slot_duration,
                                  capacity, is_active, opening_hours, closures, min_notice_minutes, max_advance_days,
                                  show_admins_in_booking)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         RETURNING id",
    )
    .bind(tenant.organization_id)
    .bind(tenant.livemode);
    let id: i64 = fields.bind_to(query).fetch_one(pool).await?.try_get("id")?;
    find_department(pool, tenant, id).await
}

/// Writes `fields` over the tenant's department `id`, which the caller holds locked (see
/// [`lock_department`]) in the transaction of `connection`.
pub async fn update(
    connection: &mut PgConnection,
    tenant: Tenant,
    id: i64,
    fields: &Fields,
) -> ApiResult<Department> {
    let query = sqlx::query(
        "UPDATE departments SET name = $4, description = $5, timezone = $6, slot_duration = $7, capacity = $8,
                is_active = $9, opening_hours = $10, closures = $11, min_notice_minutes = $12,
                max_advance_days = $13, show_admins_in_booking = $14, updated_at = now()
          WHERE id = $1 AND organization_id = $2 AND livemode = $3",
    )
    .bind(id)
    .bind(tenant.organization_id)
    .bind(tenant.livemode);
    fields.bind_to(query).execute(&mut *connection).await?;
    find_department(connection, tenant, id).await
}

/// Deactivates the tenant's department `id`, or 404 `DEPARTMENT_NOT_FOUND`.
pub async fn deactivate(pool: &PgPool, tenant: Tenant, id: i64) -> ApiResult<Department> {
    let updated = sqlx::query(
        "UPDATE departments SET is_active = FALSE, updated_at = now()
          WHERE id = $1 AND organization_id = $2 AND livemode = $3",
    )
    .bind(id)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .execute(pool)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(department_not_found());
    }
    find_department(pool, tenant, id).await
}
