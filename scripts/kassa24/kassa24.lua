-- kassa24: the Kassa24 payment terminal portal API for vmarket scripts.
--
--   local kassa24 = require("kassa24")
--   for row in kassa24.rows("report", "payments", {from = "20250102", to = "20250102"}) do ... end
--   local pays = kassa24.payments("20250102", "20250102")   -- normalized, all pages
--   local r = kassa24.request("payment", "info", {account = order_id})
--
-- Requests: POST {base}{resource}/{action}, Content-Type application/json,
-- body {"Body": {"PageSize", "CurrentPage", "Sort", "Params"}}. Answers:
-- {Code, Message, ResultData} or {Code, Message, QueryData: [{Rows}],
-- Metadata: {PageCount, PageSize, PageIndex, RowCount}}; tags are looked up
-- case-insensitively. Dates are yyyyMMddHHmmss or yyyyMMdd (a date-only
-- period covers whole days, both ends inclusive); decimals use a dot.
-- Errors are tables {code, message, status, module = "kassa24"}; tostring
-- gives "kassa24: code: message". See scripts/kassa24/README.md.

local http = require("http")
local json = require("json")
local url = require("url")
local time = require("time")
local log = require("log")
local integration = require("integration")

local M = {}

M.HOSTS = {
  sandbox = "https://api.portal.tech24.kz/",
  production = "https://api.portal.kassa24.kz/",
}
M.DEFAULT_ENV = "sandbox"
M.DEFAULT_PAGE_SIZE = 1000
M.DEFAULT_CURRENT_PAGE = 0
M.DEFAULT_TIMEOUT = 15
M.DEFAULT_RETRIES = 2
M.DEFAULT_TIMEZONE = "+05:00"
M.DEFAULT_MAX_PAGES = 1000

---------------------------------------------------------------------------
-- errors

local errors = integration.errors("kassa24")
local new_error, raise = errors.new, errors.raise

M.is_error = errors.is

---------------------------------------------------------------------------
-- case-insensitive tags

-- field returns t[name] looking the key up case-insensitively (an exact
-- match wins).
function M.field(t, name)
  if type(t) ~= "table" then return nil end
  local v = t[name]
  if v ~= nil then return v end
  local lname = name:lower()
  for k, val in pairs(t) do
    if type(k) == "string" and k:lower() == lname then return val end
  end
  return nil
end
local field = M.field

local function present(v)
  if v == json.null then return nil end
  return v
end

---------------------------------------------------------------------------
-- decimals

-- to_minor turns a dot decimal (number or string, at most two decimals)
-- into an integer number of minor units (tiyn). A comma is refused.
function M.to_minor(v)
  if type(v) == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return nil, "not a finite number" end
    local m = math.floor(v * 100 + 0.5)
    if math.abs(v * 100 - m) > 1e-6 then return nil, "more than 2 decimals" end
    return m
  end
  if type(v) ~= "string" then return nil, "not a number or a string" end
  if v:find(",", 1, true) then return nil, "decimal comma; use a dot" end
  local neg, whole, dot, frac = v:match("^%s*(%-?)(%d+)(%.?)(%d*)%s*$")
  if not whole or (dot == "." and frac == "") then return nil, "not a dot decimal" end
  if #frac > 2 then return nil, "more than 2 decimals" end
  local m = tonumber(whole) * 100 + tonumber((frac .. "00"):sub(1, 2))
  if neg == "-" then m = -m end
  return m
end

-- format_minor renders minor units as a dot decimal with two decimals.
function M.format_minor(m)
  local sign = ""
  if m < 0 then sign, m = "-", -m end
  return sign .. tostring(math.floor(m / 100)) .. "." .. string.format("%02d", m % 100)
end

-- decimal normalizes a number or dot-decimal string for sending ("12.50").
function M.decimal(v)
  local m, why = M.to_minor(v)
  if not m then raise("invalid_argument", "decimal " .. string.format("%q", tostring(v)) .. ": " .. why) end
  return M.format_minor(m)
end

---------------------------------------------------------------------------
-- dates

