-- Appends entries to capped streams for several callers in one script call: the appends of one
-- event-loop turn (every send of the turn) travel together, one command instead of one per send.
-- A script runs alone, so no other command sees some of a caller's appends and not the others.
-- Each caller may name a hash field that must exist (a direct message's registered recipient):
-- without it, nothing of that caller is appended. Each entry's id comes back with the id of the
-- stream's newest entry before it ('' for an empty stream), which live readers chain on.
-- An append that fails (a key of another type) fails its caller only; the caller's appends made
-- before it stay, as with MULTI (scripts are not rolled back); other callers are not affected.
-- Field lists shared by several entries (a message fanned out to many inboxes) are sent once.
-- (Keys of many slots in one script: Redis Cluster is not supported.)
-- KEYS       every stream and condition hash, each once
-- ARGV       nsets, then nsets times: n, then n field/value strings;
--            then ncalls, then ncalls times: the condition hash's KEYS index (0: none), the
--            condition field, nitems, then nitems times: KEYS index, field list index, MAXLEN (~)
-- Returns    one array per caller: {'ok', id1, prev1, id2, prev2, ...}, {'missing'} when its
--            condition field does not exist, or {'error', message} when an append failed
local a = 1
local nsets = tonumber(ARGV[a]); a = a + 1
local sets = {}
for s = 1, nsets do
  local n = tonumber(ARGV[a]); a = a + 1
  local f = {}
  for j = 1, n do f[j] = ARGV[a + j - 1] end
  a = a + n
  sets[s] = f
end
local ncalls = tonumber(ARGV[a]); a = a + 1
local out = {}
for c = 1, ncalls do
  local guard = tonumber(ARGV[a])
  local field = ARGV[a + 1]
  local nitems = tonumber(ARGV[a + 2])
  a = a + 3
  local res
  if guard > 0 and redis.call('HEXISTS', KEYS[guard], field) == 0 then
    res = {'missing'}
  else
    res = {'ok'}
    for i = 1, nitems do
      local key = KEYS[tonumber(ARGV[a + (i - 1) * 3])]
      local set = sets[tonumber(ARGV[a + (i - 1) * 3 + 1])]
      local maxlen = ARGV[a + (i - 1) * 3 + 2]
      local last = redis.pcall('XREVRANGE', key, '+', '-', 'COUNT', 1)
      local id = redis.pcall('XADD', key, 'MAXLEN', '~', maxlen, '*', unpack(set))
      if type(id) == 'table' and id.err then
        res = {'error', id.err}
        break
      end
      local prev = ''
      if type(last) == 'table' and last[1] then prev = last[1][1] end
      res[#res + 1] = id
      res[#res + 1] = prev
    end
  end
  a = a + nitems * 3
  out[c] = res
end
return out
