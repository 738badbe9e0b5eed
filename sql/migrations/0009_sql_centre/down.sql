-- Undo revision 0009, before the definitions of 0008 are restored: the old
-- names come back (the restore then re-creates what 0009 dropped and drops
-- what it added).
DROP FUNCTION vk.collection(text);
DROP FUNCTION vk.collection_model(vk.collections, text);
ALTER FUNCTION vk._collection(text) RENAME TO collection;
ALTER FUNCTION vk._collection_model(vk.collections, text) RENAME TO collection_model;
ALTER FUNCTION vk._require_usable(vk.models) RENAME TO require_usable;
ALTER FUNCTION vk._check_dimension(vector, vk.models) RENAME TO check_dimension;
ALTER FUNCTION vk._embeddings_check() RENAME TO embeddings_check_v1;
ALTER FUNCTION vk._touch_updated_at() RENAME TO touch_updated_at;
ALTER FUNCTION vk._opclass(text) RENAME TO opclass;
ALTER FUNCTION vk._operator(text) RENAME TO operator;
ALTER FUNCTION vk._on_update() RENAME TO on_update_v1;
ALTER FUNCTION vk._on_delete() RENAME TO on_delete_v1;
ALTER FUNCTION vk._on_truncate() RENAME TO on_truncate_v1;
ALTER FUNCTION vk._forget(bigint, text[]) RENAME TO forget_v1;
ALTER FUNCTION vk._enqueued(bigint, bigint) RENAME TO enqueued_v1;
ALTER FUNCTION vk._insert_trigger_name(bigint) RENAME TO insert_trigger_name;
ALTER FUNCTION vk._install_insert_trigger(bigint) RENAME TO install_insert_trigger_v2;
ALTER FUNCTION vk._knn_sql(bigint, vk.models) RENAME TO knn_sql;
ALTER FUNCTION vk._knn_chunks_sql(bigint, vk.models, text) RENAME TO knn_chunks_sql;
ALTER FUNCTION vk._chunks_for_rows(integer) RENAME TO chunks_for_rows;
ALTER FUNCTION vk._knn_rows_sql(vk.collections, vk.models) RENAME TO knn_rows_sql;
ALTER FUNCTION vk._widen_ef_search(integer) RENAME TO widen_ef_search;
ALTER FUNCTION vk._check_k(integer) RENAME TO check_k;
ALTER FUNCTION vk._similarity(double precision, text) RENAME TO similarity;
ALTER FUNCTION vk._collection_stats(bigint, bigint) RENAME TO collection_stats_v2;
ALTER FUNCTION vk._trainable_kinds() RENAME TO trainable_kinds;
ALTER FUNCTION vk._check_train_args(text, text) RENAME TO check_train_args;
ALTER FUNCTION vk._coverage(vk.collections, vk.models) RENAME TO coverage_v1;
ALTER FUNCTION vk._check_gates(vk.models, jsonb) RENAME TO check_gates_v1;
ALTER FUNCTION vk._adopted(text) RENAME TO adopted;
ALTER FUNCTION vk._compatible_models(vk.models) RENAME TO compatible_models;
ALTER FUNCTION vk._inverter_for(vk.models, text) RENAME TO inverter_for_v1;
ALTER FUNCTION vk._forget_coordinates() RENAME TO forget_coordinates_v1;
ALTER FUNCTION vk._map(text) RENAME TO map;
ALTER FUNCTION vk._ordered(vk.collections) RENAME TO ordered;
ALTER FUNCTION vk._next_vector_model(vk.collections, text) RENAME TO next_vector_model;