-- format_date renders a Unix timestamp as yyyyMMddHHmmss, or yyyyMMdd when
-- kind is "date", in the portal's zone.
function M.format_date(ts, kind, tz)
  tz = tz or M.DEFAULT_TIMEZONE
  if kind == "date" then return time.format(ts, "yyyyMMdd", tz) end
  return time.format(ts, "yyyyMMddHHmmss", tz)
end

-- parse_date parses yyyyMMddHHmmss or yyyyMMdd into a Unix timestamp. For
-- a date-only value, end_of_period gives the last second of that day (the
-- "to" end of a period is inclusive).
function M.parse_date(s, end_of_period, tz)
  tz = tz or M.DEFAULT_TIMEZONE
  if type(s) ~= "string" then raise("invalid_argument", "date must be a string") end
  if s:match("^%d%d%d%d%d%d%d%d%d%d%d%d%d%d$") then
    local ok, ts = pcall(time.parse, s, "yyyyMMddHHmmss", tz)
    if ok then return ts end
  elseif s:match("^%d%d%d%d%d%d%d%d$") then
    local ok, ts = pcall(time.parse, s, "yyyyMMdd", tz)
    if ok then
      if end_of_period then ts = ts + 86400 - 1 end
      return ts
    end
  end
  raise("invalid_argument", "date " .. string.format("%q", s) .. ": want yyyyMMddHHmmss or yyyyMMdd")
end

-- to_date turns a Unix timestamp or a portal date string into the string
-- sent (strings are checked and kept, so a date-only period stays
-- date-only).
local function to_date(v, name, tz)
  if type(v) == "number" then return M.format_date(v, nil, tz) end
  if type(v) == "string" then
    M.parse_date(v, false, tz)
    return v
  end
  raise("invalid_argument", name .. " must be a Unix timestamp or a yyyyMMdd[HHmmss] string", {param = name})
end

-- period checks a period and returns its from/to strings and the
-- inclusive bounds as timestamps.
function M.period(from, to, tz)
  if from == nil or to == nil then raise("invalid_argument", "a period needs from and to") end
  local f, t = to_date(from, "from", tz), to_date(to, "to", tz)
  local fts, tts = M.parse_date(f, false, tz), M.parse_date(t, true, tz)
  if tts < fts then raise("invalid_argument", "period: from " .. f .. " is after to " .. t, {param = "from"}) end
  return {from = f, to = t, from_ts = fts, to_ts = tts}
end

-- in_period tells whether ts lies in the inclusive period [from, to].
function M.in_period(ts, from, to, tz)
  local p = M.period(from, to, tz)
  return ts >= p.from_ts and ts <= p.to_ts
end

---------------------------------------------------------------------------
-- responses

