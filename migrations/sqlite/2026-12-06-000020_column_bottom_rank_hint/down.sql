ALTER TABLE board_columns DROP COLUMN bottom_rank_hint;
