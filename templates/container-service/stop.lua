-- Container Service: stop.
-- Deletes the order's namespace. Deleting one that is already gone is
-- success, so a retried stop is harmless.
local http = require("http")
local log = require("log")

local input = ...
local order, service = input.order, input.service

local resp = http.request({
  method = "DELETE",
  url = service.apiHost .. "/api/v1/k8s/namespace/" .. order.id,
  headers = { ["Idempotency-Key"] = input.idempotencyKey },
})
if resp.status ~= 200 and resp.status ~= 204 and resp.status ~= 404 then
  error("k8s backend answered " .. resp.status .. ": " .. resp.body)
end
log.info("namespace deleted", { order = order.id })
return { stopped = true }
