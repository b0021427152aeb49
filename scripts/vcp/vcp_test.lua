-- Lua tests of the vcp module, run against scripts/vcp/vcpfake (fixture
-- "vcp" of scripts/luafixture, named by luatest.json;
-- `vmarket script test scripts/vcp`). Sites and keys: see that fixture.
local vcp = require("vcp")
local time = require("time")
local fake = require("fake")

local SITE = "3f2b8c1e-6a4d-4e2f-9b71-0c5d2a8e4f10"
local UNKNOWN = "00000000-0000-4000-8000-000000000000"

local T = {}

function T.setup() fake.reset() end

local function err_of(fn)
  local ok, err = pcall(fn)
  assert_true(not ok, "expected an error")
  return err
end

local function ids(list)
  local out = {}
  for _, c in ipairs(list) do out[#out + 1] = c.id end
  return out
end

function T.test_commands(t)
  t:eq(ids(vcp.commands(SITE)), {"c1", "c2"}, "pending + applied in the last 24h")
  t:eq(ids(vcp.commands(SITE, 1)), {"c1"})
  t:eq(ids(vcp.commands(SITE, "48h")), {"c1", "c2", "c3"})
  local before = fake.count{}
  for _, bad in ipairs({0, 169, 1.5, "soon"}) do
    t:eq(err_of(function() vcp.commands(SITE, bad) end).code, "invalid_argument", tostring(bad))
  end
  t:eq(fake.count{}, before, "nothing sent")
end

function T.test_config(t)
  local c = vcp.config(SITE)
  t:eq(c.siteId, SITE)
  t:eq(c.operatingMode, "self-consumption")
  t:eq(c.constraints.maxExportKw, 50)
  t:eq(#c.pendingCommands, 1)
  for _, f in ipairs({"activeSchedule", "fallback", "modeOverride"}) do
    t:eq(type(c[f]), "table", f)
  end
end

function T.test_telemetry(t)
  local now = time.now()
  local r = vcp.telemetry(SITE, now - 3600)
  t:ok(#r >= 4 and #r <= 5, "an hour of 15-minute readings, got " .. #r)
  t:ok(r[1].meterId ~= nil and r[1].timestamp ~= nil)
  -- ISO strings, any offset, and exactly 48h
  r = vcp.telemetry(SITE, "2025-05-30T12:00:00Z", "2025-06-01T14:00:00+02:00")
  t:eq(#r, 193)
  r = vcp.telemetry(SITE, time.parse("2025-06-01T10:00:00Z", "iso"), time.parse("2025-06-01T10:30:00Z", "iso"))
  t:eq(#r, 3)
end

function T.test_telemetry_window_checked_before_sending(t)
  local before = fake.count{}
  local now = time.now()
  local cases = {
    {nil, nil, "from is required"},
    {now - 48 * 3600 - 60, nil, "over 48h"},
    {"2025-05-01T00:00:00Z", "2025-05-03T00:00:01Z", "over 48h"},
    {"2025-05-02T00:00:00Z", "2025-05-01T00:00:00Z", "after to"},
    {"yesterday", nil, "ISO 8601"},
    {"2025-05-01 10:00", nil, "ISO 8601"},
  }
  for _, c in ipairs(cases) do
    local e = err_of(function() vcp.telemetry(SITE, c[1], c[2]) end)
    t:eq(e.code, "invalid_argument")
    t:ok(tostring(e):find(c[3], 1, true), tostring(e))
  end
  t:eq(err_of(function() vcp.config("not-a-uuid") end).code, "invalid_argument")
  t:eq(fake.count{}, before, "nothing sent")
end

function T.test_server_validation_error(t)
  -- Bypass the local checks to see the server's envelope.
  local e = err_of(function() vcp.client():get("not-a-uuid/config") end)
  t:eq(e.code, "VALIDATION_ERROR")
  t:eq(e.status, 400)
  t:eq(e.error, "Bad Request")
  t:eq(e.details.field, "siteId")
  t:ok(tostring(e):find("^vcp: VALIDATION_ERROR: "), tostring(e))
  e = err_of(function() vcp.config(UNKNOWN) end)
  t:eq(e.code, "NOT_FOUND")
  t:eq(e.status, 404)
end

function T.test_auth(t)
  local e = err_of(function() vcp.client{api_key = "wrong"}:config(SITE) end)
  t:eq(e.code, "UNAUTHORIZED")
  t:eq(e.status, 401)
  t:eq(e.message, "Missing or invalid API key")
  e = err_of(function() vcp.client{api_key = "config-only"}:commands(SITE) end)
  t:eq(e.code, "FORBIDDEN")
  t:eq(e.status, 403)
  t:eq(vcp.client{api_key = "config-only"}:config(SITE).siteId, SITE)
  fake.reject_auth_next(1)
  t:eq(err_of(function() vcp.config(SITE) end).code, "UNAUTHORIZED", "auth errors are not retried")
  t:eq(err_of(function() vcp.client{api_key = ""}:config(SITE) end).code, "invalid_argument")
end

function T.test_5xx_retried(t)
  local before = fake.count{endpoint = "config"}
  fake.fail_next(2, 503)
  t:eq(vcp.config(SITE).siteId, SITE)
  t:eq(fake.count{endpoint = "config"} - before, 3, "two failures, one success")
end

function T.test_retries_exhausted(t)
  local before = fake.count{endpoint = "config"}
  fake.fail_next(10, 500)
  local e = err_of(function() vcp.client{retries = 2}:config(SITE) end)
  t:eq(e.code, "INTERNAL_SERVER_ERROR")
  t:eq(e.status, 500)
  t:eq(e.attempts, 3)
  t:eq(fake.count{endpoint = "config"} - before, 3)
end

function T.test_retry_budget(t)
  local before = fake.count{endpoint = "config"}
  fake.fail_next(10, 502)
  local e = err_of(function() vcp.client{retries = 10, backoff = 1, budget = 0.5}:config(SITE) end)
  t:eq(e.code, "INTERNAL_SERVER_ERROR")
  t:ok(tostring(e):find("budget", 1, true), tostring(e))
  t:eq(fake.count{endpoint = "config"} - before, 1, "no retry past the budget")
end

function T.test_timeout(t)
  fake.delay(3)
  local e = err_of(function() vcp.client{timeout = 0.2, retries = 0}:config(SITE) end)
  t:eq(e.code, "timeout")
  -- the budget also bounds each attempt
  e = err_of(function() vcp.client{timeout = 10, retries = 5, budget = 0.3}:config(SITE) end)
  t:eq(e.code, "timeout")
end

return T
