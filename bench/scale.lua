-- wrk script of bench/scale.sh: one thread, one connection and one MCP session per session id.
-- BENCH_SIDS: the session ids, space-separated, one per thread ("-" for none: a target that
-- keeps no sessions); BENCH_PORTS (optional): the port each thread connects to, so one wrk
-- run spreads its sessions over several instances; BENCH_AUTH (optional): the Authorization
-- value; BENCH_PATH (optional): the request path. done() prints one RESULT line.
local function words(s)
  local t = {}
  for w in string.gmatch(s or "", "%S+") do t[#t + 1] = w end
  return t
end

local sids = words(os.getenv("BENCH_SIDS"))
local ports = words(os.getenv("BENCH_PORTS"))
local n = 0

function setup(thread)
  n = n + 1
  thread:set("sid", sids[n] or "")
  if ports[n] then
    thread.addr = wrk.lookup(wrk.host, ports[n])[1]
  end
end

local headers, path, body_head, body_tail
local calls = 0

function init(_)
  headers = {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
    ["MCP-Protocol-Version"] = "2025-06-18",
  }
  local auth = os.getenv("BENCH_AUTH")
  if auth and auth ~= "" then headers["Authorization"] = auth end
  if sid ~= "" and sid ~= "-" then headers["Mcp-Session-Id"] = sid end
  path = os.getenv("BENCH_PATH")
  body_head = '{"jsonrpc":"2.0","id":'
  body_tail = ',"method":"tools/call","params":{"name":"' .. (os.getenv("BENCH_TOOL") or "echo")
    .. '","arguments":{"message":"bench"}}}'
end

-- A new JSON-RPC id for every call: MCP forbids reusing a request id within a session, and the
-- gateway refuses an id whose previous request it has not finished logging (njs/inflight.js).
function request()
  calls = calls + 1
  return wrk.format("POST", path, headers, body_head .. calls .. body_tail)
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\n", latency:percentile(50), latency:percentile(99),
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout))
end
