//! `GET /departments/{id}/availability` (`availability:check`): the department's slots with the
//! places left, from the same schedule rules that `POST /appointments` applies, the same load
//! rule that the database's capacity trigger applies and the same one-at-a-time rule that its
//! exclusion constraint applies to staff members.

pub mod json;

use aide::axum::routing::get_with;
use aide::axum::ApiRouter;
use aide::transform::TransformOperation;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};

use self::json::{
    Availability, AvailabilityDay, AvailabilityQuery, AvailabilitySlot, Instant, LocalDateTime,
    LocalTime,
};
use crate::auth::{scope, Authorized};
use crate::domain::load::Load;
use crate::domain::schedule::{Schedule, Slot};
use crate::domain::staff::Staff;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::openapi::refer_response;
use crate::state::AppState;
use crate::store::availability as store;
use crate::store::departments::find_department;
use crate::store::workers::find_worker;
use crate::tenant::Tenant;

pub fn router() -> ApiRouter<AppState> {
    ApiRouter::new().api_route(
        "/departments/{id}/availability",
        get_with(availability, availability_docs),
    )
}

/// Who a booking of the listed slots would name, which decides the places left in a slot.
enum Booker {
    /// Nobody: the department's places left.
    Anyone,
    /// One of these workers (the one asked for, or any active one when the department requires
    /// a worker): the department's places left, at most the number of them free over the slot.
    OneOf(Vec<i64>),
}

/// Bookable slots per day between two local dates; every slot with `includeUnavailable=true`.
async fn availability(
    auth: Authorized<scope::AvailabilityCheck>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<AvailabilityQuery>,
) -> ApiResult<Listed> {
    let request = query.parse()?;
    let department = find_department(&state.pool, auth.tenant, id).await?;
    let (booker, open) = match request.worker_id {
        // An unknown worker is the 404 that POST answers; an inactive one, like an inactive
        // department, lists nothing, since POST refuses every slot of it.
        Some(worker_id) => {
            let worker = find_worker(&state.pool, auth.tenant, department.id, worker_id).await?;
            (Booker::OneOf(vec![worker.id]), worker.is_active)
        }
        None if department.show_admins_in_booking => (
            Booker::OneOf(store::active_workers(&state.pool, auth.tenant, id).await?),
            true,
        ),
        None => (Booker::Anyone, true),
    };
    let schedule = department.schedule()?;
    let days: Vec<(NaiveDate, Vec<Slot>)> = if department.is_active && open {
        request
            .start
            .iter_days()
            .take_while(|day| *day <= request.end)
            .map(|day| (day, schedule.slots_on(day)))
            .filter(|(_, slots)| !slots.is_empty())
            .collect()
    } else {
        Vec::new()
    };

    let (load, staff) = load_over(&state, auth.tenant, department.id, &booker, &days).await?;
    let listing = Listing {
        schedule: &schedule,
        load: &load,
        staff: staff.as_ref(),
        capacity: i64::from(department.capacity),
        now: Utc::now(),
        include_unavailable: request.include_unavailable,
    };
    Ok(Listed(Availability {
        department_id: id,
        timezone: department.timezone,
        start_date: request.start,
        end_date: request.end,
        availability: listing.days(&days),
        worker_id: request.worker_id,
    }))
}

/// The answer as `Json` writes it, into a buffer sized for it up front: a month of short slots
/// is over 100 kB, which `Json` would grow from 128 bytes by copying it a dozen times over.
struct Listed(Availability);

/// What one listed slot takes on the wire, at most (its four date-times are fixed-width).
const SLOT_BYTES: usize = 160;

impl Listed {
    fn body(&self) -> Result<Vec<u8>, serde_json::Error> {
        let slots: usize = self.0.availability.iter().map(|day| day.slots.len()).sum();
        let days = self.0.availability.len();
        let size = slots
            .saturating_mul(SLOT_BYTES)
            .saturating_add(days.saturating_mul(32))
            .saturating_add(256);
        let mut body = Vec::with_capacity(size);
        serde_json::to_writer(&mut body, &self.0)?;
        Ok(body)
    }
}

impl IntoResponse for Listed {
    fn into_response(self) -> Response {
        match self.body() {
            Ok(body) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            // As `Json` answers a value it cannot serialize (none of these types can fail).
            Err(error) => ApiError::internal(error).into_response(),
        }
    }
}

/// In the spec, exactly what `Json<Availability>` is.
impl aide::OperationOutput for Listed {
    type Inner = Availability;

    fn operation_response(
        context: &mut aide::generate::GenContext,
        operation: &mut aide::openapi::Operation,
    ) -> Option<aide::openapi::Response> {
        Json::<Availability>::operation_response(context, operation)
    }

    fn inferred_responses(
        context: &mut aide::generate::GenContext,
        operation: &mut aide::openapi::Operation,
    ) -> Vec<(Option<u16>, aide::openapi::Response)> {
        Json::<Availability>::inferred_responses(context, operation)
    }
}

