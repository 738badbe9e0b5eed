-- vectorkeep 0024, after the definitions (and, on downgrade, after 0023's are
-- restored): every collection's INSERT trigger function is written again by
-- the vk._install_insert_trigger now in place, so that it says why it writes
-- vk._queue_pairs's statement out (going down: 0023's text again).
SELECT vk._install_insert_trigger(id) FROM vk.collections ORDER BY id;
