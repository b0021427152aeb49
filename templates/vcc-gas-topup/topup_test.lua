-- Lua tests of the Gas Top-up scripts against the VCC fake
-- (fixture "vcc-gas-topup" of scripts/luafixture, named by luatest.json;
-- `vmarket script test templates/vcc-gas-topup`). The fake keeps its state across
-- tests, so every test uses a fresh order id and compares counts before
-- and after.
local crypto = require("crypto")
local vcc = require("vcc")
local template = require("template")
local fake = require("fake")

local QUERY, WITHDRAW, REPORT = "account/query", "gas/withdraw", "gas/withdraw/report"

local function run(step, input)
  local fn, err = load(template.source(step .. ".lua"), "=" .. step .. ".lua")
  if not fn then error(err) end
  return fn(input)
end

local function new_order(options, fields)
  local o = {id = crypto.uuid(), duration = 1, amount = 10, amountPaid = 10, serviceActivateTS = 0,
    serviceOptions = options, status = "OrderPaid", serviceStatus = "ServicePending"}
  for k, v in pairs(fields or {}) do o[k] = v end
  return o
end

local function input(step, order)
  return {
    step = step, idempotencyKey = order.id .. ":" .. step, now = os.time(), hourSeconds = 3600,
    order = order,
    service = {name = "Towngas Gas Top-up", apiHost = "https://api.towngasvcc.com"},
    provider = {name = "towngas-vcc"},
  }
end

local T = {}

function T.setup() fake.reset() end

function T.test_start_queries_withdraws_and_reports(t)
  local before = fake.balance("880001")
  local queries = fake.count{resource = QUERY, accountNo = "880001"}
  local o = new_order({accountNo = "880001", topUpCNY = "100"})
  local res = run("start", input("start", o))
  t:ok(type(res.secret) == "string" and res.secret:match("^W%d+$"), "secret is the withdrawal number")
  t:eq(res.data.accountHolder, "陈*文", "holder masked, Chinese intact")
  t:eq(res.data.accountNo, "880001")
  t:eq(res.data.amountCNY, "100.00")
  t:eq(res.data.status, "SUCCESS")
  t:eq(res.data.orderNo, o.id)
  t:eq(res.data.address, nil, "the holder's address is not shown")
  t:eq(fake.balance("880001"), before - 10000)
  t:eq(fake.count{resource = QUERY, accountNo = "880001"}, queries + 1)
  t:eq(fake.count{resource = WITHDRAW, orderNo = o.id}, 1)
  t:eq(fake.count{resource = REPORT, orderNo = o.id}, 1)
  local w = fake.withdrawal(o.id)
  t:eq(w.status, "SUCCESS")
  t:eq(w.withdrawNo, res.secret)
  t:eq(w.remark, "vmarket 订单 " .. o.id, "Chinese remark round-trips")
  t:eq(w.machineId, "M-九龙-01")
end

function T.test_start_retried_withdraws_once(t)
  local before = fake.balance("880001")
  local o = new_order({accountNo = "880001", topUpCNY = "50"})
  local first = run("start", input("start", o))
  local again = run("start", input("start", o))
  t:eq(again.secret, first.secret, "same withdrawal")
  t:eq(fake.balance("880001"), before - 5000, "withdrawn once")
  t:eq(fake.count{resource = WITHDRAW, orderNo = o.id}, 2)
  t:eq(fake.withdrawal(o.id).status, "SUCCESS")
end

function T.test_start_survives_a_transient_failure(t)
  local o = new_order({accountNo = "880001", topUpCNY = "50"})
  fake.fail_next(1, 503)
  local res = run("start", input("start", o))
  t:eq(res.data.status, "SUCCESS")
  t:eq(fake.count{resource = WITHDRAW, orderNo = o.id}, 1)
end

function T.test_start_two_character_name(t)
  local o = new_order({accountNo = "880004", topUpCNY = "50"})
  t:eq(run("start", input("start", o)).data.accountHolder, "李*")
end

function T.test_start_refuses_a_frozen_account(t)
  local o = new_order({accountNo = "880002", topUpCNY = "50"})
  t:error(function() run("start", input("start", o)) end, "880002 is FROZEN")
  t:eq(fake.count{resource = WITHDRAW, orderNo = o.id}, 0)
end

