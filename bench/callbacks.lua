-- wrk script: POST pre-generated signed callbacks, each body once, in file order.
-- BENCH_BODIES: a file of lines "<signature> <body>" (bodies are one-line JSON).
-- BENCH_LIMIT (optional): stop after this many responses (wrk still waits out -d).
-- BENCH_OFFSET (optional): start after this many lines.
-- BENCH_MAX (optional): keep at most this many lines after the offset.
-- At the end prints one line "BENCH {json}" that bench/bench.py reads.

local path = os.getenv("BENCH_BODIES")
local limit = tonumber(os.getenv("BENCH_LIMIT") or "0")
local offset = tonumber(os.getenv("BENCH_OFFSET") or "0")
-- Only the lines a run can send are kept: loading all of them took wrk a second to start.
local wanted = tonumber(os.getenv("BENCH_MAX") or "0")
local signatures, bodies, count, seen = {}, {}, 0, 0
for line in io.lines(path) do
  seen = seen + 1
  if seen > offset then
    count = count + 1
    local space = line:find(" ", 1, true)
    signatures[count] = line:sub(1, space - 1)
    bodies[count] = line:sub(space + 1)
    if wanted > 0 and count >= wanted then
      break
    end
  end
end

local headers = { ["Content-Type"] = "application/json" }
local index, responses, wrapped = 0, 0, 0

request = function()
  index = index + 1
  if index > count then
    index, wrapped = 1, wrapped + 1
  end
  headers["X-QualityMax-Signature"] = signatures[index]
  return wrk.format("POST", nil, headers, bodies[index])
end

response = function(status, _, _)
  responses = responses + 1
  if limit > 0 and responses >= limit then
    wrk.thread:stop()
  end
end

done = function(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "non2xx": %d, "connect": %d, "read": %d, '
      .. '"write": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, '
      .. '"bodies": %d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, count))
end
