-- Lua tests of the VCP Site Monitor scripts (start, stop, refund, and the
-- adapter's api.lua) against the VCP fake
-- (fixture "vcp-site-monitor" of scripts/luafixture, named by luatest.json;
-- `vmarket script test templates/vcp-site-monitor`).
local crypto = require("crypto")
local kv = require("kv")
local template = require("template")
local fake = require("fake")

local SITE = "3f2b8c1e-6a4d-4e2f-9b71-0c5d2a8e4f10"
local UNKNOWN = "00000000-0000-4000-8000-000000000000"

local function run(file, input)
  local fn, err = load(template.source(file), "=" .. file)
  if not fn then error(err) end
  return fn(input)
end

local function new_order(fields)
  local o = {id = crypto.uuid(), duration = 2, amount = 2, amountPaid = 2, amountRefunded = 0,
    serviceActivateTS = 0, serviceOptions = {siteId = SITE}}
  for k, v in pairs(fields or {}) do o[k] = v end
  return o
end

local function input(step, order, now)
  return {step = step, idempotencyKey = order.id .. ":" .. step, now = now or os.time(), hourSeconds = 3600,
    order = order, service = {name = "VCP Site Monitor", apiHost = "http://127.0.0.1:1/providers/vcp-site-monitor"},
    provider = {name = "vcp-energy"}}
end

local function api(fn, query, site)
  return run("api.lua", {fn = fn, siteId = site or SITE, query = query or {}, now = os.time()})
end

local T = {}

function T.setup() fake.reset() fake.scopes() end

function T.test_start_checks_the_site_and_issues_a_token(t)
  local configs = fake.count{endpoint = "config", site = SITE}
  local o = new_order()
  local res = run("start.lua", input("start", o))
  t:ok(res.secret:match("^vcpm_%x+$"), "monitoring token")
  t:eq(kv.get("monitor-token:" .. o.id), crypto.sha256(res.secret), "its hash is kept for the adapter")
  t:eq(res.data.siteId, SITE)
  t:eq(res.data.operatingMode, "self-consumption")
  t:eq(res.data.pendingCommands, 1)
  t:eq(fake.count{endpoint = "config", site = SITE}, configs + 1)
  t:eq(fake.count{endpoint = "telemetry/meter"}, 0, "start reads only the config")
end

function T.test_start_retried_replaces_the_token(t)
  local o = new_order()
  local first = run("start.lua", input("start", o))
  local again = run("start.lua", input("start", o))
  t:ok(first.secret ~= again.secret)
  t:eq(kv.get("monitor-token:" .. o.id), crypto.sha256(again.secret), "the last run's token works")
end

function T.test_start_failures(t)
  local cases = {
    {name = "not a uuid", site = "site-1", want = "must be a VCP site id", calls = 0},
    {name = "no site", site = nil, want = "must be a VCP site id", calls = 0},
    {name = "unknown site", site = UNKNOWN, want = "VCP has no site " .. UNKNOWN, calls = 1},
    {name = "key refused", site = SITE, before = function() fake.reject_auth_next(1) end, want = "refused the provider's API key", calls = 1},
    {name = "no config scope", site = SITE, before = function() fake.scopes("telemetry:read") end, want = "lacks the config:read scope", calls = 1},
  }
  for _, c in ipairs(cases) do
    fake.reset() fake.scopes()
    if c.before then c.before() end
    local o = new_order({serviceOptions = {siteId = c.site}})
    local calls = fake.count{}
    t:error(function() run("start.lua", input("start", o)) end, c.want)
    t:eq(fake.count{} - calls, c.calls, c.name .. ": calls to VCP")
    t:eq(kv.get("monitor-token:" .. o.id), nil, c.name .. ": no token")
  end
end

function T.test_start_survives_a_transient_failure(t)
  fake.fail_next(1, 503)
  local res = run("start.lua", input("start", new_order()))
  t:eq(res.data.operatingMode, "self-consumption")
end

function T.test_stop_revokes_the_token(t)
  local o = new_order()
  run("start.lua", input("start", o))
  local calls = fake.count{}
  t:eq(run("stop.lua", input("stop", o)), {stopped = true})
  t:eq(kv.get("monitor-token:" .. o.id), nil)
  t:eq(run("stop.lua", input("stop", o)), {stopped = true}, "again: harmless")
  t:eq(fake.count{}, calls, "nothing sent to VCP")
end

function T.test_refund_prorates(t)
  local now = 1750000000
  local cases = {
    {name = "never started", fields = {}, want = 2},
    {name = "first hour", fields = {serviceActivateTS = now - 1800}, want = 1},
    {name = "second hour", fields = {serviceActivateTS = now - 3700}, want = 0},
    {name = "already refunded", fields = {amountRefunded = 2}, want = 0},
    {name = "a week, day 2", fields = {duration = 168, amount = 151.2, amountPaid = 151.2, serviceActivateTS = now - 86400 - 60}, want = 151.2 * 143 / 168},
  }
  for _, c in ipairs(cases) do
    local res = run("refund.lua", input("refund", new_order(c.fields), now))
    t:ok(math.abs(res.amount - c.want) < 1e-9, c.name .. ": " .. tostring(res.amount) .. " want " .. tostring(c.want))
  end
end

function T.test_api_telemetry_window(t)
  local res = api("telemetry", {from = "2025-06-01T00:00:00Z", to = "2025-06-01T01:00:00Z"})
  t:eq(#res.readings, 5, "15-minute readings, both ends included")
  t:eq(res.from, "2025-06-01T00:00:00Z")
  t:eq(res.to, "2025-06-01T01:00:00Z")
  t:eq(res.readings[1].timestamp, "2025-06-01T00:00:00Z")
end

function T.test_api_telemetry_recent_hours(t)
  local res = api("telemetry", {hours = "1"})
  t:ok(#res.readings == 4 or #res.readings == 5, "an hour of readings: " .. #res.readings)
  local default = api("telemetry")
  t:ok(#default.readings >= 24 and #default.readings <= 25, "six hours by default: " .. #default.readings)
end

function T.test_api_refuses_bad_windows_before_calling(t)
  local calls = fake.count{}
  local cases = {
    {query = {hours = "49"}, code = "VALIDATION_ERROR"},
    {query = {hours = "abc"}, code = "VALIDATION_ERROR"},
    {query = {from = "2025-06-01T00:00:00Z", to = "2025-06-03T00:00:01Z"}, code = "invalid_argument"},
    {query = {from = "yesterday"}, code = "invalid_argument"},
  }
  for _, c in ipairs(cases) do
    local res = api("telemetry", c.query)
    t:eq(res.error.status, 400)
    t:eq(res.error.code, c.code)
  end
  t:eq(fake.count{}, calls, "nothing sent to VCP")
end

function T.test_api_commands(t)
  local recent = api("commands")
  t:eq(#recent.commands, 2, "pending and applied in the last 24 h")
  local week = api("commands", {lookbackHours = "48"})
  t:eq(#week.commands, 3)
  t:eq(api("commands", {lookbackHours = "500"}).error.status, 400)
end

function T.test_api_config(t)
  local cfg = api("config")
  t:eq(cfg.operatingMode, "self-consumption")
  t:eq(cfg.constraints.maxExportKw, 50)
end

function T.test_api_errors(t)
  t:eq(api("nope").error.status, 404)
  t:eq(api("config", {}, UNKNOWN).error.status, 404)
  fake.reject_auth_next(1)
  local res = api("config")
  t:eq(res.error.status, 502)
  t:eq(res.error.code, "UNAUTHORIZED")
  fake.fail_next(10, 500)
  t:eq(api("config").error.code, "INTERNAL_SERVER_ERROR")
end

return T
