-- Run once by the postgres image's entrypoint when the data volume is first
-- initialised (mounted into /docker-entrypoint-initdb.d by compose.yaml).
-- Each database-owning service gets its own database; each service creates
-- its own tables (migrations) at start-up.
CREATE DATABASE auth;
CREATE DATABASE tenancy;
CREATE DATABASE billing;
CREATE DATABASE chat;
