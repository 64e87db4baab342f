-- The shop's tables on PostgreSQL (runbooks/mariadb-to-postgres.yaml, step create-schema).
-- MariaDB's DATETIME and TIMESTAMP become timestamptz: `copy` reads both as UTC.
CREATE TABLE customers (
  id integer PRIMARY KEY,
  email varchar(200) NOT NULL UNIQUE,
  name varchar(200) NOT NULL,
  country char(2),
  created_at timestamptz NOT NULL
);

CREATE TABLE products (
  id integer PRIMARY KEY,
  sku varchar(40) NOT NULL UNIQUE,
  name varchar(200) NOT NULL,
  price numeric(10,2) NOT NULL,
  weight_kg numeric(8,3)
);

CREATE TABLE orders (
  id bigint PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES customers (id),
  product_id integer NOT NULL REFERENCES products (id),
  quantity integer NOT NULL,
  amount numeric(12,2) NOT NULL,
  status varchar(20) NOT NULL,
  note text,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);

-- Rows changed on MariaDB while the bulk copy ran land here first (step catch-up), then
-- are merged into orders (step merge-changes).
CREATE UNLOGGED TABLE orders_changes (LIKE orders INCLUDING DEFAULTS, PRIMARY KEY (id));
