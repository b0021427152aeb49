-- vcp: the VCP energy-site REST integration API for vmarket scripts.
--
--   local vcp = require("vcp")
--   local cmds = vcp.commands(site_id)          -- pending + applied in the last 24h
--   local cfg = vcp.config(site_id)
--   local readings = vcp.telemetry(site_id, time.now() - 3600)
--
-- Errors are tables {code, message, status, details, error, module = "vcp"}
-- (the VCP error envelope, or a local code such as invalid_argument);
-- tostring gives "vcp: CODE: message". Transient failures (5xx, timeouts,
-- transport errors) are retried with exponential backoff within a time
-- budget. See scripts/vcp/README.md.

local http = require("http")
local json = require("json")
local url = require("url")
local time = require("time")
local log = require("log")
local integration = require("integration")

local M = {}

M.DEFAULT_TIMEOUT = 10
M.DEFAULT_RETRIES = 3
M.DEFAULT_BACKOFF = 0.2
M.MAX_BACKOFF = 5
M.DEFAULT_BUDGET = 4
M.DEFAULT_LOOKBACK_HOURS = 24
M.MAX_LOOKBACK_HOURS = 168
M.MAX_WINDOW = 48 * 3600
M.API_PATH = "api/v1/vcp/sites/"

---------------------------------------------------------------------------
-- errors

local errors = integration.errors("vcp")
local new_error, raise = errors.new, errors.raise

M.is_error = errors.is

---------------------------------------------------------------------------
-- helpers

local setting = integration.setting

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

function M.is_uuid(s) return type(s) == "string" and s:match(UUID) ~= nil end

local function check_site(site_id)
  if not M.is_uuid(site_id) then
    raise("invalid_argument", "siteId must be a UUID, got " .. string.format("%q", tostring(site_id)), {param = "siteId"})
  end
end

-- to_ts turns a Unix timestamp or an ISO 8601 date-time into seconds.
local function to_ts(v, name)
  if type(v) == "number" then return v end
  if type(v) == "string" then
    local ok, ts = pcall(time.parse, v, "iso")
    if ok then return ts end
  end
  raise("invalid_argument", name .. " must be an ISO 8601 date-time or a Unix timestamp", {param = name})
end
M.to_ts = to_ts

local sleep = integration.sleep

local function now_s() return time.now_ms() / 1000 end

---------------------------------------------------------------------------
-- client

local Client = {}
Client.__index = Client

-- client builds a client from the vcp.* settings, with overrides (same
-- names without the prefix): base_url, api_key, timeout, retries, backoff,
-- budget, lookback_param.
function M.client(overrides)
  overrides = overrides or {}
  local c = setmetatable({}, Client)
  c.base_url = overrides.base_url or setting("vcp.base_url")
  c.api_key = overrides.api_key or setting("vcp.api_key")
  c.timeout = tonumber(overrides.timeout or setting("vcp.timeout", M.DEFAULT_TIMEOUT))
  c.retries = tonumber(overrides.retries or setting("vcp.retries", M.DEFAULT_RETRIES))
  c.backoff = tonumber(overrides.backoff or setting("vcp.backoff", M.DEFAULT_BACKOFF))
  c.budget = tonumber(overrides.budget or setting("vcp.budget", M.DEFAULT_BUDGET))
  c.lookback_param = overrides.lookback_param or setting("vcp.lookback_param", "lookbackHours")
  return c
end

local function status_code_name(status)
  if status == 400 then return "VALIDATION_ERROR" end
  if status == 401 then return "UNAUTHORIZED" end
  if status == 403 then return "FORBIDDEN" end
  if status >= 500 then return "INTERNAL_SERVER_ERROR" end
  return "HTTP_" .. tostring(status)
end

local function decode_error(resp)
  local ok, body = pcall(json.decode, resp.body)
  if ok and type(body) == "table" and type(body.code) == "string" then
    local details = body.details
    if details == json.null then details = nil end
    local status = resp.status
    return new_error(body.code, type(body.message) == "string" and body.message or body.code, {
      status = status, details = details, error = body.error, statusCode = body.statusCode,
      retryable = status >= 500,
    })
  end
  return new_error(status_code_name(resp.status), "HTTP " .. resp.status .. " without a VCP error envelope",
    {status = resp.status, retryable = resp.status >= 500})
end

