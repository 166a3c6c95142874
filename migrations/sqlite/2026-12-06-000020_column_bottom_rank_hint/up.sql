-- Where a column's bottom stood at the last creation into it (see the PostgreSQL migration).
-- SQLite's creations read the column's bottom itself (one writer, no round trips to save), so
-- the column stays empty here; it is in the schema so that both engines share one.
ALTER TABLE board_columns ADD COLUMN bottom_rank_hint TEXT;
