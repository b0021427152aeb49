-- Towngas Gas Top-up: stop.
--
-- A top-up has nothing to tear down: the withdrawal was made and
-- reported at start. The end of the bought hour only closes the order.
local log = require("log")

local input = ...
log.info("gas top-up closed", {order = input.order.id})
return {stopped = true}
