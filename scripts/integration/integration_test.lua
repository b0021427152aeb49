local integration = require("integration")

local T = {}

function T.test_error_objects(t)
  local e = integration.errors("demo")
  local err = e.new("invalid_argument", "accountNo is required", {status = 400})
  t:eq(err.code, "invalid_argument")
  t:eq(err.module, "demo")
  t:eq(tostring(err), "demo: invalid_argument: accountNo is required (HTTP 400)")
  t:ok(e.is(err), "is() knows its own errors")
  t:ok(not integration.errors("other").is(err), "another module's kit does not claim it")
  t:ok(not e.is("a string"), "strings are not error objects")
  local ok, raised = pcall(e.raise, "timeout", "too slow")
  t:ok(not ok)
  t:eq(raised.code, "timeout")
  t:eq(tostring(raised), "demo: timeout: too slow")
end

function T.test_setting_defaults(t)
  t:eq(integration.setting("demo.present", "d"), "value")
  t:eq(integration.setting("demo.empty", "d"), "d")
  t:eq(integration.setting("demo.absent", "d"), "d")
  t:eq(integration.setting("demo.absent"), nil)
end

function T.test_sleep(t)
  integration.sleep(0.01)
  t:error(function() integration.sleep(-1) end, "invalid_argument")
end

return T
