-- VCC daily reconciliation (按日对账), run by market/reconcile in the
-- sandbox with the provider's settings (vcc.sftp.* and the vcc module's
-- timeout): fetches the day's reconciliation file over SFTP and compares
-- it with the orders vmarket filed for that day.
--
-- input  = {provider = "towngas-vcc", day = "yyyyMMdd",
--           orders = {{orderNo = "<order id>", amount = "100.00", status = "SUCCESS"}, ...}}
-- result = vcc.reconcile's report ({ok, day, file, rows, matched,
--          mismatches, total_vcc, total_vmarket}) with file_found = true,
--          or {file_found = false, day, file} when VCC has no file for the
--          day (the Go side decides whether that is an error).
local vcc = require("vcc")
local log = require("log")

local input = ...
local c = vcc.client()
local ok, report = pcall(c.reconcile, c, input.day, input.orders)
if not ok then
  if type(report) == "table" and report.code == "not_found" then
    local path = c:reconciliation_path(input.day)
    log.warn("no VCC reconciliation file", {day = input.day, file = path})
    return {file_found = false, day = input.day, file = path}
  end
  error(report, 0)
end
report.file_found = true
log.info("VCC reconciliation compared", {day = report.day, file = report.file, rows = report.rows,
  matched = report.matched, mismatches = #report.mismatches})
return report
