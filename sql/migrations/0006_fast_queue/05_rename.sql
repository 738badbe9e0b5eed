-- vk.attach and vk.detach keep their bodies under a versioned name; the new
-- vk.attach and vk.detach (30_attach.sql) wrap them.

ALTER FUNCTION vk.attach(regclass, text, text, text, text) RENAME TO attach_v1;
ALTER FUNCTION vk.detach(text) RENAME TO detach_v1;
