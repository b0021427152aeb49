-- vcc: the VCC (Towngas gas account) open API for vmarket scripts.
--
-- Real-time interfaces over HTTPS (account information query, gas withdrawal
-- at a top-up machine, withdrawal result report) and the daily
-- reconciliation file over SFTP. See scripts/vcc/README.md for the settings,
-- the parameters ({} required, [] optional), the error objects and the
-- reconciliation file format.
--
--   local vcc = require("vcc")
--   local acct = vcc.account_query{accountNo = "880001"}
--   local w = vcc.withdraw{accountNo = "880001", orderNo = order.id, amount = "12.50"}
--   vcc.report_withdrawal{orderNo = order.id, result = "SUCCESS"}
--   local report = vcc.reconcile("20250314", orders)

local http = require("http")
local json = require("json")
local url = require("url")
local time = require("time")
local crypto = require("crypto")
local log = require("log")
local integration = require("integration")

local M = {}

M.DEFAULT_BASE_URL = "https://api.towngasvcc.com/vcc-openapi/"
M.DEFAULT_RESOURCES = {
  account_query = "account/query",
  withdraw = "gas/withdraw",
  withdraw_report = "gas/withdraw/report",
}
M.DEFAULT_TIMEOUT = 10
M.DEFAULT_RETRIES = 2
M.DEFAULT_RECONCILE_DIR = "/reconcile"
M.TIMEZONE = "+08:00"
M.OK = "0000"

-- Parameters of each operation: required ({}) and optional ([]). The
-- common parameters timestamp (yyyyMMddHHmmss, China time) and requestId
-- are added by the module.
M.PARAMS = {
  account_query = {required = {"accountNo"}, optional = {"cardNo"}},
  withdraw = {required = {"accountNo", "orderNo", "amount"}, optional = {"machineId", "cardNo", "remark"}},
  withdraw_report = {required = {"orderNo", "result"}, optional = {"withdrawNo", "reason", "reportTime"}},
}

---------------------------------------------------------------------------
-- errors

local errors = integration.errors("vcc")
local new_error, raise = errors.new, errors.raise

M.is_error = errors.is

---------------------------------------------------------------------------
-- helpers

local setting = integration.setting

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

-- to_fen turns an amount (a number or a dot-decimal string with at most two
-- decimals, in yuan) into an integer number of fen; nil and a reason when
-- it is not one.
local function to_fen(v)
  if type(v) == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return nil, "not a finite number" end
    local f = math.floor(v * 100 + 0.5)
    if math.abs(v * 100 - f) > 1e-6 then return nil, "more than 2 decimals" end
    return f
  end
  if type(v) ~= "string" then return nil, "not a number or a string" end
  local s = trim(v)
  local neg, whole, frac = s:match("^(%-?)(%d+)%.?(%d*)$")
  if not whole or (s:find("%.") and frac == "") then return nil, "not a dot decimal" end
  if #frac > 2 then return nil, "more than 2 decimals" end
  local f = tonumber(whole) * 100 + tonumber((frac .. "00"):sub(1, 2))
  if neg == "-" then f = -f end
  return f
end
M.to_fen = to_fen

-- format_fen renders fen as yuan with two decimals ("12.50").
local function format_fen(f)
  local sign = ""
  if f < 0 then sign, f = "-", -f end
  return sign .. tostring(math.floor(f / 100)) .. "." .. string.format("%02d", f % 100)
end
M.format_fen = format_fen

local sleep = integration.sleep

---------------------------------------------------------------------------
-- client

local Client = {}
Client.__index = Client

