-- VCP Site Monitor: start.
--
-- Checks the buyer's site and the provider's VCP API key by reading the
-- site's config (vcp.config): an unknown site, a refused key or a key
-- without the config scope fail the start with a clear message. Then it
-- issues the order's monitoring token: the secret, good for calling the
-- type's API functions directly (templates/vcpmonitor checks it against
-- the sha256 kept in the provider's kv). A retried start issues a new
-- token and replaces the stored hash: the token of the run that filed the
-- order is the one that works.
--
-- Settings (provider scope): vcp.base_url, vcp.api_key (secret) and the
-- vcp module's timeout/retries/budget. The VCP host must be allowed for
-- scripts (serve --script-allow-hosts).
local vcp = require("vcp")
local kv = require("kv")
local crypto = require("crypto")
local log = require("log")

local input = ...
local order = input.order
local site = (order.serviceOptions or {}).siteId

local function fail(msg) error("site monitor: " .. msg, 0) end

if not vcp.is_uuid(site) then
  fail("serviceOptions.siteId must be a VCP site id (a UUID), got " .. string.format("%q", tostring(site)))
end

local ok, cfg = pcall(vcp.config, site)
if not ok then
  if vcp.is_error(cfg) then
    if cfg.code == "UNAUTHORIZED" then fail("VCP refused the provider's API key (setting vcp.api_key)") end
    if cfg.code == "FORBIDDEN" then fail("the provider's VCP API key lacks the config:read scope") end
    if cfg.code == "NOT_FOUND" then fail("VCP has no site " .. site) end
    if cfg.code == "VALIDATION_ERROR" then fail("VCP refused the site id " .. site .. ": " .. tostring(cfg.message)) end
  end
  error(cfg, 0)
end

local token = "vcpm_" .. crypto.hex_encode(crypto.random_bytes(24))
kv.set("monitor-token:" .. order.id, crypto.sha256(token))

local pending = cfg.pendingCommands
log.info("site monitoring started", {order = order.id, site = site, mode = cfg.operatingMode})
return {
  secret = token,
  data = {
    siteId = site,
    operatingMode = cfg.operatingMode,
    modeOverride = cfg.modeOverride,
    pendingCommands = type(pending) == "table" and #pending or 0,
    functions = {"telemetry", "commands", "config"},
  },
}
