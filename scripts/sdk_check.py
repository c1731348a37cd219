"""The official Python SDK (moncreneau 2.1.0), unchanged, against this server.

Usage: sdk_check.py BASE_URL TEST_KEY   (BASE_URL like http://127.0.0.1:8080/api/v1)
Exercises departments list/retrieve/availability, appointment create/retrieve/list/cancel, the
SDK's error objects, and its webhook-signature helper on a real delivery. The server must allow
private receivers (MONCRENEAU_WEBHOOK_ALLOW_PRIVATE=true) for the last check.
"""
import datetime
import http.server
import json
import sys
import threading
import time

import requests
from moncreneau import Moncreneau, MoncreneauError

BASE, KEY = sys.argv[1].rstrip("/"), sys.argv[2]
results = []


def check(name, condition, detail=""):
    results.append(condition)
    print(("ok     " if condition else "FAILED ") + name + ("" if condition else f": {detail}"))


def expect_error(name, call, status, code):
    try:
        call()
    except MoncreneauError as error:
        check(name, error.status_code == status and error.code == code, f"{error.status_code} {error.code}")
        return error
    check(name, False, "no error raised")
    return None


# Arrange: a department open every day, created with the plain API (the SDK cannot create one).
day = [{"start": "08:00", "end": "18:00"}]
hours = {d: day for d in ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]}
created = requests.post(f"{BASE}/departments", headers={"X-API-Key": KEY}, json={
    "name": "SDK Department", "timezone": "Africa/Conakry", "slotDuration": 30, "capacity": 1,
    "openingHours": hours}, timeout=10)
created.raise_for_status()
department_id = created.json()["id"]

client = Moncreneau(KEY, base_url=BASE)

departments = client.departments.list()
check("departments.list returns a list holding the department",
      isinstance(departments, list) and any(d["id"] == department_id for d in departments), departments)
department = client.departments.retrieve(department_id)
check("departments.retrieve", department["name"] == "SDK Department", department)

start = datetime.date.today() + datetime.timedelta(days=1)
availability = client.departments.get_availability(department_id, start.isoformat(), (start + datetime.timedelta(days=6)).isoformat())
first = availability["availability"][0]["slots"][0]
check("departments.get_availability lists bookable slots", first["available"] is True and "dateTime" in first, first)

appointment = client.appointments.create(department_id=department_id, date_time=first["dateTime"],
                                         name="Jean SDK", external_user_id="sdk-user-1")
check("appointments.create answers CONFIRMED", appointment["status"] == "CONFIRMED", appointment)
check("appointments.create keeps externalUserId", appointment["externalUserId"] == "sdk-user-1", appointment)
fetched = client.appointments.retrieve(appointment["id"])
check("appointments.retrieve", fetched["id"] == appointment["id"] and fetched["dateTime"] == first["dateTime"], fetched)
listed = client.appointments.list(external_user_id="sdk-user-1", status="confirmed")
check("appointments.list filters and pages", listed["totalElements"] == 1 and listed["content"][0]["id"] == appointment["id"], listed)

error = expect_error("a full slot is a 409 SLOT_NOT_AVAILABLE",
                     lambda: client.appointments.create(department_id=department_id, date_time=first["dateTime"], name="Late"),
                     409, "SLOT_NOT_AVAILABLE")
expect_error("an unknown department is a 404 DEPARTMENT_NOT_FOUND",
             lambda: client.appointments.create(department_id=99999999, date_time=first["dateTime"], name="X"),
             404, "DEPARTMENT_NOT_FOUND")
error = expect_error("a closed time is a 422 SLOT_NOT_OFFERED with details",
                     lambda: client.appointments.create(department_id=department_id, date_time=f"{start}T07:00:00", name="X"),
                     422, "SLOT_NOT_OFFERED")
check("error details reach the SDK", error is not None and error.details == {"reason": "CLOSED"}, error and error.details)
expect_error("an unknown key is a 401 INVALID_API_KEY",
             lambda: Moncreneau("mk_test_" + "x" * 40, base_url=BASE).departments.list(), 401, "INVALID_API_KEY")

check("appointments.cancel returns without error", client.appointments.cancel(appointment["id"]) is None)
check("the cancelled appointment reads CANCELLED", client.appointments.retrieve(appointment["id"])["status"] == "CANCELLED")

# The SDK's webhook helper verifies a real delivery from the parsed body, as its docs show.
received = []


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        received.append((json.loads(body), self.headers["X-Webhook-Signature"]))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
hook = requests.post(f"{BASE}/webhooks", headers={"X-API-Key": KEY}, timeout=10, json={
    "url": f"http://127.0.0.1:{server.server_port}/hook", "events": ["appointment.created"]}).json()
client.appointments.create(department_id=department_id, date_time=first["dateTime"], name="Aïssatou ☀")
deadline = time.time() + 15
while not received and time.time() < deadline:
    time.sleep(0.1)
server.shutdown()
check("a delivery arrived", bool(received))
if received:
    payload, signature = received[0]
    check("Moncreneau.verify_webhook_signature accepts it",
          Moncreneau.verify_webhook_signature(payload, signature, hook["secret"]) is True)
    check("and refuses it with another secret",
          Moncreneau.verify_webhook_signature(payload, signature, "whsec_other") is False)

passed, failed = results.count(True), results.count(False)
print(f"sdk: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
