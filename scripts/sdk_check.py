"""The official Python SDK (moncreneau 2.1.0), unchanged, against this server.

Usage: sdk_check.py BASE_URL TEST_KEY   (BASE_URL like http://127.0.0.1:8080/api/v1)
Environment: MONCRENEAU_ADMIN_TOKEN (the operator token, for an organization without live
credits: the 402 check). The server must allow private receivers
(MONCRENEAU_WEBHOOK_ALLOW_PRIVATE=true) for the webhook checks.

Every public method and parameter of the SDK, as its docstrings describe them:
- Moncreneau(api_key, base_url, timeout);
- departments.list(), .retrieve(id), .get_availability(id, start_date, end_date);
- appointments.create(department_id, date_time, name, external_user_id, worker_id),
  .retrieve(id), .list(page, size, status, department_id, external_user_id, start_date,
  end_date) with the SDK's own word SCHEDULED, .cancel(id);
- MoncreneauError (code, message, status_code, details, str) for 400, 401, 402, 403, 404, 409
  and 422;
- Moncreneau.verify_webhook_signature over real deliveries, from the parsed dict (as the SDK's
  README shows) and from the raw text, for events whose text holds DEL (U+007F), accents and
  emoji.
"""
import datetime
import http.server
import json
import os
import sys
import threading
import time

import requests
from moncreneau import Moncreneau, MoncreneauError

BASE, KEY = sys.argv[1].rstrip("/"), sys.argv[2]
ADMIN_TOKEN = os.environ.get("MONCRENEAU_ADMIN_TOKEN")
results = []


def check(name, condition, detail=""):
    results.append(bool(condition))
    print(("ok     " if condition else "FAILED ") + name + ("" if condition else f": {detail}"))


def expect_error(name, call, status, code):
    try:
        call()
    except MoncreneauError as error:
        check(name, error.status_code == status and error.code == code,
              f"{error.status_code} {error.code} {error.message}")
        return error
    check(name, False, "no error raised")
    return None


def plain(method, path, key=KEY, **kwargs):
    """The plain API, for what the SDK cannot do (departments, staff, webhooks, keys)."""
    response = requests.request(method, f"{BASE}{path}", headers={"X-API-Key": key}, timeout=10, **kwargs)
    response.raise_for_status()
    return response.json()


# Arrange: departments open every day, created with the plain API.
day = [{"start": "08:00", "end": "18:00"}]
hours = {d: day for d in ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]}


def new_department(key=KEY, **extra):
    body = {"name": "SDK Department", "timezone": "Africa/Conakry", "slotDuration": 30, "capacity": 1,
            "openingHours": hours}
    body.update(extra)
    return plain("POST", "/departments", key, json=body)["id"]


department_id = new_department()
client = Moncreneau(KEY, base_url=BASE, timeout=10)

# --- departments -------------------------------------------------------------------------------
departments = client.departments.list()
check("departments.list returns a list holding the department",
      isinstance(departments, list) and any(d["id"] == department_id for d in departments), departments)
department = client.departments.retrieve(department_id)
check("departments.retrieve (integer id)", department["name"] == "SDK Department", department)
check("departments.retrieve (string id, as its docstring types it)",
      client.departments.retrieve(str(department_id))["id"] == department_id)
expect_error("departments.retrieve of an unknown id is a 404 DEPARTMENT_NOT_FOUND",
             lambda: client.departments.retrieve(99999999), 404, "DEPARTMENT_NOT_FOUND")

start = datetime.date.today() + datetime.timedelta(days=1)
end = start + datetime.timedelta(days=6)
availability = client.departments.get_availability(department_id, start.isoformat(), end.isoformat())
slots = [slot for day in availability["availability"] for slot in day["slots"]]
first = slots[0]
check("departments.get_availability lists bookable slots",
      first["available"] is True and "dateTime" in first and availability["departmentId"] == department_id, first)
expect_error("get_availability with reversed dates is a 400 INVALID_REQUEST",
             lambda: client.departments.get_availability(department_id, end.isoformat(), start.isoformat()),
             400, "INVALID_REQUEST")

# --- appointments ------------------------------------------------------------------------------
appointment = client.appointments.create(department_id=department_id, date_time=first["dateTime"],
                                         name="Jean SDK", external_user_id="sdk-user-1")
check("appointments.create answers CONFIRMED", appointment["status"] == "CONFIRMED", appointment)
check("appointments.create keeps externalUserId", appointment["externalUserId"] == "sdk-user-1", appointment)
check("an appointment without a worker carries workerId null",
      "workerId" in appointment and appointment["workerId"] is None, appointment)
