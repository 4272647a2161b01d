-- Router shards: a destination's users are split into N shards, each delivered by whichever process
-- holds the session advisory lock on (destination, shard). The mapping lives in SQL, in one place, so
-- every process (whatever its language or version) agrees on it and an operator can ask for it:
--   SELECT sluice_user_shard('user-42', 4);
-- A user always maps to one shard, which is what keeps per-user ordering with several workers.
-- hashtext() is IMMUTABLE and this function is a plain SQL expression, so the planner inlines it.
CREATE FUNCTION sluice_user_shard(user_key text, shards integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT mod(hashtext(user_key)::bigint + 2147483648, shards)::integer
$$;
