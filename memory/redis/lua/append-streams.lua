-- Appends one entry to each of several capped streams in one step (a script runs alone: no other
-- command sees some appends and not others), so that it can travel in ioredis' auto-pipeline with
-- other commands of the same turn (MULTI cannot). On an error (a key of another type) the appends
-- already made stay, as with MULTI: scripts are not rolled back.
-- Field lists shared by several streams (a message fanned out to many inboxes) are sent once.
-- KEYS       the streams
-- ARGV       nsets, then nsets times: n, then n field/value strings;
--            then for each key: the index (1-based) of its field list, and its MAXLEN (~)
-- Returns    the new entry ids, in KEYS order.
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
local out = {}
for i = 1, #KEYS do
  local set = sets[tonumber(ARGV[a])]
  local maxlen = ARGV[a + 1]
  a = a + 2
  out[i] = redis.call('XADD', KEYS[i], 'MAXLEN', '~', maxlen, '*', unpack(set))
end
return out