-- client builds a client from the vcc.* settings, with overrides (same
-- names without the "vcc." prefix: base_url, api_key, timeout, retries,
-- backoff, resources = {account_query=..., withdraw=..., withdraw_report=...},
-- sftp = {host, port, user, password, private_key, passphrase, host_key,
-- host_key_fingerprint, dir}).
function M.client(overrides)
  overrides = overrides or {}
  local c = setmetatable({}, Client)
  c.base_url = overrides.base_url or setting("vcc.base_url", M.DEFAULT_BASE_URL)
  if c.base_url:sub(-1) ~= "/" then c.base_url = c.base_url .. "/" end
  c.api_key = overrides.api_key or setting("vcc.api_key")
  c.timeout = tonumber(overrides.timeout or setting("vcc.timeout", M.DEFAULT_TIMEOUT))
  c.retries = tonumber(overrides.retries or setting("vcc.retries", M.DEFAULT_RETRIES))
  c.backoff = tonumber(overrides.backoff or setting("vcc.backoff", 0.2))
  local res = overrides.resources or {}
  c.resources = {}
  for op, default in pairs(M.DEFAULT_RESOURCES) do
    c.resources[op] = res[op] or setting("vcc.resource." .. op, default)
  end
  local s = overrides.sftp or {}
  c.sftp = {
    host = s.host or setting("vcc.sftp.host"),
    port = tonumber(s.port or setting("vcc.sftp.port", 22)),
    user = s.user or setting("vcc.sftp.user"),
    password = s.password or setting("vcc.sftp.password"),
    private_key = s.private_key or setting("vcc.sftp.private_key"),
    passphrase = s.passphrase or setting("vcc.sftp.passphrase"),
    host_key = s.host_key or setting("vcc.sftp.host_key"),
    host_key_fingerprint = s.host_key_fingerprint or setting("vcc.sftp.host_key_fingerprint"),
    dir = s.dir or setting("vcc.sftp.dir", M.DEFAULT_RECONCILE_DIR),
  }
  return c
end

