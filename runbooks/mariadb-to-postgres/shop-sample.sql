-- A sample shop on MariaDB for runbooks/mariadb-to-postgres.yaml: 1,000 customers, 100
-- products and @orders orders (default 1,000,000), with NULLs, unicode, decimals and
-- timestamps. Load it into an empty database of its own:
--
--   mariadb -h 127.0.0.1 -u root -e 'CREATE DATABASE shop'
--   mariadb -h 127.0.0.1 -u root shop < runbooks/mariadb-to-postgres/shop-sample.sql
--
-- Fewer orders:
--   (echo 'SET @orders = 200000;'; cat runbooks/mariadb-to-postgres/shop-sample.sql) | mariadb -h 127.0.0.1 -u root shop
SET @orders = COALESCE(@orders, 1000000);
SET NAMES utf8mb4; -- the mariadb client's own default may not hold emoji
SET time_zone = '+00:00';

CREATE TABLE customers (
  id INT PRIMARY KEY,
  email VARCHAR(200) NOT NULL UNIQUE,
  name VARCHAR(200) NOT NULL,
  country CHAR(2) NULL,
  created_at TIMESTAMP(6) NOT NULL
) CHARACTER SET utf8mb4;

CREATE TABLE products (
  id INT PRIMARY KEY,
  sku VARCHAR(40) NOT NULL UNIQUE,
  name VARCHAR(200) NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  weight_kg DECIMAL(8,3) NULL
) CHARACTER SET utf8mb4;

CREATE TABLE orders (
  id BIGINT PRIMARY KEY,
  customer_id INT NOT NULL,
  product_id INT NOT NULL,
  quantity INT NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  status VARCHAR(20) NOT NULL,
  note TEXT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  KEY orders_updated_at (updated_at),
  CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id),
  CONSTRAINT orders_product FOREIGN KEY (product_id) REFERENCES products (id)
) CHARACTER SET utf8mb4;

-- 0..9; their cross joins count rows.
CREATE TEMPORARY TABLE digits (d INT);
INSERT INTO digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9);

INSERT INTO customers
SELECT n + 1,
       CONCAT('customer', n + 1, '@example.com'),
       ELT(n % 5 + 1, 'Zoë Müller', 'José Álvarez', '佐藤 花子', 'Åsa Ødegård', 'Chloé Dubois 🛒'),
       IF(n % 7 = 0, NULL, ELT(n % 4 + 1, 'DE', 'ES', 'JP', 'FR')),
       TIMESTAMP('2023-01-01') + INTERVAL n * 3607 SECOND + INTERVAL n * 13 MICROSECOND
FROM (SELECT a.d * 100 + b.d * 10 + c.d AS n FROM digits a, digits b, digits c) s;

INSERT INTO products
SELECT n + 1,
       CONCAT('SKU-', LPAD(n + 1, 5, '0')),
       CONCAT(ELT(n % 4 + 1, 'Tasse', 'Café', 'Teekanne ☕', 'Schürze'), ' Nr. ', n + 1),
       (n * 137 % 10000) / 100 + 0.99,
       IF(n % 3 = 0, NULL, (n % 50) / 8)
FROM (SELECT a.d * 10 + b.d AS n FROM digits a, digits b) s;

INSERT INTO orders (id, customer_id, product_id, quantity, amount, status, note, created_at, updated_at)
SELECT n + 1,
       n % 1000 + 1,
       n % 97 + 1,
       n % 5 + 1,
       (n % 5 + 1) * ((n % 97 * 137 % 10000) / 100 + 0.99),
       ELT(n % 4 + 1, 'new', 'paid', 'shipped', 'delivered'),
       IF(n % 3 = 0, NULL, CONCAT('Bitte klingeln — ', n % 100, ' ✓')),
       TIMESTAMP('2024-01-01') + INTERVAL n * 29 SECOND + INTERVAL n % 1000 MICROSECOND,
       TIMESTAMP('2024-01-01') + INTERVAL n * 29 + 60 SECOND
FROM (SELECT a.d * 100000 + b.d * 10000 + c.d * 1000 + e.d * 100 + f.d * 10 + g.d AS n
      FROM digits a, digits b, digits c, digits e, digits f, digits g) s
WHERE n < @orders;
