-- VCP Site Monitor: refund.
--
-- Pays back the unused whole hours of what was paid; hours that have
-- started count as used, and a service that never started gets
-- everything back.
local input = ...
local order = input.order

local paid = order.amountPaid - (order.amountRefunded or 0)
local hours = order.duration
if hours <= 0 or paid <= 0 then
  return {amount = 0}
end
if (order.serviceActivateTS or 0) <= 0 then
  return {amount = paid}
end
local hour = input.hourSeconds or 3600
local used = math.floor(math.max(0, input.now - order.serviceActivateTS) / hour) + 1
if used >= hours then
  return {amount = 0}
end
return {amount = paid * (hours - used) / hours}
