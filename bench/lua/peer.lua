-- The requests of a run beside another service, from the environment:
--   BENCH_METHOD        GET (default) or POST
--   BENCH_PATHS         one path (with its query) per line; with several, each thread sends
--                       them in turn (a page and the request its browser makes right after)
--   BENCH_HEADERS       "Name: value" per line (cookies, a CSRF header), sent on every request
--   BENCH_BODY          a body, sent with BENCH_CONTENT_TYPE (default application/json)
-- report.lua counts the answers and prints the run's figures.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

local function lines(text)
  local found = {}
  for line in string.gmatch(text or "", "[^\n]+") do
    table.insert(found, line)
  end
  return found
end

local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
if body == "" then
  body = nil
end
local paths = lines(os.getenv("BENCH_PATHS"))
local prepared = {}
local turn = 1

function init(args)
  local headers = {}
  for name, value in pairs(wrk.headers) do
    headers[name] = value
  end
  for _, line in ipairs(lines(os.getenv("BENCH_HEADERS"))) do
    local name, value = line:match("^([^:]+):%s*(.*)$")
    if name then
      headers[name] = value
    end
  end
  if body then
    headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") or "application/json"
  end
  if #paths == 0 then
    paths = { wrk.path }
  end
  for index, path in ipairs(paths) do
    prepared[index] = wrk.format(method, path, headers, body)
  end
end

function request()
  local next_request = prepared[turn]
  turn = turn % #prepared + 1
  return next_request
end
