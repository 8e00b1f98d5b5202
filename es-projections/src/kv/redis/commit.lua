-- RedisKv's commit: checks the projection's checkpoint (compare-and-set),
-- applies a batch of key-value ops in order, and moves the checkpoint, as one
-- atomic script.
--
-- KEYS[1]   the checkpoint key
-- KEYS[2]   the live-generation key (missing: generation 1 is live)
-- KEYS[3..] the value keys and tag sets the ops name (by index into KEYS)
-- ARGV[1]   "1" when a checkpoint is expected, "0" when none is
-- ARGV[2]   the expected checkpoint ("" when none)
-- ARGV[3]   the next checkpoint
-- ARGV[4]   the generation's value prefix (a purge deletes `prefix .. member`,
--           keys that cannot be declared in advance: single-instance Redis
--           only)
-- ARGV[5]   the generation written
-- ARGV[6]   "1" to keep the generation's key index, "0" for a model without
-- ARGV[7..] the ops, each an opcode and its arguments:
--             set   <key index> <value>
--             del   <key index>
--             incr  <key index> <delta>
--             tag   <tag set index> <member (the key without prefix)>
--             purge <tag set index>
--
-- With ARGV[6] = "1", every value key of a generation is also a member (the key without the
-- value prefix) of the generation's key index, the sorted set `g<n>:i` beside
-- `g<n>:v:` (all scores 0: ordered by the members' bytes), which
-- `scan.lua` reads pages of.
--
-- Replies {"ok"}, {"superseded", <live generation>} (a newer generation is
-- live: nothing written), {"fenced", <stored checkpoint or nil>}, or
-- {"failed", <message>}. A failure is found before the first write: Lua errors
-- abort a script but do not roll back what it already wrote, so the whole
-- batch is first simulated (pass 1), then written (pass 2).

local live = tonumber(redis.call('GET', KEYS[2]) or '1')
if tonumber(ARGV[5]) < live then
  return { 'superseded', tostring(live) }
end

local stored = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if stored ~= ARGV[2] then
    return { 'fenced', stored }
  end
elseif stored then
  return { 'fenced', stored }
end

-- 64-bit integers, exactly: Lua numbers are doubles, so an integer is kept
-- as (hi, lo) with value = hi * BASE + lo and 0 <= lo < BASE.
local BASE = 1000000000
local MIN_HI, MIN_LO = -9223372037, 145224192 -- -9223372036854775808
local MAX_HI, MAX_LO = 9223372036, 854775807 --  9223372036854775807

local function in_range(hi, lo)
  return (hi > MIN_HI or (hi == MIN_HI and lo >= MIN_LO))
    and (hi < MAX_HI or (hi == MAX_HI and lo <= MAX_LO))
end

-- Parses what Rust's `str::parse::<i64>` accepts: an optional sign, then
-- ASCII digits (leading zeros allowed), within range.
local function parse(text)
  local sign, digits = string.match(text, '^([+-]?)(%d+)$')
  if not digits then
    return nil
  end
  digits = string.match(digits, '^0*(.*)$')
  local n = #digits
  if n > 19 then
    return nil
  end
  local hi, lo = 0, 0
  if n > 9 then
    hi = tonumber(string.sub(digits, 1, n - 9))
    lo = tonumber(string.sub(digits, n - 8))
  elseif n > 0 then
    lo = tonumber(digits)
  end
  if sign == '-' then
    if lo > 0 then
      hi, lo = -hi - 1, BASE - lo
    else
      hi = 0 - hi -- never -0
    end
  end
  if not in_range(hi, lo) then
    return nil
  end
  return hi, lo
end

-- Formats as Rust's `i64::to_string` does.
local function format(hi, lo)
  local sign = ''
  if hi < 0 then
    sign = '-'
    hi, lo = 0 - hi, 0 - lo
    if lo < 0 then
      hi, lo = hi - 1, lo + BASE
    end
  end
  if hi > 0 then
    return sign .. string.format('%d%09d', hi, lo)
  end
  return sign .. string.format('%d', lo)
end

local prefix = ARGV[4]

-- Pass 1: simulate the batch to find failures before writing anything.
local values = {} -- key -> value, or false when deleted in this batch
local tags = {} -- tag set key -> { purged = bool, added = { member = true } }
local sums = {} -- ARGV index of an incr -> the value it writes

local function tag_state(set)
  local state = tags[set]
  if not state then
    local kind = redis.call('TYPE', set)['ok']
    if kind ~= 'set' and kind ~= 'none' then
      return nil
    end
    state = { purged = false, added = {} }
    tags[set] = state
  end
  return state
end

local i = 7
local op = 1
while i <= #ARGV do
  local code = ARGV[i]
  local key = KEYS[tonumber(ARGV[i + 1])]
  if code == 'set' then
    values[key] = ARGV[i + 2]
    i = i + 3
  elseif code == 'del' then
    values[key] = false
    i = i + 2
  elseif code == 'incr' then
    local current = values[key]
    if current == nil then
      current = redis.call('GET', key)
    end
    local hi, lo = 0, 0
    if current then
      hi, lo = parse(current)
      if not hi then
        return { 'failed', 'op ' .. op .. ': the value is not an integer' }
      end
    end
    local dhi, dlo = parse(ARGV[i + 2])
    if not dhi then
      return { 'failed', 'op ' .. op .. ': the delta is not an integer' }
    end
    hi, lo = hi + dhi, lo + dlo
    if lo >= BASE then
      hi, lo = hi + 1, lo - BASE
    end
    if not in_range(hi, lo) then
      return { 'failed', 'op ' .. op .. ': integer overflow' }
    end
    local sum = format(hi, lo)
    values[key] = sum
    sums[i] = sum
    i = i + 3
  elseif code == 'tag' then
    local state = tag_state(key)
    if not state then
      return { 'failed', 'op ' .. op .. ': the tag set holds another type' }
    end
    state.added[ARGV[i + 2]] = true
    i = i + 3
  elseif code == 'purge' then
    local state = tag_state(key)
    if not state then
      return { 'failed', 'op ' .. op .. ': the tag set holds another type' }
    end
    if not state.purged then
      for _, member in ipairs(redis.call('SMEMBERS', key)) do
        values[prefix .. member] = false
      end
    end
    for member in pairs(state.added) do
      values[prefix .. member] = false
    end
    state.purged, state.added = true, {}
    i = i + 2
  else
    return { 'failed', 'op ' .. op .. ': unknown opcode' }
  end
  op = op + 1
end

-- Pass 2: write, in order, keeping the key index.
local indexed = ARGV[6] == '1'
local index = string.sub(prefix, 1, #prefix - 2) .. 'i'
local function indexed_add(key)
  if indexed then
    redis.call('ZADD', index, 0, string.sub(key, #prefix + 1))
  end
end
local function indexed_remove(key)
  if indexed then
    redis.call('ZREM', index, string.sub(key, #prefix + 1))
  end
end
i = 7
while i <= #ARGV do
  local code = ARGV[i]
  local key = KEYS[tonumber(ARGV[i + 1])]
  if code == 'set' then
    redis.call('SET', key, ARGV[i + 2])
    indexed_add(key)
    i = i + 3
  elseif code == 'del' then
    redis.call('DEL', key)
    indexed_remove(key)
    i = i + 2
  elseif code == 'incr' then
    redis.call('SET', key, sums[i])
    indexed_add(key)
    i = i + 3
  elseif code == 'tag' then
    redis.call('SADD', key, ARGV[i + 2])
    i = i + 3
  else -- purge
    local members = redis.call('SMEMBERS', key)
    -- DEL in chunks: `unpack` is bounded by the Lua C stack.
    for first = 1, #members, 1000 do
      local chunk, names = {}, {}
      for j = first, math.min(first + 999, #members) do
        chunk[#chunk + 1] = prefix .. members[j]
        names[#names + 1] = members[j]
      end
      redis.call('DEL', unpack(chunk))
      if indexed then
        redis.call('ZREM', index, unpack(names))
      end
    end
    redis.call('DEL', key)
    i = i + 2
  end
end

redis.call('SET', KEYS[1], ARGV[3])
return { 'ok' }
