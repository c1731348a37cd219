//! Availability: bookable slots only by default, DST-correct, and in agreement with booking.

use chrono::{DateTime, Utc};
use moncreneau::routes::appointments::json::Appointment;
use moncreneau::routes::availability::json::{Availability, AvailabilitySlot};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{day_ahead, slot, spawn_app, TestApp};
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
