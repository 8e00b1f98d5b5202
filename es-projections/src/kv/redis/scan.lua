-- RedisKv's scan: a page of a generation's values whose keys start with a
-- prefix, in the bytes' order of the keys, read from the generation's key
-- index (see commit.lua), as one atomic script.
--
-- KEYS[1]  the live-generation key (missing: generation 1 is live)
-- ARGV[1]  the generation to read ("" for the live one)
-- ARGV[2]  the model's prefix (`<prefix>`; generation n's values are under
--          `<prefix>g<n>:v:` and its index is `<prefix>g<n>:i`)
-- ARGV[3]  the lex range's start: `[<key prefix>` or `(<after>`
-- ARGV[4]  the lex range's end: `(<key prefix + 1>` or `+`
-- ARGV[5]  the page's size
--
-- Replies a flat list: key, value, key, value, ...

local generation = ARGV[1]
if generation == '' then
  generation = redis.call('GET', KEYS[1]) or '1'
end
local base = ARGV[2] .. 'g' .. generation .. ':'
local members = redis.call('ZRANGEBYLEX', base .. 'i', ARGV[3], ARGV[4], 'LIMIT', 0, tonumber(ARGV[5]))
local reply = {}
for _, member in ipairs(members) do
  local value = redis.call('GET', base .. 'v:' .. member)
  if value then
    reply[#reply + 1] = member
    reply[#reply + 1] = value
  end
end
return reply
