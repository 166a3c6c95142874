CREATE INDEX item_intervals_board_idx ON item_intervals (board_id, entered_at);
