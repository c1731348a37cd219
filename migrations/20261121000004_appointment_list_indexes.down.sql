-- Back below 20261121000004: the two list indexes go. Lossless (indexes hold no data); the lower
-- version's GET /appointments sorts instead of walking an index range.

DROP INDEX appointments_owner_created_idx;
DROP INDEX appointments_owner_start_idx;
