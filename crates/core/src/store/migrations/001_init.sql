-- The first schema: the seed's three keyspaces as typed tables.
CREATE TABLE matrix_user (
    user_id         TEXT PRIMARY KEY NOT NULL,
    space_id        TEXT,
    dm_room_id      TEXT,
    next_chat_index INTEGER NOT NULL DEFAULT 1 CHECK (next_chat_index >= 1)
) STRICT;

CREATE TABLE matrix_room (
    room_id    TEXT PRIMARY KEY NOT NULL,
    owner      TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('space', 'chat', 'dm')),
    chat_index INTEGER CHECK (chat_index >= 1),
    CHECK ((kind = 'chat') = (chat_index IS NOT NULL))
) STRICT;

CREATE TABLE chat (
    owner      TEXT NOT NULL,
    chat_index INTEGER NOT NULL CHECK (chat_index >= 1),
    name       TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('active', 'archived')),
    room_id    TEXT NOT NULL,
    PRIMARY KEY (owner, chat_index)
) STRICT;

CREATE INDEX chat_by_room ON chat (room_id);
CREATE INDEX room_by_owner ON matrix_room (owner);
