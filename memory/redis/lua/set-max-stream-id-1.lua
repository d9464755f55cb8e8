-- Stores a stream id only if it is greater than the one stored (a cursor that never moves back).
-- KEYS[1]  the cursor key (a string)
-- ARGV[1]  the candidate stream id "<ms>-<seq>"
-- Returns  the stored id after the call.
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local current = redis.call('GET', KEYS[1])
if current then
  local cm, cs = parse(current)
  local nm, ns = parse(ARGV[1])
  if nm < cm or (nm == cm and ns <= cs) then
    return current
  end
end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