-- parse_response reads either answer shape (tags in any case) into
-- {code, message, data (ResultData), rows (all QueryData rows), meta =
-- {page_count, page_size, page_index, row_count}}.
function M.parse_response(body)
  if type(body) ~= "table" then raise("bad_response", "answer is not a JSON object") end
  local code = tonumber(present(field(body, "Code")))
  if code == nil then raise("bad_response", "answer has no Code") end
  local out = {code = code, message = present(field(body, "Message"))}
  out.data = present(field(body, "ResultData"))
  local qd = present(field(body, "QueryData"))
  if qd ~= nil then
    local rows = json.array()
    for _, part in ipairs(qd) do
      for _, row in ipairs(present(field(part, "Rows")) or {}) do rows[#rows + 1] = row end
    end
    out.rows = rows
  end
  local md = present(field(body, "Metadata"))
  if md ~= nil then
    out.meta = {
      page_count = tonumber(present(field(md, "PageCount"))),
      page_size = tonumber(present(field(md, "PageSize"))),
      page_index = tonumber(present(field(md, "PageIndex"))),
      row_count = tonumber(present(field(md, "RowCount"))),
    }
  end
  return out
end

---------------------------------------------------------------------------
-- client

local setting = integration.setting
local sleep = integration.sleep

local Client = {}
Client.__index = Client

-- client builds a client from the kassa24.* settings, with overrides (same
-- names without the prefix): env ("sandbox" or "production"), base_url
-- (wins over env), token, auth_header, auth_prefix, timeout, retries,
-- backoff, page_size, timezone.
function M.client(overrides)
  overrides = overrides or {}
  local c = setmetatable({}, Client)
  c.env = overrides.env or setting("kassa24.env", M.DEFAULT_ENV)
  if not M.HOSTS[c.env] then raise("invalid_argument", "kassa24.env must be sandbox or production, got " .. tostring(c.env)) end
  c.base_url = overrides.base_url or setting("kassa24.base_url", M.HOSTS[c.env])
  if c.base_url:sub(-1) ~= "/" then c.base_url = c.base_url .. "/" end
  c.token = overrides.token or setting("kassa24.token")
  c.auth_header = overrides.auth_header or setting("kassa24.auth_header", "Authorization")
  c.auth_prefix = overrides.auth_prefix or setting("kassa24.auth_prefix", "Bearer ")
  c.timeout = tonumber(overrides.timeout or setting("kassa24.timeout", M.DEFAULT_TIMEOUT))
  c.retries = tonumber(overrides.retries or setting("kassa24.retries", M.DEFAULT_RETRIES))
  c.backoff = tonumber(overrides.backoff or setting("kassa24.backoff", 0.2))
  c.page_size = tonumber(overrides.page_size or setting("kassa24.page_size", M.DEFAULT_PAGE_SIZE))
  c.timezone = overrides.timezone or setting("kassa24.timezone", M.DEFAULT_TIMEZONE)
  return c
end

-- request posts one call and returns the parsed answer (see
-- parse_response). opts: page_size (1000), current_page (0), sort,
-- timeout, retries. Transient failures (5xx, timeouts, transport) are
-- retried: the portal's calls read data.
function Client:request(resource, action, params, opts)
  opts = opts or {}
  if type(resource) ~= "string" or resource == "" or type(action) ~= "string" or action == "" then
    raise("invalid_argument", "request: resource and action are required")
  end
  if not self.token or self.token == "" then raise("invalid_argument", "setting kassa24.token is not set") end
  local page_size = tonumber(opts.page_size or self.page_size)
  local current = tonumber(opts.current_page or M.DEFAULT_CURRENT_PAGE)
  if not page_size or page_size < 1 or page_size ~= math.floor(page_size) then
    raise("invalid_argument", "page_size must be a positive integer")
  end
  if not current or current < 0 or current ~= math.floor(current) then
    raise("invalid_argument", "current_page must be a non-negative integer")
  end
  local p = {}
  for k, v in pairs(params or {}) do p[k] = v end
  local body = {PageSize = page_size, CurrentPage = current, Params = p}
  if opts.sort then body.Sort = opts.sort end
  local payload = json.encode({Body = body})
  local target = self.base_url .. url.path_escape(resource) .. "/" .. url.path_escape(action)
  local retries = tonumber(opts.retries or self.retries) or 0
  local attempt = 0
  while true do
    attempt = attempt + 1
    local ok, resp = pcall(http.request, {
      method = "POST", url = target, body = payload, timeout = opts.timeout or self.timeout,
      headers = {
        ["Content-Type"] = "application/json",
        Accept = "application/json",
        [self.auth_header] = self.auth_prefix .. self.token,
      },
    })
    local failure
    if not ok then
      local code = type(resp) == "table" and resp.code or "transport"
      failure = new_error(code, type(resp) == "table" and tostring(resp.message) or tostring(resp),
        {retryable = code == "timeout" or code == "transport"})
    else
      local dok, decoded = pcall(json.decode, resp.body)
      local parsed
      if dok and type(decoded) == "table" then
        local pok, pr = pcall(M.parse_response, decoded)
        if pok then parsed = pr end
      end
      if parsed and parsed.code == 0 and resp.status < 300 then
        parsed.status = resp.status
        return parsed
      end
      if parsed then
        failure = new_error(parsed.code, parsed.message or "Kassa24 error",
          {status = resp.status, retryable = resp.status >= 500})
      else
        failure = new_error("http_" .. tostring(resp.status), "answer is not a Kassa24 envelope",
          {status = resp.status, retryable = resp.status >= 500})
      end
    end
    failure.attempts = attempt
    if not failure.retryable or attempt > retries then error(failure, 0) end
    local wait = self.backoff * 2 ^ (attempt - 1)
    log.warn("kassa24: retrying", {resource = resource, action = action, attempt = attempt, code = failure.code})
    sleep(wait)
  end
end

-- pages iterates over every page of a QueryData answer, from
-- opts.current_page (0): `for page in c:pages(...) do ... page.rows, page.meta end`.
-- It stops after the last page (Metadata.PageCount), at an empty page, or
-- after opts.max_pages (1000).
function Client:pages(resource, action, params, opts)
  opts = opts or {}
  local page = tonumber(opts.current_page or M.DEFAULT_CURRENT_PAGE)
  local max_pages = tonumber(opts.max_pages or M.DEFAULT_MAX_PAGES)
  local fetched, done = 0, false
  return function()
    if done then return nil end
    if fetched >= max_pages then
      raise("too_many_pages", "more than " .. max_pages .. " pages; narrow the query or raise max_pages")
    end
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    o.current_page = page
    local r = self:request(resource, action, params, o)
    fetched = fetched + 1
    if r.rows == nil then raise("bad_response", resource .. "/" .. action .. " answered no QueryData") end
    local idx = (r.meta and r.meta.page_index) or page
    if #r.rows == 0 or not r.meta or not r.meta.page_count or idx + 1 >= r.meta.page_count then
      done = true
    end
    page = idx + 1
    if #r.rows == 0 and fetched > 1 then return nil end
    return r
  end
end

-- rows iterates over the rows of every page: `for row, n in c:rows(...)`.
function Client:rows(resource, action, params, opts)
  local next_page = self:pages(resource, action, params, opts)
  local current, i, n = nil, 0, 0
  return function()
    while true do
      if current and i < #current.rows then
        i, n = i + 1, n + 1
        return current.rows[i], n
      end
      current, i = next_page(), 0
      if current == nil then return nil end
    end
  end
end

-- all returns the rows of every page as one list.
function Client:all(resource, action, params, opts)
  local out = json.array()
  for row in self:rows(resource, action, params, opts) do out[#out + 1] = row end
  return out
end

-- normalize_payment maps a payments-report row to vmarket's names:
-- transaction_id, terminal_id, amount ("12.50"), amount_minor, commission_minor,
-- date (as sent), time (Unix), account (vmarket's order id), status, raw.
function M.normalize_payment(row, tz)
  local amount, why = M.to_minor(present(field(row, "amount")))
  if not amount then raise("bad_response", "payment amount: " .. why) end
  local commission = M.to_minor(present(field(row, "commission")) or 0) or 0
  local date = present(field(row, "date"))
  local id = present(field(row, "idTransaction"))
  local terminal = present(field(row, "idTerminal"))
  return {
    transaction_id = id ~= nil and tostring(id) or nil,
    terminal_id = terminal ~= nil and tostring(terminal) or nil,
    amount = M.format_minor(amount),
    amount_minor = amount,
    commission_minor = commission,
    date = date,
    time = date and M.parse_date(tostring(date), false, tz) or nil,
    account = present(field(row, "account")),
    status = present(field(row, "status")),
    raw = row,
  }
end

-- payments returns the payments of the inclusive period [from, to] (Unix
-- timestamps or yyyyMMdd[HHmmss]), normalized, across all pages. opts:
-- terminal, account, min_amount, sort, page_size, plus request options.
function Client:payments(from, to, opts)
  opts = opts or {}
  local p = M.period(from, to, self.timezone)
  local params = {from = p.from, to = p.to}
  if opts.terminal then params.idTerminal = opts.terminal end
  if opts.account then params.account = opts.account end
  if opts.min_amount then params.minAmount = M.decimal(opts.min_amount) end
  local out = json.array()
  for row in self:rows("report", "payments", params, opts) do
    out[#out + 1] = M.normalize_payment(row, self.timezone)
  end
  return out
end

-- payment_info returns one payment (ResultData), normalized, by
-- {idTransaction = ...} or {account = ...}.
function Client:payment_info(params, opts)
  local r = self:request("payment", "info", params, opts)
  if type(r.data) ~= "table" then raise("bad_response", "payment/info answered no ResultData") end
  return M.normalize_payment(r.data, self.timezone)
end

for _, name in ipairs({"request", "pages", "rows", "all", "payments", "payment_info"}) do
  M[name] = function(...) local c = M.client() return c[name](c, ...) end
end

return M
