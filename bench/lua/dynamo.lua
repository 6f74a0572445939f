-- wrk script: DynamoDB JSON 1.0 requests with signed-looking headers, every response checked.
--
-- Usage: wrk -s dynamo.lua URL -- workload=get keys=100000 [qkeys=1000] [seed=1]
-- Workloads: put get update query batch scan ycsba ycsbb
-- A response counts as good only with HTTP 200 and a body that shows the operation worked;
-- everything else is counted in `errors` and reported by done(), never dropped.

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("tid", counter)
   table.insert(threads, thread)
end

local cfg = {}
local target_prefix = "DynamoDB_20120810."
local auth = "AWS4-HMAC-SHA256 Credential=AKIDBENCHMARK/20260101/us-east-1/dynamodb/aws4_request, " ..
             "SignedHeaders=content-type;host;x-amz-date;x-amz-target, " ..
             "Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
local payload = string.rep("x", 160)

errors = 0
bad_status = 0
bad_body = 0
last_error = ""

-- YCSB zipfian generator (Gray et al.), theta 0.99, over n items; scrambled like YCSB's
-- ScrambledZipfian so hot keys are spread over the key space.
local zipf = {}
local function zipf_init(n, theta)
   local zetan = 0
   for i = 1, n do zetan = zetan + 1 / (i ^ theta) end
   local zeta2 = 1 + 1 / (2 ^ theta)
   zipf.n = n
   zipf.theta = theta
   zipf.alpha = 1 / (1 - theta)
   zipf.zetan = zetan
   zipf.eta = (1 - (2 / n) ^ (1 - theta)) / (1 - zeta2 / zetan)
end
local function zipf_next()
   local u = math.random()
   local uz = u * zipf.zetan
   local r
   if uz < 1 then r = 0
   elseif uz < 1 + 0.5 ^ zipf.theta then r = 1
   else r = math.floor(zipf.n * ((zipf.eta * u - zipf.eta + 1) ^ zipf.alpha)) end
   -- FNV-style scramble into [0, n)
   return (r * 2654435761) % zipf.n
end

function init(args)
   for _, a in ipairs(args) do
      local k, v = a:match("([^=]+)=(.*)")
      cfg[k] = v
   end
   cfg.keys = tonumber(cfg.keys or "100000")
   cfg.qkeys = tonumber(cfg.qkeys or "1000")
   cfg.table = cfg.table or "bench_kv"
   math.randomseed(tonumber(cfg.seed or "1") * 1000 + (tid or 0))
   if cfg.workload == "ycsba" or cfg.workload == "ycsbb" then zipf_init(cfg.keys, 0.99) end
end

local function key(i) return string.format("user%08d", i) end

local function req(op, body)
   return wrk.format("POST", "/", {
      ["Content-Type"] = "application/x-amz-json-1.0",
      ["X-Amz-Target"] = target_prefix .. op,
      ["X-Amz-Date"] = "20260101T000000Z",
      ["Authorization"] = auth,
   }, body)
end

local function get_req(k)
   return req("GetItem", '{"TableName":"bench_kv","Key":{"pk":{"S":"' .. key(k) .. '"}}}')
end
local function update_req(k)
   return req("UpdateItem", '{"TableName":"bench_kv","Key":{"pk":{"S":"' .. key(k) ..
      '"}},"UpdateExpression":"ADD #c :one","ExpressionAttributeNames":{"#c":"counter"},' ..
      '"ExpressionAttributeValues":{":one":{"N":"1"}},"ReturnValues":"UPDATED_NEW"}')
end

-- What a correct answer looks like, per request kind. Connections answer out of order, so a
-- response is matched against the kinds this workload sends (their bodies are distinct).
local expect = {}
local function push(kind) expect[kind] = true end

request = function()
   local w = cfg.workload
   if w == "get" then
      push("get"); return get_req(math.random(0, cfg.keys - 1))
   elseif w == "put" then
      push("put")
      return req("PutItem", '{"TableName":"bench_kv","Item":{"pk":{"S":"' ..
         key(math.random(0, cfg.keys * 10 - 1)) .. '"},"data":{"S":"' .. payload ..
         '"},"n":{"N":"' .. math.random(1, 1000000) .. '"}}}')
   elseif w == "update" then
      push("update"); return update_req(math.random(0, cfg.keys - 1))
   elseif w == "query" then
      push("query")
      return req("Query", '{"TableName":"bench_q","KeyConditionExpression":"pk = :p",' ..
         '"ExpressionAttributeValues":{":p":{"S":"' .. key(math.random(0, cfg.qkeys - 1)) .. '"}}}')
   elseif w == "batch" then
      push("batch")
      local parts = {}
      local base = math.random(0, 1000000000)
      for i = 1, 25 do
         parts[i] = '{"PutRequest":{"Item":{"pk":{"S":"b' .. (base + i) .. '"},"data":{"S":"' ..
            payload .. '"}}}}'
      end
      return req("BatchWriteItem", '{"RequestItems":{"bench_batch":[' .. table.concat(parts, ",") .. ']}}')
   elseif w == "scan" then
      push("scan"); return req("Scan", '{"TableName":"bench_kv"}')
   elseif w == "ycsba" or w == "ycsbb" then
      local read_share = (w == "ycsba") and 0.5 or 0.95
      local k = zipf_next()
      if math.random() < read_share then push("get"); return get_req(k)
      else push("update"); return update_req(k) end
   end
   error("unknown workload " .. tostring(w))
end

local patterns = {
   get = '^{ ?"Item" ?:',
   update = '^{ ?"Attributes" ?: ?{ ?"counter"',
   query = '"Count" ?: ?10[,}]',
   batch = '"UnprocessedItems" ?: ?{ ?}',
   scan = '"LastEvaluatedKey"',
}

local function good(body)
   if expect.put and body == "{}" then return true end
   for kind, _ in pairs(expect) do
      local p = patterns[kind]
      if p and string.find(body, p) then return true end
   end
   return false
end

response = function(status, headers, body)
   if status ~= 200 then
      errors = errors + 1; bad_status = bad_status + 1
      last_error = tostring(status) .. " " .. string.sub(body or "", 1, 200)
   elseif not good(body or "") then
      errors = errors + 1; bad_body = bad_body + 1
      last_error = "body: " .. string.sub(body or "", 1, 200)
   end
end

done = function(summary, latency, requests)
   local errs, bs, bb, last = 0, 0, 0, ""
   for _, t in ipairs(threads) do
      errs = errs + (t:get("errors") or 0)
      bs = bs + (t:get("bad_status") or 0)
      bb = bb + (t:get("bad_body") or 0)
      local le = t:get("last_error")
      if le and le ~= "" then last = le end
   end
   local secs = summary.duration / 1e6
   io.write(string.format(
      'BENCHJSON {"requests":%d,"duration_s":%.6f,"rps":%.2f,"errors":%d,"bad_status":%d,' ..
      '"bad_body":%d,"socket_errors":%d,"timeouts":%d,"p50_ms":%.4f,"p99_ms":%.4f,' ..
      '"p999_ms":%.4f,"max_ms":%.4f,"last_error":"%s"}\n',
      summary.requests, secs, summary.requests / secs, errs, bs, bb,
      summary.errors.connect + summary.errors.read + summary.errors.write,
      summary.errors.timeout,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000,
      latency:percentile(99.9) / 1000, latency.max / 1000,
      (string.gsub(last, '[^%w%s%.,:;_%-%(%)%[%]{}#=+/]', "?"))))
end
