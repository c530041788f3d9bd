-- cloudsql-cache: apply one change to one cached row, only if it is newer than what is stored.
-- Runs atomically in Redis, so concurrent and duplicate deliveries cannot interleave inside it.
--
-- KEYS[1]  the row key (mode "T": the table's floor key; mode "F": the table's schema fingerprint key)
-- KEYS[2]  the table's floor key (modes "u", "d", "f")
-- ARGV[1]  mode: "u" upsert, "d" delete (tombstone), "x" floor sweep (delete if older than the floor),
--          "f" read-path fill (write only where nothing is stored),
--          "T" raise the table's floor, "e" epoch sweep (delete if the stored epoch is older),
--          "F" store a schema fingerprint if it is not older than the stored one
-- ARGV[2]  the change's version, "epoch.column.file.pos.row" (mode "e": the current epoch alone;
--          modes "T", "x": the floor, column and row 0)
-- ARGV[3]  modes "u", "f": the whole value to store ("<version> <row JSON>", or "<version>" for a
--          fill that caches "not found"); mode "T": why the floor is raised ("truncate", "snapshot",
--          "ddl"); mode "F": the fingerprint
-- ARGV[4]  modes "d", "f": TTL in milliseconds (0 = keep forever)
-- ARGV[5]  pub/sub channel on which every key this script changes or deletes is published, so that
--          in-process caches of the read path drop it; "" publishes nothing
-- ARGV[6]  mode "f": the table's floor as the caller read it before its database read ("" if none)
--
-- A table's floor is "<version>" (a truncate's) or "<version> <reason>": every change of the table whose binlog
-- position (the version with its column component zeroed) is strictly older than the floor is
-- refused. Floors written before reasons existed are truncates' too, and carry the TRUNCATE's stale
-- row number: no row change shares a query event's file and position, so "strictly older than (file,
-- pos, row)" refuses exactly what "strictly older than (file, pos, 0)" does.
--
-- Returns, for "u" and "d": 1 applied, 2 applied over a different value stored under the same version
-- (a version collision), 0 duplicate (the same value is stored), -1 stale (newer version stored),
-- -2/-3/-4 stale because the table's floor (truncate/snapshot/ddl) is newer; a FOREIGN error when the
-- key holds a value that is not ours. For the sweeps "x" and "e": 1 deleted, 0 kept, -9 foreign (kept).

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

-- A floor is ordered with rows by binlog position alone: a row written before the TRUNCATE (or the
-- snapshot, or the DDL) in the binlog is older than it whatever its column component says. This drops
-- the column component of a well-formed version.
local function binlog_part(v)
  local d1 = string.find(v, '.', 1, true)
  local d2 = string.find(v, '.', d1 + 1, true)
  return string.sub(v, 1, d1) .. '0' .. string.sub(v, d2)
end

local MAXU64 = '18446744073709551615'

-- The version of a cloudsql-cache value: exactly five dot-separated canonical decimal numbers (1 to 20
-- digits, no leading zero unless the number is 0, at most 2^64-1), then the end of the value (a
-- tombstone) or a space and the row's JSON object. Anything else, and any non-string type, is another
-- application's value. Returns the version, nil for an absent key, false for a foreign value. Only the
-- head of the value is read, so a large row is never copied into the script.
local function owned_version(key)
  local head = redis.pcall('GETRANGE', key, 0, 127)
  if type(head) == 'table' then return false end -- WRONGTYPE: a hash, list, …
  if head == '' then
    if redis.call('EXISTS', key) == 1 then return false end -- an empty string
    return nil
  end
  local i = 1
  for c = 1, 5 do
    local s, e = string.find(head, '^[0-9]+', i)
    if not s then return false end
    local n = e - s + 1
    if n > 20 or (n > 1 and string.byte(head, s) == 48) then return false end
    if n == 20 and cmpnum(string.sub(head, s, e), MAXU64) > 0 then return false end
    i = e + 1
    if c < 5 then
      if string.byte(head, i) ~= 46 then return false end
      i = i + 1
    end
  end
  -- A version is at most 104 bytes, so a head that ends here is the whole value.
  if i > #head then return head end
  if string.byte(head, i) == 32 and string.byte(head, i + 1) == 123 then
    return string.sub(head, 1, i - 1)
  end
  return false
end

local function foreign(key)
  return redis.error_reply('FOREIGN ' .. key .. ' holds a value that is not a cloudsql-cache row')
end

-- A floor value: its version, and the code a change below it is answered with.
local floor_codes = { truncate = -2, snapshot = -3, ddl = -4 }
local function parse_floor(value)
  local sp = string.find(value, ' ', 1, true)
  if not sp then return value, -2 end
  return string.sub(value, 1, sp - 1), floor_codes[string.sub(value, sp + 1)] or -2
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
  -- A floor raised between the fill's database read and now (a truncate, a completed snapshot, a DDL)
  -- may have swept nothing for this row yet the row read is gone: refuse the fill if the table's floor
  -- moved since the caller read it (ARGV[6]).
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
    local c = cmpver(version, (parse_floor(floor)))
    if c == 0 then return 0 end
    if c < 0 then return -1 end
  end
  -- A truncate's floor keeps the bare form floors had before they had reasons (and that tools read).
  if ARGV[3] == 'truncate' then
    redis.call('SET', KEYS[1], version)
  else
    redis.call('SET', KEYS[1], version .. ' ' .. ARGV[3])
  end
  return 1
end

if mode == 'F' then
  local cur = redis.call('GET', KEYS[1])
  if cur then
    local sp = string.find(cur, ' ', 1, true)
    if sp and cmpver(version, string.sub(cur, 1, sp - 1)) < 0 then return -1 end
  end
  redis.call('SET', KEYS[1], version .. ' ' .. ARGV[3])
  return 1
end

if mode == 'e' then
  local cur = owned_version(KEYS[1])
  if cur == false then return -9 end
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

if mode == 'x' then
  local cur = owned_version(KEYS[1])
  if cur == false then return -9 end
  if cur and cmpver(binlog_part(cur), version) < 0 then
    redis.call('DEL', KEYS[1])
    changed(KEYS[1])
    return 1
  end
  return 0
end

if mode ~= 'u' and mode ~= 'd' then
  return redis.error_reply('BADMODE unknown mode ' .. tostring(mode))
end

local floor = redis.call('GET', KEYS[2])
if floor then
  local fv, code = parse_floor(floor)
  if cmpver(binlog_part(version), fv) < 0 then return code end
end

local cur = owned_version(KEYS[1])
if cur == false then return foreign(KEYS[1]) end

local value = ARGV[3]
if mode == 'd' then value = version end

local result = 1
if cur then
  local c = cmpver(version, cur)
  if c < 0 then return -1 end
  if c == 0 then
    -- The same version: the same change delivered again, unless two changes share a version (rows of
    -- a compressed transaction without transaction metadata). Ordered delivery makes the later one
    -- the newer: store it, and say so.
    if redis.call('STRLEN', KEYS[1]) == #value and redis.call('GET', KEYS[1]) == value then return 0 end
    result = 2
  end
end

if mode == 'u' then
  redis.call('SET', KEYS[1], value)
else
  local ttl = tonumber(ARGV[4])
  if ttl and ttl > 0 then
    redis.call('SET', KEYS[1], value, 'PX', ttl)
  else
    redis.call('SET', KEYS[1], value)
  end
end
changed(KEYS[1])
return result
