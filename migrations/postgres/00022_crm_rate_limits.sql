-- +goose Up
-- One row per rate-limited key (an integration's CRM account or portal),
-- shared by every gateway instance on this database (issue 8): the GCRA's
-- theoretical arrival time, in microseconds since the Unix epoch on the
-- database's clock, so instances with skewed clocks still agree.
CREATE TABLE crm_rate_limits (
    key text   PRIMARY KEY,
    tat bigint NOT NULL
);

-- +goose Down
DROP TABLE crm_rate_limits;
