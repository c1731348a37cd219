//! What the availability of a department reads: the department with the worker asked for or
//! its active workers, and the appointments that occupy its slots, in one statement.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

use crate::error::ApiResult;
use crate::store::departments::{department_columns, department_not_found, Department};
use crate::tenant::Tenant;

/// Live appointments of one interval and worker (or of none).
#[derive(sqlx::FromRow)]
pub struct Booked {
    pub worker_id: Option<i64>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub count: i64,
}

/// Every appointment of the tenant's department that is not cancelled and overlaps
/// `first..last`, whatever grid it was booked on, counted per interval and worker.
pub async fn booked(
    pool: &PgPool,
    tenant: Tenant,
    department_id: i64,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
) -> ApiResult<Vec<Booked>> {
    // An appointment lasts at most a day (a constraint), which bounds the index range.
    // Counted per interval and worker: one row per distinct slot rather than per appointment
    // (a worker holds at most one appointment per interval).
    Ok(sqlx::query_as(
        "SELECT worker_id, starts_at, ends_at, count(*) AS count FROM appointments
          WHERE department_id = $1 AND status <> 'CANCELLED'
            AND starts_at > $2 - interval '1 day' AND starts_at < $3 AND ends_at > $2
            AND organization_id = $4 AND livemode = $5
          GROUP BY worker_id, starts_at, ends_at",
    )
    .bind(department_id)
    .bind(first)
    .bind(last)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .fetch_all(pool)
    .await?)
}

/// A department with all that its availability reads, from one statement: see
/// [`department_with_bookings`].
#[derive(sqlx::FromRow)]
pub struct DepartmentBookings {
    #[sqlx(flatten)]
    pub department: Department,
    /// The worker asked for (`workerId`), when it is one of the department's: its id.
    pub asked_worker_id: Option<i64>,
    /// Whether that worker is active.
    pub asked_worker_is_active: Option<bool>,
    /// The department's active workers by id, when it requires a worker
    /// (`showAdminsInBooking`); else null.
    pub active_workers: Option<Vec<i64>>,
    booked_worker_ids: Option<Vec<Option<i64>>>,
    booked_starts: Option<Vec<DateTime<Utc>>>,
    booked_ends: Option<Vec<DateTime<Utc>>>,
    booked_counts: Option<Vec<i64>>,
    /// The bounds the appointments were read within: `window.0..window.1`.
    #[sqlx(skip)]
    window: (DateTime<Utc>, DateTime<Utc>),
}

impl DepartmentBookings {
    /// Whether the appointments read cover every appointment that overlaps `first..last`.
    pub fn covers(&self, first: DateTime<Utc>, last: DateTime<Utc>) -> bool {
        self.window.0 <= first && last <= self.window.1
    }

    /// What [`booked`] answers for `first..last` (inside the window read, see
    /// [`Self::covers`]): the appointments read that overlap it, as that query selects them.
    pub fn booked(&self, first: DateTime<Utc>, last: DateTime<Utc>) -> Vec<Booked> {
        let (Some(workers), Some(starts), Some(ends), Some(counts)) = (
            &self.booked_worker_ids,
            &self.booked_starts,
            &self.booked_ends,
            &self.booked_counts,
        ) else {
            return Vec::new();
        };
        // `booked`'s condition; its first term only bounds an index range (an appointment lasts
        // at most a day), `ends_at > first` implies it.
        let since = first.checked_sub_signed(Duration::days(1));
        workers
            .iter()
            .zip(starts)
            .zip(ends)
            .zip(counts)
            .filter(|(((_, starts_at), ends_at), _)| {
                since.is_none_or(|since| **starts_at > since)
                    && **starts_at < last
                    && **ends_at > first
            })
            .map(|(((worker_id, starts_at), ends_at), count)| Booked {
                worker_id: *worker_id,
                starts_at: *starts_at,
                ends_at: *ends_at,
                count: *count,
            })
            .collect()
    }
}

/// The tenant's department `id` (404 `DEPARTMENT_NOT_FOUND` as `find_department`), with the
/// worker `worker_id` if it is one of that department's, its active workers if it requires
/// one, and its appointments that are not cancelled and overlap `start..end` (UTC), counted
/// per interval and worker as [`booked`] counts them: one round trip instead of up to three.
/// One statement also reads them all in one snapshot.
pub async fn department_with_bookings(
    pool: &PgPool,
    tenant: Tenant,
    id: i64,
    worker_id: Option<i64>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> ApiResult<DepartmentBookings> {
    let found: Option<DepartmentBookings> = sqlx::query_as(concat!(
        "SELECT ",
        department_columns!(),
        ", w.id AS asked_worker_id, w.is_active AS asked_worker_is_active,
           CASE WHEN d.show_admins_in_booking THEN
             ARRAY(SELECT a.id FROM workers a WHERE a.department_id = d.id AND a.is_active
                    ORDER BY a.id)
           END AS active_workers,
           b.booked_worker_ids, b.booked_starts, b.booked_ends, b.booked_counts
      FROM departments d JOIN organizations o ON o.id = d.organization_id
      LEFT JOIN workers w ON w.id = $4 AND w.department_id = d.id
     CROSS JOIN LATERAL (
       SELECT array_agg(g.worker_id) AS booked_worker_ids, array_agg(g.starts_at) AS booked_starts,
              array_agg(g.ends_at) AS booked_ends, array_agg(g.count) AS booked_counts
         FROM (SELECT worker_id, starts_at, ends_at, count(*) AS count FROM appointments
                WHERE department_id = $1 AND status <> 'CANCELLED'
                  AND starts_at > $5 - interval '1 day' AND starts_at < $6 AND ends_at > $5
                  AND organization_id = $2 AND livemode = $3
                GROUP BY worker_id, starts_at, ends_at) g
     ) b
     WHERE d.id = $1 AND d.organization_id = $2 AND d.livemode = $3"
    ))
    .bind(id)
    .bind(tenant.organization_id)
    .bind(tenant.livemode)
    .bind(worker_id)
    .bind(start)
    .bind(end)
    .fetch_optional(pool)
    .await?;
    let mut found = found.ok_or_else(department_not_found)?;
    found.window = (start, end);
    Ok(found)
}
