//! Plans: placeholder, filled in below.
