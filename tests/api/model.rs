//! A seeded, stateful, model-based test of the real server. A random sequence of operations
//! (bookings, concurrent bursts over two server processes, cancellations, reschedules, edits,
//! validations, no-shows, schedule changes, credit grants) runs against one department; a small
//! model of the contract's rules, written independently of the server's code, predicts every
//! answer, and after every step the server's whole visible state is compared with the model:
//! appointments, availability, balance, ledger, and (every few steps) events.
//!
//! `MODEL_SEED=<seed>` runs one seed, `MODEL_STEPS=<n>` sets the steps per seed; a failure prints
//! the seed, the step, the operations so far and the command that replays it.

use std::collections::BTreeMap;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Utc};
use futures::future::join_all;
use futures::FutureExt;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use moncreneau::domain::schedule::WEEKDAYS;
use moncreneau::events::Envelope;
use moncreneau::routes::admin::json::LiveCreditGrantResult;
// The model has an `Appointment` of its own; the server's is its answer.
use moncreneau::routes::appointments::json::{Appointment as Answered, AppointmentEvent};
use moncreneau::routes::credits::json::{CreditTransaction, CreditTransactionPage, Credits};
use moncreneau::routes::departments::json::Department;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::helpers::{
    spawn_app_with, start_server, test_settings, TestApp, TestDatabase, ADMIN_TOKEN,
};
use crate::typed::ErrorBody;

/// Seeds run when `MODEL_SEED` is unset. Each reaches a state where a server that counts places
/// per slot start breaks a rule: 89 books over a lowered capacity after a cancellation, 115
/// edits an appointment held above a lowered capacity, 68 (in test mode) lists slots that
/// overlap appointments made before a time zone change.
const CI_SEEDS: [u64; 3] = [89, 115, 68];
/// Steps per seed when `MODEL_STEPS` is unset: the three seeds take 30 to 40 s on two cores.
const DEFAULT_STEPS: usize = 200;
/// Reading every event costs more as the run grows, so it runs every this many steps and at
/// the end.
const EVENTS_EVERY: usize = 25;
/// Ledger lines read after each step: more than a step can add (a burst adds at most 12).
const LEDGER_TAIL: usize = 20;
/// The window of local dates the model books in: far enough ahead that "past" and "too soon"
/// never apply, well inside the department's 90 days of `maxAdvanceDays`.
const FIRST_DAY_AHEAD: i64 = 20;
const WINDOW_DAYS: i64 = 3;

/// Zones without daylight saving time and their fixed offsets in minutes, so that the model turns
/// a local time into an instant by plain arithmetic.
const ZONES: [(&str, i64); 5] = [
    ("Africa/Conakry", 0),
    ("Africa/Lagos", 60),
    ("Asia/Kolkata", 330),
    ("America/Sao_Paulo", -180),
    ("Asia/Kathmandu", 345),
];
const SLOT_MINUTES: [i64; 5] = [15, 20, 30, 45, 60];
/// Opening-hour variants in minutes since local midnight: aligned, off the quarter hours, split,
/// and a short day whose few slots fill up quickly.
const HOURS: [&[(i64, i64)]; 5] = [
    &[(480, 720)],
    &[(485, 695)],
    &[(540, 630), (840, 960)],
    &[(480, 600), (630, 780)],
    &[(600, 660)],
];
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_sequences_of_operations_keep_every_invariant() {
    let seeds = match env_number::<u64>("MODEL_SEED") {
        Some(seed) => vec![seed],
        None => CI_SEEDS.to_vec(),
    };
    let steps = env_number::<usize>("MODEL_STEPS").unwrap_or(DEFAULT_STEPS);
    // Each seed makes thousands of requests with one key: the hourly limit would answer 429.
    let database = TestDatabase::create().await;
    let mut settings = test_settings(&database.url());
    settings.rate_limit_per_hour = 0;
    let app = spawn_app_with(database, settings.clone()).await;
    // A second server process on the same database takes half of every burst.
    let second = start_server(settings).await;

    for seed in seeds {
        let started = Instant::now();
        let mut run = Run::new(&app, &second, seed);
        // Any panic inside (a model assertion, a contract violation of a response) is reported
        // with the seed, the step and the operations that led there.
        let outcome = AssertUnwindSafe(run.play(steps)).catch_unwind().await;
        if let Err(payload) = outcome {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "(no message)".to_owned());
            panic!("{}", run.report(&message, steps));
        }
        println!(
            "model seed {seed}: {steps} steps, {} appointments, in {:.1?}",
            run.model.appointments.len(),
            started.elapsed()
        );
    }
}

/// The value of a numeric environment variable, if set.
fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    let text = std::env::var(name).ok()?;
    Some(
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {text:?}")),
    )
}

/// The contract's instant form, `YYYY-MM-DDTHH:MM:SSZ`.
fn instant(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The contract's local date-time form, `YYYY-MM-DDTHH:MM:SS`.
fn local(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Reads an instant of a response.
fn parse_instant(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%SZ")
        .unwrap_or_else(|_| panic!("an instant YYYY-MM-DDTHH:MM:SSZ expected, got {text:?}"))
}

/// A JSON answer read into the server's type of it; a shape that does not read fails the run.
fn typed<T: DeserializeOwned>(body: &Value, what: &str) -> T {
    T::deserialize(body).unwrap_or_else(|error| panic!("{what} does not read ({error}): {body}"))
}

/// A page of a paged listing, whatever its items.
#[derive(Deserialize)]
struct Page<T> {
    content: Vec<T>,
    last: bool,
}

/// The most intervals of `live` that contain one instant of `[start, end)`. The count only
/// rises where an interval starts, so `start` and the starts inside the range are the instants
/// to look at.
fn peak(live: &[(NaiveDateTime, NaiveDateTime)], start: NaiveDateTime, end: NaiveDateTime) -> i64 {
    std::iter::once(start)
        .chain(
            live.iter()
                .map(|(s, _)| *s)
                .filter(|s| start < *s && *s < end),
        )
        .map(|at| live.iter().filter(|(s, e)| *s <= at && at < *e).count() as i64)
        .max()
        .unwrap_or(0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Confirmed,
    Cancelled,
    Completed,
    NoShow,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Confirmed => "CONFIRMED",
            Status::Cancelled => "CANCELLED",
            Status::Completed => "COMPLETED",
            Status::NoShow => "NO_SHOW",
        }
    }
}

/// What the model knows of one appointment.
#[derive(Debug)]
struct Appointment {
    id: i64,
    start: NaiveDateTime,
    end: NaiveDateTime,
    status: Status,
    /// Successful changes so far (create, effective PATCH, cancel, validate, no-show): its events
    /// are numbered 1 to this.
    changes: i64,
}

/// A slot of the grid: its local start and its instants (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    local: NaiveDateTime,
    start: NaiveDateTime,
    end: NaiveDateTime,
}

