-- Appends entries to capped streams for several callers in one script call: the appends of one
-- event-loop turn (every send of the turn) travel together, one command instead of one per send.
-- A script runs alone, so no other command sees some of a caller's appends and not the others.
-- Each caller may name a hash field that must exist (a direct message's registered recipient):
-- without it, nothing of that caller is appended. Each entry's id comes back with the id of the
-- stream's newest entry before it ('' for an empty stream), which live readers chain on.
-- An append that fails (a key of another type) fails its caller only; the caller's appends made
-- before it stay, as with MULTI (scripts are not rolled back); other callers are not affected.
-- (An entry of thousands of fields would fail `unpack`, and with it the whole call: the store
-- refuses entries of more than MAX_ENTRY_FIELDS fields before they get here.)
-- Field lists shared by several entries (a message fanned out to many inboxes) are sent once, and
-- each list of field names once per call (every message has the same names).
-- The structure travels as one string of integers (ARGV[1]); ARGV[2...] are only the strings
-- themselves, in the order the structure uses them: fewer arguments for the client to encode and
-- for Redis to parse (measured: a third of the client's CPU per append), and one flat reply.
-- (Keys of many slots in one script: Redis Cluster is not supported.)
-- KEYS       every stream and condition hash, each once
-- ARGV[1]    integers separated by spaces:
--              nnames, then nnames times: n (the next n strings are field names);
--              nsets, then nsets times: a names index (the next strings are that many values);
--              ncalls, then ncalls times: the condition hash's KEYS index (0: none; else the next
--              string is the condition field), nitems, then nitems times: KEYS index, set index,
--              MAXLEN (~)
-- Returns    one string per caller: 'ok id1 prev1 id2 prev2 ...' (single spaces: an empty prev
--            is an empty word), 'missing' when its condition field does not exist, or
--            'error <message>' when an append failed
local nums = {}
for d in string.gmatch(ARGV[1], '%d+') do nums[#nums + 1] = tonumber(d) end
local n = 1
local s = 2
local names = {}
for i = 1, nums[n] do
  local count = nums[n + i]
  local list = {}
  for j = 1, count do list[j] = ARGV[s + j - 1] end
  s = s + count
  names[i] = list
end
n = n + nums[n] + 1
local sets = {}
for i = 1, nums[n] do
  local list = names[nums[n + i]]
  local flat = {}
  for j = 1, #list do
    flat[2 * j - 1] = list[j]
    flat[2 * j] = ARGV[s + j - 1]
  end
  s = s + #list
  sets[i] = flat
end
n = n + nums[n] + 1
local ncalls = nums[n]
n = n + 1
local out = {}
for c = 1, ncalls do
  local guard = nums[n]
  local nitems = nums[n + 1]
  n = n + 2
  local field
  if guard > 0 then
    field = ARGV[s]
    s = s + 1
  end
  if guard > 0 and redis.call('HEXISTS', KEYS[guard], field) == 0 then
    out[c] = 'missing'
  else
    local res = {'ok'}
    for i = 0, nitems - 1 do
      local key = KEYS[nums[n + i * 3]]
      local last = redis.pcall('XREVRANGE', key, '+', '-', 'COUNT', 1)
      local id = redis.pcall('XADD', key, 'MAXLEN', '~', nums[n + i * 3 + 2], '*', unpack(sets[nums[n + i * 3 + 1]]))
      if type(id) == 'table' and id.err then
        res = {'error', id.err}
        break
      end
      local prev = ''
      if type(last) == 'table' and last[1] then prev = last[1][1] end
      res[#res + 1] = id
      res[#res + 1] = prev
    end
    out[c] = table.concat(res, ' ')
  end
  n = n + nitems * 3
end
return out
