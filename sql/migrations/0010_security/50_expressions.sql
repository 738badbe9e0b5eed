-- vectorkeep 0010, after the current definitions: the expression functions of
-- every collection attached before, owned by its author.
SELECT vk._install_text_functions(id) FROM vk.collections ORDER BY id;
SELECT vk._install_order_function(id) FROM vk.collections WHERE group_expression IS NOT NULL ORDER BY id;
