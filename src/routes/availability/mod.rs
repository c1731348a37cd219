//! `GET /departments/{id}/availability` (`availability:check`): the department's slots with the
//! places left, from the same schedule rules that `POST /appointments` applies, the same load
//! rule that the database's capacity trigger applies and the same one-at-a-time rule that its
//! exclusion constraint applies to staff members.

pub mod grid;
pub mod json;

use std::sync::Arc;

use aide::axum::routing::get_with;
use aide::axum::ApiRouter;
use aide::transform::TransformOperation;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use self::grid::{Day, Grids};
use self::json::{Availability, AvailabilityQuery};
use crate::auth::{scope, Authorized};
use crate::domain::load::Load;
use crate::domain::schedule::{Bookable, Schedule, Slot};
use crate::domain::staff::Staff;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::openapi::refer_response;
use crate::state::AppState;
use crate::store::availability as store;
use crate::store::workers::worker_not_found;

/// The route, with the slot grids it keeps: one `Grids` per router built, so per server
/// instance (`Application::build` builds one), never shared between processes or global.
///
/// Owned by the route, their one reader, rather than by `AppState`, which sits below the
/// routes and so cannot name their types.
pub fn router() -> ApiRouter<AppState> {
    let grids = Arc::new(Grids::default());
    ApiRouter::new().api_route(
        "/departments/{id}/availability",
        get_with(
            move |auth: Authorized<scope::AvailabilityCheck>,
                  state: State<AppState>,
                  path: ApiPath<i64>,
                  query: ApiQuery<AvailabilityQuery>| {
                availability(Arc::clone(&grids), auth, state, path, query)
            },
            availability_docs,
        ),
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

/// The UTC instants within which the slots of local dates `start..=end` lie, whatever the
/// zone: local offsets stay within a day of UTC (±15 h at most, local mean times included),
/// so two days of margin on each side are generous. Only bounds what is read: the exact span
/// of the slots is checked against it before the appointments read are used.
fn window(start: NaiveDate, end: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let midnight = |date: NaiveDate, days: i64| {
        date.checked_add_signed(chrono::Duration::days(days))
            .unwrap_or(date)
            .and_time(NaiveTime::MIN)
            .and_utc()
    };
    (midnight(start, -2), midnight(end, 3))
}

/// Bookable slots per day between two local dates; every slot with `includeUnavailable=true`.
async fn availability(
    grids: Arc<Grids>,
    auth: Authorized<scope::AvailabilityCheck>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<AvailabilityQuery>,
) -> ApiResult<Listed> {
    let request = query.parse()?;
    // The department, the worker asked for or the active ones, and the appointments of the
    // range, in one round trip.
    let (from, to) = window(request.start, request.end);
    let found =
        store::department_with_bookings(&state.pool, auth.tenant, id, request.worker_id, from, to)
            .await?;
    let department = &found.department;
    let (booker, open) = match request.worker_id {
        // An unknown worker is the 404 that POST answers; an inactive one, like an inactive
        // department, lists nothing, since POST refuses every slot of it.
        Some(_) => match (found.asked_worker_id, found.asked_worker_is_active) {
            (Some(worker), Some(is_active)) => (Booker::OneOf(vec![worker]), is_active),
            _ => return Err(worker_not_found()),
        },
        None if department.show_admins_in_booking => (
            Booker::OneOf(found.active_workers.clone().unwrap_or_default()),
            true,
        ),
        None => (Booker::Anyone, true),
    };
    let schedule = department.schedule()?;
    let days = if department.is_active && open {
        let dates = request
            .start
            .iter_days()
            .take_while(|day| *day <= request.end);
        grids.days(&schedule, dates).map_err(ApiError::internal)?
    } else {
        Vec::new()
    };

    // The department's load over the instants the listed slots span: every appointment that
    // is not cancelled and overlaps them, whatever grid it was booked on.
    let booked = match grid::span(&days) {
        None => Vec::new(),
        Some((first, last)) if found.covers(first, last) => found.booked(first, last),
        Some((first, last)) => {
            store::booked(&state.pool, auth.tenant, department.id, first, last).await?
        }
    };
    let load = Load::counted(booked.iter().map(|b| (b.starts_at, b.ends_at, b.count)));
    // When bookings name a worker, the busy time of the workers they may name.
    let staff = match booker {
        Booker::Anyone => None,
        Booker::OneOf(workers) => Some(Staff::new(
            workers,
            booked
                .iter()
                .filter_map(|b| b.worker_id.map(|worker| (worker, b.starts_at, b.ends_at))),
        )),
    };
    let listing = Listing {
        schedule: &schedule,
        load: &load,
        staff: staff.as_ref(),
        capacity: i64::from(department.capacity),
        now: Utc::now(),
        include_unavailable: request.include_unavailable,
    };
    let head = Availability {
        department_id: id,
        timezone: department.timezone.clone(),
        start_date: request.start,
        end_date: request.end,
        availability: Vec::new(),
        worker_id: request.worker_id,
    };
    listing
        .write(&head, &days)
        .map(Listed)
        .map_err(ApiError::internal)
}

/// The answer: the bytes `Json<Availability>` would write, written straight into a buffer
/// sized for them (a month of short slots is over 100 kB).
struct Listed(Vec<u8>);

/// What one listed slot adds to its prefix at most: `false,"remaining":` and an `i64`, `}` and
/// a comma.
const SLOT_TAIL_BYTES: usize = 40;

impl IntoResponse for Listed {
    fn into_response(self) -> Response {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.0,
        )
            .into_response()
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
    /// Whether the slot is available, and its places left.
    fn judge(&self, bookable: &Bookable, slot: &Slot) -> (bool, i64) {
        let mut remaining = self
            .load
            .remaining(self.capacity, slot.starts_at, slot.ends_at);
        if let Some(staff) = self.staff {
            remaining = remaining.min(staff.free(slot.starts_at, slot.ends_at));
        }
        (remaining > 0 && bookable.check(slot).is_ok(), remaining)
    }

    /// `head` (an `Availability` without days) with the listed slots of `days`, as
    /// `Json<Availability>` writes it: each slot's kept prefix, then what this request decides.
    fn write(&self, head: &Availability, days: &[Arc<Day>]) -> Result<Vec<u8>, serde_json::Error> {
        let (open, close) = split_head(head)?;
        let size = days
            .iter()
            .map(|day| day.open.len() + day.text_len() + day.slots.len() * SLOT_TAIL_BYTES)
            .fold(open.len() + close.len() + days.len(), usize::saturating_add);
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&open);
        let bookable = self.schedule.bookable_at(self.now);
        let mut days_listed = 0_usize;
        for day in days {
            let mut listed = 0_usize;
            for (index, kept) in day.slots.iter().enumerate() {
                let (available, remaining) = self.judge(&bookable, &kept.slot);
                if !(available || self.include_unavailable) {
                    continue;
                }
                if listed == 0 {
                    if days_listed > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(&day.open);
                    days_listed += 1;
                } else {
                    out.push(b',');
                }
                listed += 1;
                out.extend_from_slice(day.prefix(index));
                put_tail(&mut out, available, remaining);
            }
            if listed > 0 {
                out.extend_from_slice(b"]}");
            }
        }
        out.extend_from_slice(&close);
        Ok(out)
    }
}

/// Where the days go in `Availability`'s JSON.
const NO_DAYS: &[u8] = b"\"availability\":[]";

/// `head` as serde writes it, cut inside its empty `availability`: what goes before the first
/// day (with `[`) and after the last (from `]`).
fn split_head(head: &Availability) -> Result<(Vec<u8>, Vec<u8>), serde_json::Error> {
    let mut open = serde_json::to_vec(head)?;
    let at = open
        .windows(NO_DAYS.len())
        .position(|window| window == NO_DAYS)
        .ok_or_else(|| serde::ser::Error::custom("no availability member"))?;
    let close = open.split_off(at + NO_DAYS.len() - 1);
    Ok((open, close))
}

/// The end of a slot's object after its prefix: `true,"remaining":3}`.
fn put_tail(out: &mut Vec<u8>, available: bool, remaining: i64) {
    out.extend_from_slice(if available {
        b"true,\"remaining\":"
    } else {
        b"false,\"remaining\":"
    });
    if remaining < 0 {
        out.push(b'-');
    }
    let mut value = remaining.unsigned_abs();
    let mut digits = [0_u8; 20];
    let mut at = digits.len();
    while let Some(next) = at.checked_sub(1) {
        at = next;
        if let Some(digit) = digits.get_mut(at) {
            // Below 10: the cast cannot truncate.
            *digit = b'0' + (value % 10) as u8;
        }
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(at..).unwrap_or_default());
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use chrono_tz::Tz;
    use serde_json::{json, Value};

    use super::json::{AvailabilityDay, AvailabilitySlot, Instant, LocalDateTime, LocalTime};
    use super::*;
    use crate::domain::datetime::format_instant;
    use crate::domain::schedule::{resolve_local, Closure, OpeningHours, RangeText, WEEKDAYS};

    /// The response as the handler built it before its shapes were types: a generic JSON tree,
    /// chrono's `format` per slot, `Schedule::bookability` per slot.
    fn as_json_tree(
        listing: &Listing,
        head: &Availability,
        days: &[(NaiveDate, Vec<Slot>)],
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
            "departmentId": head.department_id,
            "workerId": head.worker_id,
            "timezone": head.timezone,
            "startDate": head.start_date.to_string(),
            "endDate": head.end_date.to_string(),
            "availability": availability,
        })
    }

    /// The listing as the typed `Availability` the handler answered before it wrote its bytes
    /// itself: `Json<Availability>` of this is what the written answer must be, byte for byte.
    fn typed(
        listing: &Listing,
        head: &Availability,
        days: &[(NaiveDate, Vec<Slot>)],
    ) -> Availability {
        let bookable = listing.schedule.bookable_at(listing.now);
        let availability = days
            .iter()
            .filter_map(|(day, slots)| {
                let listed: Vec<AvailabilitySlot> = slots
                    .iter()
                    .filter_map(|slot| {
                        let (available, remaining) = listing.judge(&bookable, slot);
                        (available || listing.include_unavailable).then_some(AvailabilitySlot {
                            time: LocalTime(slot.local),
                            date_time: LocalDateTime(slot.local),
                            starts_at: Instant(slot.starts_at),
                            ends_at: Instant(slot.ends_at),
                            available,
                            remaining,
                        })
                    })
                    .collect();
                (!listed.is_empty()).then_some(AvailabilityDay {
                    date: *day,
                    slots: listed,
                })
            })
            .collect();
        Availability {
            department_id: head.department_id,
            timezone: head.timezone.clone(),
            start_date: head.start_date,
            end_date: head.end_date,
            availability,
            worker_id: head.worker_id,
        }
    }

    /// Any `Availability` written with the writer's own pieces (`split_head`, `day_open`,
    /// `put_prefix`, `put_tail`), whatever its values.
    fn written(answer: &Availability) -> Vec<u8> {
        let head = Availability {
            availability: Vec::new(),
            timezone: answer.timezone.clone(),
            ..*answer
        };
        let (open, close) = split_head(&head).unwrap();
        let mut out = open;
        for (index, day) in answer.availability.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            out.extend(grid::day_open(day.date).unwrap());
            for (index, slot) in day.slots.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                let grid_slot = Slot {
                    local: slot.date_time.0,
                    starts_at: slot.starts_at.0,
                    ends_at: slot.ends_at.0,
                };
                assert_eq!(slot.time, LocalTime(slot.date_time.0));
                grid::put_prefix(&mut out, &grid_slot).unwrap();
                put_tail(&mut out, slot.available, slot.remaining);
            }
            out.extend(b"]}");
        }
        out.extend(close);
        out
    }

    /// The written body is the very response `Json` gives, header and bytes, over listings with
    /// every kind of value (a worker or none, both availabilities, days of different lengths,
    /// any `remaining`, no day at all, years chrono writes with a sign).
    #[tokio::test]
    async fn the_listed_answer_is_the_json_answer_byte_for_byte() {
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
        let answer = |worker_id: Option<i64>, timezone: &str, remainings: [i64; 3]| Availability {
            department_id: 7,
            timezone: timezone.to_owned(),
            start_date: "2026-03-27".parse().unwrap(),
            end_date: "2026-04-02".parse().unwrap(),
            availability: vec![
                AvailabilityDay {
                    date: "2026-03-27".parse().unwrap(),
                    slots: vec![slot("2026-03-27T08:00:00Z", true, remainings[0])],
                },
                AvailabilityDay {
                    date: "2026-03-29".parse().unwrap(),
                    slots: vec![
                        slot("2026-03-29T00:45:00Z", false, remainings[1]),
                        slot("2026-03-29T23:45:00Z", true, remainings[2]),
                    ],
                },
            ],
            worker_id,
        };
        let mut cases = vec![
            answer(Some(12), "Europe/Paris", [3, 0, 1]),
            answer(None, "America/Argentina/Buenos_Aires", [10, 9, 1234567]),
            answer(Some(i64::MAX), "Etc/GMT+5", [i64::MAX, i64::MIN, -1]),
            Availability {
                availability: Vec::new(),
                ..answer(None, "UTC", [0; 3])
            },
        ];
        // Years that chrono writes through its own formatting (five digits, signed).
        let mut far = answer(Some(1), "Pacific/Kiritimati", [1, 2, 3]);
        far.availability[0].date = NaiveDate::from_ymd_opt(10_000, 1, 1).unwrap();
        far.availability[0].slots[0] = {
            let local = NaiveDate::from_ymd_opt(-1, 12, 31)
                .and_then(|date| date.and_hms_opt(23, 45, 0))
                .unwrap();
            AvailabilitySlot {
                time: LocalTime(local),
                date_time: LocalDateTime(local),
                starts_at: Instant(local.and_utc()),
                ends_at: Instant(local.and_utc() + Duration::days(3_700_000)),
                available: true,
                remaining: 2,
            }
        };
        cases.push(far);
        for answer in &cases {
            let sized = Listed(written(answer)).into_response();
            let json = Json(answer).into_response();
            assert_eq!(sized.status(), json.status());
            assert_eq!(sized.headers(), json.headers());
            let body = |response: Response| axum::body::to_bytes(response.into_body(), usize::MAX);
            let (sized, json) = (body(sized).await.unwrap(), body(json).await.unwrap());
            assert_eq!(
                String::from_utf8_lossy(&sized),
                String::from_utf8_lossy(&json)
            );
            assert_eq!(sized, json);
        }
        let written = written(&cases[0]);
        assert!(written.len() > 400, "the sample is a real listing");
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// Two opening ranges every day, around the small hours (where clocks change) and the
    /// morning, 15-minute slots, capacity 2, one closed day, 120 minutes of notice, 4 days
    /// ahead at most.
    fn schedule_in(timezone: Tz) -> Schedule {
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
        Schedule {
            timezone,
            slot_minutes: 15,
            opening_hours: OpeningHours::parse(&hours).unwrap(),
            closures: vec![Closure {
                start_date: "2026-03-31".parse().unwrap(),
                end_date: "2026-03-31".parse().unwrap(),
                reason: None,
            }],
            min_notice_minutes: 120,
            max_advance_days: 4,
        }
    }

    /// Every listing of `schedule` over `start..=end` seen at `now` (bookings by two workers
    /// around the first hours of `start + 2 days`, and one without a worker), typed, as a JSON
    /// tree, and written from the kept grids (computed, then kept): all three agree.
    fn check_listings(schedule: &Schedule, start: NaiveDate, end: NaiveDate, now: DateTime<Utc>) {
        let days: Vec<(NaiveDate, Vec<Slot>)> = start
            .iter_days()
            .take_while(|day| *day <= end)
            .map(|day| (day, schedule.slots_on(day)))
            .filter(|(_, slots)| !slots.is_empty())
            .collect();
        let third = &days
            .iter()
            .find(|(day, _)| *day == start + Duration::days(2))
            .unwrap()
            .1;
        let (a, b) = (third[1], third[4]);
        let booked = [
            (Some(1), a.starts_at, a.ends_at),
            (Some(2), a.starts_at, a.ends_at),
            (None, b.starts_at, b.starts_at + Duration::minutes(30)),
            (
                Some(2),
                b.starts_at + Duration::minutes(40),
                b.starts_at + Duration::minutes(50),
            ),
        ];
        let load = Load::counted(booked.iter().map(|(_, start, end)| (*start, *end, 1)));
        let staff = Staff::new(
            [1, 2],
            booked
                .iter()
                .filter_map(|(worker, start, end)| worker.map(|w| (w, *start, *end))),
        );
        let grids = Grids::default();
        for include_unavailable in [false, true] {
            for (staff, worker) in [(None, None), (Some(&staff), Some(2))] {
                let listing = Listing {
                    schedule,
                    load: &load,
                    staff,
                    capacity: 2,
                    now,
                    include_unavailable,
                };
                let head = Availability {
                    department_id: 7,
                    timezone: schedule.timezone.name().to_owned(),
                    start_date: start,
                    end_date: end,
                    availability: Vec::new(),
                    worker_id: worker,
                };
                let typed = typed(&listing, &head, &days);
                let bytes = serde_json::to_vec(&typed).unwrap();
                let value = serde_json::to_value(&typed).unwrap();
                assert_eq!(value, as_json_tree(&listing, &head, &days));
                let listed = value["availability"].as_array().unwrap();
                assert!(listed.len() >= 2, "{include_unavailable} {worker:?}");
                for pass in ["computed", "kept"] {
                    let kept = grids
                        .days(schedule, start.iter_days().take_while(|day| *day <= end))
                        .unwrap();
                    let written = listing.write(&head, &kept).unwrap();
                    assert_eq!(
                        String::from_utf8_lossy(&written),
                        String::from_utf8_lossy(&bytes),
                        "{} {pass} {include_unavailable} {worker:?}",
                        schedule.timezone
                    );
                }
            }
        }
    }

    /// Europe/Paris over the last Sunday of March 2026 (02:00 does not exist on the 29th),
    /// open around the clock change, closed on the 31st, 15-minute slots, capacity 2, two
    /// workers with bookings, some slots past, some too soon, some full.
    #[test]
    fn the_typed_response_is_the_json_tree_it_replaces() {
        let schedule = schedule_in(chrono_tz::Europe::Paris);
        let start: NaiveDate = "2026-03-27".parse().unwrap();
        let end: NaiveDate = "2026-04-02".parse().unwrap();
        let now = at("2026-03-28T23:50:00Z");
        check_listings(&schedule, start, end, now);
        // The sample does reach what it means to: the gap, the full slot, the past.
        let sunday = schedule.slots_on("2026-03-29".parse().unwrap());
        assert!(sunday
            .iter()
            .all(|slot| slot.local.format("%H").to_string() != "02"));
        assert!(sunday
            .iter()
            .any(|slot| slot.starts_at < now + Duration::hours(1)));
    }

    /// The same over other zones and clock changes: a fold (New York in November, Lord Howe's
    /// half hour in April), half-hour and far offsets, both sides of the date line.
    #[test]
    fn the_written_response_is_the_typed_one_in_every_kind_of_zone() {
        let cases = [
            (chrono_tz::America::New_York, "2026-10-30", "2026-11-04"),
            (chrono_tz::Australia::Lord_Howe, "2026-04-03", "2026-04-08"),
            (chrono_tz::Asia::Kolkata, "2026-03-27", "2026-04-02"),
            (chrono_tz::Pacific::Kiritimati, "2026-03-27", "2026-04-02"),
            (chrono_tz::Pacific::Pago_Pago, "2026-03-27", "2026-04-02"),
            (chrono_tz::UTC, "2026-03-27", "2026-04-02"),
        ];
        for (timezone, start, end) in cases {
            let schedule = schedule_in(timezone);
            let start: NaiveDate = start.parse().unwrap();
            let end: NaiveDate = end.parse().unwrap();
            // Inside the second local day: some slots past, some too soon, some too far.
            let now = (start + Duration::days(1))
                .and_hms_opt(1, 50, 0)
                .and_then(|local| resolve_local(timezone, local))
                .unwrap();
            check_listings(&schedule, start, end, now);
        }
    }

    #[test]
    fn days_are_kept_by_content_and_within_their_bound() {
        let grids = Grids::default();
        let paris = schedule_in(chrono_tz::Europe::Paris);
        let start: NaiveDate = "2026-03-27".parse().unwrap();
        let week = || start.iter_days().take(7);
        let days = grids.days(&paris, week()).unwrap();
        assert_eq!(days.len(), 6, "the closed day is left out");
        assert_eq!(grids.kept().0, 6);
        // Another schedule of the same content shares the days; other content does not.
        let again = grids.days(&paris.clone(), week()).unwrap();
        assert!(days.iter().zip(&again).all(|(a, b)| Arc::ptr_eq(a, b)));
        let mut longer = paris.clone();
        longer.slot_minutes = 30;
        let other = grids.days(&longer, week()).unwrap();
        assert!(days.iter().zip(&other).all(|(a, b)| !Arc::ptr_eq(a, b)));
        assert_eq!(other[0].slots.len(), paris.slots_on(start).len() / 2);
        // Over years of days, what is kept stays within its bound.
        let all_day = always_open();
        for year in 0..4 {
            let first = start + Duration::days(365 * year);
            grids.days(&all_day, first.iter_days().take(365)).unwrap();
            let (_, bytes) = grids.kept();
            assert!(bytes <= grid::MAX_BYTES, "{bytes}");
        }
    }

    fn always_open() -> Schedule {
        crate::domain::schedule::paris_every_day("00:00", "24:00", 5)
    }
}
