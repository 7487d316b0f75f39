-- The request of a load run, the same for every connection, taken from the environment:
--   BENCH_METHOD  GET (default) or POST
--   BENCH_BODY    a JSON body, sent with Content-Type: application/json (optional)
--   BENCH_TOKEN   a JWT from POST /login, sent as the cookie `token` (optional)
-- The path and query come from the URL given to wrk. report.lua counts the answers.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

wrk.method = os.getenv("BENCH_METHOD") or "GET"

local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Cookie"] = "token=" .. token
end
