DROP INDEX items_column_rank_idx;
CREATE INDEX items_column_rank_idx ON items (column_id, rank);
