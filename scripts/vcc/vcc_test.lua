-- Lua tests of the vcc module, run against scripts/vcc/vccfake (HTTPS) and
-- scripts/sftpfake (fixture "vcc" of scripts/luafixture, named by
-- luatest.json; `vmarket script test scripts/vcc`). The test-only module "fake"
-- injects failures and counts the fake's calls.
local vcc = require("vcc")
local crypto = require("crypto")
local fake = require("fake")

local T = {}

function T.setup() fake.reset() end

local function order_no() return "vm-" .. crypto.uuid() end

local function err_of(fn)
  local ok, err = pcall(fn)
  assert_true(not ok, "expected an error")
  return err
end

function T.test_account_query_round_trips_chinese(t)
  local a = vcc.account_query{accountNo = "880001"}
  t:eq(a.customerName, "陈大文")
  t:eq(a.address, "香港九龙旺角弥敦道88号12楼B室")
  t:eq(a.cardNo, "C-01")
  t:ok(vcc.to_fen(a.balance) ~= nil, "balance is a decimal")
end

function T.test_required_parameter_checked_before_sending(t)
  local before = fake.count{}
  local e = err_of(function() vcc.account_query{} end)
  t:eq(e.code, "invalid_argument")
  t:eq(e.param, "accountNo")
  t:ok(tostring(e):find("missing required parameter accountNo", 1, true), tostring(e))
  e = err_of(function() vcc.withdraw{accountNo = "880001", amount = "1"} end)
  t:eq(e.param, "orderNo")
  e = err_of(function() vcc.report_withdrawal{orderNo = "x"} end)
  t:eq(e.param, "result")
  e = err_of(function() vcc.account_query{accountNo = "880001", colour = "red"} end)
  t:eq(e.param, "colour")
  t:eq(fake.count{}, before, "nothing was sent")
end

function T.test_amount_validated_before_sending(t)
  local before = fake.count{}
  for _, amount in ipairs({"1,5", "1.005", "0", "-3", "abc", 1.234, 0}) do
    local e = err_of(function() vcc.withdraw{accountNo = "880001", orderNo = order_no(), amount = amount} end)
    t:eq(e.code, "invalid_argument", "amount " .. tostring(amount))
  end
  t:eq(fake.count{}, before, "nothing was sent")
end

function T.test_withdraw_is_idempotent_on_order_no(t)
  local no = order_no()
  local before = fake.balance("880001")
  local first = vcc.withdraw{accountNo = "880001", orderNo = no, amount = 12.5}
  t:eq(first.amount, "12.50")
  t:eq(first.status, "WITHDRAWN")
  local again = vcc.withdraw{accountNo = "880001", orderNo = no, amount = "12.50"}
  t:eq(again.withdrawNo, first.withdrawNo)
  t:eq(fake.balance("880001"), before - 1250, "withdrawn once")
  t:eq(fake.count{resource = "gas/withdraw", orderNo = no}, 2)
  local e = err_of(function() vcc.withdraw{accountNo = "880001", orderNo = no, amount = "13"} end)
  t:eq(e.code, "3003", "same order number, other amount")
end

function T.test_utf8_parameters_url_encoded(t)
  local remark = "圈存机提气 a+b=c&d/é%"
  local w = vcc.withdraw{accountNo = "880001", orderNo = order_no(), amount = "1", remark = remark, machineId = "机-7"}
  t:eq(w.remark, remark)
end

function T.test_auth_failure(t)
  local e = err_of(function() vcc.client{api_key = "wrong"}:account_query{accountNo = "880001"} end)
  t:eq(e.code, "2001")
  t:eq(e.status, 401)
  t:ok(tostring(e):find("^vcc: 2001: "), tostring(e))
  fake.reject_auth_next(1)
  e = err_of(function() vcc.account_query{accountNo = "880001"} end)
  t:eq(e.code, "2001")
  e = err_of(function() vcc.client{api_key = ""}:account_query{accountNo = "880001"} end)
  t:eq(e.code, "invalid_argument")
end

