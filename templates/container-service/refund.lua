-- Container Service: refund.
-- Pays back the unused whole hours of what was paid. Hours that have
-- started count as used.
local input = ...
local order = input.order

local paid = order.amountPaid
local hours = order.duration
if hours <= 0 or paid <= 0 then
  return { amount = 0 }
end

-- The current hour has started, so it counts as used.
local used = 0
if order.serviceActivateTS and order.serviceActivateTS > 0 then
  local hour = input.hourSeconds or 3600
  used = math.floor(math.max(0, input.now - order.serviceActivateTS) / hour) + 1
end
if used >= hours then
  return { amount = 0 }
end
return { amount = paid * (hours - used) / hours }
