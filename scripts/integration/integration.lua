-- integration: helpers shared by the bundled integration modules (vcc,
-- vcp, kassa24): their error objects, settings with defaults, and sleeping
-- between retries.
--
--   local integration = require("integration")
--   local errors = integration.errors("vcc")
--   errors.raise("invalid_argument", "accountNo is required")
--   local ok, err = pcall(...); if errors.is(err) then print(err.code) end
local settings = require("settings")
local time = require("time")

local M = {}

-- errors returns the error kit of one module. Its errors are tables with
-- code, message and module, plus fields such as status (HTTP) and data;
-- tostring gives "<module>: <code>: <message> (HTTP <status>)".
--   new(code, message [, fields]) -> error object
--   raise(code, message [, fields])  raises it (no position prefix)
--   is(v) -> true when v is an error of this module
function M.errors(module)
  local Error = {}
  Error.__index = Error
  Error.__tostring = function(e)
    local s = module .. ": " .. tostring(e.code) .. ": " .. tostring(e.message)
    if e.status then s = s .. " (HTTP " .. tostring(e.status) .. ")" end
    return s
  end
  local kit = {}
  function kit.new(code, message, fields)
    local e = setmetatable({code = code, message = message, module = module}, Error)
    for k, v in pairs(fields or {}) do e[k] = v end
    return e
  end
  function kit.raise(code, message, fields) error(kit.new(code, message, fields), 0) end
  function kit.is(v) return getmetatable(v) == Error end
  return kit
end

-- setting returns the setting name, or default when it is unset or empty.
function M.setting(name, default)
  local v = settings.get(name)
  if v == nil or v == "" then return default end
  return v
end

-- sleep pauses the run between retries; it never outlives the run's
-- deadline.
function M.sleep(seconds) time.sleep(seconds) end

return M
