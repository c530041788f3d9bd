-- Publishes one table policy in the document at KEYS[1], atomically with every other publisher.
--
-- ARGV[1] fingerprint   ARGV[2] read fingerprint   ARGV[3] canonical policy (JSON, kept as a string so
-- its bytes survive cjson)   ARGV[4] function version   ARGV[5] now, ms since the epoch
-- ARGV[6] retention, ms: entries not seen for longer are dropped
--
-- The document is a JSON string (not a hash), so that anything walking the keyspace with the apply
-- script (an epoch sweep over "*") reads it as another application's value and leaves it alone.
-- Returns the number of publications the document holds.
local raw = redis.call('GET', KEYS[1])
local doc = {format = 1, policies = {}}
if raw then
  local ok, d = pcall(cjson.decode, raw)
  if not ok or type(d) ~= 'table' or d.format ~= 1 or type(d.policies) ~= 'table' then
    return redis.error_reply('FOREIGN ' .. KEYS[1] .. ' holds a value that is not a cloudsql-cache policy document')
  end
  doc = d
end

local fp, now, retention = ARGV[1], tonumber(ARGV[5]), tonumber(ARGV[6])
local e = doc.policies[fp]
if type(e) ~= 'table' then
  e = {published_at_ms = now, last_seen_ms = now}
elseif e.policy ~= ARGV[3] then
  return redis.error_reply('CONFLICT ' .. fp .. ' is published with another policy')
end
e.policy = ARGV[3]
e.read_fingerprint = ARGV[2]
e.function_version = ARGV[4]
-- Publishers' clocks differ a little: the last sighting only moves forward.
if type(e.last_seen_ms) ~= 'number' or now > e.last_seen_ms then e.last_seen_ms = now end
doc.policies[fp] = e

local n = 0
for other, o in pairs(doc.policies) do
  if other ~= fp and (type(o) ~= 'table' or type(o.last_seen_ms) ~= 'number' or o.last_seen_ms < now - retention) then
    doc.policies[other] = nil
  else
    n = n + 1
  end
end
redis.call('SET', KEYS[1], cjson.encode(doc))
return n
