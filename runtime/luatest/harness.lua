-- luatest harness: runs one test function of a *_test.lua module in the
-- sandbox. input = {module = "<name>", test = "<test_name>"} or
-- {module = "<name>", list = true}.
local input = ...

local function show(v, depth)
  depth = depth or 0
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) ~= "table" or depth > 3 then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = tostring(k) .. "=" .. show(v[k], depth + 1)
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function deep_eq(a, b, depth)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" or (depth or 0) > 32 then return false end
  for k, v in pairs(a) do
    if not deep_eq(v, b[k], (depth or 0) + 1) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local function prefix(msg)
  if msg then return tostring(msg) .. ": " end
  return ""
end

-- Each assertion raises at the caller of the public function (gopher-lua
-- counts the Go `error` frame too, hence level 4).
local function check_eq(got, want, msg)
  if not deep_eq(got, want) then
    error(prefix(msg) .. "expected " .. show(want) .. ", got " .. show(got), 4)
  end
end

local function check_true(cond, msg)
  if not cond then error(msg or "expected a true value", 4) end
end

local function check_error(fn, pattern)
  local ok, err = pcall(fn)
  if ok then error("expected an error", 4) end
  if pattern then
    local s = tostring(err)
    if not (s:find(pattern) or s:find(pattern, 1, true)) then
      error("error " .. show(s) .. " does not match " .. show(pattern), 4)
    end
  end
  return err
end

local T = {}
T.__index = T
function T:eq(got, want, msg) check_eq(got, want, msg) end
function T:ok(cond, msg) check_true(cond, msg) end
function T:fail(msg) error(msg or "failed", 3) end
function T:error(fn, pattern) return check_error(fn, pattern) end
function T:log(...) print(...) end

assert_eq = function(got, want, msg) check_eq(got, want, msg) end
assert_true = function(cond, msg) check_true(cond, msg) end
assert_error = function(fn, pattern) return check_error(fn, pattern) end

local mod = require(input.module)
local suite = type(mod) == "table" and mod or _G

if input.list then
  local names = {}
  for k, v in pairs(suite) do
    if type(k) == "string" and k:sub(1, 5) == "test_" and type(v) == "function" then
      names[#names + 1] = k
    end
  end
  table.sort(names)
  return {names = names}
end

local fn = suite[input.test]
if type(fn) ~= "function" then error("no test " .. input.test, 0) end
local t = setmetatable({}, T)
if type(suite.setup) == "function" then suite.setup(t) end
local ok, err = pcall(fn, t)
if type(suite.teardown) == "function" then suite.teardown(t) end
if not ok then error(err, 0) end
return {ok = true}
