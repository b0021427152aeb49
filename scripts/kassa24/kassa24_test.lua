-- Lua tests of the kassa24 module, run against
-- scripts/kassa24/kassa24fake (fixture "kassa24" of scripts/luafixture, named
-- by luatest.json; `vmarket script test scripts/kassa24`): 25 payments on
-- 2025-01-02 from 10:00 (UTC+5), one a minute, terminals 100/101, plus
-- edge payments at 2025-01-01 23:59:59, 2025-01-02 23:59:59 and
-- 2025-01-03 00:00:00.
local kassa24 = require("kassa24")
local json = require("json")
local fake = require("fake")

local T = {}

function T.setup() fake.reset() end

local function err_of(fn)
  local ok, err = pcall(fn)
  assert_true(not ok, "expected an error")
  return err
end

function T.test_hosts(t)
  t:eq(kassa24.client{base_url = false, env = "sandbox"}.env, "sandbox")
  t:eq(kassa24.HOSTS.sandbox, "https://api.portal.tech24.kz/")
  t:eq(kassa24.HOSTS.production, "https://api.portal.kassa24.kz/")
  t:eq(kassa24.client{env = "production", base_url = kassa24.HOSTS.production}.base_url, "https://api.portal.kassa24.kz/")
  t:eq(err_of(function() kassa24.client{env = "staging"} end).code, "invalid_argument")
end

function T.test_result_data(t)
  local r = kassa24.request("payment", "info", {idTransaction = "T003"})
  t:eq(r.code, 0)
  t:eq(r.data.account, "order-3")
  t:eq(r.rows, nil)
  t:eq(r.meta, nil)
  local p = kassa24.payment_info{account = "order-3"}
  t:eq(p.transaction_id, "T003")
  t:eq(p.amount, "40.50")
  t:eq(p.amount_minor, 4050)
  t:eq(p.date, "20250102100300")
  t:eq(p.time, kassa24.parse_date("20250102100300"))
end

function T.test_defaults_sent(t)
  kassa24.request("report", "payments", {from = "20250102", to = "20250102"})
  local c = fake.last_call()
  t:eq(c.page_size, 1000)
  t:eq(c.current_page, 0)
  t:eq(c.params.from, "20250102")
  t:ok(c.body:find('"Body"', 1, true), c.body)
end

