-- The index over (board, entered_at) led SQLite's planner astray: without statistics it took
-- the range on entered_at over the equality `left_at IS NULL` of (board, left_at), and read
-- every interval of the board to find the open ones (0.9 s against 2 ms on 1M intervals). No
-- query needs it: the reports reach intervals by board through (board, left_at), by item
-- through (item, entered_at).
DROP INDEX item_intervals_board_idx;
