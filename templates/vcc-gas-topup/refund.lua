-- Towngas Gas Top-up: refund.
--
-- Money goes back only while the withdrawal has not taken effect:
--
--   * the service was started (start reported the withdrawal SUCCESS):
--     nothing is paid back, the gas is on its way to the card;
--   * otherwise vmarket reports the withdrawal FAILED to VCC, which puts
--     the amount back on the account if one was made. VCC answers:
--       - the report was taken (status FAILED)      → everything paid back
--       - 3004, no withdrawal under this order      → everything paid back
--       - 3005, SUCCESS was reported already        → nothing paid back
--     Any other failure raises: the refund is retried.
local vcc = require("vcc")
local settings = require("settings")
local log = require("log")

local input = ...
local order, service = input.order, input.service

if (order.serviceActivateTS or 0) > 0 then
  log.info("gas top-up already delivered: nothing to refund", {order = order.id})
  return {amount = 0}
end

local base = settings.get("vcc.base_url")
if base == nil or base == "" then base = service.apiHost .. "/vcc-openapi/" end
local c = vcc.client{base_url = base}

local ok, r = pcall(c.report_withdrawal, c, {orderNo = order.id, result = "FAILED",
  reason = "vmarket refund 退款", reportTime = input.now})
if ok then
  log.info("withdrawal reported FAILED: amount back on the account", {order = order.id, withdrawNo = r.withdrawNo})
  return {amount = order.amountPaid}
end
if vcc.is_error(r) and r.code == "3004" then
  log.info("no withdrawal was made: full refund", {order = order.id})
  return {amount = order.amountPaid}
end
if vcc.is_error(r) and r.code == "3005" then
  log.warn("withdrawal already reported SUCCESS: nothing to refund", {order = order.id})
  return {amount = 0}
end
error(r, 0)
