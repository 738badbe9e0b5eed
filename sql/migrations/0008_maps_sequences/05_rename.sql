-- vk.activate keeps its body under a versioned name; the new vk.activate
-- (50_activation.sql) sends encoders to it and gates maps and next-vector
-- models itself.

ALTER FUNCTION vk.activate(text, text, jsonb) RENAME TO activate_v1;
