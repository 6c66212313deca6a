-- wrk script: catalogue page reads, GET /api/mp/v1/products?page=N&page_size=20.
-- Usage (bench/run.py does this): wrk ... -s bench/wrk/catalogue.lua http://127.0.0.1:PORT -- <data.lua>
-- <data.lua> (written by run.py) returns {dealers = {{token=..., full_pages=...}, ...}}.
-- Requests rotate over every (dealer token, full page) pair, each thread starting at a
-- different offset, so all bench dealers and every full 20-SKU page are read evenly.
local counter = 0
threads = {}
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  threads[#threads + 1] = thread
end

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

-- Status accounting (wrk prints only "Non-2xx or 3xx responses"): every thread counts
-- statuses and keeps its first error body; done() prints them for bench/run.py.
local statuses = {}
first_error = nil
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status >= 300 and first_error == nil then
    first_error = status .. " " .. string.sub(body or "", 1, 400)
  end
  status_counts = statuses
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local counts = t:get("status_counts") or {}
    for s, n in pairs(counts) do total[s] = (total[s] or 0) + n end
    local err = t:get("first_error")
    if err then io.write("first error: " .. err .. "\n") end
  end
  for s, n in pairs(total) do io.write("status " .. s .. ": " .. n .. "\n") end
end
