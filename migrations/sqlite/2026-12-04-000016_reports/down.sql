DROP TABLE item_flow;
DROP TABLE item_intervals;
