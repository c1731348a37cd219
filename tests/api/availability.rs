//! Availability: bookable slots only by default, DST-correct, and in agreement with booking.

use chrono::{DateTime, NaiveDate, Utc};
use moncreneau::routes::appointments::json::Appointment;
use moncreneau::routes::availability::json::{Availability, AvailabilitySlot};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{day_ahead, slot, spawn_app, start_server, test_settings, TestApp};
use crate::typed::{local_time, read, ErrorBody, ReadReply, Reply};

/// The availability of `department` for `query`, read whole.
async fn availability(app: &TestApp, key: &str, department: i64, query: &str) -> Reply {
    app.get(
        &format!("/departments/{department}/availability?{query}"),
        key,
    )
    .reply()
    .await
}

fn slots_of(listing: &Availability) -> Vec<&AvailabilitySlot> {
    listing
        .availability
        .iter()
        .flat_map(|day| &day.slots)
        .collect()
}

fn times(slots: &[AvailabilitySlot]) -> Vec<String> {
    slots.iter().map(local_time).collect()
}

fn instant(text: &str) -> DateTime<Utc> {
    text.parse().expect("an RFC 3339 instant")
}

#[tokio::test]
async fn the_listing_has_the_contract_shape_and_omits_full_and_closed_slots() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let monday_only = json!({"openingHours": {"monday": [{"start": "08:00", "end": "09:00"}, {"start": "13:00", "end": "14:00"}]}, "capacity": 1});
    let department = app.create_department_with(&key, monday_only).await;
    let monday = crate::helpers::next_weekday(chrono::Weekday::Mon);
    let query = format!(
        "startDate={}&endDate={}",
        monday - chrono::Duration::days(1),
        monday + chrono::Duration::days(1)
    );

    let reply = availability(&app, &key, department, &query).await;
    let listing: Availability = reply.json(StatusCode::OK);
    assert_eq!(
        (listing.department_id, listing.timezone.as_str()),
        (department, "Africa/Conakry")
    );
    let dates: Vec<_> = listing.availability.iter().map(|day| day.date).collect();
    assert_eq!(dates, [monday], "only Monday has slots");
    let slots = &listing.availability[0].slots;
    assert_eq!(times(slots), ["08:00", "08:30", "13:00", "13:30"]);
    // The exact text of a slot on the wire, which the typed reading does not pin down.
    let raw: Value = reply.parse();
    assert_eq!(
        raw["availability"][0]["slots"][0],
        json!({"time": "08:00", "dateTime": format!("{monday}T08:00:00"), "startsAt": format!("{monday}T08:00:00Z"),
               "endsAt": format!("{monday}T08:30:00Z"), "available": true, "remaining": 1})
    );

    let _: Appointment = app
        .book(&key, department, &format!("{monday}T08:30:00"))
        .reply()
        .await
        .json(StatusCode::CREATED);
    let listing: Availability = availability(&app, &key, department, &query)
        .await
        .json(StatusCode::OK);
    assert_eq!(
        times(&listing.availability[0].slots),
        ["08:00", "13:00", "13:30"],
        "the full slot is no longer listed"
    );

    let everything: Availability = availability(
        &app,
        &key,
        department,
        &format!("{query}&includeUnavailable=true"),
    )
    .await
    .json(StatusCode::OK);
    let full = slots_of(&everything)
        .into_iter()
        .find(|s| local_time(s) == "08:30")
        .expect("the full slot is listed with includeUnavailable");
    assert_eq!((full.available, full.remaining), (false, 0));
}

