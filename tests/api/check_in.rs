//! QR check-in: the `qrCode` link of an appointment answers an SVG that a QR reader decodes to
//! the check-in address, which shows the ticket; both need the appointment's own token only.

use moncreneau::domain::status::Status;
use moncreneau::routes::appointments::json::{Appointment, CheckInTicket};
use reqwest::StatusCode;

use crate::helpers::{expect_error, expect_json, expect_status, slot, spawn_app, TestApp};

/// Renders the SVG as a camera would see it (black on white pixels) and decodes every QR code.
fn decode_svg(svg: &[u8]) -> Vec<String> {
    let tree = resvg::usvg::Tree::from_data(svg, &resvg::usvg::Options::default())
        .expect("a valid SVG document");
    let size = tree.size().to_int_size();
    // Twice the drawn size, so that every module spans several pixels.
    let (width, height) = (size.width() * 2, size.height() * 2);
    let mut pixmap = resvg::tiny_skia::Pixmap::new(width, height).expect("a non-empty image");
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(2.0, 2.0),
        &mut pixmap.as_mut(),
    );
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(width as usize, height as usize, |x, y| {
            let pixel = pixmap.pixel(x as u32, y as u32).expect("inside the image");
            pixel.red() / 3 + pixel.green() / 3 + pixel.blue() / 3
        });
    image
        .detect_grids()
        .iter()
        .map(|grid| grid.decode().expect("a readable QR code").1)
        .collect()
}

async fn book_one(app: &TestApp) -> Appointment {
    let department = app.create_department(&app.org.test_key, 2).await;
    app.book_appointment(&app.org.test_key, department, &slot(3, "09:00"))
        .await
}

/// The check-in token carried by the appointment's `qrCode` link.
fn token_of(appointment: &Appointment) -> String {
    appointment
        .qr_code
        .split("token=")
        .nth(1)
        .expect("a token in the link")
        .to_owned()
}

/// The `qrCode` link with the server's address in place of the public one.
fn local(app: &TestApp, link: &str) -> String {
    let path = link
        .strip_prefix("http://moncreneau.test")
        .unwrap_or_else(|| panic!("{link} is built on the public URL"));
    format!("{}{path}", app.address)
}

#[tokio::test]
async fn the_qr_code_link_draws_the_check_in_address_without_a_key() {
    let app = spawn_app().await;
    let appointment = book_one(&app).await;
    let id = appointment.id;
    let link = appointment.qr_code.as_str();
    let token = token_of(&appointment);

    // No API key at all.
    let response = app.client.get(local(&app, link)).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    assert_eq!(
        response.headers()["content-security-policy"],
        "default-src 'none'"
    );
    let svg = response.bytes().await.unwrap();
    let expected =
        format!("http://moncreneau.test/api/v1/appointments/{id}/check-in?token={token}");
    assert_eq!(decode_svg(&svg), vec![expected.clone()]);

    // The decoded address opens the ticket, still without a key.
    let response = app.client.get(local(&app, &expected)).send().await.unwrap();
    // A ticket refuses unknown members when read: no contact detail can slip into it.
    let ticket: CheckInTicket = expect_json(response, StatusCode::OK).await;
    assert_eq!(ticket.id, id);
    assert_eq!(ticket.status, Status::Confirmed);
    assert_eq!(ticket, CheckInTicket::from(appointment.clone()));
}

#[tokio::test]
async fn a_wrong_missing_or_borrowed_token_is_a_404() {
    let app = spawn_app().await;
    let first = book_one(&app).await;
    let second = book_one(&app).await;
    let first_id = first.id;
    let first_token = token_of(&first);
    let second_token = token_of(&second);
    let mut near_miss = first_token.clone();
    near_miss.pop();
    near_miss.push(if first_token.ends_with('A') { 'B' } else { 'A' });

    let cases = [
        (format!("/appointments/{first_id}/qr.svg"), "no token"),
        (
            format!("/appointments/{first_id}/qr.svg?token="),
            "empty token",
        ),
        (
            format!("/appointments/{first_id}/qr.svg?token={second_token}"),
            "another appointment's token",
        ),
        (
            format!("/appointments/{first_id}/qr.svg?token={near_miss}"),
            "last character wrong",
        ),
        (
            format!(
                "/appointments/{first_id}/qr.svg?token={}",
                &first_token[..10]
            ),
            "a prefix of the token",
        ),
        (
            format!("/appointments/999999/qr.svg?token={first_token}"),
            "unknown appointment",
        ),
        (
            format!("/appointments/{first_id}/check-in?token={second_token}"),
            "check-in, borrowed token",
        ),
        (
            format!("/appointments/{first_id}/check-in"),
            "check-in, no token",
        ),
    ];
    for (path, case) in cases {
        let response = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{case}");
        expect_error(response, StatusCode::NOT_FOUND, "APPOINTMENT_NOT_FOUND").await;
    }

    // The right token still works after all those misses.
    let response = app
        .client
        .get(app.url(&format!(
            "/appointments/{first_id}/qr.svg?token={first_token}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_cancelled_appointment_shows_its_status_at_check_in() {
    let app = spawn_app().await;
    let appointment = book_one(&app).await;
    let id = appointment.id;
    let token = token_of(&appointment);
    expect_status(
        app.delete(&format!("/appointments/{id}"), &app.org.test_key)
            .await,
        StatusCode::OK,
    )
    .await;

    let response = app
        .client
        .get(app.url(&format!("/appointments/{id}/check-in?token={token}")))
        .send()
        .await
        .unwrap();

    let ticket: CheckInTicket = expect_json(response, StatusCode::OK).await;
    assert_eq!(ticket.status, Status::Cancelled);
}