function T.test_start_low_balance(t)
  local o = new_order({accountNo = "880003", topUpCNY = "50"})
  t:error(function() run("start", input("start", o)) end, "balance too low for 50.00 yuan")
  t:eq(fake.withdrawal(o.id), nil)
  t:eq(fake.count{resource = REPORT, orderNo = o.id}, 0)
end

function T.test_start_unknown_account(t)
  local o = new_order({accountNo = "999999", topUpCNY = "50"})
  local err = t:error(function() run("start", input("start", o)) end)
  t:ok(vcc.is_error(err) and err.code == "3001", "VCC's unknown account: " .. tostring(err))
end

function T.test_start_rejected_key(t)
  local o = new_order({accountNo = "880001", topUpCNY = "50"})
  fake.reject_auth_next(1)
  local err = t:error(function() run("start", input("start", o)) end)
  t:ok(vcc.is_error(err) and err.code == "2001" and err.status == 401, tostring(err))
  t:eq(fake.count{resource = WITHDRAW, orderNo = o.id}, 0)
end

function T.test_start_checks_the_order_before_calling(t)
  local cases = {
    {name = "no account", options = {topUpCNY = "50"}, want = "accountNo"},
    {name = "bad account", options = {accountNo = "88 00", topUpCNY = "50"}, want = "accountNo"},
    {name = "no tier", options = {accountNo = "880001"}, want = "topUpCNY"},
    {name = "two hours", options = {accountNo = "880001", topUpCNY = "50"}, fields = {duration = 2}, want = "exactly 1 hour"},
  }
  local calls = fake.count{}
  for _, c in ipairs(cases) do
    local o = new_order(c.options, c.fields)
    t:error(function() run("start", input("start", o)) end, c.want)
  end
  t:eq(fake.count{}, calls, "nothing sent to VCC")
end

function T.test_refund_before_any_withdrawal(t)
  local o = new_order({accountNo = "880001", topUpCNY = "50"}, {amountPaid = 5})
  local res = run("refund", input("refund", o))
  t:eq(res.amount, 5, "everything paid back")
  t:eq(fake.count{resource = REPORT, orderNo = o.id}, 1)
  t:eq(fake.withdrawal(o.id), nil)
end

function T.test_refund_of_an_unconfirmed_withdrawal(t)
  local o = new_order({accountNo = "880001", topUpCNY = "50"}, {amountPaid = 5})
  local before = fake.balance("880001")
  -- A start that withdrew and died before reporting.
  vcc.withdraw({accountNo = "880001", orderNo = o.id, amount = "50"})
  t:eq(fake.balance("880001"), before - 5000)
  local res = run("refund", input("refund", o))
  t:eq(res.amount, 5)
  t:eq(fake.withdrawal(o.id).status, "FAILED")
  t:eq(fake.balance("880001"), before, "VCC put the amount back")
  -- A start retried after the refund does not go through.
  t:error(function() run("start", input("start", o)) end, "already reported FAILED")
  t:eq(fake.balance("880001"), before)
end

function T.test_refund_after_the_withdrawal_took_effect(t)
  -- Started at VCC, but the order was not filed yet (serviceActivateTS 0).
  local o = new_order({accountNo = "880001", topUpCNY = "50"})
  run("start", input("start", o))
  local res = run("refund", input("refund", o))
  t:eq(res.amount, 0, "nothing paid back")
  t:eq(fake.withdrawal(o.id).status, "SUCCESS")
end

function T.test_refund_of_a_filed_order_asks_nothing(t)
  local o = new_order({accountNo = "880001", topUpCNY = "50"}, {serviceActivateTS = os.time() - 10,
    status = "OrderFiled", serviceStatus = "ServiceRunning"})
  local calls = fake.count{}
  t:eq(run("refund", input("refund", o)).amount, 0)
  t:eq(fake.count{}, calls)
end

function T.test_refund_fails_on_a_vcc_outage(t)
  local o = new_order({accountNo = "880001", topUpCNY = "50"})
  fake.fail_next(10, 503)
  local err = t:error(function() run("refund", input("refund", o)) end)
  t:ok(vcc.is_error(err) and err.code == "9999", tostring(err))
  fake.reset()
end

function T.test_stop_calls_nothing(t)
  local o = new_order({accountNo = "880001", topUpCNY = "50"}, {serviceActivateTS = os.time()})
  local calls = fake.count{}
  t:eq(run("stop", input("stop", o)), {stopped = true})
  t:eq(fake.count{}, calls)
end

return T