#[tokio::test]
async fn past_and_too_soon_slots_show_only_with_include_unavailable() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app
        .create_department_with(&key, json!({"minNoticeMinutes": 2 * 1440}))
        .await;
    let query = format!("startDate={}&endDate={}", day_ahead(-1), day_ahead(3));
    let bookable: Availability = availability(&app, &key, department, &query)
        .await
        .json(StatusCode::OK);
    let first_day = bookable.availability.first().map(|day| day.date);
    assert!(
        first_day >= Some(day_ahead(2)),
        "nothing inside the notice is offered: {first_day:?}"
    );

    let all: Availability = availability(
        &app,
        &key,
        department,
        &format!("{query}&includeUnavailable=true"),
    )
    .await
    .json(StatusCode::OK);
    let yesterday = &all.availability[0];
    assert_eq!(yesterday.date, day_ahead(-1));
    assert!(yesterday.slots.iter().all(|s| !s.available));
}

#[tokio::test]
async fn every_listed_slot_is_bookable_and_every_refused_slot_is_unlisted() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let closed = day_ahead(3);
    let department = app
        .create_department_with(
            &key,
            json!({"capacity": 1, "slotDuration": 45, "maxAdvanceDays": 4,
                   "openingHours": {"monday": [{"start": "08:00", "end": "10:00"}], "tuesday": [{"start": "08:00", "end": "10:00"}],
                                    "wednesday": [{"start": "08:00", "end": "10:00"}], "thursday": [{"start": "08:00", "end": "10:00"}],
                                    "friday": [{"start": "08:00", "end": "10:00"}], "saturday": [{"start": "08:00", "end": "10:00"}],
                                    "sunday": [{"start": "08:00", "end": "10:00"}]},
                   "closures": [{"startDate": closed.to_string(), "endDate": closed.to_string()}]}),
        )
        .await;
    let query = format!("startDate={}&endDate={}", day_ahead(0), day_ahead(8));
    let listing: Availability = availability(&app, &key, department, &query)
        .await
        .json(StatusCode::OK);
    let listed: Vec<String> = slots_of(&listing)
        .iter()
        .map(|s| s.date_time.0.format("%Y-%m-%dT%H:%M:%S").to_string())
        .collect();
    assert!(!listed.is_empty());

    // Every start of every day in the range, on a 15-minute grid: booked iff listed.
    let mut accepted = Vec::new();
    for day in 0..=8 {
        for time in [
            "07:45", "08:00", "08:15", "08:45", "09:00", "09:30", "10:00",
        ] {
            let date_time = slot(day, time);
            let response = app.book(&key, department, &date_time).await;
            match response.status() {
                StatusCode::CREATED => accepted.push(date_time),
                StatusCode::UNPROCESSABLE_ENTITY => {
                    let body = read(response)
                        .await
                        .error(StatusCode::UNPROCESSABLE_ENTITY, "SLOT_NOT_OFFERED");
                    assert!(
                        !listed.contains(&date_time),
                        "{date_time} is listed but refused: {body:?}"
                    );
                }
                other => panic!("{date_time}: unexpected {other}"),
            }
        }
    }
    assert_eq!(accepted, listed, "exactly the listed slots are accepted");
    assert!(
        !listed.iter().any(|s| s.starts_with(&closed.to_string())),
        "the closure is not listed"
    );
    let after: Availability = availability(&app, &key, department, &query)
        .await
        .json(StatusCode::OK);
    assert!(
        after.availability.is_empty(),
        "all taken: nothing left to list: {after:?}"
    );
}

