-- RedisKv's switch of the live generation, a compare-and-set: the live
-- generation must still be the one switched from, and both generations'
-- checkpoints must still be the ones the caller compared.
--
-- KEYS[1] the live-generation key (missing: generation 1 is live)
-- KEYS[2] the projection's checkpoint key in the live generation
-- KEYS[3] the projection's checkpoint key in the new generation
-- ARGV[1] the generation switched from
-- ARGV[2] the generation switched to
-- ARGV[3] the live generation's checkpoint the caller read ("" when none)
-- ARGV[4] the new generation's checkpoint the caller read ("" when none)
--
-- Replies "ok", "fenced" (another generation is live) or "moved" (a
-- checkpoint changed since the caller read it: read again).

if (redis.call('GET', KEYS[1]) or '1') ~= ARGV[1] then
  return 'fenced'
end
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[3]
  or (redis.call('GET', KEYS[3]) or '') ~= ARGV[4] then
  return 'moved'
end
redis.call('SET', KEYS[1], ARGV[2])
return 'ok'
