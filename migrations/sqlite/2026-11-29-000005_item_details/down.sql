DROP TABLE item_external_refs;
DROP TABLE item_links;
DROP TABLE item_comments;
