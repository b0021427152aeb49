-- Kassa24 payment source: reads the Kassa24 portal's payments report and
-- reports the successful payments whose account field is what the payer
-- typed at the terminal: the vmarket order id. Run by market/paysource's
-- Poller, which confirms the payments (idempotent on the transaction id)
-- and stores the returned cursor.
--
-- input  = {source = "kassa24", cursor = "<unix seconds>" | nil, now = <unix>}
-- result = {payments = {{orderId, amount ("1500.00", tenge), reference
--           (idTransaction), time, terminal}}, cursor = "<unix seconds>",
--           skipped = <rows not reported>}
--
-- The period read is [cursor - overlap, now] (the first poll:
-- [now - lookback, now]): payments that reach the report late, within the
-- overlap, are still seen; those seen twice are recorded once.
--
-- Settings (scope paysource:kassa24): kassa24.token (secret), kassa24.env
-- or kassa24.base_url and the module's other settings;
-- kassa24.poll_overlap (seconds, default 3600), kassa24.poll_lookback
-- (seconds, default 86400).
local kassa24 = require("kassa24")
local settings = require("settings")
local json = require("json")
local log = require("log")

local input = ...

local function seconds(key, default)
  local v = tonumber(settings.get(key) or "")
  if v == nil or v < 0 then return default end
  return math.floor(v)
end

local overlap = seconds("kassa24.poll_overlap", 3600)
local lookback = seconds("kassa24.poll_lookback", 86400)

local to = math.floor(input.now)
local from = to - lookback
local cursor = tonumber(input.cursor or "")
if cursor then from = math.floor(cursor) - overlap end
if from > to then from = to end

local payments, skipped = json.array(), 0
for _, p in ipairs(kassa24.payments(from, to, {sort = "date asc, idTransaction asc"})) do
  local account = type(p.account) == "string" and p.account:lower():gsub("^%s+", ""):gsub("%s+$", "") or ""
  if p.status ~= "success" or account == "" or not p.transaction_id then
    skipped = skipped + 1
  else
    payments[#payments + 1] = {orderId = account, amount = p.amount, reference = p.transaction_id,
      time = p.time, terminal = p.terminal_id}
  end
end
log.info("kassa24 payments read", {from = from, to = to, reported = #payments, skipped = skipped})
return {payments = payments, cursor = tostring(to), skipped = skipped}
