-- +goose Up
-- One row per rate-limited key (an integration's CRM account or portal),
-- shared by every gateway instance on this database (issue 8): the GCRA's
-- theoretical arrival time, in microseconds since the Unix epoch. SQLite
-- serves one gateway process, so its clock is that process's.
CREATE TABLE crm_rate_limits (
    key text    PRIMARY KEY,
    tat integer NOT NULL
);

-- +goose Down
DROP TABLE crm_rate_limits;