function T.test_business_errors_not_retried(t)
  local no = order_no()
  local e = err_of(function() vcc.withdraw{accountNo = "880003", orderNo = no, amount = "10.01"} end)
  t:eq(e.code, "3002")
  t:eq(e.status, 200)
  t:eq(fake.count{orderNo = no}, 1)
  e = err_of(function() vcc.withdraw{accountNo = "880002", orderNo = order_no(), amount = "1"} end)
  t:eq(e.code, "3006")
  e = err_of(function() vcc.account_query{accountNo = "nope"} end)
  t:eq(e.code, "3001")
end

function T.test_transient_5xx_retried(t)
  local no = order_no()
  local before = fake.balance("880001")
  fake.fail_next(2, 503)
  local w = vcc.withdraw{accountNo = "880001", orderNo = no, amount = "2"}
  t:eq(w.orderNo, no)
  t:eq(fake.count{orderNo = no}, 3, "two failures, one success")
  t:eq(fake.balance("880001"), before - 200)
end

function T.test_retries_exhausted(t)
  local no = order_no()
  fake.fail_next(5, 500)
  local e = err_of(function() vcc.client{retries = 1}:withdraw{accountNo = "880001", orderNo = no, amount = "2"} end)
  t:eq(e.code, "9999")
  t:eq(e.status, 500)
  t:eq(fake.count{orderNo = no}, 2)
end

function T.test_timeout_then_idempotent_retry(t)
  local no = order_no()
  local before = fake.balance("880001")
  fake.delay(3)
  local e = err_of(function()
    vcc.client{timeout = 0.2, retries = 0}:withdraw{accountNo = "880001", orderNo = no, amount = "3"}
  end)
  t:eq(e.code, "timeout")
  fake.reset()
  -- The answer was lost, the withdrawal was not: retrying with the same
  -- order number returns the first result.
  local w = vcc.withdraw{accountNo = "880001", orderNo = no, amount = "3"}
  t:eq(w.orderNo, no)
  t:eq(fake.balance("880001"), before - 300, "withdrawn once")
end

function T.test_report_withdrawal(t)
  local ok_no, failed_no = order_no(), order_no()
  local before = fake.balance("880001")
  local w = vcc.withdraw{accountNo = "880001", orderNo = ok_no, amount = "5"}
  vcc.withdraw{accountNo = "880001", orderNo = failed_no, amount = "7"}
  local r = vcc.report_withdrawal{orderNo = ok_no, result = "SUCCESS", withdrawNo = w.withdrawNo}
  t:eq(r.status, "SUCCESS")
  r = vcc.report_withdrawal{orderNo = failed_no, result = "FAILED", reason = "读卡失败", reportTime = os.time()}
  t:eq(r.status, "FAILED")
  t:eq(fake.balance("880001"), before - 500, "failed withdrawal refunded")
  -- idempotent repeat, conflicting result
  t:eq(vcc.report_withdrawal{orderNo = ok_no, result = "SUCCESS"}.status, "SUCCESS")
  t:eq(err_of(function() vcc.report_withdrawal{orderNo = ok_no, result = "FAILED"} end).code, "3005")
  t:eq(err_of(function() vcc.report_withdrawal{orderNo = ok_no, result = "DONE"} end).code, "invalid_argument")
  t:eq(err_of(function() vcc.report_withdrawal{orderNo = order_no(), result = "SUCCESS"} end).code, "3004")
end