#[tokio::test]
async fn paris_dst_changes_have_no_phantom_or_missing_slot_and_right_instants() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let night = json!([{"start": "00:00", "end": "06:00"}]);
    let department = app
        .create_department_with(
            &key,
            json!({"timezone": "Europe/Paris", "slotDuration": 60, "capacity": 1, "maxAdvanceDays": 730,
                   "openingHours": {"sunday": night, "saturday": night}}),
        )
        .await;

    let spring: Availability = availability(
        &app,
        &key,
        department,
        "startDate=2027-03-28&endDate=2027-03-28&includeUnavailable=true",
    )
    .await
    .json(StatusCode::OK);
    let pairs = |listing: &Availability| -> Vec<(String, DateTime<Utc>)> {
        slots_of(listing)
            .iter()
            .map(|s| (local_time(s), s.starts_at.0))
            .collect()
    };
    let expected_spring: Vec<(String, DateTime<Utc>)> = [
        ("00:00", "2027-03-27T23:00:00Z"),
        ("01:00", "2027-03-28T00:00:00Z"),
        ("03:00", "2027-03-28T01:00:00Z"),
        ("04:00", "2027-03-28T02:00:00Z"),
        ("05:00", "2027-03-28T03:00:00Z"),
    ]
    .iter()
    .map(|(time, at)| ((*time).to_owned(), instant(at)))
    .collect();
    assert_eq!(pairs(&spring), expected_spring);

    let autumn: Availability = availability(
        &app,
        &key,
        department,
        "startDate=2027-10-31&endDate=2027-10-31&includeUnavailable=true",
    )
    .await
    .json(StatusCode::OK);
    let expected_autumn: Vec<(String, DateTime<Utc>)> = [
        ("00:00", "2027-10-30T22:00:00Z"),
        ("01:00", "2027-10-30T23:00:00Z"),
        ("02:00", "2027-10-31T00:00:00Z"),
        ("03:00", "2027-10-31T02:00:00Z"),
        ("04:00", "2027-10-31T03:00:00Z"),
        ("05:00", "2027-10-31T04:00:00Z"),
    ]
    .iter()
    .map(|(time, at)| ((*time).to_owned(), instant(at)))
    .collect();
    assert_eq!(pairs(&autumn), expected_autumn);
    // The slot before the gap lasts one real hour and ends at 03:00 local.
    let one_am = slots_of(&spring)[1];
    assert_eq!(one_am.ends_at.0, instant("2027-03-28T01:00:00Z"));

    // Booking agrees with the listing while those days are ahead.
    if "2027-03-28T01:00:00Z".parse::<DateTime<Utc>>().unwrap() > Utc::now() {
        let booked: Appointment = app
            .book(&key, department, "2027-03-28T03:00:00")
            .reply()
            .await
            .json(StatusCode::CREATED);
        assert_eq!(
            (booked.starts_at.as_str(), booked.end_date_time.as_str()),
            ("2027-03-28T01:00:00Z", "2027-03-28T04:00:00")
        );
        let fold: Appointment = app
            .book(&key, department, "2027-10-31T02:00:00")
            .reply()
            .await
            .json(StatusCode::CREATED);
        assert_eq!(
            fold.starts_at, "2027-10-31T00:00:00Z",
            "a folded time takes its earlier instant"
        );
        let second_occurrence = app
            .book(&key, department, "2027-10-31T02:00:00+01:00")
            .await;
        let body = read(second_occurrence)
            .await
            .error(StatusCode::UNPROCESSABLE_ENTITY, "SLOT_NOT_OFFERED");
        assert_eq!(body.error.detail("reason"), Some(&json!("MISALIGNED")));
    }
    let gap = app
        .book(&key, department, "2027-03-28T02:00:00")
        .reply()
        .await
        .error(StatusCode::BAD_REQUEST, "INVALID_DATE_TIME");
    assert_eq!(gap.fields(), ["dateTime"]);
}

