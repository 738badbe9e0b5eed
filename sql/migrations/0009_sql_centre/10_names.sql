-- vectorkeep 0009: one current definition per object. Run once by revision
-- 0009_sql_centre, before the current definitions are applied; undone by
-- down.sql.
--
-- Internal helpers take a leading underscore. ALTER ... RENAME keeps each
-- function's identity, so the triggers on attached tables and the functions
-- whose bodies use them follow; the definitions then replace the bodies.
ALTER FUNCTION vk.collection(text) RENAME TO _collection;
ALTER FUNCTION vk.collection_model(vk.collections, text) RENAME TO _collection_model;
ALTER FUNCTION vk.require_usable(vk.models) RENAME TO _require_usable;
ALTER FUNCTION vk.check_dimension(vector, vk.models) RENAME TO _check_dimension;
ALTER FUNCTION vk.embeddings_check_v1() RENAME TO _embeddings_check;
ALTER FUNCTION vk.touch_updated_at() RENAME TO _touch_updated_at;
ALTER FUNCTION vk.opclass(text) RENAME TO _opclass;
ALTER FUNCTION vk.operator(text) RENAME TO _operator;
ALTER FUNCTION vk.on_update_v1() RENAME TO _on_update;
ALTER FUNCTION vk.on_delete_v1() RENAME TO _on_delete;
ALTER FUNCTION vk.on_truncate_v1() RENAME TO _on_truncate;
ALTER FUNCTION vk.forget_v1(bigint, text[]) RENAME TO _forget;
ALTER FUNCTION vk.enqueued_v1(bigint, bigint) RENAME TO _enqueued;
ALTER FUNCTION vk.insert_trigger_name(bigint) RENAME TO _insert_trigger_name;
ALTER FUNCTION vk.install_insert_trigger_v2(bigint) RENAME TO _install_insert_trigger;
ALTER FUNCTION vk.knn_sql(bigint, vk.models) RENAME TO _knn_sql;
ALTER FUNCTION vk.knn_chunks_sql(bigint, vk.models, text) RENAME TO _knn_chunks_sql;
ALTER FUNCTION vk.chunks_for_rows(integer) RENAME TO _chunks_for_rows;
ALTER FUNCTION vk.knn_rows_sql(vk.collections, vk.models) RENAME TO _knn_rows_sql;
ALTER FUNCTION vk.widen_ef_search(integer) RENAME TO _widen_ef_search;
ALTER FUNCTION vk.check_k(integer) RENAME TO _check_k;
ALTER FUNCTION vk.similarity(double precision, text) RENAME TO _similarity;
ALTER FUNCTION vk.collection_stats_v2(bigint, bigint) RENAME TO _collection_stats;
ALTER FUNCTION vk.trainable_kinds() RENAME TO _trainable_kinds;
ALTER FUNCTION vk.check_train_args(text, text) RENAME TO _check_train_args;
ALTER FUNCTION vk.coverage_v1(vk.collections, vk.models) RENAME TO _coverage;
ALTER FUNCTION vk.check_gates_v1(vk.models, jsonb) RENAME TO _check_gates;
ALTER FUNCTION vk.adopted(text) RENAME TO _adopted;
ALTER FUNCTION vk.compatible_models(vk.models) RENAME TO _compatible_models;
ALTER FUNCTION vk.inverter_for_v1(vk.models, text) RENAME TO _inverter_for;
ALTER FUNCTION vk.forget_coordinates_v1() RENAME TO _forget_coordinates;
ALTER FUNCTION vk.map(text) RENAME TO _map;
ALTER FUNCTION vk.ordered(vk.collections) RENAME TO _ordered;
ALTER FUNCTION vk.next_vector_model(vk.collections, text) RENAME TO _next_vector_model;

-- Objects nothing uses any more: the generic INSERT trigger (each collection
-- has its own since 0006), the status counts before chunks, the bodies that
-- vk.attach, vk.detach and vk.activate wrapped (now one definition each), and
-- a kind test no code calls.
DROP FUNCTION vk.on_insert_v1();
DROP FUNCTION vk.collection_stats_v1(bigint, bigint);
DROP FUNCTION vk.attach_v1(regclass, text, text, text, text);
DROP FUNCTION vk.detach_v1(text);
DROP FUNCTION vk.activate_v1(text, text, jsonb);
DROP FUNCTION vk.is_encoder_kind(text);