-- get sends GET {base_url}/api/v1/vcp/sites/{path}?{query} with the
-- api-key header and returns the decoded answer. Transient failures are
-- retried with exponential backoff (backoff * 2^n, at most MAX_BACKOFF)
-- while the budget (seconds from the first attempt) allows.
function Client:get(path, query, opts)
  opts = opts or {}
  if not self.base_url then raise("invalid_argument", "setting vcp.base_url is not set") end
  if not self.api_key or self.api_key == "" then raise("invalid_argument", "setting vcp.api_key is not set") end
  local base = self.base_url
  if base:sub(-1) ~= "/" then base = base .. "/" end
  local target = base .. M.API_PATH .. path
  if query and next(query) then target = target .. "?" .. url.build_query(query) end
  local retries = tonumber(opts.retries or self.retries) or 0
  local budget = tonumber(opts.budget or self.budget)
  local started = now_s()
  local attempt = 0
  while true do
    attempt = attempt + 1
    local timeout = opts.timeout or self.timeout
    if budget then timeout = math.max(0.001, math.min(timeout, budget - (now_s() - started))) end
    local ok, resp = pcall(http.request, {
      method = "GET", url = target, timeout = timeout,
      headers = {["api-key"] = self.api_key, Accept = "application/json"},
    })
    local failure
    if not ok then
      local code = type(resp) == "table" and resp.code or "transport"
      failure = new_error(code, type(resp) == "table" and tostring(resp.message) or tostring(resp),
        {retryable = code == "timeout" or code == "transport"})
    elseif resp.status >= 200 and resp.status < 300 then
      local dok, body = pcall(json.decode, resp.body)
      if dok and type(body) == "table" then return body end
      raise("bad_response", "answer is not JSON", {status = resp.status})
    else
      failure = decode_error(resp)
    end
    failure.attempts = attempt
    if not failure.retryable or attempt > retries then error(failure, 0) end
    local wait = math.min(self.backoff * 2 ^ (attempt - 1), M.MAX_BACKOFF)
    if budget and (now_s() - started) + wait >= budget then
      failure.message = failure.message .. " (retry budget of " .. budget .. "s spent)"
      error(failure, 0)
    end
    log.warn("vcp: retrying", {path = path, attempt = attempt, code = failure.code, wait = wait})
    sleep(wait)
  end
end

-- commands returns the site's pending commands and those applied within
-- the lookback (hours, 1..168, default 24 on the server's side).
function Client:commands(site_id, lookback_hours, opts)
  check_site(site_id)
  local q = {}
  if lookback_hours ~= nil then
    local h = tonumber(lookback_hours)
    if type(lookback_hours) == "string" then h = tonumber((lookback_hours:gsub("h$", ""))) end
    if not h or h ~= math.floor(h) or h < 1 or h > M.MAX_LOOKBACK_HOURS then
      raise("invalid_argument", "lookback must be a whole number of hours from 1 to " .. M.MAX_LOOKBACK_HOURS, {param = "lookback"})
    end
    q[self.lookback_param] = h
  end
  local body = self:get(url.path_escape(site_id) .. "/commands", q, opts)
  return body.commands or json.array()
end

-- config returns the site's current config: activeSchedule, constraints,
-- fallback, modeOverride, operatingMode, pendingCommands, siteId.
function Client:config(site_id, opts)
  check_site(site_id)
  return self:get(url.path_escape(site_id) .. "/config", nil, opts)
end

-- telemetry returns the meter readings of [from, to]; from is required,
-- to defaults to now; the window may be at most 48 hours. Both are Unix
-- timestamps or ISO 8601 date-times and are sent as ISO (UTC).
function Client:telemetry(site_id, from, to, opts)
  check_site(site_id)
  if from == nil then raise("invalid_argument", "telemetry: from is required", {param = "from"}) end
  local f = to_ts(from, "from")
  local t = to ~= nil and to_ts(to, "to") or time.now()
  if t < f then raise("invalid_argument", "telemetry: from is after to", {param = "from"}) end
  if t - f > M.MAX_WINDOW then
    raise("invalid_argument", "telemetry: the window is over 48h (" .. string.format("%.1f", (t - f) / 3600) .. "h)", {param = "from"})
  end
  local body = self:get(url.path_escape(site_id) .. "/telemetry/meter",
    {from = time.format(f, "iso"), to = time.format(t, "iso")}, opts)
  return body.readings or json.array()
end

for _, name in ipairs({"commands", "config", "telemetry"}) do
  M[name] = function(...) local c = M.client() return c[name](c, ...) end
end

return M
