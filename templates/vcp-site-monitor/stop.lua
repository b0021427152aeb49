-- VCP Site Monitor: stop.
--
-- Revokes the order's monitoring token (the adapter also refuses calls
-- for an order that is not running). Nothing is sent to VCP: monitoring
-- only reads. Deleting an absent key is fine, so a retried stop is too.
local kv = require("kv")
local log = require("log")

local input = ...
kv.delete("monitor-token:" .. input.order.id)
log.info("site monitoring stopped", {order = input.order.id})
return {stopped = true}
