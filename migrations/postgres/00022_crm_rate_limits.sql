-- +goose Up
-- One row per rate-limited key (an integration's CRM account or portal),
-- shared by every gateway instance on this database (issue 8): the GCRA's
-- theoretical arrival time, in microseconds since the Unix epoch on the
-- database's clock, so instances with skewed clocks still agree.
-- UNLOGGED: every CRM call writes here, and without WAL the write needs no
-- flush (about half the cost of a Wait, measured). A crash empties the
-- table (a promoted standby starts with it empty), which only lets each
-- key start idle again: one burst, no harm.
CREATE UNLOGGED TABLE crm_rate_limits (
    key text   PRIMARY KEY,
    tat bigint NOT NULL
);

-- +goose Down
DROP TABLE crm_rate_limits;
