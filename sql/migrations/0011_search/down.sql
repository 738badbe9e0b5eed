-- Undo revision 0011, before the definitions of 0010 are restored (which
-- bring back vk.attach, the searches without filter and contract 0's names).
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT x.id FROM vk.collections x LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS vk_expr.meta_c%s(text[])', c.id);
    END LOOP;
    FOR c IN SELECT x.collection_id, x.model_id FROM vk.collection_models x LOOP
        EXECUTE format('DROP INDEX IF EXISTS vk.%I', format('embeddings_c%s_m%s_fts', c.collection_id, c.model_id));
    END LOOP;
END
$$;
DROP FUNCTION vk.search(text, vector, integer, text, jsonb);
DROP FUNCTION vk.search(text, text, integer, text, jsonb);
DROP FUNCTION vk.search_chunks(text, vector, integer, text, jsonb);
DROP FUNCTION vk.search_chunks(text, text, integer, text, jsonb);
DROP FUNCTION vk.similar(text, text, integer, text, jsonb);
DROP FUNCTION vk.hybrid_search(text, text, integer, jsonb, double precision, double precision, text);
DROP FUNCTION vk._keyword_sql(vk.collections, vk.models);
DROP FUNCTION vk._any_word(regconfig, text);
DROP FUNCTION vk._nearest(vk.collections, vk.models, vector, integer, jsonb, boolean);
DROP FUNCTION vk._nearest_sql(vk.collections, vk.models, boolean, boolean, boolean);
DROP FUNCTION vk._exact_bound(integer);
DROP TYPE vk._neighbour;
DROP FUNCTION vk.attach(regclass, text, text, text, text, text, text, regconfig);
DROP FUNCTION vk.set_metadata(text, text);
DROP FUNCTION vk._install_metadata_function(bigint);
DROP FUNCTION vk._refresh_metadata(bigint, text[]);
DROP FUNCTION vk.set_text_search(text, regconfig);
DROP FUNCTION vk._keyword_index_name(bigint, bigint);
DROP FUNCTION vk.embed(text, text);
DROP FUNCTION vk._query_vector(vk.models, text);
DROP FUNCTION vk._embed_vector(bigint, text);
DROP FUNCTION vk._embed_link();
DROP FUNCTION vk._request_embedding(bigint, text);
DROP FUNCTION vk._await_embedding(bigint, interval);
DROP FUNCTION vk._embed_timeout();
DROP FUNCTION vk._embed_cache_ttl();
DROP FUNCTION vk.claim_embed_requests_v1(integer);
DROP FUNCTION vk.answer_embed_request_v1(bigint, vector);
DROP FUNCTION vk.fail_embed_request_v1(bigint, text);
DROP FUNCTION vk.prune_embed_cache_v1();
DROP FUNCTION vk.search_models_v1();
DROP FUNCTION vk._expression_values(text, text[]);
DROP TABLE vk.embed_requests;
DROP TABLE vk.embed_cache;
DROP INDEX vk.embeddings_metadata;
ALTER TABLE vk.embeddings DROP COLUMN metadata;
ALTER TABLE vk.queue DROP COLUMN metadata;
ALTER TABLE vk.collections DROP COLUMN metadata_expression, DROP COLUMN metadata_registered_by,
    DROP COLUMN text_search;
-- dblink stays where 0011 put it (vk_dblink): other things may use it by now.