/// The department's rules as the model sees them.
#[derive(Clone, Debug)]
struct Schedule {
    zone: usize,
    minutes: i64,
    capacity: i64,
    /// The `HOURS` variant of each weekday, Monday first.
    hours: [usize; 7],
    /// One closure, both ends inclusive, or none.
    closure: Option<(NaiveDate, NaiveDate)>,
}

impl Schedule {
    fn random(rng: &mut StdRng, days: &[NaiveDate]) -> Self {
        Self {
            zone: rng.random_range(0..ZONES.len()),
            minutes: *SLOT_MINUTES.choose(rng).expect("durations"),
            capacity: rng.random_range(1..=4),
            hours: Self::random_hours(rng),
            closure: Self::random_closure(rng, days),
        }
    }

    /// Half the time the same variant every day, else one per weekday.
    fn random_hours(rng: &mut StdRng) -> [usize; 7] {
        if rng.random_bool(0.5) {
            [rng.random_range(0..HOURS.len()); 7]
        } else {
            std::array::from_fn(|_| rng.random_range(0..HOURS.len()))
        }
    }

    /// None, or one or two days starting from the day before the window to its last day, so
    /// that both inclusive ends get tested, inside and across the window's edges.
    fn random_closure(rng: &mut StdRng, days: &[NaiveDate]) -> Option<(NaiveDate, NaiveDate)> {
        if rng.random_bool(0.4) {
            return None;
        }
        let start = days[0] + Duration::days(rng.random_range(-1..WINDOW_DAYS));
        Some((start, start + Duration::days(rng.random_range(0..=1))))
    }

    fn zone_name(&self) -> &'static str {
        ZONES[self.zone].0
    }

    /// The instant (UTC) of a local time: the zones have no DST, so it is a fixed offset.
    fn to_utc(&self, local: NaiveDateTime) -> NaiveDateTime {
        local - Duration::minutes(ZONES[self.zone].1)
    }

    /// The slots of a local date: from each opening range's start, every `minutes`, while the
    /// slot ends within the range; none on a closed day.
    fn slots_on(&self, date: NaiveDate) -> Vec<Slot> {
        if self
            .closure
            .is_some_and(|(from, to)| from <= date && date <= to)
        {
            return Vec::new();
        }
        let midnight = date.and_hms_opt(0, 0, 0).expect("midnight");
        let mut slots = Vec::new();
        for &(open, close) in HOURS[self.hours[date.weekday().num_days_from_monday() as usize]] {
            let mut start = open;
            while start + self.minutes <= close {
                let local = midnight + Duration::minutes(start);
                let utc = self.to_utc(local);
                slots.push(Slot {
                    local,
                    start: utc,
                    end: utc + Duration::minutes(self.minutes),
                });
                start += self.minutes;
            }
        }
        slots
    }

    /// The slot starting at this local time, if the schedule offers one.
    fn slot_at(&self, local: NaiveDateTime) -> Option<Slot> {
        self.slots_on(local.date())
            .into_iter()
            .find(|slot| slot.local == local)
    }

    fn hours_json(&self) -> Value {
        let days = WEEKDAYS.iter().zip(self.hours).map(|(day, variant)| {
            let ranges: Vec<Value> = HOURS[variant]
                .iter()
                .map(|(open, close)| {
                    json!({
                        "start": format!("{:02}:{:02}", open / 60, open % 60),
                        "end": format!("{:02}:{:02}", close / 60, close % 60),
                    })
                })
                .collect();
            ((*day).to_owned(), Value::Array(ranges))
        });
        Value::Object(days.collect())
    }

    fn closures_json(&self) -> Value {
        match self.closure {
            None => json!([]),
            Some((from, to)) => json!([{
                "startDate": from.to_string(), "endDate": to.to_string(), "reason": "Model closure",
            }]),
        }
    }
}

/// The model: the department's rules, its appointments and the account's credits.
struct Model {
    schedule: Schedule,
    days: Vec<NaiveDate>,
    appointments: Vec<Appointment>,
    balance: i64,
    consumed: i64,
    refunded: i64,
    /// Every ledger line: type, amount, appointment.
    ledger: Vec<(String, i64, Option<i64>)>,
}

impl Model {
    /// The intervals of the appointments that hold a place (all but the cancelled), except one.
    fn live(&self, except: Option<i64>) -> Vec<(NaiveDateTime, NaiveDateTime)> {
        self.appointments
            .iter()
            .filter(|a| a.status != Status::Cancelled && Some(a.id) != except)
            .map(|a| (a.start, a.end))
            .collect()
    }

    /// Every slot of the window, in order.
    fn slots(&self) -> Vec<Slot> {
        self.days
            .iter()
            .flat_map(|day| self.schedule.slots_on(*day))
            .collect()
    }

    /// Places left in a slot: capacity minus the most people present at one of its instants.
    fn remaining(&self, slot: &Slot, except: Option<i64>) -> i64 {
        (self.schedule.capacity - peak(&self.live(except), slot.start, slot.end)).max(0)
    }

    fn find(&self, id: i64) -> &Appointment {
        self.appointments
            .iter()
            .find(|a| a.id == id)
            .expect("a known appointment")
    }

    fn appointment(&mut self, id: i64) -> &mut Appointment {
        self.appointments
            .iter_mut()
            .find(|a| a.id == id)
            .expect("a known appointment")
    }

    /// A new confirmed appointment and the credit it consumed.
    fn add(&mut self, id: i64, slot: &Slot) {
        self.appointments.push(Appointment {
            id,
            start: slot.start,
            end: slot.end,
            status: Status::Confirmed,
            changes: 1,
        });
        self.balance -= 1;
        self.consumed += 1;
        self.ledger.push(("CONSUMPTION".to_owned(), -1, Some(id)));
    }

    /// The live appointments that overlap `[start, end)`, to explain a disagreement.
    fn explain(&self, start: NaiveDateTime, end: NaiveDateTime) -> String {
        let overlapping: Vec<String> = self
            .appointments
            .iter()
            .filter(|a| a.status != Status::Cancelled && a.start < end && start < a.end)
            .map(|a| {
                format!(
                    "#{} [{}, {}) {}",
                    a.id,
                    instant(a.start),
                    instant(a.end),
                    a.status.as_str()
                )
            })
            .collect();
        format!(
            "capacity {}; live appointments overlapping [{}, {}): {}",
            self.schedule.capacity,
            instant(start),
            instant(end),
            if overlapping.is_empty() {
                "none".to_owned()
            } else {
                overlapping.join(", ")
            }
        )
    }