fetched = client.appointments.retrieve(appointment["id"])
check("appointments.retrieve", fetched["id"] == appointment["id"] and fetched["dateTime"] == first["dateTime"], fetched)
check("appointments.retrieve (string id)", client.appointments.retrieve(str(appointment["id"]))["id"] == appointment["id"])
expect_error("appointments.retrieve of an unknown id is a 404 APPOINTMENT_NOT_FOUND",
             lambda: client.appointments.retrieve("99999999"), 404, "APPOINTMENT_NOT_FOUND")

second = client.appointments.create(department_id=department_id, date_time=slots[1]["dateTime"],
                                    name="Awa SDK", external_user_id="sdk-user-2")


def ids(page):
    return [a["id"] for a in page["content"]]


listed = client.appointments.list(external_user_id="sdk-user-1", status="confirmed")
check("appointments.list filters by external_user_id and status",
      listed["totalElements"] == 1 and ids(listed) == [appointment["id"]], listed)
scheduled = client.appointments.list(status="SCHEDULED", department_id=str(department_id))
check("status='SCHEDULED' (the SDK's word) lists the confirmed ones",
      ids(scheduled) == [appointment["id"], second["id"]], scheduled)
check("and responses keep CONFIRMED", all(a["status"] == "CONFIRMED" for a in scheduled["content"]), scheduled)
paged = client.appointments.list(page=1, size=1, department_id=department_id)
check("appointments.list pages (page=1, size=1)",
      paged["page"] == 1 and paged["size"] == 1 and paged["totalElements"] == 2 and ids(paged) == [second["id"]],
      paged)
day_of = first["dateTime"][:10]
dated = client.appointments.list(department_id=department_id, start_date=day_of, end_date=day_of)
check("appointments.list filters by start_date and end_date",
      appointment["id"] in ids(dated) and all(a["dateTime"].startswith(day_of) for a in dated["content"]), dated)
later = (datetime.date.fromisoformat(day_of) + datetime.timedelta(days=30)).isoformat()
check("a date range without appointments lists none",
      client.appointments.list(department_id=department_id, start_date=later, end_date=later)["totalElements"] == 0)
error = expect_error("an unknown status filter is a 400 INVALID_REQUEST",
                     lambda: client.appointments.list(status="PENDING"), 400, "INVALID_REQUEST")
check("the 400 names the field in its details", error is not None and "status" in json.dumps(error.details),
      error and error.details)

# --- errors ------------------------------------------------------------------------------------
error = expect_error("a full slot is a 409 SLOT_NOT_AVAILABLE",
                     lambda: client.appointments.create(department_id=department_id, date_time=first["dateTime"], name="Late"),
                     409, "SLOT_NOT_AVAILABLE")
check("MoncreneauError reads as [CODE] message (HTTP status)",
      error is not None and str(error) == f"[SLOT_NOT_AVAILABLE] {error.message} (HTTP 409)", error and str(error))
expect_error("an unknown department is a 404 DEPARTMENT_NOT_FOUND",
             lambda: client.appointments.create(department_id=99999999, date_time=first["dateTime"], name="X"),
             404, "DEPARTMENT_NOT_FOUND")
error = expect_error("a closed time is a 422 SLOT_NOT_OFFERED with details",
                     lambda: client.appointments.create(department_id=department_id, date_time=f"{start}T07:00:00", name="X"),
                     422, "SLOT_NOT_OFFERED")
check("error details reach the SDK", error is not None and error.details == {"reason": "CLOSED"}, error and error.details)
expect_error("an unknown key is a 401 INVALID_API_KEY",
             lambda: Moncreneau("mk_test_" + "x" * 40, base_url=BASE).departments.list(), 401, "INVALID_API_KEY")
reader = plain("POST", "/api-keys", json={"name": "SDK reader", "scopes": ["appointments:read", "departments:read"]})
expect_error("a key without appointments:create is a 403 INSUFFICIENT_SCOPE",
             lambda: Moncreneau(reader["key"], base_url=BASE).appointments.create(
                 department_id=department_id, date_time=slots[2]["dateTime"], name="X"),
             403, "INSUFFICIENT_SCOPE")
if ADMIN_TOKEN:
    organization = requests.post(f"{BASE}/admin/organizations", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                                 json={"name": "SDK without credits", "liveCredits": 0}, timeout=10)
    organization.raise_for_status()
    live_key = next(k["key"] for k in organization.json()["apiKeys"] if k["mode"] == "live")
    broke = Moncreneau(live_key, base_url=BASE)
    broke_department = new_department(live_key)
    expect_error("no credit left is a 402 INSUFFICIENT_CREDITS",
                 lambda: broke.appointments.create(department_id=broke_department, date_time=first["dateTime"], name="X"),
                 402, "INSUFFICIENT_CREDITS")