fn availability_docs(mut op: TransformOperation) -> TransformOperation {
    refer_response(op.inner_mut(), 404, "NotFound");
    op.id("getAvailability")
        .summary("Slots of a department")
        .description("Every slot listed as available is accepted by `POST /appointments` at that moment, and no rejected slot is listed as available. An inactive department lists nothing. With `workerId`, only that staff member's bookable slots: the worker is free over the whole slot and the department is below capacity there; `remaining` is then min(department places left, 1 or 0). An unknown worker (or one of another department) is 404 WORKER_NOT_FOUND, as in POST; a deactivated worker lists nothing. Without `workerId` in a department whose `showAdminsInBooking` is true, a slot is available when at least one active worker is free over it and the department is below capacity, and `remaining` is min(department places left, active workers free over it): so `availability[0].slots[0]` can be booked with some worker.")
        .tag("availability")
        .response_with::<200, Json<Availability>, _>(|r| r.description("Slots per local day."))
}

/// What decides which slots are listed and with how many places: pure, given the load.
struct Listing<'a> {
    schedule: &'a Schedule,
    load: &'a Load,
    staff: Option<&'a Staff>,
    capacity: i64,
    now: DateTime<Utc>,
    include_unavailable: bool,
}

impl Listing<'_> {
    /// The days that list at least one slot, in order.
    fn days(&self, days: &[(NaiveDate, Vec<Slot>)]) -> Vec<AvailabilityDay> {
        days.iter()
            .filter_map(|(day, slots)| {
                let listed: Vec<AvailabilitySlot> =
                    slots.iter().filter_map(|slot| self.slot(slot)).collect();
                (!listed.is_empty()).then_some(AvailabilityDay {
                    date: *day,
                    slots: listed,
                })
            })
            .collect()
    }

    /// The slot with its places left, when listed.
    fn slot(&self, slot: &Slot) -> Option<AvailabilitySlot> {
        let mut remaining = self
            .load
            .remaining(self.capacity, slot.starts_at, slot.ends_at);
        if let Some(staff) = self.staff {
            remaining = remaining.min(staff.free(slot.starts_at, slot.ends_at));
        }
        let available = remaining > 0 && self.schedule.bookability(slot, self.now).is_ok();
        (available || self.include_unavailable).then_some(AvailabilitySlot {
            time: LocalTime(slot.local),
            date_time: LocalDateTime(slot.local),
            starts_at: Instant(slot.starts_at),
            ends_at: Instant(slot.ends_at),
            available,
            remaining,
        })
    }
}

