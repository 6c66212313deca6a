-- wrk script: catalogue page reads, GET /api/mp/v1/products?page=N&page_size=20.
-- Usage (bench/run.py does this): wrk ... -s bench/wrk/catalogue.lua http://127.0.0.1:PORT -- <data.lua>
-- <data.lua> (written by run.py) returns {dealers = {{token=..., full_pages=...}, ...}}.
-- Requests rotate over every (dealer token, full page) pair, each thread starting at a
-- different offset, so all bench dealers and every full 20-SKU page are read evenly.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")  -- setup(), response(), done()

local reqs = {}
local n, i = 0, 0

function init(args)
  local data = dofile(args[1])
  for _, d in ipairs(data.dealers) do
    local headers = { ["Authorization"] = "Bearer " .. d.token, ["Accept"] = "application/json" }
    for p = 1, d.full_pages do
      reqs[#reqs + 1] = wrk.format("GET", "/api/mp/v1/products?page=" .. p .. "&page_size=20", headers)
    end
  end
  n = #reqs
  i = ((tid or 0) * 7) % n
end

function request()
  i = i % n + 1
  return reqs[i]
end