else:
    check("MONCRENEAU_ADMIN_TOKEN is set for the 402 check", False, "unset")

check("appointments.cancel returns without error", client.appointments.cancel(appointment["id"]) is None)
check("the cancelled appointment reads CANCELLED", client.appointments.retrieve(appointment["id"])["status"] == "CANCELLED")
check("appointments.cancel again is a safe retry", client.appointments.cancel(str(appointment["id"])) is None)
check("status='CANCELLED' lists it",
      ids(client.appointments.list(status="CANCELLED", department_id=department_id)) == [appointment["id"]])
expect_error("appointments.cancel of an unknown id is a 404 APPOINTMENT_NOT_FOUND",
             lambda: client.appointments.cancel("99999999"), 404, "APPOINTMENT_NOT_FOUND")

# --- staff (worker_id) -------------------------------------------------------------------------
staffed = new_department(showAdminsInBooking=True, capacity=5)
doctor = plain("POST", f"/departments/{staffed}/workers", json={"name": "Dr. Diallo"})
nurse = plain("POST", f"/departments/{staffed}/workers", json={"name": "Inf. Camara"})
with_doctor = client.appointments.create(department_id=staffed, date_time=first["dateTime"], name="Binta SDK",
                                         worker_id=doctor["id"])
check("appointments.create with worker_id books that staff member",
      with_doctor["workerId"] == doctor["id"] and client.appointments.retrieve(with_doctor["id"])["workerId"] == doctor["id"],
      with_doctor)
expect_error("the same staff member at the same time is a 409 SLOT_NOT_AVAILABLE",
             lambda: client.appointments.create(department_id=staffed, date_time=first["dateTime"], name="X",
                                                worker_id=doctor["id"]),
             409, "SLOT_NOT_AVAILABLE")
with_nurse = client.appointments.create(department_id=staffed, date_time=first["dateTime"], name="Fanta SDK",
                                        worker_id=nurse["id"])
check("another staff member takes the same time", with_nurse["workerId"] == nurse["id"], with_nurse)
error = expect_error("without worker_id where showAdminsInBooking is on: a 400 MISSING_REQUIRED_FIELD",
                     lambda: client.appointments.create(department_id=staffed, date_time=slots[3]["dateTime"], name="X"),
                     400, "MISSING_REQUIRED_FIELD")
check("the 400 names workerId", error is not None and "workerId" in json.dumps(error.details), error and error.details)

# --- webhooks: the SDK's helper on real deliveries ---------------------------------------------
received = []


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        received.append((body, self.headers["X-Webhook-Signature"]))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
hook = plain("POST", "/webhooks", json={"url": f"http://127.0.0.1:{server.server_port}/hook",
                                        "events": ["appointment.created", "appointment.cancelled"]})
tricky = "Aïssatou Diallo ☀ 😀 \x7f \u2028 \"quoted\" \\ end"
booked = client.appointments.create(department_id=department_id, date_time=slots[4]["dateTime"], name=tricky,
                                    external_user_id="ext-é-\x7f-🙂")
client.appointments.cancel(booked["id"])
deadline = time.time() + 20
while len(received) < 2 and time.time() < deadline:
    time.sleep(0.1)
server.shutdown()
check("both deliveries arrived", len(received) == 2, len(received))
for body, signature in received:
    payload = json.loads(body)
    kind = payload.get("type")
    check(f"{kind}: the delivery carries the text unchanged",
          payload["data"]["object"]["name"] == tricky and payload["data"]["object"]["externalUserId"] == "ext-é-\x7f-🙂",
          payload["data"]["object"])
    check(f"{kind}: the body is laid out as json.dumps lays it out", json.dumps(payload).encode() == body, body[:200])
    check(f"{kind}: verify_webhook_signature accepts the parsed dict",
          Moncreneau.verify_webhook_signature(payload, signature, hook["secret"]) is True)
    check(f"{kind}: verify_webhook_signature accepts the raw text",
          Moncreneau.verify_webhook_signature(body.decode(), signature, hook["secret"]) is True)
    check(f"{kind}: and refuses it with another secret",
          Moncreneau.verify_webhook_signature(payload, signature, "whsec_other") is False)
    tampered = dict(payload, type="appointment.tampered")
    check(f"{kind}: and refuses a tampered body",
          Moncreneau.verify_webhook_signature(tampered, signature, hook["secret"]) is False)

passed, failed = results.count(True), results.count(False)
print(f"sdk: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
