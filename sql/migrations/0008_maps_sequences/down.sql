-- Undo revision 0008: maps, coordinates, predictions and deployments go (the
-- umap and lvm model versions stay in vk.models, unusable until re-upgraded);
-- vk.activate gets its old body back. The migration then re-applies the
-- idempotent files of revisions 0001-0007.
DROP TRIGGER embeddings_forget_coordinates ON vk.embeddings;
DROP FUNCTION vk.activate(text, text, jsonb);
ALTER FUNCTION vk.activate_v1(text, text, jsonb) RENAME TO activate;
DROP FUNCTION vk.check_gates_v1(vk.models, jsonb), vk.forget_coordinates_v1(), vk.map_gaps(text, integer, integer),
    vk.map(text), vk.set_order(text, text, text), vk.sequence_windows_v1(bigint, bigint, integer),
    vk.group_tail_v1(bigint, bigint, text, integer), vk.predict_next(text, text, text), vk.predicted(bigint, integer),
    vk.next_vector_model(vk.collections, text), vk.ordered(vk.collections), vk.is_encoder_kind(text);
DROP TABLE vk.predictions, vk.deployments, vk.coordinates, vk.maps;
ALTER TABLE vk.collections DROP COLUMN group_expression, DROP COLUMN position_expression;