-- stringify turns a parameter value into the string sent.
local function stringify(name, v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then
    if v == math.floor(v) and math.abs(v) < 2^53 then return string.format("%d", v) end
    return tostring(v)
  end
  if t == "boolean" then return tostring(v) end
  raise("invalid_argument", "parameter " .. name .. " must be a string or a number, got " .. t)
end

-- check_params validates params against spec before anything is sent: every
-- required parameter present and non-empty, no unknown parameter.
local function check_params(op, spec, params)
  if type(params) ~= "table" then raise("invalid_argument", op .. ": parameters must be a table") end
  local allowed = {requestId = true, timestamp = true}
  for _, k in ipairs(spec.required) do
    allowed[k] = true
    local v = params[k]
    if v == nil or v == "" then
      raise("invalid_argument", op .. ": missing required parameter " .. k, {param = k})
    end
  end
  for _, k in ipairs(spec.optional) do allowed[k] = true end
  for k in pairs(params) do
    if type(k) ~= "string" or not allowed[k] then
      raise("invalid_argument", op .. ": unknown parameter " .. tostring(k), {param = tostring(k)})
    end
  end
end

-- build_query url-encodes (UTF-8) every key and value, keys sorted.
local function build_query(params)
  local keys = {}
  for k in pairs(params) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = url.escape(k) .. "=" .. url.escape(params[k])
  end
  return table.concat(parts, "&")
end
M.build_query = build_query

local function retryable_status(status) return status >= 500 end

-- call sends GET {base_url}{resource}?{query} and returns the answer's
-- data. opts: timeout, retries.
function Client:call(op, resource, params, spec, opts)
  opts = opts or {}
  if not self.api_key or self.api_key == "" then
    raise("invalid_argument", "setting vcc.api_key is not set")
  end
  if spec then check_params(op, spec, params) end
  local q = {}
  for k, v in pairs(params) do q[k] = stringify(k, v) end
  q.timestamp = q.timestamp or time.format(time.now(), "yyyyMMddHHmmss", M.TIMEZONE)
  q.requestId = q.requestId or crypto.uuid()
  local target = self.base_url .. resource .. "?" .. build_query(q)
  local retries = tonumber(opts.retries or self.retries) or 0
  local attempt = 0
  while true do
    attempt = attempt + 1
    local ok, resp = pcall(http.request, {
      method = "GET",
      url = target,
      headers = {Authorization = self.api_key, Accept = "application/json"},
      timeout = opts.timeout or self.timeout,
    })
    local failure
    if not ok then
      local code = type(resp) == "table" and resp.code or "transport"
      local msg = type(resp) == "table" and resp.message or tostring(resp)
      failure = new_error(code, op .. ": " .. tostring(msg), {retryable = (code == "timeout" or code == "transport")})
    else
      local body
      local dok, decoded = pcall(json.decode, resp.body)
      if dok and type(decoded) == "table" then body = decoded end
      if body and body.code == M.OK then
        local data = body.data
        if data == json.null then data = nil end
        return data or {}, body
      end
      if body and type(body.code) == "string" then
        local msg = body.message
        if type(msg) ~= "string" then msg = "VCC error" end
        failure = new_error(body.code, msg, {status = resp.status, requestId = q.requestId,
          retryable = retryable_status(resp.status)})
      else
        failure = new_error("bad_response", op .. ": answer is not a VCC envelope",
          {status = resp.status, retryable = retryable_status(resp.status)})
      end
    end
    if not failure.retryable or attempt > retries then error(failure, 0) end
    local wait = self.backoff * 2 ^ (attempt - 1)
    log.warn("vcc: retrying", {op = op, attempt = attempt, code = failure.code, wait = wait})
    sleep(wait)
  end
end

-- account_query: account information query. {accountNo} [cardNo].
function Client:account_query(params, opts)
  return self:call("account_query", self.resources.account_query, params, M.PARAMS.account_query, opts)
end

-- withdraw: gas withdrawal at a top-up machine (圈存机提气).
-- {accountNo} {orderNo} {amount} [machineId] [cardNo] [remark]. amount is
-- yuan, a number or a dot-decimal string with at most two decimals. VCC is
-- idempotent on orderNo: retrying with the same orderNo never withdraws
-- twice, so the call is retried on transient failures.
function Client:withdraw(params, opts)
  check_params("withdraw", M.PARAMS.withdraw, params)
  local fen, why = to_fen(params.amount)
  if not fen or fen <= 0 then
    raise("invalid_argument", "withdraw: amount must be a positive amount with at most 2 decimals (" .. (why or "not positive") .. ")", {param = "amount"})
  end
  local p = {}
  for k, v in pairs(params) do p[k] = v end
  p.amount = format_fen(fen)
  return self:call("withdraw", self.resources.withdraw, p, M.PARAMS.withdraw, opts)
end

-- report_withdrawal: withdrawal result report. {orderNo} {result}
-- [withdrawNo] [reason] [reportTime]; result is "SUCCESS" or "FAILED";
-- reportTime a Unix timestamp or yyyyMMddHHmmss (China time).
function Client:report_withdrawal(params, opts)
  check_params("report_withdrawal", M.PARAMS.withdraw_report, params)
  if params.result ~= "SUCCESS" and params.result ~= "FAILED" then
    raise("invalid_argument", "report_withdrawal: result must be SUCCESS or FAILED", {param = "result"})
  end
  local p = {}
  for k, v in pairs(params) do p[k] = v end
  if type(p.reportTime) == "number" then
    p.reportTime = time.format(p.reportTime, "yyyyMMddHHmmss", M.TIMEZONE)
  end
  return self:call("report_withdrawal", self.resources.withdraw_report, p, M.PARAMS.withdraw_report, opts)
end

---------------------------------------------------------------------------
-- daily reconciliation (按日对账)

M.RECONCILE_COLUMNS = {"orderNo", "withdrawNo", "accountNo", "amount", "withdrawTime", "status"}

-- parse_csv parses RFC 4180 text (quotes, "" escapes, CRLF or LF) into a
-- list of records (lists of strings). A UTF-8 BOM is skipped.
local function parse_csv(text)
  if text:sub(1, 3) == "\239\187\191" then text = text:sub(4) end
  local records, record, field = {}, {}, {}
  local i, n = 1, #text
  local function end_field()
    record[#record + 1] = table.concat(field)
    field = {}
  end
  local function end_record()
    end_field()
    records[#records + 1] = record
    record = {}
  end
  while i <= n do
    local c = text:sub(i, i)
    if c == '"' and #field == 0 then
      -- quoted field
      local j = i + 1
      while true do
        local q = text:find('"', j, true)
        if not q then raise("bad_file", "unterminated quoted field in record " .. (#records + 1)) end
        field[#field + 1] = text:sub(j, q - 1)
        if text:sub(q + 1, q + 1) == '"' then
          field[#field + 1] = '"'
          j = q + 2
        else
          i = q + 1
          break
        end
      end
      local nc = text:sub(i, i)
      if nc ~= "," and nc ~= "\n" and nc ~= "\r" and nc ~= "" then
        raise("bad_file", "text after a closing quote in record " .. (#records + 1))
      end
    else
      local s, e = text:find("[,\r\n]", i)
      if not s then
        field[#field + 1] = text:sub(i)
        i = n + 1
      else
        field[#field + 1] = text:sub(i, s - 1)
        local d = text:sub(s, s)
        if d == "," then
          end_field()
          i = s + 1
        else
          end_record()
          if d == "\r" and text:sub(s + 1, s + 1) == "\n" then s = s + 1 end
          i = s + 1
        end
      end
    end
  end
  if #field > 0 or #record > 0 then end_record() end
  return records
end
M.parse_csv = parse_csv

-- parse_reconciliation parses a reconciliation file into rows
-- {orderNo, withdrawNo, accountNo, amount (string), fen (integer),
-- withdrawTime, status, line}. Columns are found by header name
-- (case-insensitive), so their order may vary and extra columns are kept
-- under their header names.
function M.parse_reconciliation(text)
  local records = parse_csv(text)
  if #records == 0 then raise("bad_file", "reconciliation file is empty (no header line)") end
  local header = records[1]
  local index = {}
  for i, name in ipairs(header) do index[trim(name):lower()] = {i = i, name = trim(name)} end
  for _, col in ipairs({"orderNo", "amount"}) do
    if not index[col:lower()] then raise("bad_file", "reconciliation header lacks column " .. col) end
  end
  local rows = {}
  for r = 2, #records do
    local rec = records[r]
    if not (#rec == 1 and trim(rec[1]) == "") then -- skip blank lines
      if #rec > #header then
        raise("bad_file", "line " .. r .. ": " .. #rec .. " fields, the header has " .. #header)
      end
      local row = {line = r}
      for _, col in pairs(index) do row[col.name] = trim(rec[col.i] or "") end
      for _, col in ipairs(M.RECONCILE_COLUMNS) do
        local c = index[col:lower()]
        if c then row[col] = trim(rec[c.i] or "") end
      end
      local fen, why = to_fen(row.amount)
      if not fen then raise("bad_file", "line " .. r .. ": amount " .. string.format("%q", row.amount) .. ": " .. why) end
      row.fen = fen
      row.status = (row.status or "SUCCESS"):upper()
      if row.orderNo == "" then raise("bad_file", "line " .. r .. ": empty orderNo") end
      rows[#rows + 1] = row
    end
  end
  return rows
end

-- compare reports the differences between VCC's rows and vmarket's orders
-- ({orderNo, amount[, status]} each; amount in yuan, number or string).
-- Mismatch kinds: missing_in_vcc, missing_in_vmarket, amount_mismatch,
-- failed_in_vcc (VCC reports the withdrawal FAILED, refunded),
-- status_mismatch (only when the order gives a status), duplicate_in_vcc.
function M.compare(rows, orders)
  local by_order, mismatches = {}, {}
  local function add(m) mismatches[#mismatches + 1] = m end
  for _, row in ipairs(rows) do
    if by_order[row.orderNo] then
      add({kind = "duplicate_in_vcc", orderNo = row.orderNo, line = row.line})
    else
      by_order[row.orderNo] = row
    end
  end
  local seen, matched = {}, 0
  local total_vcc, total_vmarket = 0, 0
  for i, o in ipairs(orders or {}) do
    local no = o.orderNo or o.order_no or o.id
    if no == nil or no == "" then raise("invalid_argument", "orders[" .. i .. "] has no orderNo") end
    no = tostring(no)
    local fen, why = to_fen(o.amount)
    if not fen then raise("invalid_argument", "orders[" .. i .. "].amount: " .. why) end
    total_vmarket = total_vmarket + fen
    seen[no] = true
    local row = by_order[no]
    if not row then
      add({kind = "missing_in_vcc", orderNo = no, vmarket_amount = format_fen(fen)})
    elseif row.status == "FAILED" then
      add({kind = "failed_in_vcc", orderNo = no, vmarket_amount = format_fen(fen), vcc_amount = format_fen(row.fen)})
    elseif row.fen ~= fen then
      add({kind = "amount_mismatch", orderNo = no, vmarket_amount = format_fen(fen), vcc_amount = format_fen(row.fen),
        difference = format_fen(row.fen - fen)})
    elseif o.status and tostring(o.status):upper() ~= row.status then
      add({kind = "status_mismatch", orderNo = no, vmarket_status = tostring(o.status):upper(), vcc_status = row.status})
    else
      matched = matched + 1
    end
  end
  for _, row in ipairs(rows) do
    if row.status ~= "FAILED" then total_vcc = total_vcc + row.fen end
    if not seen[row.orderNo] and by_order[row.orderNo] == row and row.status ~= "FAILED" then
      add({kind = "missing_in_vmarket", orderNo = row.orderNo, vcc_amount = format_fen(row.fen), vcc_status = row.status})
    end
  end
  return {
    ok = #mismatches == 0,
    matched = matched,
    mismatches = json.as_array(mismatches),
    total_vcc = format_fen(total_vcc),
    total_vmarket = format_fen(total_vmarket),
  }
end

-- day_string turns a day given as yyyyMMdd, an ISO date-time or a Unix
-- timestamp into yyyyMMdd (China time).
local function day_string(day)
  if type(day) == "number" then return time.format(day, "yyyyMMdd", M.TIMEZONE) end
  if type(day) == "string" then
    if day:match("^%d%d%d%d%d%d%d%d$") then return day end
    local ok, ts = pcall(time.parse, day, "iso")
    if ok then return time.format(ts, "yyyyMMdd", M.TIMEZONE) end
  end
  raise("invalid_argument", "day must be yyyyMMdd, an ISO date-time or a Unix timestamp")
end

-- reconciliation_path is the file of a day: {dir}/yyyyMMdd.csv.
function Client:reconciliation_path(day)
  local dir = self.sftp.dir
  if dir:sub(-1) ~= "/" then dir = dir .. "/" end
  return dir .. day_string(day) .. ".csv"
end

-- fetch_reconciliation downloads a day's file over sftp and returns its
-- text and path.
function Client:fetch_reconciliation(day, opts)
  opts = opts or {}
  local s = self.sftp
  if not s.host or not s.user then raise("invalid_argument", "settings vcc.sftp.host and vcc.sftp.user are required") end
  if not s.host_key and not s.host_key_fingerprint then
    raise("invalid_argument", "setting vcc.sftp.host_key or vcc.sftp.host_key_fingerprint is required (host key pinning)")
  end
  local sftp = require("sftp")
  local path = self:reconciliation_path(day)
  local conn = sftp.connect({
    host = s.host, port = s.port, user = s.user,
    password = s.password, private_key = s.private_key, passphrase = s.passphrase,
    host_key = s.host_key, host_key_fingerprint = s.host_key_fingerprint,
    timeout = opts.timeout or self.timeout,
    op_timeout = opts.timeout or self.timeout,
  })
  local ok, data = pcall(conn.get, conn, path, opts.max_bytes)
  conn:close()
  if not ok then error(data, 0) end
  return data, path
end

-- reconcile fetches the day's reconciliation file and compares it with
-- vmarket's orders. Returns {ok, day, file, rows, matched, mismatches,
-- total_vcc, total_vmarket}.
function Client:reconcile(day, orders, opts)
  local text, path = self:fetch_reconciliation(day, opts)
  local rows = M.parse_reconciliation(text)
  local report = M.compare(rows, orders)
  report.day = day_string(day)
  report.file = path
  report.rows = #rows
  if not report.ok then
    log.warn("vcc: reconciliation mismatches", {day = report.day, mismatches = #report.mismatches})
  end
  return report
end

---------------------------------------------------------------------------
-- module-level shortcuts on a client built from settings

for _, name in ipairs({"account_query", "withdraw", "report_withdrawal", "reconcile", "fetch_reconciliation", "reconciliation_path"}) do
  M[name] = function(...) local c = M.client() return c[name](c, ...) end
end

return M