    /// The availability listing the server must answer for the window, limited to the fields the
    /// model decides.
    fn availability(&self) -> Vec<Value> {
        self.days
            .iter()
            .filter_map(|day| {
                let slots: Vec<Value> = self
                    .schedule
                    .slots_on(*day)
                    .iter()
                    .map(|slot| {
                        let remaining = self.remaining(slot, None);
                        json!({
                            "time": slot.local.format("%H:%M").to_string(),
                            "dateTime": local(slot.local),
                            "startsAt": instant(slot.start),
                            "endsAt": instant(slot.end),
                            "available": remaining > 0,
                            "remaining": remaining,
                        })
                    })
                    .collect();
                (!slots.is_empty()).then(|| json!({"date": day.to_string(), "slots": slots}))
            })
            .collect()
    }
}

/// One operation of a run.
#[derive(Clone, Debug)]
enum Op {
    /// Book at a local time (a slot of the schedule or not).
    Book(NaiveDateTime),
    /// Send `requests` bookings at once, spread over the slots and the two servers.
    Burst {
        slots: Vec<Slot>,
        requests: usize,
    },
    Cancel(i64),
    Reschedule(i64, NaiveDateTime),
    /// PATCH of contact fields only (notes or name).
    Edit(i64, Value),
    Validate(i64),
    NoShow(i64),
    /// PATCH of the department: the field changed and the schedule it leads to.
    Department(&'static str, Schedule),
    Grant(i64),
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Book(at) => write!(f, "book {}", local(*at)),
            Op::Burst { slots, requests } => {
                let starts: Vec<String> = slots.iter().map(|s| local(s.local)).collect();
                write!(f, "burst of {requests} bookings on {}", starts.join(" + "))
            }
            Op::Cancel(id) => write!(f, "cancel #{id}"),
            Op::Reschedule(id, at) => write!(f, "reschedule #{id} to {}", local(*at)),
            Op::Edit(id, body) => write!(f, "patch #{id} {body}"),
            Op::Validate(id) => write!(f, "validate #{id}"),
            Op::NoShow(id) => write!(f, "no-show #{id}"),
            Op::Department(field, schedule) => {
                let value = match *field {
                    "capacity" => schedule.capacity.to_string(),
                    "slotDuration" => schedule.minutes.to_string(),
                    "timezone" => schedule.zone_name().to_owned(),
                    "openingHours" => format!("{:?}", schedule.hours),
                    _ => format!("{:?}", schedule.closure),
                };
                write!(f, "department {field} = {value}")
            }
            Op::Grant(amount) => write!(f, "grant {amount} credits"),
        }
    }
}

/// A refusal that applies to a request, and why the model expects it.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    why: String,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, why: impl Into<String>) -> Self {
        Self {
            status,
            code,
            why: why.into(),
        }
    }
}

/// What one step did, for the checks that follow it and for the log.
#[derive(Default)]
struct Outcome {
    /// The request should have written nothing (a refusal, a repeated cancel).
    writes_nothing: bool,
    /// Appointments that took a place in this step (booked or moved).
    placed: Vec<i64>,
    /// The answer, for the log.
    note: String,
}

/// One seed's run against the shared server pair.
struct Run<'a> {
    app: &'a TestApp,
    second: &'a str,
    seed: u64,
    rng: StdRng,
    model: Model,
    /// The key of the organization's mode the run works in.
    key: String,
    org_id: i64,
    livemode: bool,
    department: i64,
    step: usize,
    log: Vec<String>,
}

impl<'a> Run<'a> {
    /// The run of `seed`: its random generator and its model's first schedule (the server
    /// side is set up by `play`).
    fn new(app: &'a TestApp, second: &'a str, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let first = Utc::now().date_naive() + Duration::days(FIRST_DAY_AHEAD);
        let days: Vec<NaiveDate> = (0..WINDOW_DAYS)
            .map(|i| first + Duration::days(i))
            .collect();
        let schedule = Schedule::random(&mut rng, &days);
        Self {
            app,
            second,
            seed,
            rng,
            model: Model {
                schedule,
                days,
                appointments: Vec::new(),
                balance: 0,
                consumed: 0,
                refunded: 0,
                ledger: Vec::new(),
            },
            key: String::new(),
            org_id: 0,
            livemode: true,
            department: 0,
            step: 0,
            log: Vec::new(),
        }
    }

    /// The failure message: what broke, where, the operations so far, and how to replay.
    fn report(&self, message: &str, steps: usize) -> String {
        format!(
            "model seed {seed} failed at step {step}: {message}\n\n\
             operations so far:\n{log}\n\n\
             replay: MODEL_SEED={seed} MODEL_STEPS={steps} \
             cargo test --test api model -- --nocapture",
            seed = self.seed,
            step = self.step,
            log = self.log.join("\n"),
        )
    }

    /// Sets up, runs the steps with every check after each, then the final checks.
    async fn play(&mut self, steps: usize) {
        self.setup().await;
        self.check_state(&[], self.model.ledger.len()).await;
        for step in 1..=steps {
            self.step = step;
            let op = self.pick();
            self.log.push(format!("{step:>4} {op}"));
            // Taken before any request that could be refused: a refusal must write nothing.
            let before = match op {
                Op::Burst { .. } | Op::Department(..) | Op::Grant(_) => None,
                _ => Some(self.app.footprint().await),
            };
            let lines_before = self.model.ledger.len();
            let outcome = self.apply(&op).await;
            if let Some(line) = self.log.last_mut() {
                line.push_str(&format!(" -> {}", outcome.note));
            }
            if let (true, Some(before)) = (outcome.writes_nothing, before) {
                assert_eq!(
                    self.app.footprint().await,
                    before,
                    "{op} answered {} but wrote something",
                    outcome.note
                );
            }
            let new_lines = self.model.ledger.len() - lines_before;
            self.check_state(&outcome.placed, new_lines).await;
            if step % EVENTS_EVERY == 0 {
                self.check_events().await;
            }
        }
        self.step = steps + 1;
        self.log
            .push("     final checks: events, whole ledger".to_owned());
        self.check_events().await;
        self.check_whole_ledger().await;
        self.app.assert_ledger_consistent().await;
    }

