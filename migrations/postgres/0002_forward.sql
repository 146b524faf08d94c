-- Push delivery of the activity stream: where a product's payloads are POSTed,
-- and the secret they are signed with (kept as given: HMACs need it).
ALTER TABLE products ADD COLUMN forward_url TEXT;
ALTER TABLE products ADD COLUMN forward_secret TEXT;