/// The department's load over the instants the listed slots span: every appointment that is
/// not cancelled and overlaps them, whatever grid it was booked on; and, when bookings name a
/// worker, the busy time of the workers they may name.
async fn load_over(
    state: &AppState,
    tenant: Tenant,
    department_id: i64,
    booker: &Booker,
    days: &[(NaiveDate, Vec<Slot>)],
) -> ApiResult<(Load, Option<Staff>)> {
    let staff = |booked: &[store::Booked]| match booker {
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
    let booked = store::booked(&state.pool, tenant, department_id, first, last).await?;
    let load = Load::counted(booked.iter().map(|b| (b.starts_at, b.ends_at, b.count)));
    Ok((load, staff(&booked)))
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use serde_json::{json, Value};

    use super::*;
    use crate::domain::datetime::format_instant;
    use crate::domain::schedule::{Closure, OpeningHours, RangeText, WEEKDAYS};

    /// The response as the handler built it before its shapes were types: a generic JSON tree,
    /// chrono's `format` per slot.
    fn as_json_tree(
        listing: &Listing,
        days: &[(NaiveDate, Vec<Slot>)],
        worker: Option<i64>,
    ) -> Value {
        let availability: Vec<Value> = days
            .iter()
            .filter_map(|(day, slots)| {
                let listed: Vec<Value> = slots
                    .iter()
                    .filter_map(|slot| {
                        let mut remaining =
                            listing
                                .load
                                .remaining(listing.capacity, slot.starts_at, slot.ends_at);
                        if let Some(staff) = listing.staff {
                            remaining = remaining.min(staff.free(slot.starts_at, slot.ends_at));
                        }
                        let available = remaining > 0
                            && listing.schedule.bookability(slot, listing.now).is_ok();
                        (available || listing.include_unavailable).then(|| {
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
        json!({
            "departmentId": 7,
            "workerId": worker,
            "timezone": "Europe/Paris",
            "startDate": "2026-03-27",
            "endDate": "2026-04-02",
            "availability": availability,
        })
    }

    /// The sized body is the very response `Json` gives, header and bytes, over a listing with
    /// every kind of value (a worker, both availabilities, days of different lengths).
    #[tokio::test]
    async fn the_listed_answer_is_the_json_answer_byte_for_byte() {
        let answer = || {
            let slot = |start: &str, available: bool, remaining: i64| {
                let starts_at = at(start);
                let local = starts_at.naive_utc() + Duration::hours(1);
                AvailabilitySlot {
                    time: LocalTime(local),
                    date_time: LocalDateTime(local),
                    starts_at: Instant(starts_at),
                    ends_at: Instant(starts_at + Duration::minutes(15)),
                    available,
                    remaining,
                }
            };
            Availability {
                department_id: 7,
                timezone: "Europe/Paris".to_owned(),
                start_date: "2026-03-27".parse().unwrap(),
                end_date: "2026-04-02".parse().unwrap(),
                availability: vec![
                    AvailabilityDay {
                        date: "2026-03-27".parse().unwrap(),
                        slots: vec![slot("2026-03-27T08:00:00Z", true, 3)],
                    },
                    AvailabilityDay {
                        date: "2026-03-29".parse().unwrap(),
                        slots: vec![
                            slot("2026-03-29T00:45:00Z", false, 0),
                            slot("2026-03-29T23:45:00Z", true, 1),
                        ],
                    },
                ],
                worker_id: Some(12),
            }
        };
        let sized = Listed(answer()).into_response();
        let json = Json(answer()).into_response();
        assert_eq!(sized.status(), json.status());
        assert_eq!(sized.headers(), json.headers());
        let body = |response: Response| axum::body::to_bytes(response.into_body(), usize::MAX);
        let (sized, json) = (body(sized).await.unwrap(), body(json).await.unwrap());
        assert_eq!(sized, json);
        assert!(json.len() > 400, "the sample is a real listing");
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// Europe/Paris over the last Sunday of March 2026 (02:00 does not exist on the 29th),
    /// open around the clock change, closed on the 31st, 15-minute slots, capacity 2, two
    /// workers with bookings, some slots past, some too soon, some full.
    #[test]
    fn the_typed_response_is_the_json_tree_it_replaces() {
        let mut hours = std::collections::BTreeMap::new();
        for day in WEEKDAYS {
            let ranges = vec![
                RangeText {
                    start: "00:30".into(),
                    end: "04:00".into(),
                },
                RangeText {
                    start: "09:00".into(),
                    end: "12:15".into(),
                },
            ];
            hours.insert(day.to_owned(), ranges);
        }
        let schedule = Schedule {
            timezone: chrono_tz::Europe::Paris,
            slot_minutes: 15,
            opening_hours: OpeningHours::parse(&hours).unwrap(),
            closures: vec![Closure {
                start_date: "2026-03-31".parse().unwrap(),
                end_date: "2026-03-31".parse().unwrap(),
                reason: None,
            }],
            min_notice_minutes: 120,
            max_advance_days: 4,
        };
        let start: NaiveDate = "2026-03-27".parse().unwrap();
        let end: NaiveDate = "2026-04-02".parse().unwrap();
        let days: Vec<(NaiveDate, Vec<Slot>)> = start
            .iter_days()
            .take_while(|day| *day <= end)
            .map(|day| (day, schedule.slots_on(day)))
            .filter(|(_, slots)| !slots.is_empty())
            .collect();
        let booked = [
            (
                Some(1),
                at("2026-03-29T00:45:00Z"),
                at("2026-03-29T01:00:00Z"),
            ),
            (
                Some(2),
                at("2026-03-29T00:45:00Z"),
                at("2026-03-29T01:00:00Z"),
            ),
            (None, at("2026-03-29T07:00:00Z"), at("2026-03-29T07:30:00Z")),
            (
                Some(2),
                at("2026-03-30T07:10:00Z"),
                at("2026-03-30T07:20:00Z"),
            ),
        ];
        let load = Load::counted(booked.iter().map(|(_, start, end)| (*start, *end, 1)));
        let staff = Staff::new(
            [1, 2],
            booked
                .iter()
                .filter_map(|(worker, start, end)| worker.map(|w| (w, *start, *end))),
        );
        let now = at("2026-03-28T23:50:00Z");
        for include_unavailable in [false, true] {
            for (staff, worker) in [(None, None), (Some(&staff), Some(2))] {
                let listing = Listing {
                    schedule: &schedule,
                    load: &load,
                    staff,
                    capacity: 2,
                    now,
                    include_unavailable,
                };
                let typed = Availability {
                    department_id: 7,
                    timezone: "Europe/Paris".to_owned(),
                    start_date: start,
                    end_date: end,
                    availability: listing.days(&days),
                    worker_id: worker,
                };
                let typed = serde_json::to_value(&typed).unwrap();
                assert_eq!(typed, as_json_tree(&listing, &days, worker));
                let listed = typed["availability"].as_array().unwrap();
                assert!(listed.len() >= 2, "{include_unavailable} {worker:?}");
            }
        }
        // The sample does reach what it means to: the gap, the full slot, the past.
        let sunday = &days
            .iter()
            .find(|(day, _)| day.to_string() == "2026-03-29")
            .unwrap()
            .1;
        assert!(sunday
            .iter()
            .all(|slot| slot.local.format("%H").to_string() != "02"));
        assert!(sunday
            .iter()
            .any(|slot| slot.starts_at < now + Duration::hours(1)));
    }
}
