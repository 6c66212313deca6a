-- Shared by the wrk scripts: per-thread ids (setup) and status accounting (response, done).
local counter = 0
threads = {}
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  threads[#threads + 1] = thread
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
