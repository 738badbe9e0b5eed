-- Collections attached before this revision get their own INSERT trigger function.

SELECT vk.install_insert_trigger_v2(id) FROM vk.collections;
