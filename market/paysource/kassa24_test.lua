-- Lua tests of the Kassa24 payment source script against the Kassa24 fake
-- (fixture "kassa24-paysource" of scripts/luafixture, named by luatest.json;
-- `vmarket script test market/paysource`). The fake holds payments of
-- 2 Jan 2025 (UTC+5): see that fixture.
local source = require("source")
local fake = require("fake")
local kassa24 = require("kassa24")

local function run(input)
  local fn, err = load(source.script(), "=kassa24.lua")
  if not fn then error(err) end
  return fn(input)
end

-- 2025-01-02 12:00:00 UTC+5
local NOON = kassa24.parse_date("20250102120000")

local T = {}

function T.setup() fake.reset() end

function T.test_first_poll_reads_the_lookback(t)
  local res = run({source = "kassa24", now = NOON})
  t:eq(res.cursor, tostring(NOON))
  local refs = {}
  for i, p in ipairs(res.payments) do refs[i] = p.reference .. "=" .. p.orderId .. "/" .. p.amount end
  t:eq(refs, {
    "T1=order-a/1500.00",
    "T2=order-b/250.50",
    "T4=order-c/10.00",
  }, "successful payments with an account, oldest first; account lower-cased")
  t:eq(res.skipped, 2, "one cancelled, one without account")
end

function T.test_cursor_minus_overlap(t)
  -- Cursor at 11:00; the default overlap (1 h) re-reads from 10:00.
  local res = run({source = "kassa24", now = NOON, cursor = tostring(NOON - 3600)})
  local refs = {}
  for i, p in ipairs(res.payments) do refs[i] = p.reference end
  t:eq(refs, {"T4"}, "only the payment of 10:30")
  local last = fake.last_params()
  t:eq(last.from, "20250102100000")
  t:eq(last.to, "20250102120000")
end

function T.test_pages(t)
  local before = fake.count()
  local res = run({source = "kassa24", now = NOON})
  t:eq(#res.payments, 3)
  t:eq(fake.count() - before, 3, "one request per page of 2 (5 rows)")
end

function T.test_nothing_new(t)
  local res = run({source = "kassa24", now = NOON + 86400 * 3, cursor = tostring(NOON + 86400 * 2)})
  t:eq(#res.payments, 0)
  t:eq(res.cursor, tostring(NOON + 86400 * 3))
end

function T.test_refused_token(t)
  fake.reject_auth_next(1)
  local err = t:error(function() run({source = "kassa24", now = NOON}) end)
  t:ok(kassa24.is_error(err) and err.code == 401, tostring(err))
end

return T
