-- The archive the orders-archive runbook moves old orders into. Safe to run again.
CREATE SCHEMA IF NOT EXISTS archive;
CREATE TABLE IF NOT EXISTS archive.orders (LIKE public.orders INCLUDING ALL);
CREATE TABLE IF NOT EXISTS archive.runs (
    migration   text PRIMARY KEY,
    cutoff      date NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now()
);
