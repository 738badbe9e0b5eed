-- vectorkeep 0020, after the current definitions: the BM25 statistics of the
-- text already stored (the triggers keep them from now on). Not on Citus,
-- where keyword search ranks without them.
SELECT vk._keyword_add(array_agg(e.collection_id), array_agg(e.model_id), array_agg(e.pk), array_agg(e.chunk),
                       array_agg(e.body))
FROM vk.embeddings e
WHERE NOT vk._citus_table('vk.embeddings')
HAVING count(*) > 0;
SELECT vk.compact_keyword_stats_v1();
