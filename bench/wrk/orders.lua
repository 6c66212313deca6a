-- wrk script: order submissions, POST /api/mp/v1/orders with 3 lines.
-- Usage (bench/run.py does this):
--   wrk ... -s bench/wrk/orders.lua http://127.0.0.1:PORT -- <data.lua> <all|DEALER_CODE> <run-tag>
-- Each request: a dealer (rotating over the bench dealers, or just one with a dealer code:
-- the worst case, since a dealer's submissions serialise on its credit row), 3 distinct
-- SKUs that dealer can see, each at its MOQ (always a valid multiple of its step), and a
-- unique Idempotency-Key "<run-tag>-<thread>-<n>" so every request creates a new order.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")  -- setup(), response(), done()

local dealers = {}
local k = 0
local tag = "run"

function init(args)
  local data = dofile(args[1])
  local only = args[2] or "all"
  tag = args[3] or tostring(os.time())
  for _, d in ipairs(data.dealers) do
    if only == "all" or only == d.code then
      dealers[#dealers + 1] = {
        headers = {
          ["Authorization"] = "Bearer " .. d.token,
          ["Content-Type"] = "application/json",
          ["Accept"] = "application/json",
        },
        skus = d.skus,
      }
    end
  end
  if #dealers == 0 then
    error("no bench dealer matches " .. only)
  end
  math.randomseed(os.time() + (tid or 0) * 7919)
end

local function pick3(skus)
  local n = #skus
  local a = math.random(n)
  local b = math.random(n - 1)
  if b >= a then b = b + 1 end
  local c = math.random(n - 2)
  local lo, hi = math.min(a, b), math.max(a, b)
  if c >= lo then c = c + 1 end
  if c >= hi then c = c + 1 end
  return skus[a], skus[b], skus[c]
end

function request()
  k = k + 1
  local d = dealers[(k + (tid or 0)) % #dealers + 1]
  local x, y, z = pick3(d.skus)
  local body = string.format(
    '{"lines":[{"sku_id":%d,"qty":%d},{"sku_id":%d,"qty":%d},{"sku_id":%d,"qty":%d}]}',
    x[1], x[2], y[1], y[2], z[1], z[2])
  d.headers["Idempotency-Key"] = tag .. "-" .. (tid or 0) .. "-" .. k
  return wrk.format("POST", "/api/mp/v1/orders", d.headers, body)
end