#[tokio::test]
async fn bad_queries_are_400_naming_the_parameter() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 1).await;
    let cases = [
        ("endDate=2027-01-01", "startDate", "MISSING_REQUIRED_FIELD"),
        ("startDate=2027-01-01", "endDate", "MISSING_REQUIRED_FIELD"),
        (
            "startDate=01/01/2027&endDate=2027-01-02",
            "startDate",
            "INVALID_REQUEST",
        ),
        (
            "startDate=2027-01-05&endDate=2027-01-01",
            "endDate",
            "INVALID_REQUEST",
        ),
        (
            "startDate=2027-01-01&endDate=2027-04-03",
            "endDate",
            "INVALID_REQUEST",
        ),
    ];
    for (query, field, code) in cases {
        let body: ErrorBody = availability(&app, &key, department, query)
            .await
            .json(StatusCode::BAD_REQUEST);
        assert_eq!(body.first(), Some((field, code)), "{query}: {body:?}");
    }
    // 92 days inclusive is the most allowed.
    let longest: Availability = availability(
        &app,
        &key,
        department,
        "startDate=2027-01-01&endDate=2027-04-02",
    )
    .await
    .json(StatusCode::OK);
    assert_eq!(
        (longest.start_date.to_string(), longest.end_date.to_string()),
        ("2027-01-01".to_owned(), "2027-04-02".to_owned())
    );
    availability(
        &app,
        &key,
        999_999,
        "startDate=2027-01-01&endDate=2027-01-02",
    )
    .await
    .error(StatusCode::NOT_FOUND, "DEPARTMENT_NOT_FOUND");
}

/// `(time, available, remaining)` of every slot listed on `date`.
fn places_on(listing: &Availability, date: NaiveDate) -> Vec<(String, bool, i64)> {
    listing
        .availability
        .iter()
        .filter(|day| day.date == date)
        .flat_map(|day| &day.slots)
        .map(|s| (local_time(s), s.available, s.remaining))
        .collect()
}

/// `(available, remaining)` of the slot at `time` on `date`.
fn places_at(listing: &Availability, date: NaiveDate, time: &str) -> Option<(bool, i64)> {
    places_on(listing, date)
        .into_iter()
        .find(|(at, _, _)| at == time)
        .map(|(_, available, remaining)| (available, remaining))
}

