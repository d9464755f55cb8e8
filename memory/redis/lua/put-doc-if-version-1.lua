-- Compare-and-set of a versioned document stored as a hash { __v = version, __d = value }.
-- KEYS[1]  the document key
-- ARGV[1]  expected current version (0 = the document must not exist)
-- ARGV[2]  the new value
-- Returns  { 1, newVersion } when written, { 0, currentVersion } when the version did not match.
local current = tonumber(redis.call('HGET', KEYS[1], '__v') or '0')
if current ~= tonumber(ARGV[1]) then
  return { 0, current }
end
local nextVersion = current + 1
redis.call('HSET', KEYS[1], '__v', nextVersion, '__d', ARGV[2])
return { 1, nextVersion }