function T.test_parse_reconciliation(t)
  local text = "\239\187\191" .. 'orderNo,withdrawNo,accountNo,amount,withdrawTime,status,remark\r\n' ..
    'A-1,W1,880001,10.50,20250314093000,SUCCESS,"陈大文, ""VIP"""\r\n' ..
    '\r\n' ..
    'A-2,W2,880001,3,20250314093100,failed,\r\n'
  local rows = vcc.parse_reconciliation(text)
  t:eq(#rows, 2)
  t:eq(rows[1].orderNo, "A-1")
  t:eq(rows[1].fen, 1050)
  t:eq(rows[1].remark, '陈大文, "VIP"')
  t:eq(rows[2].status, "FAILED")
  -- columns found by name, in any order
  rows = vcc.parse_reconciliation("amount,orderNo\n1.5,B-1\n")
  t:eq(rows[1].orderNo, "B-1")
  t:eq(rows[1].status, "SUCCESS")
  t:eq(err_of(function() vcc.parse_reconciliation("orderNo\nA\n") end).code, "bad_file")
  t:eq(err_of(function() vcc.parse_reconciliation("orderNo,amount\nA,1,5\n") end).code, "bad_file")
  t:eq(err_of(function() vcc.parse_reconciliation('orderNo,amount\n"A,1\n') end).code, "bad_file")
end

function T.test_reconcile_reports_mismatches(t)
  fake.put_file("/reconcile/20240101.csv",
    "orderNo,withdrawNo,accountNo,amount,withdrawTime,status\n" ..
    "same,W1,880001,10.00,20240101080000,SUCCESS\n" ..
    "diff,W2,880001,20.00,20240101080100,SUCCESS\n" ..
    "onlyvcc,W3,880001,5.00,20240101080200,SUCCESS\n" ..
    "failed,W4,880001,7.00,20240101080300,FAILED\n" ..
    "pending,W5,880001,1.00,20240101080400,PENDING\n")
  local report = vcc.reconcile("20240101", {
    {orderNo = "same", amount = "10"},
    {orderNo = "diff", amount = 19.99},
    {orderNo = "onlyvm", amount = "4.00"},
    {orderNo = "failed", amount = "7"},
    {orderNo = "pending", amount = "1", status = "SUCCESS"},
  })
  t:eq(report.ok, false)
  t:eq(report.day, "20240101")
  t:eq(report.file, "/reconcile/20240101.csv")
  t:eq(report.rows, 5)
  t:eq(report.matched, 1)
  local kinds = {}
  for _, m in ipairs(report.mismatches) do kinds[m.orderNo] = m end
  t:eq(kinds.diff.kind, "amount_mismatch")
  t:eq(kinds.diff.vcc_amount, "20.00")
  t:eq(kinds.diff.vmarket_amount, "19.99")
  t:eq(kinds.diff.difference, "0.01")
  t:eq(kinds.onlyvm.kind, "missing_in_vcc")
  t:eq(kinds.onlyvcc.kind, "missing_in_vmarket")
  t:eq(kinds.failed.kind, "failed_in_vcc")
  t:eq(kinds.pending.kind, "status_mismatch")
  t:eq(#report.mismatches, 5)
  t:eq(report.total_vcc, "36.00")
  t:eq(report.total_vmarket, "41.99")
end

function T.test_reconcile_end_to_end(t)
  local a, b = order_no(), order_no()
  vcc.withdraw{accountNo = "880001", orderNo = a, amount = "8.80"}
  vcc.withdraw{accountNo = "880001", orderNo = b, amount = "1.20"}
  vcc.report_withdrawal{orderNo = a, result = "SUCCESS"}
  local path, day = fake.put_reconciliation()
  local report = vcc.reconcile(day, {{orderNo = a, amount = "8.8", status = "SUCCESS"}, {orderNo = b, amount = "1.2"}})
  t:eq(report.file, path)
  for _, m in ipairs(report.mismatches) do
    -- other tests' withdrawals of today show up as missing_in_vmarket only
    t:eq(m.kind, "missing_in_vmarket", m.orderNo)
    t:ok(m.orderNo ~= a and m.orderNo ~= b)
  end
  t:ok(report.matched == 2, "both orders matched")
end

function T.test_reconcile_failures(t)
  t:eq(err_of(function() vcc.reconcile("19990101", {}) end).code, "not_found")
  local e = err_of(function() vcc.client{sftp = {password = "wrong"}}:reconcile("20240101", {}) end)
  t:eq(e.code, "auth")
  e = err_of(function()
    vcc.client{sftp = {host_key_fingerprint = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}:reconcile("20240101", {})
  end)
  t:eq(e.code, "host_key")
  e = err_of(function() vcc.client{sftp = {host = "sftp.example.com"}}:reconcile("20240101", {}) end)
  t:eq(e.code, "not_allowed")
  fake.sftp_fail_next(1)
  t:eq(err_of(function() vcc.reconcile("20240101", {}) end).code, "transport")
  t:eq(err_of(function() vcc.reconcile("2024-01", {}) end).code, "invalid_argument")
end

function T.test_reconcile_sftp_timeout(t)
  fake.sftp_delay(3)
  local e = err_of(function() vcc.client{timeout = 0.3}:reconcile("20240101", {}) end)
  t:ok(e.code == "timeout", tostring(e))
end

return T