/// A server keeps the slot grids it has computed; what another server process on the same
/// database changes is nonetheless in this one's very next answer, with no wait: a booking, new
/// opening hours, capacity and slot duration, a deactivated worker. And both processes answer
/// the very same bytes.
#[tokio::test]
async fn what_another_server_changes_is_in_the_very_next_answer() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let second = start_server(test_settings(&app.database.url())).await;
    let at_second = |method: reqwest::Method, path: &str| {
        app.client
            .request(method, format!("{second}/api/v1{path}"))
            .header("X-API-Key", &key)
    };
    // Both servers' answers for `query`: the same bytes, read by the first as a listing.
    let listing = |department: i64, query: String| {
        let at_second = &at_second;
        let app = &app;
        let key = &key;
        async move {
            let first = availability(app, key, department, &query).await;
            let other = read(
                at_second(
                    reqwest::Method::GET,
                    &format!("/departments/{department}/availability?{query}"),
                )
                .send()
                .await
                .expect("request sent"),
            )
            .await;
            assert_eq!(first.text, other.text, "both servers answer the same bytes");
            first.json::<Availability>(StatusCode::OK)
        }
    };
    let day = day_ahead(2);
    let query = format!("startDate={}&endDate={}", day_ahead(1), day_ahead(3));
    let department = app
        .create_department_with(&key, json!({"capacity": 2}))
        .await;
    let before = listing(department, query.clone()).await;
    assert_eq!(places_at(&before, day, "10:00"), Some((true, 2)));
    assert_eq!(before.availability.len(), 3);

    // (a) A booking through the other server.
    let booked = at_second(reqwest::Method::POST, "/appointments")
        .json(&json!({"departmentId": department, "dateTime": format!("{day}T10:00:00"), "name": "Awa Camara"}))
        .send()
        .await
        .expect("request sent");
    assert_eq!(booked.status(), StatusCode::CREATED);
    let after = listing(department, query.clone()).await;
    assert_eq!(places_at(&after, day, "10:00"), Some((true, 1)));
    assert_eq!(places_at(&after, day, "10:30"), Some((true, 2)));

    // (b) New opening hours, capacity and slot duration through the other server.
    let mornings = json!([{"start": "09:00", "end": "11:00"}]);
    let changed = at_second(reqwest::Method::PATCH, &format!("/departments/{department}"))
        .json(&json!({"capacity": 3, "slotDuration": 20,
                      "openingHours": {"monday": mornings, "tuesday": mornings, "wednesday": mornings,
                                       "thursday": mornings, "friday": mornings, "saturday": mornings,
                                       "sunday": mornings}}))
        .send()
        .await
        .expect("request sent");
    assert_eq!(changed.status(), StatusCode::OK);
    let regridded = listing(department, format!("{query}&includeUnavailable=true")).await;
    let times_of_day = places_on(&regridded, day);
    let expected: Vec<(String, bool, i64)> = [
        ("09:00", 3),
        ("09:20", 3),
        ("09:40", 3),
        ("10:00", 2),
        ("10:20", 2),
        ("10:40", 3),
    ]
    .iter()
    .map(|(time, left)| ((*time).to_owned(), true, *left))
    .collect();
    assert_eq!(
        times_of_day, expected,
        "the 10:00–10:30 booking takes a place wherever it overlaps the new grid"
    );

    // (c) A worker deactivated through the other server, in a department that requires one.
    let staffed = app
        .create_department_with(&key, json!({"capacity": 3, "showAdminsInBooking": true}))
        .await;
    let kept = app.create_worker(&key, staffed, "Dr. Diallo").await;
    let leaving = app.create_worker(&key, staffed, "Dr. Sow").await;
    let both = listing(staffed, query.clone()).await;
    assert_eq!(places_at(&both, day, "10:00"), Some((true, 2)));
    let alone = format!("{query}&workerId={leaving}");
    assert!(!listing(staffed, alone.clone())
        .await
        .availability
        .is_empty());
    let deactivated = at_second(
        reqwest::Method::DELETE,
        &format!("/departments/{staffed}/workers/{leaving}"),
    )
    .send()
    .await
    .expect("request sent");
    assert_eq!(deactivated.status(), StatusCode::OK);
    let one = listing(staffed, query.clone()).await;
    assert_eq!(places_at(&one, day, "10:00"), Some((true, 1)));
    assert!(
        listing(staffed, alone).await.availability.is_empty(),
        "a deactivated worker lists nothing"
    );
    let with_kept = listing(staffed, format!("{query}&workerId={kept}")).await;
    assert_eq!(places_at(&with_kept, day, "10:00"), Some((true, 1)));
}

/// Read in one round trip, the department and the worker still answer their own 404s, in the
/// same order: the department first.
#[tokio::test]
async fn an_unknown_department_or_worker_is_the_same_404_as_before() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app.create_department(&key, 1).await;
    let other = app.create_department(&key, 1).await;
    let elsewhere = app.create_worker(&key, other, "Dr. Barry").await;
    let dates = "startDate=2027-01-01&endDate=2027-01-02";
    availability(
        &app,
        &key,
        999_999,
        &format!("{dates}&workerId={elsewhere}"),
    )
    .await
    .error(StatusCode::NOT_FOUND, "DEPARTMENT_NOT_FOUND");
    for worker in [elsewhere, 999_999] {
        availability(
            &app,
            &key,
            department,
            &format!("{dates}&workerId={worker}"),
        )
        .await
        .error(StatusCode::NOT_FOUND, "WORKER_NOT_FOUND");
    }
    // Another organization's department is as unknown as one that does not exist.
    let stranger = app.create_org("Stranger", 1).await;
    availability(&app, &stranger.test_key, department, dates)
        .await
        .error(StatusCode::NOT_FOUND, "DEPARTMENT_NOT_FOUND");
    // And the live mode's key does not see the test mode's department.
    availability(&app, &app.org.live_key, department, dates)
        .await
        .error(StatusCode::NOT_FOUND, "DEPARTMENT_NOT_FOUND");
}
