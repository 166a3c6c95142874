DROP TABLE board_columns;
DROP TABLE boards;