function T.test_paging(t)
  local seen, pages = {}, 0
  for page in kassa24.pages("report", "payments", {from = "20250102100000", to = "20250102110000"}, {page_size = 10}) do
    pages = pages + 1
    t:eq(page.meta.page_index, pages - 1)
    t:eq(page.meta.page_count, 3)
    t:eq(page.meta.row_count, 25)
    t:eq(page.meta.page_size, #page.rows)
    for _, row in ipairs(page.rows) do seen[#seen + 1] = row.idTransaction end
  end
  t:eq(pages, 3)
  t:eq(#seen, 25)
  t:eq(seen[1], "T000")
  t:eq(seen[25], "T024")
  local n = 0
  for row, i in kassa24.rows("report", "payments", {from = "20250102100000", to = "20250102110000"}, {page_size = 7}) do
    n = i
  end
  t:eq(n, 25)
  t:eq(#kassa24.all("report", "payments", {from = "20250102", to = "20250102"}, {page_size = 4}), 26)
  -- starting later, and the page cap
  local rest = kassa24.all("report", "payments", {from = "20250102100000", to = "20250102110000"}, {page_size = 10, current_page = 2})
  t:eq(#rest, 5)
  t:eq(err_of(function()
    kassa24.all("report", "payments", {from = "20250102", to = "20250102"}, {page_size = 1, max_pages = 3})
  end).code, "too_many_pages")
end

function T.test_empty_report(t)
  local rows = kassa24.all("report", "payments", {from = "20240101", to = "20240101"})
  t:eq(#rows, 0)
  t:eq(json.encode(rows), "[]")
end

function T.test_payments_period_inclusive(t)
  t:eq(#kassa24.payments("20250102", "20250102"), 26, "whole day incl. 23:59:59")
  t:eq(#kassa24.payments("20250101", "20250102"), 27)
  t:eq(#kassa24.payments("20250102", "20250103"), 27, "midnight of the 3rd")
  local at = kassa24.parse_date("20250102100500")
  local one = kassa24.payments(at, at)
  t:eq(#one, 1)
  t:eq(one[1].transaction_id, "T005")
  t:eq(one[1].terminal_id, "101")
  local by_account = kassa24.payments("20250102", "20250102", {account = "order-7"})
  t:eq(#by_account, 1)
  t:eq(by_account[1].amount, "80.50")
  local big = kassa24.payments("20250102", "20250102", {terminal = 101, sort = "amount desc", min_amount = "200.50"})
  t:eq(#big, 3)
  t:eq(big[1].transaction_id, "T023")
end

function T.test_dates(t)
  local ts = kassa24.parse_date("20250102")
  t:eq(kassa24.format_date(ts), "20250102000000")
  t:eq(kassa24.format_date(ts, "date"), "20250102")
  t:eq(kassa24.parse_date("20250102", true) - ts, 86399)
  t:eq(kassa24.parse_date("20250102000000"), ts)
  t:eq(kassa24.format_date(0), "19700101050000", "UTC+5")
  t:ok(kassa24.in_period(kassa24.parse_date("20250102235959"), "20250102", "20250102"))
  t:ok(not kassa24.in_period(kassa24.parse_date("20250103000000"), "20250102", "20250102"))
  for _, bad in ipairs({"2025-01-02", "202501021", "20251302", "20250102250000"}) do
    t:eq(err_of(function() kassa24.parse_date(bad) end).code, "invalid_argument", bad)
  end
  local before = fake.count{}
  t:eq(err_of(function() kassa24.payments("20250103", "20250102") end).code, "invalid_argument")
  t:eq(err_of(function() kassa24.payments("2025-01-02", "20250102") end).code, "invalid_argument")
  t:eq(fake.count{}, before, "nothing sent")
end

function T.test_decimals(t)
  t:eq(kassa24.to_minor("1500.50"), 150050)
  t:eq(kassa24.to_minor("1500.5"), 150050)
  t:eq(kassa24.to_minor("7"), 700)
  t:eq(kassa24.to_minor(140.5), 14050)
  t:eq(kassa24.to_minor(0.29), 29)
  t:eq(kassa24.to_minor("-1.05"), -105)
  t:eq(kassa24.to_minor("1500,50"), nil)
  t:eq(kassa24.to_minor("1.005"), nil)
  t:eq(kassa24.to_minor("1."), nil)
  t:eq(kassa24.format_minor(150050), "1500.50")
  t:eq(kassa24.format_minor(-5), "-0.05")
  t:eq(kassa24.decimal(12), "12.00")
  t:eq(err_of(function() kassa24.decimal("12,5") end).code, "invalid_argument")
end

function T.test_case_insensitive_tags(t)
  local r = kassa24.parse_response({code = 0, MESSAGE = "ok", querydata = {{rows = {{a = 1}}}},
    METADATA = {pagecount = 1, PAGESIZE = 1, pageIndex = 0, rowcount = 1}})
  t:eq(r.code, 0)
  t:eq(r.message, "ok")
  t:eq(#r.rows, 1)
  t:eq(r.meta, {page_count = 1, page_size = 1, page_index = 0, row_count = 1})
  t:eq(kassa24.field({Amount = 5}, "amount"), 5)
  t:eq(kassa24.field({amount = 1, Amount = 2}, "Amount"), 2, "exact match wins")
  local p = kassa24.normalize_payment({IDTRANSACTION = "X", Amount = "1.5", DATE = "20250102"})
  t:eq(p.transaction_id, "X")
  t:eq(p.amount_minor, 150)
  t:eq(err_of(function() kassa24.parse_response({Message = "no code"}) end).code, "bad_response")
end

function T.test_errors(t)
  local e = err_of(function() kassa24.client{token = "wrong"}:request("report", "payments", {from = "20250102", to = "20250102"}) end)
  t:eq(e.code, 401)
  t:eq(e.status, 401)
  t:ok(tostring(e):find("^kassa24: 401: "), tostring(e))
  fake.reject_auth_next(1)
  t:eq(err_of(function() kassa24.payments("20250102", "20250102") end).code, 401)
  e = err_of(function() kassa24.request("report", "payments", {from = "2025-01-02", to = "20250102"}) end)
  t:eq(e.code, 400)
  t:ok(e.message:find("from", 1, true), e.message)
  t:eq(err_of(function() kassa24.request("report", "refunds", {}) end).code, 404)
  t:eq(err_of(function() kassa24.request("payment", "info", {idTransaction = "nope"}) end).code, 404)
  t:eq(err_of(function() kassa24.client{token = ""}:request("report", "payments", {}) end).code, "invalid_argument")
  t:eq(err_of(function() kassa24.request("report", "payments", {}, {page_size = 0}) end).code, "invalid_argument")
end

function T.test_5xx_retried(t)
  local before = fake.count{}
  fake.fail_next(2, 502)
  t:eq(#kassa24.payments("20250102", "20250102"), 26)
  t:eq(fake.count{} - before, 3)
  fake.fail_next(5, 500)
  local e = err_of(function() kassa24.client{retries = 1}:payments("20250102", "20250102") end)
  t:eq(e.code, 500)
  t:eq(e.attempts, 2)
end

function T.test_timeout(t)
  fake.delay(3)
  local e = err_of(function() kassa24.client{timeout = 0.2, retries = 0}:payments("20250102", "20250102") end)
  t:eq(e.code, "timeout")
end

return T
