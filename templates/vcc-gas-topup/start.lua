-- Towngas Gas Top-up: start.
--
-- Checks the buyer's gas account (VCC account query), withdraws the
-- bought amount at the top-up machine under the vmarket order id as VCC
-- order number, and reports the withdrawal as SUCCESS. VCC is idempotent
-- on the order number, so a retried start never withdraws twice: it gets
-- the first withdrawal back and reports the same result again.
--
-- Returns the withdrawal number as the secret (the pickup code shown at
-- the machine) and, as user service data, the masked account holder and
-- the amounts.
--
-- Settings (provider scope): vcc.api_key (required, secret), vcc.base_url
-- (default: the type's apiHost + "/vcc-openapi/"), vcc.machine_id
-- (optional top-up machine id), and the vcc module's timeout/retries.
local vcc = require("vcc")
local settings = require("settings")
local log = require("log")

local input = ...
local order, service = input.order, input.service
local options = order.serviceOptions or {}

-- fail raises a plain message (no script position): it becomes the
-- order's lastError, which provider and operator read.
local function fail(msg) error("gas top-up: " .. msg, 0) end

local account = options.accountNo
if type(account) ~= "string" or not account:match("^[%w%-]+$") or #account > 32 then
  fail("serviceOptions.accountNo must be a gas account number (letters, digits, '-', at most 32)")
end
local fen = vcc.to_fen(options.topUpCNY)
if not fen or fen <= 0 then
  fail("serviceOptions.topUpCNY must be a positive amount in yuan, got " .. tostring(options.topUpCNY))
end
if order.duration ~= 1 then
  fail("a top-up is bought for exactly 1 hour, this order has " .. tostring(order.duration))
end

local base = settings.get("vcc.base_url")
if base == nil or base == "" then base = service.apiHost .. "/vcc-openapi/" end
local c = vcc.client{base_url = base}

local acct = c:account_query{accountNo = account}
if acct.status ~= "NORMAL" then
  fail("gas account " .. account .. " is " .. tostring(acct.status) .. " and cannot withdraw")
end

local params = {accountNo = account, orderNo = order.id, amount = vcc.format_fen(fen),
  remark = "vmarket 订单 " .. order.id}
local machine = settings.get("vcc.machine_id")
if machine and machine ~= "" then params.machineId = machine end
local ok, w = pcall(c.withdraw, c, params)
if not ok then
  if vcc.is_error(w) and w.code == "3002" then fail("gas account " .. account .. ": balance too low for " .. params.amount .. " yuan") end
  if vcc.is_error(w) and w.code == "3006" then fail("gas account " .. account .. " is frozen") end
  error(w, 0)
end

local rok, rep = pcall(c.report_withdrawal, c, {orderNo = order.id, withdrawNo = w.withdrawNo,
  result = "SUCCESS", reportTime = input.now})
if not rok then
  if vcc.is_error(rep) and rep.code == "3005" then
    fail("withdrawal " .. tostring(w.withdrawNo) .. " was already reported FAILED (refunded at VCC); not starting")
  end
  error(rep, 0)
end

-- mask keeps the first and last character of a name (UTF-8 aware):
-- 陈大文 → 陈*文, 李明 → 李*.
local function mask(name)
  if type(name) ~= "string" or name == "" then return nil end
  local chars = {}
  for ch in name:gmatch("[%z\1-\127\194-\244][\128-\191]*") do chars[#chars + 1] = ch end
  if #chars <= 1 then return name end
  if #chars == 2 then return chars[1] .. "*" end
  return chars[1] .. string.rep("*", #chars - 2) .. chars[#chars]
end

log.info("gas withdrawn", {order = order.id, withdrawNo = w.withdrawNo, amount = w.amount})
return {
  secret = w.withdrawNo,
  data = {
    accountNo = account,
    accountHolder = mask(acct.customerName),
    amountCNY = w.amount,
    balanceCNY = rep.balance or w.balance,
    withdrawTime = w.withdrawTime,
    status = rep.status,
    orderNo = order.id,
  },
}
