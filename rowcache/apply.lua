-- cloudsql-cache: apply one change to one cached row, only if it is newer than what is stored.
-- Runs atomically in Redis, so concurrent and duplicate deliveries cannot interleave inside it.
--
-- KEYS[1]  the row key (for mode "T": the table's truncate-floor key)
-- KEYS[2]  the table's truncate-floor key (modes "u", "d", "x", "f")
-- ARGV[1]  mode: "u" upsert, "d" delete (tombstone), "x" truncate sweep (delete if older),
--          "f" read-path fill (write only where nothing is stored),
--          "T" raise the table's truncate floor, "e" epoch sweep (delete if the stored epoch is older)
-- ARGV[2]  the change's version, "epoch.column.file.pos.row" (mode "e": the current epoch alone)
-- ARGV[3]  modes "u", "f": the whole value to store ("<version> <row JSON>", or "<version>" for a
--          fill that caches "not found")
-- ARGV[4]  modes "d", "f": TTL in milliseconds (0 = keep forever)
-- ARGV[5]  pub/sub channel on which every key this script changes or deletes is published, so that
--          in-process caches of the read path drop it; "" publishes nothing
-- ARGV[6]  mode "f": the table's truncate floor as the caller read it before its database read ("" if none)
--
-- The truncate floor and the version of a truncate ("T", "x") have a zero column component.
--
-- Returns 1 applied, 0 duplicate (same version stored), -1 stale (newer version stored),
-- -2 stale because the table was truncated at or after this version.

-- Compare two canonical decimal strings without converting them to doubles whole: Lua numbers are
-- doubles, exact only below 2^53, and string "<" goes through strcoll, which depends on the locale.
local function cmpnum(a, b)
  if #a ~= #b then
    if #a < #b then return -1 end
    return 1
  end
  if a == b then return 0 end
  for i = 1, #a, 15 do
    local x = tonumber(string.sub(a, i, i + 14))
    local y = tonumber(string.sub(b, i, i + 14))
    if x ~= y then
      if x < y then return -1 end
      return 1
    end
  end
  return 0
end

local function cmpver(a, b)
  if a == b then return 0 end
  local i, j = 1, 1
  while true do
    local ea = string.find(a, '.', i, true)
    local eb = string.find(b, '.', j, true)
    local pa = ea and string.sub(a, i, ea - 1) or string.sub(a, i)
    local pb = eb and string.sub(b, j, eb - 1) or string.sub(b, j)
    local c = cmpnum(pa, pb)
    if c ~= 0 then return c end
    if not ea or not eb then
      if ea then return 1 end
      if eb then return -1 end
      return 0
    end
    i, j = ea + 1, eb + 1
  end
end

-- A truncate is ordered with rows by binlog position alone: a row written before the TRUNCATE in the
-- binlog is older than it whatever its version column says. This drops the column component.
local function binlog_part(v)
  local d1 = string.find(v, '.', 1, true)
  local d2 = string.find(v, '.', d1 + 1, true)
  return string.sub(v, 1, d1) .. '0' .. string.sub(v, d2)
end

-- The stored version is everything before the first space; only the head of the value is read, so a
-- large row is never copied into the script.
local function stored_version(key)
  local head = redis.call('GETRANGE', key, 0, 127)
  if head == '' then return nil end
  local sp = string.find(head, ' ', 1, true)
  if sp then head = string.sub(head, 1, sp - 1) end
  if #head > 104 or not string.find(head, '^[0-9][0-9.]*$') then
    return redis.error_reply('FOREIGN ' .. key .. ' holds a value that is not a cloudsql-cache row')
  end
  return head
end

local mode, version = ARGV[1], ARGV[2]
local channel = ARGV[5] or ''

local function changed(key)
  if channel ~= '' then redis.call('PUBLISH', channel, key) end
end

-- A fill carries data read from the database outside the change stream, with no position in it; it
-- must never replace anything, or a slow fill could overwrite a newer change. Its TTL bounds how long
-- it can be wrong if it loses a race with an eviction.
if mode == 'f' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
  -- A truncate between the fill's database read and now may have swept nothing for this row yet the
  -- row read is gone: refuse the fill if the table's floor moved since the caller read it (ARGV[6]).
  if (redis.call('GET', KEYS[2]) or '') ~= (ARGV[6] or '') then return 0 end
  local ttl = tonumber(ARGV[4])
  if ttl and ttl > 0 then
    redis.call('SET', KEYS[1], ARGV[3], 'PX', ttl)
  else
    redis.call('SET', KEYS[1], ARGV[3])
  end
  return 1
end

if mode == 'T' then
  local floor = redis.call('GET', KEYS[1])
  if floor then
    local c = cmpver(version, floor)
    if c == 0 then return 0 end
    if c < 0 then return -1 end
  end
  redis.call('SET', KEYS[1], version)
  return 1
end

if mode == 'e' then
  local cur = stored_version(KEYS[1])
  if type(cur) == 'table' then return cur end
  if cur then
    local dot = string.find(cur, '.', 1, true)
    if cmpnum(string.sub(cur, 1, dot - 1), version) < 0 then
      redis.call('DEL', KEYS[1])
      changed(KEYS[1])
      return 1
    end
  end
  return 0
end

local floor = redis.call('GET', KEYS[2])
if floor and mode ~= 'x' and cmpver(binlog_part(version), floor) <= 0 then
  return -2
end

local cur = stored_version(KEYS[1])
if type(cur) == 'table' then return cur end

if mode == 'x' then
  if cur and cmpver(binlog_part(cur), version) < 0 then
    redis.call('DEL', KEYS[1])
    changed(KEYS[1])
    return 1
  end
  return 0
end

if cur then
  local c = cmpver(version, cur)
  if c == 0 then return 0 end
  if c < 0 then return -1 end
end

if mode == 'u' then
  redis.call('SET', KEYS[1], ARGV[3])
elseif mode == 'd' then
  local ttl = tonumber(ARGV[4])
  if ttl and ttl > 0 then
    redis.call('SET', KEYS[1], version, 'PX', ttl)
  else
    redis.call('SET', KEYS[1], version)
  end
else
  return redis.error_reply('BADMODE unknown mode ' .. tostring(mode))
end
changed(KEYS[1])
return 1
