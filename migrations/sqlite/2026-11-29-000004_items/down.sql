DROP TABLE item_raci;
DROP TABLE item_labels;
DROP TABLE items;