    /// A fresh organization (so seeds never share state) and its department. Most runs work in
    /// live mode, the only mode that can start with few credits, so that 402 happens; one in
    /// four works in test mode (100 credits) so that test grants are exercised too.
    async fn setup(&mut self) {
        let test_mode = self.rng.random_ratio(1, 4);
        let initial = if test_mode {
            100
        } else {
            self.rng.random_range(5..=15)
        };
        let org = self
            .app
            .create_org(&format!("Model seed {}", self.seed), initial)
            .await;
        self.org_id = org.id;
        self.livemode = !test_mode;
        self.key = if test_mode {
            org.test_key
        } else {
            org.live_key
        };
        self.model.balance = initial;
        self.model.ledger.push(("GRANT".to_owned(), initial, None));
        let schedule = &self.model.schedule;
        let body = json!({
            "name": format!("Model {}", self.seed),
            "timezone": schedule.zone_name(),
            "slotDuration": schedule.minutes,
            "capacity": schedule.capacity,
            "openingHours": schedule.hours_json(),
            "closures": schedule.closures_json(),
            "minNoticeMinutes": 0,
            "maxAdvanceDays": 90,
        });
        self.log.push(format!(
            "   0 {} mode, {initial} credits, department {body}",
            if test_mode { "test" } else { "live" }
        ));
        let (status, created) = self
            .send(None, Method::POST, "/departments", Some(&body))
            .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "department creation: {created}"
        );
        self.department = typed::<Department>(&created, "the department").id;
    }

    /// Sends one request with the run's key to `base` (the first server when `None`); answers
    /// the status and the JSON body (`Null` when empty). The contract client checks every
    /// response against openapi.json.
    async fn send(
        &self,
        base: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let base = base.unwrap_or(&self.app.address);
        let mut request = self
            .app
            .client
            .request(method, format!("{base}/api/v1{path}"))
            .header("X-API-Key", &self.key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{path} answered {status} with a non-JSON body {text}"))
        };
        (status, body)
    }

    /// A GET that must answer 200; its JSON body.
    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(None, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// Every item of a paged listing, following the pages.
    async fn all_pages<T: DeserializeOwned>(&self, path: &str) -> Vec<T> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        for page in 0..1000 {
            let body = self
                .get(&format!("{path}{separator}page={page}&size=100"))
                .await;
            let page: Page<T> = typed(&body, path);
            let empty = page.content.is_empty();
            items.extend(page.content);
            if page.last || empty {
                break;
            }
        }
        items
    }

    /// A slot of the window to book or move to: half the time one where someone already is, so
    /// that places run out and appointments booked on older grids get in the way.
    fn pick_slot(&mut self) -> Option<Slot> {
        let slots = self.model.slots();
        if self.rng.random_bool(0.5) {
            let live = self.model.live(None);
            let busy: Vec<&Slot> = slots
                .iter()
                .filter(|slot| peak(&live, slot.start, slot.end) > 0)
                .collect();
            if let Some(slot) = busy.choose(&mut self.rng) {
                return Some(**slot);
            }
        }
        slots.choose(&mut self.rng).copied()
    }

    /// Any local time of the window on the five-minute grid, between 06:00 and 20:00: often
    /// closed or misaligned, sometimes a slot.
    fn random_time(&mut self) -> NaiveDateTime {
        let day = *self.model.days.choose(&mut self.rng).expect("days");
        day.and_hms_opt(0, 0, 0).expect("midnight")
            + Duration::minutes(self.rng.random_range(72..240) * 5)
    }

    /// An appointment: usually a confirmed one (most operations need it), sometimes any, so that
    /// refusals of finished or cancelled ones are exercised.
    fn pick_appointment(&mut self, confirmed_odds: f64) -> Option<i64> {
        let confirmed: Vec<i64> = self
            .model
            .appointments
            .iter()
            .filter(|a| a.status == Status::Confirmed)
            .map(|a| a.id)
            .collect();
        if !confirmed.is_empty() && self.rng.random_bool(confirmed_odds) {
            return confirmed.choose(&mut self.rng).copied();
        }
        let all: Vec<i64> = self.model.appointments.iter().map(|a| a.id).collect();
        all.choose(&mut self.rng).copied()
    }

    /// A booking of a slot, or of a random time when the window offers none.
    fn pick_booking(&mut self) -> Op {
        match self.pick_slot() {
            Some(slot) => Op::Book(slot.local),
            None => Op::Book(self.random_time()),
        }
    }

    /// The next operation. Weights in percent: bookings 35 (5 of them at any time, often not a
    /// slot), bursts 5, cancel 10, reschedule 10, contact edit 8, validate 4, no-show 3,
    /// department changes 20, grants 5. An operation on an appointment before any exists books.
    fn pick(&mut self) -> Op {
        let roll = self.rng.random_range(0..100);
        let appointment_op =
            |run: &mut Self, odds: f64, make: fn(i64) -> Op| match run.pick_appointment(odds) {
                Some(id) => make(id),
                None => run.pick_booking(),
            };
        let mut schedule = self.model.schedule.clone();
        match roll {
            0..=29 => self.pick_booking(),
            30..=34 => Op::Book(self.random_time()),
            35..=39 => {
                let requests = self.rng.random_range(5..=12);
                // Two slots only when every request has its credit: else which slot the last
                // credits go to depends on timing, and a replay of the seed would diverge.
                let wanted = if self.model.balance >= requests as i64 {
                    self.rng.random_range(1..=2)
                } else {
                    1
                };
                let mut slots: Vec<Slot> = Vec::new();
                for _ in 0..wanted {
                    if let Some(slot) = self.pick_slot().filter(|s| !slots.contains(s)) {
                        slots.push(slot);
                    }
                }
                if slots.is_empty() {
                    Op::Book(self.random_time())
                } else {
                    Op::Burst { slots, requests }
                }
            }
            40..=49 => appointment_op(self, 0.8, Op::Cancel),
            50..=59 => match self.pick_appointment(0.85) {
                None => self.pick_booking(),
                Some(id) => {
                    let current = self.model.find(id).start;
                    // A move to its own start is a no-op whatever the schedule: not a reschedule.
                    let mut target = None;
                    for _ in 0..10 {
                        let candidate = if self.rng.random_bool(0.8) {
                            self.pick_slot().map(|s| s.local)
                        } else {
                            Some(self.random_time())
                        };
                        if let Some(at) =
                            candidate.filter(|at| self.model.schedule.to_utc(*at) != current)
                        {
                            target = Some(at);
                            break;
                        }
                    }
                    match target {
                        Some(at) => Op::Reschedule(id, at),
                        None => self.pick_booking(),
                    }
                }
            },
            60..=67 => match self.pick_appointment(0.8) {
                None => self.pick_booking(),
                Some(id) if self.rng.random_bool(0.7) => {
                    Op::Edit(id, json!({"notes": format!("Note of step {}", self.step)}))
                }
                Some(id) => Op::Edit(id, json!({"name": format!("Person {}", self.step)})),
            },
            68..=71 => appointment_op(self, 0.8, Op::Validate),
            72..=74 => appointment_op(self, 0.8, Op::NoShow),
            75..=80 => {
                schedule.capacity = self.rng.random_range(1..=4);
                Op::Department("capacity", schedule)
            }
            81..=84 => {
                schedule.minutes = *SLOT_MINUTES.choose(&mut self.rng).expect("durations");
                Op::Department("slotDuration", schedule)
            }
            85..=88 => {
                schedule.hours = Schedule::random_hours(&mut self.rng);
                Op::Department("openingHours", schedule)
            }
            89..=91 => {
                schedule.closure = Schedule::random_closure(&mut self.rng, &self.model.days);
                Op::Department("closures", schedule)
            }
            92..=94 => {
                schedule.zone = self.rng.random_range(0..ZONES.len());
                Op::Department("timezone", schedule)
            }
            _ => Op::Grant(self.rng.random_range(1..=8)),
        }
    }

    /// Checks a refused answer against the refusals that apply (any of them will do: the
    /// contract does not order them).
    fn expect_refusal(
        &self,
        op: &Op,
        status: StatusCode,
        body: &Value,
        allowed: &[Refusal],
    ) -> Outcome {
        // Read leniently: a success where a refusal was due is reported by the assertion.
        let code = ErrorBody::deserialize(body)
            .map(|error| error.error.code)
            .unwrap_or_default();
        let reasons: Vec<String> = allowed
            .iter()
            .map(|r| format!("{} {} ({})", r.status.as_u16(), r.code, r.why))
            .collect();
        assert!(
            allowed.iter().any(|r| r.status == status && r.code == code),
            "{op}: expected one of [{}], got {status} {body}",
            reasons.join("; ")
        );
        Outcome {
            writes_nothing: true,
            placed: Vec::new(),
            note: format!("{} {code}", status.as_u16()),
        }
    }

    /// Checks an appointment in a response against the model's.
    fn expect_appointment(&self, op: &Op, body: &Value, id: i64) {
        let expected = self.model.find(id);
        let answer: Answered = typed(body, "the appointment");
        assert_eq!(
            (
                answer.id,
                answer.status.as_str(),
                parse_instant(&answer.starts_at),
                parse_instant(&answer.ends_at),
            ),
            (
                expected.id,
                expected.status.as_str(),
                expected.start,
                expected.end
            ),
            "{op}: the answer differs from the model's appointment"
        );
    }

    /// Sends the operation's requests, checks each answer against the model's prediction, and
    /// brings the model up to date.
    async fn apply(&mut self, op: &Op) -> Outcome {
        match op {
            Op::Book(at) => self.book(op, *at).await,
            Op::Burst { slots, requests } => self.burst(op, slots, *requests).await,
            Op::Cancel(id) => self.cancel(op, *id).await,
            Op::Reschedule(id, at) => self.reschedule(op, *id, *at).await,
            Op::Edit(id, body) => self.edit(op, *id, body).await,
            Op::Validate(id) => self.conclude(op, *id, "validate", Status::Completed).await,
            Op::NoShow(id) => self.conclude(op, *id, "no-show", Status::NoShow).await,
            Op::Department(field, schedule) => self.change_department(op, field, schedule).await,
            Op::Grant(amount) => self.grant(op, *amount).await,
        }
    }

    /// Accepted iff the time is a slot of the current schedule, some place is free at every
    /// instant of it, and a credit is left.
    async fn book(&mut self, op: &Op, at: NaiveDateTime) -> Outcome {
        let slot = self.model.schedule.slot_at(at);
        let mut refusals = Vec::new();
        match &slot {
            None => refusals.push(Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "SLOT_NOT_OFFERED",
                "not a slot of the current schedule",
            )),
            Some(slot) if self.model.remaining(slot, None) == 0 => refusals.push(Refusal::new(
                StatusCode::CONFLICT,
                "SLOT_NOT_AVAILABLE",
                self.model.explain(slot.start, slot.end),
            )),
            Some(_) => {}
        }
        if self.model.balance == 0 {
            refusals.push(Refusal::new(
                StatusCode::PAYMENT_REQUIRED,
                "INSUFFICIENT_CREDITS",
                "balance 0",
            ));
        }
        let body = json!({
            "departmentId": self.department,
            "dateTime": local(at),
            "name": format!("Person {}", self.step),
        });
        let (status, answer) = self
            .send(None, Method::POST, "/appointments", Some(&body))
            .await;
        let (Some(slot), true) = (slot, refusals.is_empty()) else {
            return self.expect_refusal(op, status, &answer, &refusals);
        };
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{op}: the model accepts it ({}), the server answered {answer}",
            self.model.explain(slot.start, slot.end)
        );
        let id = typed::<Answered>(&answer, "the appointment").id;
        self.model.add(id, &slot);
        self.expect_appointment(op, &answer, id);
        Outcome {
            placed: vec![id],
            note: format!("201 #{id}"),
            ..Outcome::default()
        }
    }

    /// Sends the bookings at once, half to each server; the order they win in is the servers'
    /// business, so the check is that the result is sound: no slot over what it had free, no
    /// credit spent twice, and every refusal justified by the state they leave.
    async fn burst(&mut self, op: &Op, slots: &[Slot], requests: usize) -> Outcome {
        let free: Vec<i64> = slots
            .iter()
            .map(|s| self.model.remaining(s, None))
            .collect();
        let balance = self.model.balance;
        let this = &*self;
        // Request i goes to server i % 2 and to slot (i / 2) % n: each slot gets requests
        // from both servers.
        let target = |i: usize| (i / 2) % slots.len();
        let answers = join_all((0..requests).map(|i| {
            let slot = slots[target(i)];
            let base = if i % 2 == 0 { None } else { Some(this.second) };
            let body = json!({
                "departmentId": this.department, "dateTime": local(slot.local),
                "name": format!("Burst {} {i}", this.step),
            });
            async move {
                let (status, answer) = this
                    .send(base, Method::POST, "/appointments", Some(&body))
                    .await;
                (target(i), status, answer)
            }
        }))
        .await;

        let mut created: Vec<(i64, usize)> = Vec::new();
        let mut full = vec![false; slots.len()];
        let mut broke = false;
        for (target, status, answer) in &answers {
            let code = (*status != StatusCode::CREATED)
                .then(|| typed::<ErrorBody>(answer, "the refusal").error.code);
            match (*status, code.as_deref()) {
                (StatusCode::CREATED, _) => {
                    created.push((typed::<Answered>(answer, "the appointment").id, *target));
                }
                (StatusCode::CONFLICT, Some("SLOT_NOT_AVAILABLE")) => full[*target] = true,
                (StatusCode::PAYMENT_REQUIRED, Some("INSUFFICIENT_CREDITS")) => broke = true,
                _ => panic!("{op}: unexpected answer {status} {answer}"),
            }
        }
        // By slot, then id: the appointments of one slot are alike, so the model's order (which
        // later picks index into) does not depend on which request won.
        created.sort_by_key(|(id, target)| (*target, *id));
        for (id, target) in &created {
            self.model.add(*id, &slots[*target]);
        }
        let answer_of = |id: i64| {
            answers
                .iter()
                .find(|(_, status, a)| {
                    *status == StatusCode::CREATED
                        && typed::<Answered>(a, "the appointment").id == id
                })
                .map(|(_, _, a)| a.clone())
                .expect("the answer that created it")
        };
        for (id, _) in &created {
            self.expect_appointment(op, &answer_of(*id), *id);
        }
        let per_slot: Vec<i64> = (0..slots.len())
            .map(|i| created.iter().filter(|(_, t)| *t == i).count() as i64)
            .collect();
        for (i, slot) in slots.iter().enumerate() {
            let asked = (0..requests).filter(|r| target(*r) == i).count() as i64;
            // Two-slot bursts have a credit for every request (see `pick`): each slot takes
            // what it has room for; a one-slot burst is bounded by the credits as well.
            let expected = if slots.len() == 1 {
                free[0].min(asked).min(balance)
            } else {
                free[i].min(asked)
            };
            assert_eq!(
                per_slot[i],
                expected,
                "{op}: bookings accepted for {} ({asked} asked, {} places free, {balance} credits)",
                local(slot.local),
                free[i]
            );
            if full[i] {
                assert_eq!(
                    self.model.remaining(slot, None),
                    0,
                    "{op}: a booking of {} was refused as full, but a place is left: {}",
                    local(slot.local),
                    self.model.explain(slot.start, slot.end)
                );
            }
        }
        assert!(
            !broke || self.model.balance == 0,
            "{op}: a booking was refused for credits, but {} are left",
            self.model.balance
        );
        Outcome {
            placed: created.iter().map(|(id, _)| *id).collect(),
            note: format!("{per_slot:?} created, full {full:?}, 402 {broke}"),
            ..Outcome::default()
        }
    }

    /// A confirmed appointment is cancelled and refunded; a cancelled one answers again and
    /// changes nothing; a finished one cannot be cancelled.
    async fn cancel(&mut self, op: &Op, id: i64) -> Outcome {
        let current = self.model.find(id).status;
        let (status, answer) = self
            .send(None, Method::DELETE, &format!("/appointments/{id}"), None)
            .await;
        match current {
            Status::Completed | Status::NoShow => {
                let refusal = Refusal::new(
                    StatusCode::CONFLICT,
                    "INVALID_STATUS_TRANSITION",
                    format!("#{id} is {}", current.as_str()),
                );
                self.expect_refusal(op, status, &answer, &[refusal])
            }
            Status::Cancelled => {
                assert_eq!(status, StatusCode::OK, "{op}: a second cancel: {answer}");
                self.expect_appointment(op, &answer, id);
                Outcome {
                    writes_nothing: true,
                    note: "200 again".to_owned(),
                    ..Outcome::default()
                }
            }
            Status::Confirmed => {
                assert_eq!(status, StatusCode::OK, "{op}: {answer}");
                let appointment = self.model.appointment(id);
                appointment.status = Status::Cancelled;
                appointment.changes += 1;
                // Every appointment of the window starts weeks ahead: the credit comes back.
                self.model.balance += 1;
                self.model.refunded += 1;
                self.model.ledger.push(("REFUND".to_owned(), 1, Some(id)));
                self.expect_appointment(op, &answer, id);
                Outcome {
                    note: "200".to_owned(),
                    ..Outcome::default()
                }
            }
        }
    }

    /// Like a booking of the new slot, where the appointment itself takes no place.
    async fn reschedule(&mut self, op: &Op, id: i64, at: NaiveDateTime) -> Outcome {
        let current = self.model.find(id).status;
        let slot = self.model.schedule.slot_at(at);
        let mut refusals = Vec::new();
        if current != Status::Confirmed {
            refusals.push(Refusal::new(
                StatusCode::CONFLICT,
                "INVALID_STATUS_TRANSITION",
                format!("#{id} is {}", current.as_str()),
            ));
        }
        match &slot {
            None => refusals.push(Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "SLOT_NOT_OFFERED",
                "not a slot of the current schedule",
            )),
            Some(slot) if self.model.remaining(slot, Some(id)) == 0 => refusals.push(Refusal::new(
                StatusCode::CONFLICT,
                "SLOT_NOT_AVAILABLE",
                format!(
                    "#{id} not counted; {}",
                    self.model.explain(slot.start, slot.end)
                ),
            )),
            Some(_) => {}
        }
        let (status, answer) = self
            .send(
                None,
                Method::PATCH,
                &format!("/appointments/{id}"),
                Some(&json!({"dateTime": local(at)})),
            )
            .await;
        let (Some(slot), true) = (slot, refusals.is_empty()) else {
            return self.expect_refusal(op, status, &answer, &refusals);
        };
        assert_eq!(
            status,
            StatusCode::OK,
            "{op}: the model accepts it (#{id} not counted; {}), the server answered {answer}",
            self.model.explain(slot.start, slot.end)
        );
        let appointment = self.model.appointment(id);
        appointment.start = slot.start;
        appointment.end = slot.end;
        appointment.changes += 1;
        self.expect_appointment(op, &answer, id);
        Outcome {
            placed: vec![id],
            note: "200".to_owned(),
            ..Outcome::default()
        }
    }

    /// A contact change keeps the appointment where it is, even above a lowered capacity.
    async fn edit(&mut self, op: &Op, id: i64, body: &Value) -> Outcome {
        let current = self.model.find(id).status;
        let (status, answer) = self
            .send(
                None,
                Method::PATCH,
                &format!("/appointments/{id}"),
                Some(body),
            )
            .await;
        if current != Status::Confirmed {
            let refusal = Refusal::new(
                StatusCode::CONFLICT,
                "INVALID_STATUS_TRANSITION",
                format!("#{id} is {}", current.as_str()),
            );
            return self.expect_refusal(op, status, &answer, &[refusal]);
        }
        let appointment = self.model.appointment(id);
        let (start, end) = (appointment.start, appointment.end);
        assert_eq!(
            status,
            StatusCode::OK,
            "{op}: a contact change of a confirmed appointment ({}) answered {answer}",
            self.model.explain(start, end)
        );
        self.model.appointment(id).changes += 1;
        self.expect_appointment(op, &answer, id);
        Outcome {
            note: "200".to_owned(),
            ..Outcome::default()
        }
    }

    /// Validate or no-show: only a confirmed appointment moves, and no credit moves.
    async fn conclude(&mut self, op: &Op, id: i64, action: &str, next: Status) -> Outcome {
        let current = self.model.find(id).status;
        let (status, answer) = self
            .send(
                None,
                Method::POST,
                &format!("/appointments/{id}/{action}"),
                None,
            )
            .await;
        if current != Status::Confirmed {
            let refusal = Refusal::new(
                StatusCode::CONFLICT,
                "INVALID_STATUS_TRANSITION",
                format!("#{id} is {}", current.as_str()),
            );
            return self.expect_refusal(op, status, &answer, &[refusal]);
        }
        assert_eq!(status, StatusCode::OK, "{op}: {answer}");
        let appointment = self.model.appointment(id);
        appointment.status = next;
        appointment.changes += 1;
        self.expect_appointment(op, &answer, id);
        Outcome {
            note: "200".to_owned(),
            ..Outcome::default()
        }
    }

    /// PATCHes one field of the department; the model's schedule follows.
    async fn change_department(&mut self, op: &Op, field: &str, schedule: &Schedule) -> Outcome {
        let value = match field {
            "capacity" => json!(schedule.capacity),
            "slotDuration" => json!(schedule.minutes),
            "timezone" => json!(schedule.zone_name()),
            "openingHours" => schedule.hours_json(),
            _ => schedule.closures_json(),
        };
        let mut body = serde_json::Map::new();
        body.insert(field.to_owned(), value);
        let (status, answer) = self
            .send(
                None,
                Method::PATCH,
                &format!("/departments/{}", self.department),
                Some(&Value::Object(body)),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{op}: {answer}");
        let department: Department = typed(&answer, "the department");
        assert_eq!(
            (
                i64::from(department.capacity),
                i64::from(department.slot_duration),
                department.timezone.as_str(),
            ),
            (schedule.capacity, schedule.minutes, schedule.zone_name()),
            "{op}: the department answered {answer}"
        );
        // Existing appointments keep their instants: nothing of theirs changes in the model.
        self.model.schedule = schedule.clone();
        Outcome {
            note: "200".to_owned(),
            ..Outcome::default()
        }
    }

    /// Test credits come from the organization itself, live ones from the operator.
    async fn grant(&mut self, op: &Op, amount: i64) -> Outcome {
        let body = json!({"amount": amount, "reason": format!("Model step {}", self.step)});
        let (status, answer) = if self.livemode {
            let response = self
                .app
                .client
                .post(
                    self.app
                        .url(&format!("/admin/organizations/{}/credits", self.org_id)),
                )
                .bearer_auth(ADMIN_TOKEN)
                .json(&body)
                .send()
                .await
                .expect("request sent");
            let status = response.status();
            (status, response.json::<Value>().await.expect("JSON body"))
        } else {
            self.send(None, Method::POST, "/credits/grants", Some(&body))
                .await
        };
        let expected = if self.livemode {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        assert_eq!(status, expected, "{op}: {answer}");
        self.model.balance += amount;
        self.model.ledger.push(("GRANT".to_owned(), amount, None));
        let available = if self.livemode {
            typed::<LiveCreditGrantResult>(&answer, "the live grant").available_credits
        } else {
            typed::<Credits>(&answer, "the grant").available_credits
        };
        assert_eq!(available, self.model.balance, "{op}: {answer}");
        Outcome {
            note: format!("balance {}", self.model.balance),
            ..Outcome::default()
        }
    }

    /// Everything the server shows after a step, against the model; `placed` appointments took
    /// a place in this step, which added `new_lines` to the ledger.
    async fn check_state(&self, placed: &[i64], new_lines: usize) {
        self.check_appointments(placed).await;
        self.check_availability().await;
        self.check_credits(new_lines).await;
    }

    /// The department's appointments as listed: no appointment placed in this step shares an
    /// instant with `capacity` others, and the list is the model's, status and instants.
    async fn check_appointments(&self, placed: &[i64]) {
        let listed: Vec<Answered> = self
            .all_pages(&format!(
                "/appointments?departmentId={}&sort=createdAt",
                self.department
            ))
            .await;
        let server: BTreeMap<i64, (String, NaiveDateTime, NaiveDateTime)> = listed
            .iter()
            .map(|a| {
                (
                    a.id,
                    (
                        a.status.as_str().to_owned(),
                        parse_instant(&a.starts_at),
                        parse_instant(&a.ends_at),
                    ),
                )
            })
            .collect();
        // Judged on the server's own list first, so that an overbooking reads as one.
        let live: Vec<(NaiveDateTime, NaiveDateTime)> = server
            .values()
            .filter(|(status, _, _)| status != "CANCELLED")
            .map(|(_, start, end)| (*start, *end))
            .collect();
        let capacity = self.model.schedule.capacity;
        for id in placed {
            if let Some((_, start, end)) = server.get(id) {
                let people = peak(&live, *start, *end);
                assert!(
                    people <= capacity,
                    "overbooking: #{id} [{}, {}) was placed where {people} people are at once, \
                     capacity {capacity}; the server lists {live:?}",
                    instant(*start),
                    instant(*end)
                );
            }
        }
        let model: BTreeMap<i64, (String, NaiveDateTime, NaiveDateTime)> = self
            .model
            .appointments
            .iter()
            .map(|a| (a.id, (a.status.as_str().to_owned(), a.start, a.end)))
            .collect();
        assert_same_by_id(
            &model,
            &server,
            "the server's appointments differ from the model's",
        );
    }

    /// Every slot of the window, with `includeUnavailable=true`, exactly as the model predicts.
    async fn check_availability(&self) {
        let days = &self.model.days;
        let body = self
            .get(&format!(
                "/departments/{}/availability?startDate={}&endDate={}&includeUnavailable=true",
                self.department,
                days[0],
                days[days.len() - 1]
            ))
            .await;
        let fields = [
            "time",
            "dateTime",
            "startsAt",
            "endsAt",
            "available",
            "remaining",
        ];
        let server: Vec<Value> = body["availability"]
            .as_array()
            .expect("availability")
            .iter()
            .map(|day| {
                let slots: Vec<Value> = day["slots"]
                    .as_array()
                    .expect("slots")
                    .iter()
                    .map(|slot| {
                        Value::Object(
                            fields
                                .iter()
                                .map(|f| ((*f).to_owned(), slot[*f].clone()))
                                .collect(),
                        )
                    })
                    .collect();
                json!({"date": day["date"], "slots": slots})
            })
            .collect();
        let model = self.model.availability();
        if server == model {
            return;
        }
        // The first slot that differs, with the appointments around it.
        let flatten = |days: &[Value]| -> Vec<Value> {
            days.iter()
                .flat_map(|day| {
                    day["slots"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|slot| json!({"date": day["date"], "slot": slot}))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let (server_slots, model_slots) = (flatten(&server), flatten(&model));
        let index = (0..server_slots.len().max(model_slots.len()))
            .find(|i| server_slots.get(*i) != model_slots.get(*i))
            .unwrap_or(0);
        let context = model_slots
            .get(index)
            .map(|s| {
                self.model.explain(
                    parse_instant(s["slot"]["startsAt"].as_str().unwrap_or_default()),
                    parse_instant(s["slot"]["endsAt"].as_str().unwrap_or_default()),
                )
            })
            .unwrap_or_default();
        panic!(
            "availability differs from the model at slot {index}:\n  \
             model  {}\n  server {}\n  {context}",
            model_slots.get(index).unwrap_or(&Value::Null),
            server_slots.get(index).unwrap_or(&Value::Null),
        );
    }

    /// The balance and its counters, and the newest ledger lines: each one's balance is the
    /// previous one's plus its amount, and they are the lines the model expects.
    async fn check_credits(&self, new_lines: usize) {
        let credits: Credits = typed(&self.get("/credits").await, "the credits");
        assert_eq!(
            (
                credits.available_credits,
                credits.consumed_credits,
                credits.refunded_credits,
            ),
            (self.model.balance, self.model.consumed, self.model.refunded),
            "credits (available, consumed, refunded) differ from the model"
        );
        // The newest lines are enough: a step adds at most a dozen (a burst), older ones were
        // checked by earlier steps, and the whole ledger is checked at the end of the run.
        let page = self
            .get(&format!("/credits/transactions?page=0&size={LEDGER_TAIL}"))
            .await;
        let total = self.model.ledger.len();
        let page: CreditTransactionPage = typed(&page, "the ledger page");
        assert_eq!(
            page.total_elements, total as i64,
            "ledger lines: the model expects {total}"
        );
        let mut lines = page.content;
        lines.reverse();
        self.check_ledger(&lines, total == lines.len(), new_lines);
    }

    /// `lines` (chronological, the newest last) chain up and end at the model's balance, and
    /// their newest `new` are the model's newest (in any order: concurrent bookings take their
    /// lines in an order the model cannot know).
    fn check_ledger(&self, lines: &[CreditTransaction], from_the_first: bool, new: usize) {
        if let (true, Some(first)) = (from_the_first, lines.first()) {
            assert_eq!(
                first.balance_after, first.amount,
                "the first ledger line does not start from 0: {first:?}"
            );
        }
        for pair in lines.windows(2) {
            assert_eq!(
                Some(pair[1].balance_after),
                pair[0].balance_after.checked_add(pair[1].amount),
                "the ledger does not add up between {:?} and {:?}",
                pair[0],
                pair[1]
            );
        }
        if let Some(last) = lines.last() {
            assert_eq!(
                last.balance_after, self.model.balance,
                "the newest ledger line is not the balance: {last:?}"
            );
        }
        assert!(
            new <= lines.len(),
            "{new} new ledger lines, {} read",
            lines.len()
        );
        let mut server: Vec<(String, i64, Option<i64>)> = lines[lines.len() - new..]
            .iter()
            .map(|line| {
                (
                    typed::<String>(&json!(line.r#type), "a ledger line's type"),
                    line.amount,
                    line.appointment_id,
                )
            })
            .collect();
        let mut model = self.model.ledger[self.model.ledger.len() - new..].to_vec();
        server.sort();
        model.sort();
        assert_eq!(
            server, model,
            "the newest ledger lines differ from the model's"
        );
    }

    /// The whole ledger, from its first line.
    async fn check_whole_ledger(&self) {
        let mut lines: Vec<CreditTransaction> = self.all_pages("/credits/transactions").await;
        lines.reverse();
        assert_eq!(lines.len(), self.model.ledger.len(), "ledger lines");
        self.check_ledger(&lines, true, lines.len());
    }

    /// Each appointment's events are numbered 1 to its number of changes, without gaps.
    async fn check_events(&self) {
        let mut sequences: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        // Every event reads as the envelope; an appointment's data as the appointment's event.
        for event in self.all_pages::<Envelope<Value>>("/events").await {
            if event.kind.starts_with("appointment.") {
                let data: AppointmentEvent = typed(&event.data, &event.kind);
                let sequence = event
                    .sequence
                    .unwrap_or_else(|| panic!("an appointment event without sequence: {event:?}"));
                sequences
                    .entry(data.object.appointment.id)
                    .or_default()
                    .push(i64::from(sequence));
            }
        }
        for list in sequences.values_mut() {
            list.sort();
        }
        let expected: BTreeMap<i64, Vec<i64>> = self
            .model
            .appointments
            .iter()
            .map(|a| (a.id, (1..=a.changes).collect()))
            .collect();
        assert_same_by_id(
            &expected,
            &sequences,
            "event sequences differ from the model's changes",
        );
    }
}

/// Panics with `what` and one line per appointment id whose value differs between the model's
/// `expected` map and what the server shows.
fn assert_same_by_id<V: PartialEq + fmt::Debug>(
    expected: &BTreeMap<i64, V>,
    shown: &BTreeMap<i64, V>,
    what: &str,
) {
    if expected == shown {
        return;
    }
    let differences: Vec<String> = expected
        .keys()
        .chain(shown.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|id| expected.get(id) != shown.get(id))
        .map(|id| {
            format!(
                "#{id}: model {:?}, server {:?}",
                expected.get(id),
                shown.get(id)
            )
        })
        .collect();
    panic!("{what}:\n{}", differences.join("\n"));
}
