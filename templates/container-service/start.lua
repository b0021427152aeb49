-- Container Service: start.
-- Asks the provider's k8s backend for a namespace sized by the order's
-- resource unit and returns its access token as the order's secret.
-- The idempotency key makes a retried start return the same namespace.
local http = require("http")
local json = require("json")
local log = require("log")

local input = ...
local order, service = input.order, input.service

local resp = http.request({
  method = "POST",
  url = service.apiHost .. "/api/v1/k8s/namespace",
  headers = {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = input.idempotencyKey,
  },
  body = json.encode({
    orderId = order.id,
    owner = order.address,
    resourceUnit = order.serviceOptions.resourceUnit,
    region = order.serviceOptions.region,
    hours = order.duration,
  }),
})
if resp.status ~= 200 and resp.status ~= 201 then
  error("k8s backend answered " .. resp.status .. ": " .. resp.body)
end

local ns = json.decode(resp.body)
if type(ns.token) ~= "string" or ns.token == "" then
  error("k8s backend returned no access token")
end
log.info("namespace ready", { namespace = ns.namespace })
return {
  secret = ns.token,
  data = { namespace = ns.namespace, endpoint = ns.endpoint },
}
