-- Nothing to store: on SQLite the commit watch reads PRAGMA data_version, which every commit
-- of any connection changes. The migration exists so that both engines number theirs alike.
SELECT 1;
