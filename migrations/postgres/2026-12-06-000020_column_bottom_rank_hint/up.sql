-- Where a column's bottom stood at the last creation into it: the rank that creation gave its
-- item. A creation on PostgreSQL reads it with the column's lock (the locked row is the
-- latest version, whatever the statement's snapshot) and appends after it, so that the
-- column's items need not be read again under the lock that other creations on the board
-- wait for. Only a hint: a move to the bottom does not keep it, so the creation's insert
-- checks in the same statement that no item of the column ranks at or after the new one, and
-- reads the column when one does. Byte order, as the ranks themselves.
ALTER TABLE board_columns ADD COLUMN bottom_rank_hint TEXT COLLATE "C";
