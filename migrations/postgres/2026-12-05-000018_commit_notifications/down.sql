DROP TRIGGER events_note_commit ON events;
DROP FUNCTION note_commit();
