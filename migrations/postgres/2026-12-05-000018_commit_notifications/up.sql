-- Every statement that writes history events tells the listening instances that something
-- committed (NOTIFY is delivered at commit, and not at all on rollback), so that the callers
-- and items they keep in memory are read afresh. The payload names the schema: instances on
-- other schemas of the same database ignore it.
CREATE FUNCTION note_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('opsboard_commits', current_schema());
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_note_commit
    AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION note_commit();
