-- Undoes schema.sql (the rollback of step create-schema): safe to run twice.
DROP TABLE IF EXISTS orders_changes, orders, products, customers;
