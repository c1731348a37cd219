//! Availability: bookable slots only by default, DST-correct, and in agreement with booking.

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{day_ahead, expect_error, expect_status, slot, spawn_app, TestApp};

async fn availability(app: &TestApp, key: &str, department: i64, query: &str) -> Value {
    let response = app
        .get(
            &format!("/departments/{department}/availability?{query}"),
            key,
        )
        .await;
    expect_status(response, StatusCode::OK).await
}

fn slots_of(listing: &Value) -> Vec<Value> {
    listing["availability"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|day| day["slots"].as_array().unwrap().clone())
        .collect()
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

    let listing = availability(&app, &key, department, &query).await;
    assert_eq!(listing["departmentId"], department);
    assert_eq!(listing["timezone"], "Africa/Conakry");
    assert_eq!(
        listing["availability"].as_array().unwrap().len(),
        1,
        "only Monday has slots: {listing}"
    );
    assert_eq!(listing["availability"][0]["date"], monday.to_string());
    let times: Vec<&str> = listing["availability"][0]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["time"].as_str().unwrap())
        .collect();
    assert_eq!(times, ["08:00", "08:30", "13:00", "13:30"]);
    assert_eq!(
        listing["availability"][0]["slots"][0],
        json!({"time": "08:00", "dateTime": format!("{monday}T08:00:00"), "startsAt": format!("{monday}T08:00:00Z"),
               "endsAt": format!("{monday}T08:30:00Z"), "available": true, "remaining": 1})
    );

    expect_status(
        app.book(&key, department, &format!("{monday}T08:30:00"))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let listing = availability(&app, &key, department, &query).await;
    let times: Vec<&str> = listing["availability"][0]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["time"].as_str().unwrap())
        .collect();
    assert_eq!(
        times,
        ["08:00", "13:00", "13:30"],
        "the full slot is no longer listed"
    );

    let everything = availability(
        &app,
        &key,
        department,
        &format!("{query}&includeUnavailable=true"),
    )
    .await;
    let full = slots_of(&everything)
        .into_iter()
        .find(|s| s["time"] == "08:30")
        .unwrap();
    assert_eq!(
        (full["available"].as_bool(), full["remaining"].as_i64()),
        (Some(false), Some(0))
    );
}

#[tokio::test]
async fn past_and_too_soon_slots_show_only_with_include_unavailable() {
    let app = spawn_app().await;
    let key = app.org.test_key.clone();
    let department = app
        .create_department_with(&key, json!({"minNoticeMinutes": 2 * 1440}))
        .await;
    let query = format!("startDate={}&endDate={}", day_ahead(-1), day_ahead(3));
    let bookable = availability(&app, &key, department, &query).await;
    let first_day = bookable["availability"][0]["date"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        first_day >= day_ahead(2).to_string(),
        "nothing inside the notice is offered: {first_day}"
    );

    let all = availability(
        &app,
        &key,
        department,
        &format!("{query}&includeUnavailable=true"),
    )
    .await;
    assert_eq!(all["availability"][0]["date"], day_ahead(-1).to_string());
    assert!(all["availability"][0]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["available"] == false));
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
    let listed: Vec<String> = slots_of(&availability(&app, &key, department, &query).await)
        .iter()
        .map(|s| s["dateTime"].as_str().unwrap().to_owned())
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
                    let body = expect_status(response, StatusCode::UNPROCESSABLE_ENTITY).await;
                    assert_eq!(body["error"]["code"], "SLOT_NOT_OFFERED");
                    assert!(
                        !listed.contains(&date_time),
                        "{date_time} is listed but refused: {body}"
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
    let after = availability(&app, &key, department, &query).await;
    assert_eq!(
        after["availability"],
        json!([]),
        "all taken: nothing left to list"
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

    let spring = availability(
        &app,
        &key,
        department,
        "startDate=2027-03-28&endDate=2027-03-28&includeUnavailable=true",
    )
    .await;
    let pairs = |listing: &Value| -> Vec<(String, String)> {
        slots_of(listing)
            .iter()
            .map(|s| {
                (
                    s["time"].as_str().unwrap().to_owned(),
                    s["startsAt"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let expected_spring: Vec<(String, String)> = [
        ("00:00", "2027-03-27T23:00:00Z"),
        ("01:00", "2027-03-28T00:00:00Z"),
        ("03:00", "2027-03-28T01:00:00Z"),
        ("04:00", "2027-03-28T02:00:00Z"),
        ("05:00", "2027-03-28T03:00:00Z"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(pairs(&spring), expected_spring);

    let autumn = availability(
        &app,
        &key,
        department,
        "startDate=2027-10-31&endDate=2027-10-31&includeUnavailable=true",
    )
    .await;
    let expected_autumn: Vec<(String, String)> = [
        ("00:00", "2027-10-30T22:00:00Z"),
        ("01:00", "2027-10-30T23:00:00Z"),
        ("02:00", "2027-10-31T00:00:00Z"),
        ("03:00", "2027-10-31T02:00:00Z"),
        ("04:00", "2027-10-31T03:00:00Z"),
        ("05:00", "2027-10-31T04:00:00Z"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(pairs(&autumn), expected_autumn);
    // The slot before the gap lasts one real hour and ends at 03:00 local.
    let one_am = &slots_of(&spring)[1];
    assert_eq!(one_am["endsAt"], "2027-03-28T01:00:00Z");

    // Booking agrees with the listing while those days are ahead.
    if "2027-03-28T01:00:00Z".parse::<DateTime<Utc>>().unwrap() > Utc::now() {
        let booked = expect_status(
            app.book(&key, department, "2027-03-28T03:00:00").await,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(
            (booked["startsAt"].as_str(), booked["endDateTime"].as_str()),
            (Some("2027-03-28T01:00:00Z"), Some("2027-03-28T04:00:00"))
        );
        let fold = expect_status(
            app.book(&key, department, "2027-10-31T02:00:00").await,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(
            fold["startsAt"], "2027-10-31T00:00:00Z",
            "a folded time takes its earlier instant"
        );
        let second_occurrence = app
            .book(&key, department, "2027-10-31T02:00:00+01:00")
            .await;
        let body = expect_error(
            second_occurrence,
            StatusCode::UNPROCESSABLE_ENTITY,
            "SLOT_NOT_OFFERED",
        )
        .await;
        assert_eq!(body["error"]["details"]["reason"], "MISALIGNED");
    }
    let gap = expect_error(
        app.book(&key, department, "2027-03-28T02:00:00").await,
        StatusCode::BAD_REQUEST,
        "INVALID_DATE_TIME",
    )
    .await;
    assert_eq!(gap["errors"][0]["field"], "dateTime");
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
        let body = expect_status(
            app.get(
                &format!("/departments/{department}/availability?{query}"),
                &key,
            )
            .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
        assert_eq!(body["errors"][0]["code"], code, "{query}");
    }
    // 92 days inclusive is the most allowed.
    expect_status(
        app.get(
            &format!(
                "/departments/{department}/availability?startDate=2027-01-01&endDate=2027-04-02"
            ),
            &key,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    expect_error(
        app.get(
            "/departments/999999/availability?startDate=2027-01-01&endDate=2027-01-02",
            &key,
        )
        .await,
        StatusCode::NOT_FOUND,
        "DEPARTMENT_NOT_FOUND",
    )
    .await;
}
