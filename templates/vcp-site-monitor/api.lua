-- VCP Site Monitor: the type's user API, run by vmarket's provider adapter
-- (templates/vcpmonitor) in the sandbox for every call, with the
-- provider's settings. The adapter has already checked the caller and the
-- order; this script only talks to VCP.
--
-- input = {fn = "telemetry" | "commands" | "config", siteId = "<uuid>",
--          query = {<the call's query parameters>}, now = <unix>}
-- returns the answer, or {error = {status, code, message, details}}.
local vcp = require("vcp")
local time = require("time")

local input = ...
local site, q = input.siteId, input.query or {}

local DEFAULT_HOURS, MAX_HOURS = 6, 48

local function bad(message, param)
  return {error = {status = 400, code = "VALIDATION_ERROR", message = message, details = {param = param}}}
end

-- answer turns a vcp error object into an answer the adapter relays.
local function answer_error(err)
  if not vcp.is_error(err) then error(err, 0) end
  local status = 502
  if err.code == "invalid_argument" or err.code == "VALIDATION_ERROR" then status = 400
  elseif err.code == "NOT_FOUND" then status = 404
  elseif err.code == "timeout" then status = 504 end
  local message = tostring(err.message)
  if err.code == "UNAUTHORIZED" or err.code == "FORBIDDEN" then
    message = "the provider's VCP API key was refused (" .. err.code .. ")"
  end
  return {error = {status = status, code = err.code, message = message, details = err.details or err.param}}
end

local handlers = {}

function handlers.telemetry()
  local to = q.to and q.to ~= "" and q.to or input.now
  local from = q.from
  if from == nil or from == "" then
    local hours = tonumber(q.hours or DEFAULT_HOURS)
    if not hours or hours <= 0 or hours > MAX_HOURS then
      return bad("hours must be a number of hours above 0 and at most " .. MAX_HOURS, "hours")
    end
    from = vcp.to_ts(to, "to") - hours * 3600
  end
  local readings = vcp.telemetry(site, from, to)
  return {siteId = site, from = time.format(vcp.to_ts(from, "from"), "iso"), to = time.format(vcp.to_ts(to, "to"), "iso"),
    readings = readings}
end

function handlers.commands()
  local lookback = q.lookbackHours
  if lookback == "" then lookback = nil end
  return {siteId = site, commands = vcp.commands(site, lookback)}
end

function handlers.config()
  return vcp.config(site)
end

local h = handlers[input.fn]
if not h then
  return {error = {status = 404, code = "NOT_FOUND", message = "no such function: " .. tostring(input.fn)}}
end
local ok, res = pcall(h)
if not ok then return answer_error(res) end
return res
