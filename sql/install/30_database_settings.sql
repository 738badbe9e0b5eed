-- A fresh install's database settings (as revision 0015 set them). A text
-- query waits inside one statement. PostgreSQL notices that the client of a
-- running statement went away only where client_connection_check_interval is
-- set: then a killed client's backend ends within 250 ms, and with it its
-- loopback connection and its request. Set for this database unless a DBA
-- chose a value (or the installing role does not own the database: README).
DO $$
BEGIN
    IF current_setting('client_connection_check_interval') = '0'
       AND pg_has_role((SELECT d.datdba FROM pg_database d WHERE d.datname = current_database()), 'MEMBER') THEN
        EXECUTE format('ALTER DATABASE %I SET client_connection_check_interval = ''250ms''', current_database());
    END IF;
END
$$;
