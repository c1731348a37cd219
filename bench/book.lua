-- wrk script: POST /appointments, spreading bookings over the slots of the next 30 days.
-- Each thread books its own sequence of slots; the department's capacity is large enough.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
  table.insert(threads, thread)
end

function init(args)
  department = args[1]
  key = args[2]
  days = {}
  for i = 1, 30 do
    days[i] = os.date("!%Y-%m-%d", os.time() + i * 86400)
  end
end

function request()
  counter = counter + 1
  local n = counter * 2 + id
  local day = days[(n % 30) + 1]
  local slot = math.floor(n / 30) % 20
  local hour = 8 + math.floor(slot / 2)
  local minute = (slot % 2) * 30
  local body = string.format('{"departmentId": %s, "dateTime": "%sT%02d:%02d:00", "name": "Bench %d"}',
    department, day, hour, minute, n)
  return wrk.format("POST", "/api/v1/appointments",
    { ["Content-Type"] = "application/json", ["X-API-Key"] = key }, body)
end

local statuses = {}
function response(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  io.write(string.format("requests %d, errors (non-2xx or socket) %d\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
